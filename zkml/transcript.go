package zkml

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/consensys/gnark/backend/groth16"
	mpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	csbn254 "github.com/consensys/gnark/constraint/bn254"
)

// A ceremony's transcript lives beside its circuit (the directory of
// `agora zk compile`):
//
//	DIR/circuit.r1cs
//	DIR/ceremony/ceremony.json          what it is for, the beacons, the keys' hashes
//	DIR/ceremony/phase1/0000.bin        phase 1's start (deterministic)
//	DIR/ceremony/phase1/0001.bin ...    the contributions, in order
//	DIR/ceremony/phase2/0000.bin        phase 2's start (deterministic from the sealed phase 1)
//	DIR/ceremony/phase2/0001.bin ...
//	DIR/proving.key, DIR/verifying.key  written by the seal
//
// Every file but the contributions is recomputable, and Verify recomputes
// it: the transcript is checked from the circuit and the beacons alone.

const (
	circuitFile      = "circuit.r1cs"
	ceremonyDir      = "ceremony"
	manifestFile     = "ceremony.json"
	ProvingKeyFile   = "proving.key"
	VerifyingKeyFile = "verifying.key"
)

// Ceremony is a transcript directory.
type Ceremony struct {
	Dir string // the circuit's directory
	m   manifest
}

type manifest struct {
	Circuit      string `json:"circuit_sha256"`
	Constraints  int    `json:"constraints"`
	Domain       uint64 `json:"domain"`
	Phase1Beacon string `json:"phase1_beacon,omitempty"`
	Phase2Beacon string `json:"phase2_beacon,omitempty"`
	ProvingKey   string `json:"proving_key_sha256,omitempty"`
	VerifyingKey string `json:"verifying_key_sha256,omitempty"`
}

// TranscriptEntry is one file of a phase's chain.
type TranscriptEntry struct {
	Phase int    `json:"phase"`
	Index int    `json:"index"` // 0 is the phase's start
	File  string `json:"file"`
	Hash  string `json:"hash"` // hex SHA-256 of the contribution (the next one's challenge)
}

// Transcript is what Verify checked.
type Transcript struct {
	Circuit      string            `json:"circuit_sha256"`
	Domain       uint64            `json:"domain"`
	Entries      []TranscriptEntry `json:"entries"`
	Phase1Beacon string            `json:"phase1_beacon,omitempty"`
	Phase2Beacon string            `json:"phase2_beacon,omitempty"`
	VerifyingKey string            `json:"verifying_key_sha256,omitempty"` // set once sealed
	ProvingKey   string            `json:"proving_key_sha256,omitempty"`
}

// Contributions counts a phase's contributions (not its start).
func (t *Transcript) Contributions(phase int) int {
	n := 0
	for _, e := range t.Entries {
		if e.Phase == phase && e.Index > 0 {
			n++
		}
	}
	return n
}

// Logf reports progress; nil discards it.
type Logf func(format string, args ...any)

func (f Logf) printf(format string, args ...any) {
	if f != nil {
		f(format, args...)
	}
}

// LogTo reports progress as lines on w.
func LogTo(w io.Writer) Logf {
	return func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
}

// InitCeremony starts a ceremony for the circuit in dir: phase 1 sized to
// its constraint count.
func InitCeremony(dir string, log Logf) (*Ceremony, error) {
	c := &Ceremony{Dir: dir}
	if _, err := os.Stat(c.manifestPath()); err == nil {
		return nil, fmt.Errorf("a ceremony exists already in %s", filepath.Join(dir, ceremonyDir))
	}
	r1cs, sum, err := c.readCircuit()
	if err != nil {
		return nil, err
	}
	c.m = manifest{Circuit: hex.EncodeToString(sum[:]), Constraints: r1cs.GetNbConstraints(), Domain: Phase1Domain(r1cs.GetNbConstraints())}
	log.printf("phase 1: domain 2^%d (%d constraints); writing its start", log2(c.m.Domain), c.m.Constraints)
	start, err := NewPhase1(c.m.Domain)
	if err != nil {
		return nil, err
	}
	for _, p := range []int{1, 2} {
		if err := os.MkdirAll(c.phaseDir(p), 0o755); err != nil {
			return nil, fmt.Errorf("init ceremony: %w", err)
		}
	}
	if err := WriteFileAtomic(c.entryPath(1, 0), start.Encode()); err != nil {
		return nil, err
	}
	if err := c.saveManifest(); err != nil {
		return nil, err
	}
	return c, nil
}

