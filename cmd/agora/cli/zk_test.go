package cli

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestZKCommands runs compile, setup, prove and verify on a tiny conv+dense
// model, then verifies a statement with another class and the proof under
// another batch size's key: both refused, with the reason.
func TestZKCommands(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.json")
	in := filepath.Join(dir, "in.json")
	if err := os.WriteFile(model, []byte(`{"layers":[
{"kind":"conv","in_c":1,"in_h":4,"in_w":4,"out_c":2,"k":3,"stride":1,"m":3,"s":6,"w":[1,-2,3,4,5,-6,7,8,9,-1,2,3,-4,5,6,7,-8,9],"b":[10,-20]},
{"kind":"dense","in":8,"out":3,"w":[1,2,3,4,5,6,7,8,-1,-2,-3,-4,-5,-6,-7,-8,9,-9,9,-9,9,-9,9,-9],"b":[0,5,-5]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, []byte(`{"inputs":[[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16],[-5,3,-2,8,100,-100,7,1,0,0,3,4,5,6,7,8]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	k2, k1 := filepath.Join(dir, "k2"), filepath.Join(dir, "k1")
	proof := filepath.Join(dir, "proof.json")
	for _, args := range [][]string{
		{"zk", "compile", "--model", model, "--batch", "2", "--dir", k2},
		{"zk", "setup", "--dir", k2},
		{"zk", "prove", "--dir", k2, "--model", model, "--input", in, "--out", proof},
		{"zk", "compile", "--model", model, "--batch", "1", "--dir", k1},
		{"zk", "setup", "--dir", k1},
	} {
		if code, out, errOut := runCLI(args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	code, out, errOut := runCLI("zk", "verify", "--vk", filepath.Join(k2, "verifying.key"), "--proof", proof)
	if code != 0 || !strings.Contains(out, "valid: 2 inferences") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}

	var pf map[string]json.RawMessage
	b, _ := os.ReadFile(proof)
	if err := json.Unmarshal(b, &pf); err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	dec := json.NewDecoder(bytes.NewReader(pf["statement"]))
	dec.UseNumber() // the commitment is a 254-bit integer
	if err := dec.Decode(&st); err != nil {
		t.Fatal(err)
	}
	cl := st["classes"].([]any)
	c0, _ := cl[0].(json.Number).Int64()
	cl[0] = (c0 + 1) % 3
	pf["statement"], _ = json.Marshal(st)
	bad := filepath.Join(dir, "bad.json")
	b, _ = json.Marshal(pf)
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		vk, proof, want string
	}{
		{filepath.Join(k2, "verifying.key"), bad, "proof does not verify"},
		{filepath.Join(k1, "verifying.key"), proof, "another circuit or batch size"},
	} {
		code, _, errOut := runCLI("zk", "verify", "--vk", tc.vk, "--proof", tc.proof)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("verify %s under %s: exit %d, %q; want an error with %q", tc.proof, tc.vk, code, errOut, tc.want)
		}
	}
}

// TestZKCeremonyCommands runs the two-party ceremony through the command
// line — one party on the transcript, the other by files the coordinator
// adds — then proves and verifies with the sealed keys; a bad contribution,
// a bad beacon and a seal short of contributions are refused with the
// reason and change nothing.
func TestZKCeremonyCommands(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "model.json")
	in := filepath.Join(dir, "in.json")
	if err := os.WriteFile(model, []byte(`{"layers":[
{"kind":"dense","in":4,"out":3,"m":5,"s":9,"w":[1,-2,3,4,5,-6,7,8,9,10,-11,12],"b":[10,-20,30]},
{"kind":"dense","in":3,"out":2,"w":[3,-1,2,5,7,-4],"b":[-5,6]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, []byte(`{"inputs":[[5,-7,100,-128]]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	k := filepath.Join(dir, "zk")
	run := func(want string, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(args...)
		if code != 0 || !strings.Contains(out, want) {
			t.Fatalf("%v: exit %d, want output with %q\n%s%s", args, code, want, out, errOut)
		}
		return out
	}
	fail := func(want string, args ...string) {
		t.Helper()
		code, out, errOut := runCLI(args...)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("%v: exit %d, want an error with %q\n%s%s", args, code, want, out, errOut)
		}
	}
	hashOf := func(out string) string {
		t.Helper()
		_, h, ok := strings.Cut(out, "your contribution's hash ")
		if !ok || len(strings.TrimSpace(h)) != 64 {
			t.Fatalf("no contribution hash in %q", out)
		}
		return strings.TrimSpace(h)
	}
	theirs := func(phase int) []string {
		return []string{"zk", "ceremony", "contribute", "--in", filepath.Join(k, "ceremony", "phase"+string(rune('0'+phase)), "0001.bin"), "--out", filepath.Join(dir, "theirs"+string(rune('0'+phase))+".bin")}
	}
	run("batch 1, 476 constraints", "zk", "compile", "--model", model, "--batch", "1", "--dir", k)
	run("phase 1, domain 512", "zk", "ceremony", "init", "--dir", k)
	fail("a ceremony exists already", "zk", "ceremony", "init", "--dir", k)
	var hashes []string
	hashes = append(hashes, hashOf(run("phase 1 contribution 1 written", "zk", "contribute", "--dir", k)))
	hashes = append(hashes, hashOf(run("contribution written to", theirs(1)...)))
	fail("exists already", theirs(1)...)
	fail("not a ceremony contribution file", "zk", "ceremony", "add", "--dir", k, model)
	fail("--in and --out go together", "zk", "contribute", "--in", model)
	fail("phase 1 has 1 contributions, want at least 2", "zk", "ceremony", "phase2", "--dir", k, "--beacon", strings.Repeat("ab", 32))
	run("phase 1 contribution 2 verified and added", "zk", "ceremony", "add", "--dir", k, filepath.Join(dir, "theirs1.bin"))
	fail("wrong predecessor", "zk", "ceremony", "add", "--dir", k, filepath.Join(dir, "theirs1.bin"))
	fail("--beacon is required", "zk", "ceremony", "phase2", "--dir", k)
	fail(`beacon "0xzz": want hex`, "zk", "ceremony", "phase2", "--dir", k, "--beacon", "0xzz")
	fail("want at least 16", "zk", "ceremony", "phase2", "--dir", k, "--beacon", "abcd")
	run("valid so far: phase 1 open with 2 contributions", "zk", "ceremony", "verify", "--dir", k)
	run("phase 2 open", "zk", "ceremony", "phase2", "--dir", k, "--beacon", "0x"+strings.Repeat("ab", 32))
	hashes = append(hashes, hashOf(run("phase 2 contribution 1 written", "zk", "ceremony", "contribute", "--dir", k)))
	hashes = append(hashes, hashOf(run("contribution written to", theirs(2)...)))
	fail("phase 2 has 1 contributions, want at least 2", "zk", "ceremony", "seal", "--dir", k, "--beacon", strings.Repeat("cd", 32))
	run("phase 2 contribution 2 verified and added", "zk", "ceremony", "add", "--dir", k, filepath.Join(dir, "theirs2.bin"))
	out := run("sealed after 2 + 2 contributions", "zk", "ceremony", "seal", "--dir", k, "--beacon", strings.Repeat("cd", 32))
	vkb, err := os.ReadFile(filepath.Join(k, "verifying.key"))
	if err != nil {
		t.Fatal(err)
	}
	vh := fmt.Sprintf("%x", sha256.Sum256(vkb))
	if !strings.Contains(out, "verifying key hash "+vh) {
		t.Fatalf("seal printed %q, want the verifying key's hash %s", out, vh)
	}
	out = run("valid and sealed: 2 + 2 contributions", "zk", "ceremony", "verify", "--dir", k)
	for _, h := range append(hashes, vh) {
		if !strings.Contains(out, h) {
			t.Errorf("the transcript does not list %s:\n%s", h, out)
		}
	}
	proof := filepath.Join(dir, "proof.json")
	run("1 inferences", "zk", "prove", "--dir", k, "--model", model, "--input", in, "--out", proof)
	run("valid: 1 inferences", "zk", "verify", "--vk", filepath.Join(k, "verifying.key"), "--proof", proof)
	fail("the ceremony is sealed", "zk", "contribute", "--dir", k)
	fail("holds a multi-party ceremony: a single-party setup would replace its keys", "zk", "setup", "--dir", k)
	if b, err := os.ReadFile(filepath.Join(k, "verifying.key")); err != nil || !bytes.Equal(b, vkb) {
		t.Fatalf("verifying.key changed after a refused setup: %v", err)
	}
}
