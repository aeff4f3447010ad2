package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/agoranet/agora/chain/merkle"
	"github.com/agoranet/agora/engine/wasm/meter"
)

// StateDomain prefixes every state hash preimage.
const StateDomain = "agora/wasm/state/v1"

// State is a job between two steps: all a step can read.
type State struct {
	Steps       uint64
	GasUsed     uint64
	Memory      []byte   // linear memory, a whole number of pages
	Globals     []uint64 // every mutable global but the gas global, by index (raw bits)
	StdinOffset uint64
	RandOffset  uint64
	Stdout      []byte
	Stderr      []byte
	Files       []Blob // under /out, by name
}

// Digest is the state hash's preimage with memory reduced to its Merkle
// root: what a page proof carries besides the page and its path.
//
//	state hash = sha256(StateDomain || steps u64 || gas used u64 || pages u32
//	                    || memory root || globals hash || host hash)
//	memory root = RFC 6962 root (chain/merkle) over sha256(page i), 64 KiB pages
//	globals hash = sha256(value u64 of each mutable global but gas, by index)
//	host hash = sha256(stdin offset u64 || random offset u64
//	                   || sha256(stdout) || sha256(stderr) || files hash)
//	files hash = sha256(for each /out file by name:
//	                    name length u32 || name || sha256(content))
//
// All integers big-endian.
type Digest struct {
	Steps       uint64   `json:"steps"`
	GasUsed     uint64   `json:"gas_used"`
	Pages       uint32   `json:"pages"`
	MemoryRoot  [32]byte `json:"memory_root"`
	GlobalsHash [32]byte `json:"globals_hash"`
	HostHash    [32]byte `json:"host_hash"`
}

// Hash is the state hash.
func (d Digest) Hash() [32]byte {
	b := make([]byte, 0, len(StateDomain)+20+96)
	b = append(b, StateDomain...)
	b = binary.BigEndian.AppendUint64(b, d.Steps)
	b = binary.BigEndian.AppendUint64(b, d.GasUsed)
	b = binary.BigEndian.AppendUint32(b, d.Pages)
	b = append(b, d.MemoryRoot[:]...)
	b = append(b, d.GlobalsHash[:]...)
	b = append(b, d.HostHash[:]...)
	return sha256.Sum256(b)
}

func hashBytes(b []byte) [32]byte { return sha256.Sum256(b) }