// OpenCeremony opens the ceremony in dir.
func OpenCeremony(dir string) (*Ceremony, error) {
	c := &Ceremony{Dir: dir}
	b, err := os.ReadFile(c.manifestPath())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no ceremony in %s (run `agora zk ceremony init` first)", dir)
		}
		return nil, fmt.Errorf("open ceremony: %w", err)
	}
	if err := json.Unmarshal(b, &c.m); err != nil {
		return nil, fmt.Errorf("open ceremony: %s: %w", c.manifestPath(), err)
	}
	if err := checkDomain(c.m.Domain); err != nil {
		return nil, fmt.Errorf("open ceremony: %s: %w", c.manifestPath(), err)
	}
	return c, nil
}

// Phase is the open phase: 1, 2, or 3 once sealed.
func (c *Ceremony) Phase() int {
	switch {
	case c.m.Phase1Beacon == "":
		return 1
	case c.m.Phase2Beacon == "":
		return 2
	}
	return 3
}

// Domain is phase 1's size.
func (c *Ceremony) Domain() uint64 { return c.m.Domain }

func (c *Ceremony) manifestPath() string { return filepath.Join(c.Dir, ceremonyDir, manifestFile) }
func (c *Ceremony) phaseDir(p int) string {
	return filepath.Join(c.Dir, ceremonyDir, fmt.Sprintf("phase%d", p))
}
func (c *Ceremony) entryPath(p, i int) string {
	return filepath.Join(c.phaseDir(p), fmt.Sprintf("%04d.bin", i))
}

