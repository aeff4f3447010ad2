package cli

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
	"github.com/agoranet/agora/protocol/blob"
)

// TestProvenance: `agora model provenance` prints every record of a hash
// and how many there are; with several, it says plainly that several
// leases registered the bytes and names each one's module; given a file,
// it checks the blob ID against each record, flags a record whose lease
// wrote other bytes under the hash, and refuses a file no record matches.
func TestProvenance(t *testing.T) {
	file := []byte("GGUF a trained model's bytes")
	sum, id := sha256.Sum256(file), blob.Of(file)
	other := blob.Of([]byte("other bytes"))
	train, copier := bytes.Repeat([]byte{0x6f}, 32), bytes.Repeat([]byte{0xc0}, 32)
	owner := types.Address(bytes.Repeat([]byte{0x0a}, 20))
	rec := func(lease uint64, module []byte, bid blob.ID, args ...string) api.TrainedModelView {
		return api.TrainedModelView{Hash: sum[:], BlobID: bid[:], Size: uint64(len(file)), Owner: owner, OrderID: lease + 10, LeaseID: lease,
			LeaseStatus: "done", ModuleHash: module, Args: args, Checkpoints: 2, Steps: 20, Height: int64(100 + lease)}
	}
	trainer := rec(1, train, id, "tiny", "20", "1")
	copied := rec(4, copier, id)
	lying := rec(5, copier, other)
	for _, c := range []struct {
		name string
		recs []api.TrainedModelView
		file bool
		err  string
		want []string
		not  []string
	}{
		{"one record", []api.TrainedModelView{trainer}, false, "", []string{
			fmt.Sprintf("model %x has 1 record(s), by lease:", sum), "[1/1] model", "order 11, lease 1 (now done)",
		}, []string{"registered by", "matches"}},
		{"the trainer and a copier", []api.TrainedModelView{trainer, copied}, false, "", []string{
			fmt.Sprintf("model %x has 2 record(s), by lease:", sum), "[1/2] model", "[2/2] model",
			"the same bytes were registered by 2 leases",
			fmt.Sprintf("lease 1 (order 11, registered by %s at height 101): module %x, args [tiny 20 1], 2 checkpoint(s) over 20 step(s)", owner, train),
			fmt.Sprintf("lease 4 (order 14, registered by %s at height 104): module %x, args [], 2 checkpoint(s)", owner, copier),
		}, nil},
		{"a file matching some records", []api.TrainedModelView{trainer, copied, lying}, true, "", []string{
			"model.gguf matches 2 of the 3 record(s) of its sha256",
			fmt.Sprintf("! this record's blob ID %x (%d bytes) is not model.gguf's: lease 5 wrote other bytes", other[:], len(file)),
			"the same bytes were registered by 3 leases",
		}, []string{"lease 1 wrote", "lease 4 wrote"}},
		{"a file matching no record", []api.TrainedModelView{lying}, true,
			fmt.Sprintf("model.gguf has a registered sha256 but none of its 1 record(s) has its blob ID (%s, %d bytes; registered lease 5: %x", id, len(file), other[:]), nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := provenanceOf(c.recs)
			if c.file {
				err := p.check("model.gguf", file)
				if c.err != "" {
					if err == nil || !strings.Contains(err.Error(), c.err) {
						t.Fatalf("check: %v, want %q", err, c.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			var out strings.Builder
			p.write(&out)
			t.Log("\n" + out.String())
			for _, w := range c.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output does not say %q:\n%s", w, out.String())
				}
			}
			for _, w := range c.not {
				if strings.Contains(out.String(), w) {
					t.Errorf("output says %q:\n%s", w, out.String())
				}
			}
		})
	}
}
