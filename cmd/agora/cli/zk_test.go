package cli

import (
	"bytes"
	"encoding/json"
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
