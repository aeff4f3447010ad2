package zkml

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark/backend/groth16"
	mpc "github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	csbn254 "github.com/consensys/gnark/constraint/bn254"

	"github.com/agoranet/agora/chain/zk"
)

// The multi-party Groth16 setup (gnark's mpcsetup, after Bowe–Gabizon–Miers,
// eprint 2017/1050). Phase 1 ("powers of tau") computes [τⁱ], [ατⁱ], [βτⁱ]
// for a domain of N = 2^k; phase 2 specialises them to one circuit and
// divides by δ. Each contributor multiplies the current values by secrets of
// their own and proves, against the previous contribution's hash, that they
// did so consistently; the secrets are then forgotten. The keys are safe if
// any one contributor was honest (their secrets are gone), because τ, α, β
// and δ are products of every contributor's share. Each phase ends with a
// public beacon, a final deterministic "contribution" nobody chose.

// ceremonyMagic starts every contribution file: the format and its version.
const ceremonyMagic = "AGZKCER\x01"

// contribHeaderLen is the magic, the phase (1 byte), the domain size
// (8 bytes, big-endian) and the circuit's hash (32 bytes; zero in phase 1).
const contribHeaderLen = len(ceremonyMagic) + 1 + 8 + 32

// MaxDomain bounds the phase-1 domain a file may claim (2^24 powers: a
// circuit of up to 16.7M constraints), so that a foreign or corrupt file
// cannot make a reader allocate without bound before it is refused.
const MaxDomain = 1 << 24

const (
	g1Size    = curve.SizeOfG1AffineCompressed
	g2Size    = curve.SizeOfG2AffineCompressed
	proofSize = g1Size + g2Size // an update proof: [x]₁ and its proof of knowledge in 𝔾₂
)

// Contribution is one state of a ceremony phase: its start or the result of
// a contribution, as gnark's mpcsetup holds it, with what it is for.
type Contribution struct {
	Phase   int      // 1 or 2
	Domain  uint64   // N, the FFT domain size: a power of two ≥ the circuit's constraints
	Circuit [32]byte // phase 2: SHA-256 of the circuit's encoding; zero in phase 1

	p1   *mpc.Phase1
	p2   *mpc.Phase2
	body []byte // gnark's encoding of p1 or p2 (canonical: compressed points)
}

// Hash is SHA-256 of the contribution's gnark encoding: what gnark hashes
// as the challenge the next contribution is bound to, so it is also the
// next contribution's Challenge.
func (c *Contribution) Hash() [32]byte { return sha256.Sum256(c.body) }

// Challenge is the hash of the contribution this one was made on top of
// (empty for a phase's start).
func (c *Contribution) Challenge() []byte {
	if c.p1 != nil {
		return c.p1.Challenge
	}
	return c.p2.Challenge
}

// Encode is the contribution's file: a header saying what it is for, then
// gnark's encoding.
func (c *Contribution) Encode() []byte {
	b := make([]byte, 0, contribHeaderLen+len(c.body))
	b = append(b, ceremonyMagic...)
	b = append(b, byte(c.Phase))
	b = binary.BigEndian.AppendUint64(b, c.Domain)
	b = append(b, c.Circuit[:]...)
	return append(b, c.body...)
}

// encodeBody re-encodes the gnark object after it changed.
func (c *Contribution) encodeBody() error {
	var b bytes.Buffer
	var err error
	if c.p1 != nil {
		_, err = c.p1.WriteTo(&b)
	} else {
		_, err = c.p2.WriteTo(&b)
	}
	if err != nil {
		return fmt.Errorf("encode phase %d contribution: %w", c.Phase, err)
	}
	c.body = b.Bytes()
	return nil
}

// Phase1Domain is the phase-1 size a circuit needs: its constraint count
// rounded up to a power of two (gnark's Groth16 domain).
func Phase1Domain(nbConstraints int) uint64 {
	return ecc.NextPowerOfTwo(uint64(max(nbConstraints, 2)))
}

// NewPhase1 is the start of phase 1 for a domain: every power set to the
// generators. It is deterministic, so anyone can recompute it.
func NewPhase1(domain uint64) (*Contribution, error) {
	if err := checkDomain(domain); err != nil {
		return nil, err
	}
	c := &Contribution{Phase: 1, Domain: domain, p1: mpc.NewPhase1(domain)}
	if err := c.encodeBody(); err != nil {
		return nil, err
	}
	return c, nil
}

func checkDomain(n uint64) error {
	if n < 2 || n > MaxDomain || n&(n-1) != 0 {
		return fmt.Errorf("domain size %d: want a power of two in [2, 2^24]", n)
	}
	return nil
}