func (c *Ceremony) saveManifest() error {
	b, err := json.MarshalIndent(c.m, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(c.manifestPath(), append(b, '\n'))
}

// readCircuit reads the circuit and its hash (of the file's bytes).
func (c *Ceremony) readCircuit() (*csbn254.R1CS, [32]byte, error) {
	path := filepath.Join(c.Dir, circuitFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("read circuit (run `agora zk compile` first): %w", err)
	}
	cs := groth16.NewCS(Curve)
	if _, err := cs.ReadFrom(bytes.NewReader(b)); err != nil {
		return nil, [32]byte{}, fmt.Errorf("decode %s: %w", path, err)
	}
	r1cs, ok := cs.(*csbn254.R1CS)
	if !ok {
		return nil, [32]byte{}, fmt.Errorf("%s: not a BN254 R1CS", path)
	}
	return r1cs, sha256.Sum256(b), nil
}

// count is the number of files in a phase's chain (start included); the
// names must run 0000, 0001, … without a gap.
func (c *Ceremony) count(p int) (int, error) {
	ents, err := os.ReadDir(c.phaseDir(p))
	if err != nil {
		return 0, fmt.Errorf("read transcript: %w", err)
	}
	n := 0
	for _, e := range ents {
		var i int
		if _, err := fmt.Sscanf(e.Name(), "%04d.bin", &i); err != nil || e.Name() != fmt.Sprintf("%04d.bin", i) {
			continue
		}
		n++
		if _, err := os.Stat(c.entryPath(p, n-1)); err != nil {
			return 0, fmt.Errorf("transcript phase %d: %s is missing (a gap in the chain)", p, filepath.Base(c.entryPath(p, n-1)))
		}
	}
	return n, nil
}

// load reads entry i of phase p and checks it belongs to this ceremony.
func (c *Ceremony) load(p, i int) (*Contribution, error) {
	x, err := ReadContribution(c.entryPath(p, i))
	if err != nil {
		return nil, err
	}
	if err := c.belongs(x, p); err != nil {
		return nil, fmt.Errorf("%s: %w", c.entryPath(p, i), err)
	}
	return x, nil
}

func (c *Ceremony) belongs(x *Contribution, p int) error {
	if x.Phase != p {
		return fmt.Errorf("it is a phase %d contribution; the ceremony wants phase %d", x.Phase, p)
	}
	if x.Domain != c.m.Domain {
		return fmt.Errorf("it is for a domain of %d, this ceremony's is %d (another ceremony)", x.Domain, c.m.Domain)
	}
	if p == 2 && hex.EncodeToString(x.Circuit[:]) != c.m.Circuit {
		return fmt.Errorf("it is for circuit %x…, this ceremony's is %.16s… (another circuit)", x.Circuit[:8], c.m.Circuit)
	}
	return nil
}

func (c *Ceremony) open() (int, error) {
	p := c.Phase()
	if p > 2 {
		return 0, errors.New("the ceremony is sealed: it takes no more contributions")
	}
	return p, nil
}

// Contribute adds a contribution with fresh randomness on top of the open
// phase's last one (run by a contributor who has the transcript; others use
// ContributeFile and the coordinator's Add). It returns the new entry.
func (c *Ceremony) Contribute(log Logf) (*TranscriptEntry, error) {
	p, err := c.open()
	if err != nil {
		return nil, err
	}
	n, err := c.count(p)
	if err != nil {
		return nil, err
	}
	last, err := c.load(p, n-1)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	log.printf("phase %d: contributing on top of %04d.bin …", p, n-1)
	if err := last.Contribute(); err != nil {
		return nil, err
	}
	log.printf("phase %d: contribution computed in %v", p, since(t0))
	if err := WriteFileNew(c.entryPath(p, n), last.Encode()); err != nil {
		return nil, err
	}
	return c.entry(p, n, last), nil
}

func (c *Ceremony) entry(p, i int, x *Contribution) *TranscriptEntry {
	h := x.Hash()
	return &TranscriptEntry{Phase: p, Index: i, File: c.entryPath(p, i), Hash: hex.EncodeToString(h[:])}
}

// Add verifies a contribution received from a contributor against the open
// phase's last one and appends it to the transcript; one that does not
// verify is refused, saying why, and nothing is written.
func (c *Ceremony) Add(path string, log Logf) (*TranscriptEntry, error) {
	p, err := c.open()
	if err != nil {
		return nil, err
	}
	next, err := ReadContribution(path)
	if err != nil {
		return nil, fmt.Errorf("refused: %w", err)
	}
	n, err := c.count(p)
	if err != nil {
		return nil, err
	}
	if err := c.belongs(next, p); err != nil {
		return nil, fmt.Errorf("refused %s as phase %d contribution %d: %w", path, p, n, err)
	}
	last, err := c.load(p, n-1)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := VerifyContribution(last, next); err != nil {
		return nil, fmt.Errorf("refused %s as phase %d contribution %d: it does not verify against contribution %d: %w", path, p, n, n-1, err)
	}
	log.printf("phase %d: %s verified against %04d.bin in %v", p, path, n-1, since(t0))
	if err := WriteFileNew(c.entryPath(p, n), next.Encode()); err != nil {
		return nil, err
	}
	return c.entry(p, n, next), nil
}

// verifyChain checks phase p's chain from its expected start to its last
// contribution and returns the last one (to be sealed).
func (c *Ceremony) verifyChain(p int, start *Contribution, t *Transcript, log Logf) (*Contribution, error) {
	n, err := c.count(p)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, fmt.Errorf("transcript phase %d: no start (0000.bin)", p)
	}
	first, err := c.load(p, 0)
	if err != nil {
		return nil, err
	}
	if first.Hash() != start.Hash() {
		return nil, fmt.Errorf("transcript phase %d: 0000.bin is not the phase's start as recomputed from the %s", p, map[int]string{1: "domain", 2: "circuit and the sealed phase 1"}[p])
	}
	t.Entries = append(t.Entries, *c.entry(p, 0, first))
	prev := first
	for i := 1; i < n; i++ {
		t0 := time.Now()
		next, err := c.load(p, i)
		if err != nil {
			return nil, err
		}
		if err := VerifyContribution(prev, next); err != nil {
			return nil, fmt.Errorf("transcript phase %d: contribution %d does not verify against contribution %d: %w", p, i, i-1, err)
		}
		e := c.entry(p, i, next)
		t.Entries = append(t.Entries, *e)
		log.printf("phase %d: contribution %d/%d verified in %v, hash %.16s…", p, i, n-1, since(t0), e.Hash)
		prev = next
	}
	return prev, nil
}

