package zkml

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consensys/gnark/constraint"
	csbn254 "github.com/consensys/gnark/constraint/bn254"
)

// ceremonyModel is a dense 4 -> 3 -> 2 model: 476 constraints, a phase 1
// of 2^9 powers, so a whole ceremony runs in seconds.
func ceremonyModel(t *testing.T, bias int32) *Model {
	t.Helper()
	m := &Model{Layers: []Layer{
		{Kind: Dense, In: 4, Out: 3, M: 5, S: 9, W: []int8{1, -2, 3, 4, 5, -6, 7, 8, 9, 10, -11, 12}, B: []int32{10, -20, bias}},
		{Kind: Dense, In: 3, Out: 2, W: []int8{3, -1, 2, 5, 7, -4}, B: []int32{-5, 6}},
	}}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	return m
}

// writeCircuit compiles the model for a batch into dir/circuit.r1cs, as
// `agora zk compile` does.
func writeCircuit(t *testing.T, dir string, m *Model, batch int) constraint.ConstraintSystem {
	t.Helper()
	cs, err := Compile(m, batch)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := cs.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, circuitFile), b.Bytes()); err != nil {
		t.Fatal(err)
	}
	return cs
}

var (
	beacon1 = []byte("block 100 hash: 0123456789abcdef")
	beacon2 = []byte("block 200 hash: fedcba9876543210")
)