// Contribute adds fresh randomness (from crypto/rand, via gnark) to the
// contribution, turning it into the next one in place: c becomes the new
// contribution, whose Challenge is the old one's Hash. The secrets exist
// only inside this call.
func (c *Contribution) Contribute() error {
	if c.p1 != nil {
		c.p1.Contribute()
	} else {
		c.p2.Contribute()
	}
	return c.encodeBody()
}

// DecodeContribution reads a contribution file. A file that is not one, is
// truncated, has trailing bytes, is not canonically encoded or has points
// off the curve or outside the subgroup is refused, saying which.
func DecodeContribution(b []byte) (c *Contribution, err error) {
	if len(b) < contribHeaderLen {
		if !bytes.HasPrefix(b, []byte(ceremonyMagic)[:min(len(b), len(ceremonyMagic))]) || len(b) == 0 {
			return nil, errors.New("not a ceremony contribution file (no agora ceremony header)")
		}
		return nil, fmt.Errorf("truncated ceremony contribution: %d bytes, shorter than its %d-byte header", len(b), contribHeaderLen)
	}
	if string(b[:len(ceremonyMagic)]) != ceremonyMagic {
		if string(b[:len(ceremonyMagic)-1]) == ceremonyMagic[:len(ceremonyMagic)-1] {
			return nil, fmt.Errorf("ceremony contribution format version %d: this agora reads version %d", b[len(ceremonyMagic)-1], ceremonyMagic[len(ceremonyMagic)-1])
		}
		return nil, errors.New("not a ceremony contribution file (no agora ceremony header)")
	}
	h := b[len(ceremonyMagic):]
	c = &Contribution{Phase: int(h[0]), Domain: binary.BigEndian.Uint64(h[1:9])}
	copy(c.Circuit[:], h[9:41])
	if err := checkDomain(c.Domain); err != nil {
		return nil, fmt.Errorf("ceremony contribution header: %w", err)
	}
	body := b[contribHeaderLen:]
	switch c.Phase {
	case 1:
		if c.Circuit != ([32]byte{}) {
			return nil, errors.New("ceremony contribution header: a phase 1 contribution names no circuit")
		}
		if err := scanPhase1(body, c.Domain); err != nil {
			return nil, err
		}
		c.p1 = new(mpc.Phase1)
	case 2:
		if err := scanPhase2(body, c.Domain); err != nil {
			return nil, err
		}
		c.p2 = new(mpc.Phase2)
	default:
		return nil, fmt.Errorf("ceremony contribution header: phase %d (want 1 or 2)", c.Phase)
	}
	defer func() {
		// gnark's decoders trust sizes the scan has checked; a panic
		// left in them is still a malformed file, not a crash.
		if r := recover(); r != nil {
			c, err = nil, fmt.Errorf("malformed phase %d contribution: %v", c.Phase, r)
		}
	}()
	var rerr error
	if c.p1 != nil {
		_, rerr = c.p1.ReadFrom(bytes.NewReader(body))
	} else {
		_, rerr = c.p2.ReadFrom(bytes.NewReader(body))
	}
	if rerr != nil {
		return nil, fmt.Errorf("malformed phase %d contribution: %w", c.Phase, rerr)
	}
	if err := c.encodeBody(); err != nil {
		return nil, err
	}
	if !bytes.Equal(c.body, body) {
		// Also catches a short last field: gnark reads the challenge
		// with a single Read, so a truncated one decodes zero-padded.
		return nil, fmt.Errorf("malformed phase %d contribution: not canonically encoded (altered or truncated)", c.Phase)
	}
	if c.p2 != nil && uint64(len(c.p2.Parameters.G1.Z)) != c.Domain-1 {
		return nil, fmt.Errorf("malformed phase 2 contribution: %d powers for domain %d", len(c.p2.Parameters.G1.Z)+1, c.Domain)
	}
	return c, nil
}