func globalsHash(vals []uint64) [32]byte {
	b := make([]byte, 0, 8*len(vals))
	for _, v := range vals {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return sha256.Sum256(b)
}

func hostHash(stdinOff, randOff uint64, stdout, stderr []byte, files []Blob) [32]byte {
	b := make([]byte, 0, 112)
	b = binary.BigEndian.AppendUint64(b, stdinOff)
	b = binary.BigEndian.AppendUint64(b, randOff)
	o, e := sha256.Sum256(stdout), sha256.Sum256(stderr)
	b = append(b, o[:]...)
	b = append(b, e[:]...)
	var fb []byte
	for _, f := range files {
		fb = binary.BigEndian.AppendUint32(fb, uint32(len(f.Name)))
		fb = append(fb, f.Name...)
		h := sha256.Sum256(f.Data)
		fb = append(fb, h[:]...)
	}
	fh := sha256.Sum256(fb)
	b = append(b, fh[:]...)
	return sha256.Sum256(b)
}

// pageIDs returns sha256 of each page of mem.
func pageIDs(mem []byte) [][32]byte {
	ids := make([][32]byte, len(mem)/PageSize)
	for i := range ids {
		ids[i] = sha256.Sum256(mem[i*PageSize : (i+1)*PageSize])
	}
	return ids
}

// Digest computes the state's digest.
func (s *State) Digest() Digest {
	return Digest{
		Steps: s.Steps, GasUsed: s.GasUsed, Pages: uint32(len(s.Memory) / PageSize),
		MemoryRoot:  merkle.Root(pageIDs(s.Memory)),
		GlobalsHash: globalsHash(s.Globals),
		HostHash:    hostHash(s.StdinOffset, s.RandOffset, s.Stdout, s.Stderr, s.Files),
	}
}

// Hash is the state hash (see Digest).
func (s *State) Hash() [32]byte { return s.Digest().Hash() }

// PageProof proves one memory page of a state against its state hash.
type PageProof struct {
	Digest Digest
	Index  uint32
	Page   []byte // PageSize bytes
	Path   merkle.Proof
}

// ProvePage returns page i of the state with its proof.
func (s *State) ProvePage(i uint32) (*PageProof, error) {
	ids := pageIDs(s.Memory)
	if int(i) >= len(ids) {
		return nil, fmt.Errorf("page %d out of range (the state has %d pages)", i, len(ids))
	}
	p, err := merkle.Prove(ids, int(i))
	if err != nil {
		return nil, err
	}
	return &PageProof{
		Digest: s.Digest(), Index: i,
		Page: append([]byte(nil), s.Memory[int(i)*PageSize:(int(i)+1)*PageSize]...),
		Path: *p,
	}, nil
}

// VerifyPage checks a page proof against a state hash.
func VerifyPage(state [32]byte, p *PageProof) error {
	if p == nil {
		return errors.New("no page proof")
	}
	if p.Digest.Hash() != state {
		return errors.New("page proof: the digest does not hash to the state hash")
	}
	if len(p.Page) != PageSize {
		return fmt.Errorf("page proof: page of %d bytes, want %d", len(p.Page), PageSize)
	}
	if p.Index >= p.Digest.Pages || p.Path.Index != uint64(p.Index) || p.Path.Count != uint64(p.Digest.Pages) {
		return fmt.Errorf("page proof: page %d of %d does not match its path (leaf %d of %d)", p.Index, p.Digest.Pages, p.Path.Index, p.Path.Count)
	}
	if !p.Path.Verify(p.Digest.MemoryRoot, sha256.Sum256(p.Page)) {
		return fmt.Errorf("page proof: page %d is not the state's page (the path does not lead to the memory root)", p.Index)
	}
	return nil
}

// hashCache keeps the last hashed memory and its page hashes, so a
// checkpoint rehashes only the pages that changed since the previous one
// (comparing a page costs a fraction of hashing it).
type hashCache struct {
	prev []byte
	ids  [][32]byte
}

func (c *hashCache) pageIDs(mem []byte) [][32]byte {
	n := len(mem) / PageSize
	if len(c.prev) < len(mem) {
		c.prev = append(c.prev, make([]byte, len(mem)-len(c.prev))...)
	}
	fresh := len(c.ids)
	for len(c.ids) < n {
		c.ids = append(c.ids, [32]byte{})
	}
	// Pages are independent: split them over the CPUs.
	workers := min(runtime.GOMAXPROCS(0), max(1, n/16))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				cur, old := mem[i*PageSize:(i+1)*PageSize], c.prev[i*PageSize:(i+1)*PageSize]
				if i >= fresh || !bytes.Equal(cur, old) {
					c.ids[i] = sha256.Sum256(cur)
					copy(old, cur)
				}
			}
		}(n*w/workers, n*(w+1)/workers)
	}
	wg.Wait()
	return c.ids[:n]
}

// memory returns a view of the instance's linear memory (nil without one).
func (in *Instance) memory() []byte {
	if in.mem == nil {
		return nil
	}
	b, _ := in.mem.Read(0, in.mem.Size())
	return b
}

func (in *Instance) globalValues() []uint64 {
	vals := make([]uint64, 0, len(in.globals))
	for i, g := range in.globals {
		if in.m.info.Globals[i].Export == meter.GasExport {
			continue
		}
		vals = append(vals, g.Get())
	}
	return vals
}

// Digest is the current state's digest, hashing only changed pages.
func (in *Instance) Digest() Digest {
	mem := in.memory()
	return Digest{
		Steps: in.steps, GasUsed: in.gasUsed(), Pages: uint32(len(mem) / PageSize),
		MemoryRoot:  merkle.Root(in.cache.pageIDs(mem)),
		GlobalsHash: globalsHash(in.globalValues()),
		HostHash:    hostHash(in.host.stdin.off, in.host.rand.off, in.host.stdout.Bytes(), in.host.stderr.Bytes(), in.host.out.blobs()),
	}
}