// replay re-verifies the transcript as far as it goes: phase 1's chain,
// its seal with the recorded beacon, phase 2's start recomputed from that
// and the circuit, phase 2's chain. It returns what sealing phase 2 needs.
func (c *Ceremony) replay(log Logf) (*Transcript, *Contribution, *mpc.SrsCommons, *mpc.Phase2Evaluations, error) {
	t := &Transcript{Circuit: c.m.Circuit, Domain: c.m.Domain, Phase1Beacon: c.m.Phase1Beacon, Phase2Beacon: c.m.Phase2Beacon}
	r1cs, sum, err := c.readCircuit()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if hex.EncodeToString(sum[:]) != c.m.Circuit {
		return nil, nil, nil, nil, fmt.Errorf("%s is not the circuit this ceremony is for (hash %x…, the ceremony's %.16s…)", filepath.Join(c.Dir, circuitFile), sum[:8], c.m.Circuit)
	}
	if d := Phase1Domain(r1cs.GetNbConstraints()); d != c.m.Domain {
		return nil, nil, nil, nil, fmt.Errorf("the ceremony's domain %d is not the circuit's %d", c.m.Domain, d)
	}
	start, err := NewPhase1(c.m.Domain)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	last1, err := c.verifyChain(1, start, t, log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	if c.Phase() == 1 {
		return t, last1, nil, nil, nil
	}
	if err := needContributions(1, t.Contributions(1), 1); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("transcript: %w", err)
	}
	beacon1, err := hex.DecodeString(c.m.Phase1Beacon)
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("transcript: phase 1 beacon: %w", err)
	}
	commons, evals, start2, err := c.openPhase2(r1cs, sum, last1, beacon1, log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	last2, err := c.verifyChain(2, start2, t, log)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	return t, last2, commons, evals, nil
}

// openPhase2 seals phase 1 with the beacon and starts phase 2.
func (c *Ceremony) openPhase2(r1cs *csbn254.R1CS, sum [32]byte, last1 *Contribution, beacon []byte, log Logf) (*mpc.SrsCommons, *mpc.Phase2Evaluations, *Contribution, error) {
	t0 := time.Now()
	log.printf("phase 1: sealing with beacon %x …", beacon)
	commons := sealPhase1(last1, beacon)
	log.printf("phase 1: sealed in %v; starting phase 2 for the circuit …", since(t0))
	t0 = time.Now()
	start2, evals, err := startPhase2(r1cs, sum, &commons)
	if err != nil {
		return nil, nil, nil, err
	}
	log.printf("phase 2: start computed in %v", since(t0))
	return &commons, &evals, start2, nil
}

func needContributions(p, have, want int) error {
	if have < max(want, 1) {
		return fmt.Errorf("phase %d has %d contributions, want at least %d (with none, the beacon alone fixes the secrets and anyone could forge proofs)", p, have, max(want, 1))
	}
	return nil
}

// ClosePhase1 re-verifies phase 1, seals it with the beacon (fixed in
// advance: on a network, the hash of a block at a height announced before
// the phase closes) and writes phase 2's start. minContrib is the fewest
// contributions accepted (at least 1).
func (c *Ceremony) ClosePhase1(beacon []byte, minContrib int, log Logf) (*TranscriptEntry, error) {
	if c.Phase() != 1 {
		return nil, errors.New("phase 1 is closed already")
	}
	if len(beacon) == 0 {
		return nil, errors.New("phase 1 needs a beacon")
	}
	r1cs, sum, err := c.readCircuit()
	if err != nil {
		return nil, err
	}
	if hex.EncodeToString(sum[:]) != c.m.Circuit {
		return nil, fmt.Errorf("%s is not the circuit this ceremony is for", filepath.Join(c.Dir, circuitFile))
	}
	t := &Transcript{}
	start, err := NewPhase1(c.m.Domain)
	if err != nil {
		return nil, err
	}
	last1, err := c.verifyChain(1, start, t, log)
	if err != nil {
		return nil, err
	}
	if err := needContributions(1, t.Contributions(1), minContrib); err != nil {
		return nil, err
	}
	_, _, start2, err := c.openPhase2(r1cs, sum, last1, beacon, log)
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(c.entryPath(2, 0), start2.Encode()); err != nil {
		return nil, err
	}
	c.m.Phase1Beacon = hex.EncodeToString(beacon)
	if err := c.saveManifest(); err != nil {
		return nil, err
	}
	return c.entry(2, 0, start2), nil
}

// Sealed is the ceremony's result.
type Sealed struct {
	ProvingKey       groth16.ProvingKey
	VerifyingKey     groth16.VerifyingKey
	VerifyingKeyHash [32]byte
	Transcript       *Transcript
}