// scanPhase1 checks a phase-1 body's length against its domain before gnark
// allocates for it (gnark's reader trusts the size it reads). The layout is
// gnark v0.14's: three update proofs, N, [β]₂, [τ¹..τ²ᴺ⁻²]₁, [τ¹..τᴺ⁻¹]₂,
// [βτ⁰..]₁, [ατ⁰..]₁ (N each), then the challenge (a length byte and bytes).
func scanPhase1(body []byte, n uint64) error {
	const nAt = 3 * proofSize
	if len(body) < nAt+8 {
		return fmt.Errorf("truncated phase 1 contribution: %d bytes", len(body))
	}
	if got := binary.BigEndian.Uint64(body[nAt:]); got != n {
		return fmt.Errorf("malformed phase 1 contribution: it holds %d powers, its header says %d", got, n)
	}
	fixed := uint64(nAt+8+g2Size) + (2*n-2)*g1Size + (n-1)*g2Size + 2*n*g1Size
	if uint64(len(body)) <= fixed {
		return fmt.Errorf("truncated phase 1 contribution: %d bytes, want more than %d for %d powers", len(body), fixed, n)
	}
	if want := fixed + 1 + uint64(body[fixed]); uint64(len(body)) != want {
		if uint64(len(body)) < want {
			return fmt.Errorf("truncated phase 1 contribution: %d bytes, want %d", len(body), want)
		}
		return fmt.Errorf("malformed phase 1 contribution: %d trailing bytes", uint64(len(body))-want)
	}
	return nil
}

// scanPhase2 walks a phase-2 body's length prefixes (gnark v0.14's layout:
// the commitment count, [δ]₁, the private-wire keys, the N−1 powers Z, [δ]₂,
// per commitment its σ-scaled basis, the [σᵢ]₂, the δ and σᵢ update proofs,
// the challenge) and checks they add up to the body before gnark allocates.
func scanPhase2(body []byte, n uint64) error {
	size := uint64(len(body))
	var pos uint64
	need := func(k uint64, what string) error {
		if k > size || pos > size-k {
			return fmt.Errorf("truncated phase 2 contribution: %s needs %d bytes at offset %d of %d", what, k, pos, size)
		}
		return nil
	}
	u32 := func(what string) (uint64, error) {
		if err := need(4, what); err != nil {
			return 0, err
		}
		v := uint64(binary.BigEndian.Uint32(body[pos:]))
		pos += 4
		return v, nil
	}
	points := func(what string) error {
		l, err := u32(what)
		if err != nil {
			return err
		}
		if err := need(l*g1Size, what); err != nil {
			return err
		}
		pos += l * g1Size
		return nil
	}
	if err := need(2, "the commitment count"); err != nil {
		return err
	}
	k := uint64(binary.BigEndian.Uint16(body))
	pos = 2
	if err := need(g1Size, "[δ]₁"); err != nil {
		return err
	}
	pos += g1Size
	if err := points("the private-wire keys"); err != nil {
		return err
	}
	zAt := pos
	if err := points("the powers Z"); err != nil {
		return err
	}
	if z := uint64(binary.BigEndian.Uint32(body[zAt:])); z != n-1 {
		return fmt.Errorf("malformed phase 2 contribution: %d powers Z, its header's domain %d needs %d", z, n, n-1)
	}
	if err := need(g2Size, "[δ]₂"); err != nil {
		return err
	}
	pos += g2Size
	for range k {
		if err := points("a commitment basis"); err != nil {
			return err
		}
	}
	tail := k*g2Size + (1+k)*proofSize
	if err := need(tail+1, "the σ keys and update proofs"); err != nil {
		return err
	}
	pos += tail
	want := pos + 1 + uint64(body[pos])
	if size < want {
		return fmt.Errorf("truncated phase 2 contribution: %d bytes, want %d", size, want)
	}
	if size > want {
		return fmt.Errorf("malformed phase 2 contribution: %d trailing bytes", size-want)
	}
	return nil
}

// VerifyContribution checks that next is a valid contribution on top of
// prev: the same phase, domain and circuit; made on prev (its challenge is
// prev's hash); and gnark's proofs that it scaled every value by secrets it
// knows, consistently. gnark assumes both were decoded (points on the curve
// and in the subgroup), which DecodeContribution ensures.
func VerifyContribution(prev, next *Contribution) (err error) {
	if next.Phase != prev.Phase {
		return fmt.Errorf("it is a phase %d contribution, on top of phase %d", next.Phase, prev.Phase)
	}
	if next.Domain != prev.Domain {
		return fmt.Errorf("its domain is %d, the previous contribution's %d", next.Domain, prev.Domain)
	}
	if next.Circuit != prev.Circuit {
		return fmt.Errorf("it is for circuit %x, the previous contribution for circuit %x", next.Circuit[:8], prev.Circuit[:8])
	}
	ch := next.Challenge()
	if len(ch) == 0 {
		return errors.New("it has no challenge: it is the start of a phase, not a contribution")
	}
	if h := prev.Hash(); !bytes.Equal(ch, h[:]) {
		return fmt.Errorf("it was made on top of contribution %x…, not on the previous one %x… (wrong predecessor)", ch[:min(len(ch), 8)], h[:8])
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed contribution: %v", r)
		}
	}()
	if prev.p1 != nil {
		err = prev.p1.Verify(next.p1)
	} else {
		err = prev.p2.Verify(next.p2)
	}
	if err != nil {
		return fmt.Errorf("its proof does not verify: %w", err)
	}
	return nil
}