// PageHashes returns sha256 of each memory page as of the last state hash.
func (in *Instance) PageHashes() [][32]byte { return append([][32]byte(nil), in.cache.ids...) }

// StateHash is the current state's hash.
func (in *Instance) StateHash() [32]byte { return in.Digest().Hash() }

// Snapshot copies the current state.
func (in *Instance) Snapshot() *State {
	return &State{
		Steps: in.steps, GasUsed: in.gasUsed(),
		Memory:      append([]byte(nil), in.memory()...),
		Globals:     in.globalValues(),
		StdinOffset: in.host.stdin.off, RandOffset: in.host.rand.off,
		Stdout: append([]byte(nil), in.host.stdout.Bytes()...),
		Stderr: append([]byte(nil), in.host.stderr.Bytes()...),
		Files:  in.host.out.blobs(),
	}
}

// Restore makes an instance in a saved state, running no code: the next
// Step continues the job from there.
func (m *Module) Restore(ctx context.Context, job Job, s *State) (*Instance, error) {
	in, err := m.instantiate(ctx, job)
	if err != nil {
		return nil, err
	}
	if err := in.restore(s); err != nil {
		in.close(ctx)
		return nil, fmt.Errorf("restore: %w", err)
	}
	return in, nil
}

func (in *Instance) restore(s *State) error {
	if len(s.Memory)%PageSize != 0 {
		return fmt.Errorf("memory of %d bytes is not a whole number of pages", len(s.Memory))
	}
	pages := uint32(len(s.Memory) / PageSize)
	if in.mem == nil {
		if pages != 0 {
			return errors.New("state has memory, the module has none")
		}
	} else {
		cur := in.mem.Size() / PageSize
		if pages < cur {
			return fmt.Errorf("state has %d pages, fewer than the module's minimum %d", pages, cur)
		}
		if pages > in.job.memCap() {
			return fmt.Errorf("state has %d pages, over the job's cap of %d", pages, in.job.memCap())
		}
		if pages > cur {
			if _, ok := in.mem.Grow(pages - cur); !ok {
				return fmt.Errorf("cannot grow memory to %d pages", pages)
			}
		}
		if !in.mem.Write(0, s.Memory) {
			return errors.New("memory write failed")
		}
	}
	if len(s.Globals) != len(in.globals)-1 {
		return fmt.Errorf("state has %d globals, the module %d", len(s.Globals), len(in.globals)-1)
	}
	if s.GasUsed > in.job.Gas {
		return fmt.Errorf("state used %d gas, over the job's limit %d", s.GasUsed, in.job.Gas)
	}
	k := 0
	for i, g := range in.globals {
		if in.m.info.Globals[i].Export == meter.GasExport {
			continue
		}
		g.Set(s.Globals[k])
		k++
	}
	if in.depth.Get() != 0 {
		return fmt.Errorf("state has call depth %d between steps (want 0)", in.depth.Get())
	}
	in.gas.Set(in.job.Gas - s.GasUsed)
	if s.StdinOffset > uint64(len(in.job.Stdin)) {
		return fmt.Errorf("stdin offset %d past stdin's %d bytes", s.StdinOffset, len(in.job.Stdin))
	}
	in.host.stdin.off = s.StdinOffset
	in.host.rand.off = s.RandOffset
	in.host.stdout.Buffer.Write(s.Stdout)
	in.host.stderr.Buffer.Write(s.Stderr)
	for i, f := range s.Files {
		if i > 0 && s.Files[i-1].Name >= f.Name {
			return errors.New("state's files are not sorted by name")
		}
		if n, errno := memName(f.Name); errno != 0 || n == "" {
			return fmt.Errorf("state's file name %q is not a plain name", f.Name)
		}
		in.host.out.files[f.Name] = &memData{b: append([]byte(nil), f.Data...)}
	}
	in.steps = s.Steps
	return nil
}