// Seal re-verifies the whole transcript, seals phase 2 with the beacon and
// writes DIR/proving.key and DIR/verifying.key (atomically).
func (c *Ceremony) Seal(beacon []byte, minContrib int, log Logf) (*Sealed, error) {
	switch c.Phase() {
	case 1:
		return nil, errors.New("phase 1 is still open: close it first (`agora zk ceremony phase2`)")
	case 3:
		return nil, errors.New("the ceremony is sealed already")
	}
	if len(beacon) == 0 {
		return nil, errors.New("phase 2 needs a beacon")
	}
	t, last2, commons, evals, err := c.replay(log)
	if err != nil {
		return nil, err
	}
	if err := needContributions(2, t.Contributions(2), minContrib); err != nil {
		return nil, err
	}
	s, pkb, vkb, err := c.seal(t, last2, commons, evals, beacon, log)
	if err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(filepath.Join(c.Dir, ProvingKeyFile), pkb); err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(filepath.Join(c.Dir, VerifyingKeyFile), vkb); err != nil {
		return nil, err
	}
	c.m.Phase2Beacon = s.Transcript.Phase2Beacon
	c.m.ProvingKey = s.Transcript.ProvingKey
	c.m.VerifyingKey = s.Transcript.VerifyingKey
	if err := c.saveManifest(); err != nil {
		return nil, err
	}
	return s, nil
}

func (c *Ceremony) seal(t *Transcript, last2 *Contribution, commons *mpc.SrsCommons, evals *mpc.Phase2Evaluations, beacon []byte, log Logf) (*Sealed, []byte, []byte, error) {
	t0 := time.Now()
	log.printf("phase 2: sealing with beacon %x …", beacon)
	pk, vk, err := sealPhase2(last2, commons, evals, beacon)
	if err != nil {
		return nil, nil, nil, err
	}
	var pkb, vkb bytes.Buffer
	if _, err := pk.WriteTo(&pkb); err != nil {
		return nil, nil, nil, fmt.Errorf("encode proving key: %w", err)
	}
	if _, err := vk.WriteTo(&vkb); err != nil {
		return nil, nil, nil, fmt.Errorf("encode verifying key: %w", err)
	}
	vh := sha256.Sum256(vkb.Bytes())
	ph := sha256.Sum256(pkb.Bytes())
	log.printf("phase 2: sealed in %v", since(t0))
	t.Phase2Beacon = hex.EncodeToString(beacon)
	t.VerifyingKey = hex.EncodeToString(vh[:])
	t.ProvingKey = hex.EncodeToString(ph[:])
	return &Sealed{ProvingKey: pk, VerifyingKey: vk, VerifyingKeyHash: vh, Transcript: t}, pkb.Bytes(), vkb.Bytes(), nil
}

// Verify re-verifies the transcript from start to end: every contribution
// against its predecessor, both phases' starts and seals recomputed from
// the circuit and the recorded beacons, and, once sealed, that
// DIR/proving.key and DIR/verifying.key are the keys they give.
func (c *Ceremony) Verify(log Logf) (*Transcript, error) {
	t, last2, commons, evals, err := c.replay(log)
	if err != nil {
		return nil, err
	}
	if c.Phase() < 3 {
		return t, nil
	}
	if err := needContributions(2, t.Contributions(2), 1); err != nil {
		return nil, fmt.Errorf("transcript: %w", err)
	}
	beacon2, err := hex.DecodeString(c.m.Phase2Beacon)
	if err != nil {
		return nil, fmt.Errorf("transcript: phase 2 beacon: %w", err)
	}
	if _, _, _, err := c.seal(t, last2, commons, evals, beacon2, log); err != nil {
		return nil, err
	}
	for _, k := range []struct{ file, want, recorded string }{
		{ProvingKeyFile, t.ProvingKey, c.m.ProvingKey},
		{VerifyingKeyFile, t.VerifyingKey, c.m.VerifyingKey},
	} {
		if k.recorded != k.want {
			return nil, fmt.Errorf("transcript: %s records %s hash %.16s…, the transcript gives %.16s…", manifestFile, k.file, k.recorded, k.want)
		}
		b, err := os.ReadFile(filepath.Join(c.Dir, k.file))
		if err != nil {
			return nil, fmt.Errorf("transcript: %w", err)
		}
		if h := sha256.Sum256(b); hex.EncodeToString(h[:]) != k.want {
			return nil, fmt.Errorf("transcript: %s is not the key the transcript gives (hash %x…, want %.16s…)", filepath.Join(c.Dir, k.file), h[:8], k.want)
		}
	}
	return t, nil
}

func since(t time.Time) time.Duration { return time.Since(t).Round(time.Millisecond) }

func log2(n uint64) int {
	k := 0
	for n > 1 {
		n >>= 1
		k++
	}
	return k
}