// ReadContribution reads and decodes a contribution file.
func ReadContribution(path string) (*Contribution, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read contribution: %w", err)
	}
	c, err := DecodeContribution(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ContributeFile is a contributor's whole job: read the contribution in,
// add fresh randomness, write the result to out (atomically, refusing to
// overwrite). It returns the new contribution's hash and the one it was
// made on. It checks that in is well-formed, not that it belongs to a valid
// chain: `agora zk ceremony verify` (or the coordinator's add) does that.
func ContributeFile(in, out string) (hash, on [32]byte, err error) {
	c, err := ReadContribution(in)
	if err != nil {
		return hash, on, err
	}
	on = c.Hash()
	if err := c.Contribute(); err != nil {
		return hash, on, err
	}
	if err := WriteFileNew(out, c.Encode()); err != nil {
		return hash, on, err
	}
	return c.Hash(), on, nil
}

// sealPhase1 ends phase 1 with the beacon: gnark's final deterministic
// update, giving the circuit-independent SRS. It consumes c.
func sealPhase1(c *Contribution, beacon []byte) mpc.SrsCommons {
	return c.p1.Seal(beacon)
}

// startPhase2 specialises a sealed phase 1 to a circuit: phase 2's start
// (deterministic, so anyone can recompute it) and the circuit's evaluations
// the seal needs.
func startPhase2(r1cs *csbn254.R1CS, circuit [32]byte, commons *mpc.SrsCommons) (c *Contribution, evals mpc.Phase2Evaluations, err error) {
	n := uint64(len(commons.G1.AlphaTau))
	if nc := r1cs.GetNbConstraints(); uint64(nc) > n {
		return nil, evals, fmt.Errorf("the circuit has %d constraints, more than phase 1's domain %d", nc, n)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("start phase 2: %v", r)
		}
	}()
	c = &Contribution{Phase: 2, Domain: n, Circuit: circuit, p2: new(mpc.Phase2)}
	evals = c.p2.Initialize(r1cs, commons)
	if err := c.encodeBody(); err != nil {
		return nil, evals, err
	}
	return c, evals, nil
}

// sealPhase2 ends phase 2 with the beacon and returns the keys. It consumes c.
func sealPhase2(c *Contribution, commons *mpc.SrsCommons, evals *mpc.Phase2Evaluations, beacon []byte) (pk groth16.ProvingKey, vk groth16.VerifyingKey, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("seal phase 2: %v", r)
		}
	}()
	pk, vk = c.p2.Seal(commons, evals, beacon)
	return pk, vk, nil
}

// VerifyingKeyHash is the verifying key's identity, the value registered on
// chain with a zk model: SHA-256 of the key as gnark v0.14 writes it
// (WriteTo: compressed points), which is the verifying.key file's bytes, so
// `sha256sum verifying.key` prints it too.
func VerifyingKeyHash(vk groth16.VerifyingKey) ([32]byte, error) { return zk.KeyHashOf(vk) }

// ParseBeacon reads a beacon given as hex (on a network: the hash of a block
// at a height announced before the phase's last contribution).
func ParseBeacon(s string) ([]byte, error) {
	b, err := hex.DecodeString(trim0x(s))
	if err != nil {
		return nil, fmt.Errorf("beacon %q: want hex (e.g. a block hash): %w", s, err)
	}
	if len(b) < 16 {
		return nil, fmt.Errorf("beacon %q: %d bytes, want at least 16 (e.g. a 32-byte block hash)", s, len(b))
	}
	return b, nil
}

func trim0x(s string) string {
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		return s[2:]
	}
	return s
}

// WriteFileAtomic writes a file through a temporary file in the same
// directory and a rename, so a reader sees the old file or the whole new
// one, never a part.
func WriteFileAtomic(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteFileNew is WriteFileAtomic refusing to replace an existing file (a
// hard link, which fails if the name exists): two contributors racing for
// the same transcript slot cannot overwrite each other.
func WriteFileNew(path string, data []byte) error {
	tmp, err := writeTemp(path, data)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("write %s: it exists already", path)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	_, err = io.Copy(f, bytes.NewReader(data))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return f.Name(), nil
}
