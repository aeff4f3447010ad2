package storer

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/internal/atomicfile"
)

// errNoReplica: the storer never sealed the deal.
var errNoReplica = errors.New("no replica here")

// replica is a deal's sealed replica: its bytes stay on disk (read per
// challenge), the trees of the replica and of the blob in memory (32 bytes
// per segment each, plus inner nodes), so a proof never needs the blob.
type replica struct {
	deal   uint64
	blobID [32]byte
	size   uint64
	root   [32]byte
	path   string // the replica's bytes
	rtree  *blobtree.Tree
	btree  *blobtree.Tree
}

// meta is what a replica's directory records besides the bytes.
type meta struct {
	Deal   uint64 `json:"deal"`
	BlobID string `json:"blob_id"`
	Size   uint64 `json:"size"`
	Root   string `json:"replica_root"`
}

func dealDir(dataDir string, deal uint64) string {
	return filepath.Join(dataDir, "deals", strconv.FormatUint(deal, 10))
}

// ReplicaPath is where the storer keeps deal's replica bytes under
// dataDir (operators and tests may inspect it).
func ReplicaPath(dataDir string, deal uint64) string {
	return filepath.Join(dealDir(dataDir, deal), "replica")
}

// sealReplica seals data (the blob blobID) for provider and writes the
// replica and its record under dataDir.
func sealReplica(dataDir string, deal uint64, blobID [32]byte, provider, data []byte) (*replica, error) {
	rep, root := blobtree.Seal(blobID, provider, data)
	r := &replica{deal: deal, blobID: blobID, size: uint64(len(data)), root: root, path: ReplicaPath(dataDir, deal),
		rtree: blobtree.NewTree(blobtree.SegmentLeaves(rep)), btree: blobtree.NewTree(blobtree.SegmentLeaves(data))}
	if err := os.MkdirAll(dealDir(dataDir, deal), 0o755); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(r.path, 0o644, func(w io.Writer) error { _, err := w.Write(rep); return err }); err != nil {
		return nil, fmt.Errorf("write replica of deal %d: %w", deal, err)
	}
	mb, _ := json.Marshal(meta{Deal: deal, BlobID: fmt.Sprintf("%x", blobID), Size: r.size, Root: fmt.Sprintf("%x", root)})
	if err := atomicfile.Write(filepath.Join(dealDir(dataDir, deal), "meta.json"), 0o644, func(w io.Writer) error { _, err := w.Write(mb); return err }); err != nil {
		return nil, fmt.Errorf("write replica record of deal %d: %w", deal, err)
	}
	return r, nil
}

// loadReplica reads deal's replica back after a restart: it rebuilds the
// replica's tree from the bytes, checks its root against the record (the
// root posted on chain) and decodes the blob to rebuild the blob's tree.
func loadReplica(dataDir string, deal uint64, provider []byte) (*replica, error) {
	mb, err := os.ReadFile(filepath.Join(dealDir(dataDir, deal), "meta.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("deal %d: %w", deal, errNoReplica)
	}
	if err != nil {
		return nil, fmt.Errorf("replica of deal %d: %w", deal, err)
	}
	var m meta
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("replica record of deal %d: %w", deal, err)
	}
	rep, err := os.ReadFile(ReplicaPath(dataDir, deal))
	if err != nil {
		return nil, fmt.Errorf("replica of deal %d: %w", deal, err)
	}
	bid, err1 := hex.DecodeString(m.BlobID)
	rt, err2 := hex.DecodeString(m.Root)
	if err1 != nil || err2 != nil || len(bid) != 32 || len(rt) != 32 {
		return nil, fmt.Errorf("replica record of deal %d: blob_id and replica_root must be 32 bytes of hex", deal)
	}
	blobID, root := [32]byte(bid), [32]byte(rt)
	r := &replica{deal: deal, blobID: blobID, size: m.Size, root: root, path: ReplicaPath(dataDir, deal),
		rtree: blobtree.NewTree(blobtree.SegmentLeaves(rep))}
	if uint64(len(rep)) != m.Size || r.rtree.Root() != root {
		return nil, fmt.Errorf("replica of deal %d on disk does not match its root %x (damaged)", deal, root)
	}
	r.btree = blobtree.NewTree(blobtree.SegmentLeaves(blobtree.Unseal(blobID, provider, rep)))
	return r, nil
}

// prove answers the challenge of segment index from the bytes on disk,
// checked against the replica's tree: a lost or corrupt segment fails.
func (r *replica) prove(index uint64) (*blobtree.ReplicaProof, error) {
	n := blobtree.SegmentLen(r.size, index)
	if n == 0 {
		return nil, fmt.Errorf("deal %d: segment %d out of range", r.deal, index)
	}
	f, err := os.Open(r.path)
	if err != nil {
		return nil, fmt.Errorf("deal %d: %w", r.deal, err)
	}
	defer f.Close()
	seg := make([]byte, n)
	if _, err := f.ReadAt(seg, int64(index)*blobtree.SegmentSize); err != nil {
		return nil, fmt.Errorf("deal %d: segment %d unreadable: %w", r.deal, index, err)
	}
	if blobtree.LeafHash(seg) != r.rtree.Leaf(index) {
		return nil, fmt.Errorf("deal %d: segment %d of the replica is lost or corrupt", r.deal, index)
	}
	p := &blobtree.ReplicaProof{Index: index, Segment: seg}
	if p.ReplicaPath, err = r.rtree.Path(index); err != nil {
		return nil, err
	}
	if index > 0 {
		p.PrevLeaf = r.rtree.Leaf(index - 1)
		if p.PrevPath, err = r.rtree.Path(index - 1); err != nil {
			return nil, err
		}
	}
	if p.DataPath, err = r.btree.Path(index); err != nil {
		return nil, err
	}
	return p, nil
}