// contributeBoth adds two contributions to the open phase: one by a party
// holding the transcript, one by a party that gets the last file and sends
// back its own, which the coordinator adds. It returns their hashes.
func contributeBoth(t *testing.T, c *Ceremony, scratch string) []string {
	t.Helper()
	e1, err := c.Contribute(nil)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(scratch, "theirs.bin")
	os.Remove(out)
	h, on, err := ContributeFile(e1.File, out)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(on[:]) != e1.Hash {
		t.Fatalf("the second contribution was made on %x, want the first's hash %s", on, e1.Hash)
	}
	e2, err := c.Add(out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e2.Hash != hex.EncodeToString(h[:]) || e2.Index != 2 {
		t.Fatalf("added entry %+v, want index 2 and the contributor's hash %x", e2, h)
	}
	return []string{e1.Hash, e2.Hash}
}

// TestCeremonyTwoParties runs the whole ceremony with two contributors per
// phase; its keys prove and verify a real inference, the proof does not
// verify under a single-party key of the same circuit, and the transcript
// re-verifies from start to end and lists each contributor's hash.
func TestCeremonyTwoParties(t *testing.T) {
	dir, scratch := t.TempDir(), t.TempDir()
	m := ceremonyModel(t, 30)
	cs := writeCircuit(t, dir, m, 1)
	c, err := InitCeremony(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain() != 512 || c.Phase() != 1 {
		t.Fatalf("domain %d, phase %d; want 512 (476 constraints) and 1", c.Domain(), c.Phase())
	}
	if _, err := c.Seal(beacon2, 1, nil); err == nil || !strings.Contains(err.Error(), "phase 1 is still open") {
		t.Fatalf("seal in phase 1: %v", err)
	}
	hashes := contributeBoth(t, c, scratch)
	if _, err := c.ClosePhase1(beacon1, 3, nil); err == nil || !strings.Contains(err.Error(), "phase 1 has 2 contributions, want at least 3") {
		t.Fatalf("close phase 1 with too few contributions: %v", err)
	}
	if _, err := c.ClosePhase1(beacon1, 2, nil); err != nil {
		t.Fatal(err)
	}
	if c.Phase() != 2 {
		t.Fatalf("phase %d after closing phase 1", c.Phase())
	}
	hashes = append(hashes, contributeBoth(t, c, scratch)...)
	s, err := c.Seal(beacon2, 2, nil)
	if err != nil {
		t.Fatal(err)
	}

	inputs := [][]int8{{5, -7, 100, -128}}
	p, err := Prove(cs, s.ProvingKey, m, inputs)
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := m.Infer(inputs[0])
	if p.Statement.Classes[0] != tr.Class || !equal(p.Statement.Logits[0], tr.Logits) {
		t.Fatalf("proved class %d logits %v, the model gives %d %v", p.Statement.Classes[0], p.Statement.Logits[0], tr.Class, tr.Logits)
	}
	if err := Verify(s.VerifyingKey, p.Proof, &p.Statement, m.InLen(), m.OutLen()); err != nil {
		t.Fatalf("the ceremony's proof under its own key: %v", err)
	}
	vkFile, err := os.ReadFile(filepath.Join(dir, VerifyingKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	vk, err := ReadVerifyingKey(bytes.NewReader(vkFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(vk, p.Proof, &p.Statement, m.InLen(), m.OutLen()); err != nil {
		t.Fatalf("the proof under verifying.key: %v", err)
	}
	vh, err := VerifyingKeyHash(vk)
	if err != nil {
		t.Fatal(err)
	}
	if vh != s.VerifyingKeyHash || vh != sha256.Sum256(vkFile) {
		t.Fatalf("verifying key hash %x, seal said %x, sha256 of the file %x: want one value", vh, s.VerifyingKeyHash, sha256.Sum256(vkFile))
	}

	_, vk1, err := SetupSingleParty(cs)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(vk1, p.Proof, &p.Statement, m.InLen(), m.OutLen()); err == nil || !strings.Contains(err.Error(), "proof does not verify") {
		t.Fatalf("the ceremony's proof under a single-party key of the same circuit: %v, want refused", err)
	}

	tx, err := c.Verify(nil)
	if err != nil {
		t.Fatalf("verify transcript: %v", err)
	}
	var got []string
	for _, e := range tx.Entries {
		if e.Index > 0 {
			got = append(got, e.Hash)
		}
	}
	if strings.Join(got, ",") != strings.Join(hashes, ",") || len(tx.Entries) != 6 {
		t.Fatalf("transcript entries %+v, want the starts and the contributions %v", tx.Entries, hashes)
	}
	if tx.VerifyingKey != hex.EncodeToString(vh[:]) || tx.Phase1Beacon != hex.EncodeToString(beacon1) || tx.Phase2Beacon != hex.EncodeToString(beacon2) {
		t.Fatalf("transcript %+v", tx)
	}
	if _, err := c.Contribute(nil); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Fatalf("contribute after the seal: %v", err)
	}

	// A reopened transcript whose key was swapped for a single-party one,
	// or whose beacon was changed, no longer verifies.
	var b bytes.Buffer
	if _, err := vk1.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, VerifyingKeyFile), b.Bytes()); err != nil {
		t.Fatal(err)
	}
	c2, err := OpenCeremony(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c2.Verify(nil); err == nil || !strings.Contains(err.Error(), "verifying.key is not the key the transcript gives") {
		t.Fatalf("verify with a swapped verifying key: %v", err)
	}
	if err := WriteFileAtomic(filepath.Join(dir, VerifyingKeyFile), vkFile); err != nil {
		t.Fatal(err)
	}
	c2.m.Phase2Beacon = hex.EncodeToString([]byte("another beacon, chosen later"))
	if _, err := c2.Verify(nil); err == nil || !strings.Contains(err.Error(), "records proving.key hash") {
		t.Fatalf("verify with another phase 2 beacon: %v", err)
	}
	// A phase 1 chain that starts anywhere but the standard start (its
	// first file a contribution whose secrets someone knows), valid from
	// there on, does not verify.
	c2.m.Phase2Beacon = tx.Phase2Beacon
	forged, err := NewPhase1(c.Domain())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := forged.Contribute(); err != nil {
			t.Fatal(err)
		}
		if err := WriteFileAtomic(c.entryPath(1, i), forged.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c2.Verify(nil); err == nil || !strings.Contains(err.Error(), "transcript phase 1: 0000.bin is not the phase's start as recomputed from the domain") {
		t.Fatalf("verify with another phase 1 start: %v", err)
	}
}

// TestCeremonyRefuses: a contribution that is tampered with, truncated,
// foreign (not a contribution, another ceremony, another circuit, the other
// phase) or made on the wrong predecessor is refused by Add with the
// reason, and nothing is written; one slipped into the transcript directly
// fails Verify, naming it.
func TestCeremonyRefuses(t *testing.T) {
	dir, scratch := t.TempDir(), t.TempDir()
	m := ceremonyModel(t, 5)
	writeCircuit(t, dir, m, 1)
	c, err := InitCeremony(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	start, err := c.load(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	file := func(b []byte) string {
		n++
		p := filepath.Join(scratch, fmt.Sprintf("in%d.bin", n))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// contribution returns a fresh contribution on top of x (x is kept).
	contribution := func(x *Contribution) *Contribution {
		y, err := DecodeContribution(x.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if err := y.Contribute(); err != nil {
			t.Fatal(err)
		}
		return y
	}
	type refusal struct {
		name string
		b    []byte
		want string
	}
	refuse := func(p, have int, cases []refusal) {
		t.Helper()
		for _, tc := range cases {
			path := file(tc.b)
			_, err := c.Add(path, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("phase %d, %s: %v; want an error with %q", p, tc.name, err, tc.want)
			}
		}
		assertChain(t, c, p, have)
	}
	first, err := c.Contribute(nil)
	if err != nil {
		t.Fatal(err)
	}
	last1, err := c.load(1, 1)
	if err != nil {
		t.Fatal(err)
	}

	// Phase 1 tamper: the update proofs of one contribution over the
	// values of another (both on the same predecessor, so the challenge
	// matches): every point is well-formed, but not what the proofs prove.
	x, y := contribution(last1).Encode(), contribution(last1).Encode()
	spliced := append(append([]byte(nil), x[:contribHeaderLen+3*proofSize]...), y[contribHeaderLen+3*proofSize:]...)
	sh := start.Hash()
	otherN, err := NewPhase1(1024)
	if err != nil {
		t.Fatal(err)
	}
	good := contribution(last1).Encode()
	badVersion := append([]byte(nil), good...)
	badVersion[len(ceremonyMagic)-1] = 9
	badPhase := append([]byte(nil), good...)
	badPhase[len(ceremonyMagic)] = 3
	refuse(1, 2, []refusal{
		{"tampered", spliced, "as phase 1 contribution 2: it does not verify against contribution 1: its proof does not verify: failed to verify contribution to τ"},
		{"wrong predecessor", contribution(start).Encode(), fmt.Sprintf("does not verify against contribution 1: it was made on top of contribution %x…, not on the previous one %s… (wrong predecessor)", sh[:8], first.Hash[:16])},
		{"truncated", good[:len(good)-1000], "truncated phase 1 contribution"},
		{"truncated challenge", good[:len(good)-5], "truncated phase 1 contribution"},
		{"trailing bytes", append(append([]byte(nil), good...), 0, 0), "malformed phase 1 contribution: 2 trailing bytes"},
		{"header only", good[:contribHeaderLen-3], "truncated ceremony contribution"},
		{"not a contribution", []byte(`{"inputs":[[1,2,3]]}`), "not a ceremony contribution file"},
		{"empty", nil, "not a ceremony contribution file"},
		{"other version", badVersion, "format version 9"},
		{"other phase number", badPhase, "phase 3 (want 1 or 2)"},
		{"other ceremony", contribution(otherN).Encode(), "it is for a domain of 1024, this ceremony's is 512 (another ceremony)"},
		{"a start", start.Encode(), "it has no challenge: it is the start of a phase"},
	})

	// The good one is accepted; then phase 2.
	if _, err := c.Add(file(good), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ClosePhase1(beacon1, 2, nil); err != nil {
		t.Fatal(err)
	}
	start2, err := c.load(2, 0)
	if err != nil {
		t.Fatal(err)
	}
	first2, err := c.Contribute(nil)
	if err != nil {
		t.Fatal(err)
	}
	last2, err := c.load(2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Phase 2 tamper: one private-wire key changed after contributing.
	tam := contribution(last2)
	tam.p2.Parameters.G1.PKK[0].Double(&tam.p2.Parameters.G1.PKK[0])
	if err := tam.encodeBody(); err != nil {
		t.Fatal(err)
	}
	// Another circuit with the same domain (other requantisation
	// constants compile to another circuit), on the same phase 1.
	om := ceremonyModel(t, 5)
	om.Layers[0].M = 6
	ocs, err := Compile(om, 1)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := c.load(1, 2)
	if err != nil {
		t.Fatal(err)
	}
	commons := sealPhase1(p1, beacon1)
	ostart, _, err := startPhase2(ocs.(*csbn254.R1CS), [32]byte{1}, &commons)
	if err != nil {
		t.Fatal(err)
	}
	g2 := contribution(last2).Encode()
	s2 := start2.Hash()
	refuse(2, 2, []refusal{
		{"tampered", tam.Encode(), "as phase 2 contribution 2: it does not verify against contribution 1: its proof does not verify: failed to verify contribution to δ"},
		{"wrong predecessor", contribution(start2).Encode(), fmt.Sprintf("it was made on top of contribution %x…, not on the previous one %s… (wrong predecessor)", s2[:8], first2.Hash[:16])},
		{"other circuit", contribution(ostart).Encode(), "it is for circuit 0100000000000000…, this ceremony's is " + c.m.Circuit[:16] + "… (another circuit)"},
		{"phase 1", contribution(last1).Encode(), "it is a phase 1 contribution; the ceremony wants phase 2"},
		{"truncated", g2[:len(g2)-3000], "truncated phase 2 contribution"},
		{"truncated challenge", g2[:len(g2)-1], fmt.Sprintf("truncated phase 2 contribution: %d bytes, want %d", len(g2)-1-contribHeaderLen, len(g2)-contribHeaderLen)},
		{"trailing bytes", append(append([]byte(nil), g2...), 1), "malformed phase 2 contribution: 1 trailing bytes"},
	})

	// Slipped into the transcript behind the coordinator's back: the
	// transcript no longer verifies, and says where.
	if err := WriteFileAtomic(c.entryPath(2, 2), tam.Encode()); err != nil {
		t.Fatal(err)
	}
	want := "transcript phase 2: contribution 2 does not verify against contribution 1: its proof does not verify: failed to verify contribution to δ"
	if _, err := c.Verify(nil); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("verify a tampered transcript: %v; want %q", err, want)
	}
	if _, err := c.Seal(beacon2, 1, nil); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("seal a tampered transcript: %v; want %q", err, want)
	}
	if _, err := os.Stat(filepath.Join(dir, VerifyingKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a refused seal wrote a verifying key: %v", err)
	}
}

// assertChain checks phase p holds exactly n files and no temporaries.
func assertChain(t *testing.T, c *Ceremony, p, n int) {
	t.Helper()
	ents, err := os.ReadDir(c.phaseDir(p))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != n {
		t.Fatalf("phase %d directory holds %v, want %d files", p, names, n)
	}
}
