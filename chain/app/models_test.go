package app

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/blobtree"
	"github.com/agoranet/agora/chain/jobs"
	"github.com/agoranet/agora/chain/models"
	"github.com/agoranet/agora/chain/types"
)

// trainedOutputs is what a training job leaves: the model, its digest
// (sha256sum's line, as the job computes it) and stdout.
func trainedOutputs(model []byte) (list []byte, digest []byte, sum [32]byte) {
	sum = sha256.Sum256(model)
	digest = []byte(hex.EncodeToString(sum[:]) + "  model.gguf\n")
	list = jobs.EncodeResultList([]jobs.ResultEntry{
		{Name: "out/model.gguf", ID: blobtree.IDOf(model), Size: uint64(len(model))},
		{Name: "out/model.gguf.sha256", ID: blobtree.IDOf(digest), Size: uint64(len(digest))},
		{Name: "stdout", ID: blobtree.IDOf([]byte("trained\n")), Size: 8},
	})
	return list, digest, sum
}

// TestRegisterModel: the order's owner registers the model a succeeded
// lease produced; the record carries the provenance (order, lease,
// trainer, module, inputs, checkpoint chain) and the lease's status as it
// is now. Every refusal names its reason and changes nothing.
func TestRegisterModel(t *testing.T) {
	j := newJobsHarness(t, nil)
	m, o := j.leased(1, 10_000_000, 1_000, 10)
	lid := o.LeaseIDs[0]
	model := []byte("GGUF a model's bytes, long enough to span a few segments? no, one is enough")
	list, digest, sum := trainedOutputs(model)
	reg := &types.MsgRegisterModel{LeaseId: lid, Results: list, Output: "out/model.gguf", Digest: digest, Name: "tiny-brown"}

	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: lid, Index: 1, Steps: 10, GasUsed: 1_000, StateHash: hashOf("s", 10)})
	j.bad("owner", reg, types.CodeInvalid, fmt.Sprintf("lease %d did not succeed (status running)", lid))
	rid := blobtree.IDOf(list)
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: lid, Index: 2, Steps: 20, GasUsed: 2_000, StateHash: hashOf("s", 20), Done: true, ResultHash: rid[:]})

	with := func(f func(*types.MsgRegisterModel)) *types.MsgRegisterModel {
		c := proto.Clone(reg).(*types.MsgRegisterModel)
		f(c)
		return c
	}
	otherList, otherDigest, _ := trainedOutputs([]byte("another model"))
	noDigest := jobs.EncodeResultList([]jobs.ResultEntry{{Name: "out/model.gguf", ID: blobtree.IDOf(model), Size: uint64(len(model))}})
	for _, c := range []struct {
		name string
		from string
		msg  *types.MsgRegisterModel
		code types.Code
		want string
	}{
		{"not the owner", "outsider", reg, types.CodeUnauthorized, "only order 1's owner"},
		{"no such lease", "owner", with(func(m *types.MsgRegisterModel) { m.LeaseId = 9 }), types.CodeNotFound, "lease 9 does not exist"},
		{"another result list", "owner", with(func(m *types.MsgRegisterModel) { m.Results = otherList }), types.CodeInvalid, "is not lease 1's committed result hash"},
		{"no such output", "owner", with(func(m *types.MsgRegisterModel) { m.Output = "out/other.gguf" }), types.CodeNotFound, `lease 1 has no output "out/other.gguf"`},
		{"a digest of other bytes", "owner", with(func(m *types.MsgRegisterModel) { m.Digest = otherDigest }), types.CodeInvalid, `are not lease 1's output "out/model.gguf.sha256"`},
		{"a malformed digest", "owner", with(func(m *types.MsgRegisterModel) { m.Digest = []byte("not hex") }), types.CodeMalformed, "want a sha256sum line"},
		{"a malformed list", "owner", with(func(m *types.MsgRegisterModel) { m.Results = []byte("agora-results/v1\n\x00") }), types.CodeMalformed, "not an agora result list"},
		{"no output name", "owner", with(func(m *types.MsgRegisterModel) { m.Output = "" }), types.CodeMalformed, "output name of 0 bytes"},
	} {
		t.Log(c.name)
		j.bad(c.from, c.msg, c.code, c.want)
	}

	j.ok("owner", reg)
	v, _, err := j.app.QueryJSON(api.TrainedModelRecordPath(sum[:], lid), 0)
	if err != nil {
		t.Fatal(err)
	}
	got := v.(api.TrainedModelView)
	if v, _, err := j.app.QueryJSON(api.TrainedModelRecordsPath(sum[:]), 0); err != nil || len(v.([]api.TrainedModelView)) != 1 ||
		v.([]api.TrainedModelView)[0].LeaseID != lid {
		t.Fatalf("records of %x: %+v %v", sum, v, err)
	}
	l := j.lease(lid)
	mid := blobtree.IDOf(model)
	if string(got.Hash) != string(sum[:]) || string(got.BlobID) != string(mid[:]) || got.Size != uint64(len(model)) ||
		got.Name != "tiny-brown" || got.Owner.String() != j.addr("owner").String() || got.OrderID != o.ID || got.LeaseID != lid ||
		got.LeaseStatus != "done" || got.Trainer.String() != j.addr("p1").String() || string(got.ModuleHash) != string(m.ModuleHash) ||
		len(got.InputHashes) != len(m.InputHashes) || got.Checkpoints != 2 || got.Steps != 20 ||
		string(got.StateHash) != string(l.StateHash) || string(got.ResultHash) != string(rid[:]) || got.Output != "out/model.gguf" ||
		got.DatasetID != 0 || len(got.DatasetRoot) != 0 || got.Height == 0 {
		t.Fatalf("registered model: %+v", got)
	}
	if v, _, _ := j.app.QueryJSON(api.TrainedModelsPath(), 0); len(v.([]api.TrainedModelView)) != 1 {
		t.Fatalf("all models: %+v", v)
	}
	if v, _, _ := j.app.QueryJSON(api.TrainedModelsByLeasePath(lid), 0); len(v.([]api.TrainedModelView)) != 1 {
		t.Fatalf("models of lease %d: %+v", lid, v)
	}
	for _, c := range []struct{ path, want string }{
		{"/models/model/" + hex.EncodeToString(sum[:31]), "want 64 hex digits"},
		{"/models/model/" + hex.EncodeToString(sum[:]) + "/x", `"x" is not a number`},
		{api.TrainedModelRecordPath(sum[:], lid+1), fmt.Sprintf("no model %x is registered from lease %d", sum, lid+1)},
		{api.TrainedModelRecordsPath(make([]byte, 32)), fmt.Sprintf("no model %x is registered", make([]byte, 32))},
	} {
		if _, _, err := j.app.QueryJSON(c.path, 0); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.path, err, c.want)
		}
	}
	j.bad("owner", reg, types.CodeInvalid, fmt.Sprintf("model %x is already registered from lease %d (at height %d)", sum, lid, got.Height))

	// A lease without the digest output cannot register: the sha256 must
	// come from the job itself.
	_, o2 := j.leased(1, 10_000_000, 1_000, 10)
	rid2 := blobtree.IDOf(noDigest)
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: o2.LeaseIDs[0], Index: 1, Steps: 10, GasUsed: 1_000, StateHash: hashOf("s", 11), Done: true, ResultHash: rid2[:]})
	j.bad("owner", &types.MsgRegisterModel{LeaseId: o2.LeaseIDs[0], Results: noDigest, Output: "out/model.gguf", Digest: digest}, types.CodeNotFound,
		`has no digest output "out/model.gguf.sha256"`)

	// A run that failed (zero final state) registers nothing.
	_, o3 := j.leased(1, 10_000_000, 1_000, 10)
	list3, digest3, _ := trainedOutputs([]byte("a failed run's model"))
	rid3 := blobtree.IDOf(list3)
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: o3.LeaseIDs[0], Index: 1, Steps: 3, GasUsed: 1_000, StateHash: make([]byte, 32), Done: true, ResultHash: rid3[:]})
	j.bad("owner", &types.MsgRegisterModel{LeaseId: o3.LeaseIDs[0], Results: list3, Output: "out/model.gguf", Digest: digest3}, types.CodeInvalid, "did not succeed")
}

// TestRegisterModelOnDataset: a model trained by a compute-to-data run
// records the dataset and its root.
func TestRegisterModelOnDataset(t *testing.T) {
	j := newJobsHarness(t, nil)
	j.ok("downer", j.publishMsg())
	o := j.c2dLeased(1)
	lid := o.LeaseIDs[0]
	list, digest, sum := trainedOutputs([]byte("trained on private text"))
	rid := blobtree.IDOf(list)
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: lid, Index: 1, Steps: 5, GasUsed: 1_000, StateHash: hashOf("s", 5), Done: true, ResultHash: rid[:]})
	j.ok("buyer", &types.MsgRegisterModel{LeaseId: lid, Results: list, Output: "out/model.gguf", Digest: digest})
	v, _, err := j.app.QueryJSON(api.TrainedModelRecordPath(sum[:], lid), 0)
	if err != nil {
		t.Fatal(err)
	}
	got, ds := v.(api.TrainedModelView), j.dataset(1)
	if got.DatasetID != 1 || string(got.DatasetRoot) != string(ds.Root) || got.Owner.String() != j.addr("buyer").String() {
		t.Fatalf("model on dataset 1 (root %x): %+v", ds.Root, got)
	}
}

// TestRegisterModelSeveralLeases: records are keyed by (sha256, lease), so
// a copier cannot squat a model. Anyone holding a public model file can
// run a job that copies it to its output with its digest and register it
// first, naming its own module; the trainer's registration of the same
// bytes still succeeds, as a second record, and both are listed, the older
// lease first, each with its module, so a reader tells them apart. Only
// the same lease registering twice is refused.
func TestRegisterModelSeveralLeases(t *testing.T) {
	j := newJobsHarness(t, nil)
	model := []byte("GGUF a model trained on the network, then published")
	list, digest, sum := trainedOutputs(model)

	// The trainer's order (lease 1, run by p1).
	train, o := j.leased(1, 10_000_000, 1_000, 10)
	lid := o.LeaseIDs[0]
	rid := blobtree.IDOf(list)
	j.ok("p1", &types.MsgCommitCheckpoint{LeaseId: lid, Index: 1, Steps: 10, GasUsed: 2_000, StateHash: hashOf("train", 10), Done: true, ResultHash: rid[:]})

	// The copier's order: another module that writes the published file
	// and its digest (and its own stdout), run by p2.
	cp := submitMsg(j, 1, 10_000_000, 1_000, 10)
	copier := sha256.Sum256([]byte("copier module"))
	cp.ModuleHash, cp.InputHashes = copier[:], nil
	ev := j.okEvents("outsider", cp)
	var cid uint64
	if _, err := fmt.Sscan(ev["order_id"], &cid); err != nil {
		t.Fatalf("order id %q: %v", ev["order_id"], err)
	}
	j.ok("p2", &types.MsgBidJob{OrderId: cid, Price: 1_000, Collateral: cp.Collateral})
	j.until(j.order(cid).BidWindowEnd)
	clid := j.order(cid).LeaseIDs[0]
	cpList := jobs.EncodeResultList([]jobs.ResultEntry{
		{Name: "out/model.gguf", ID: blobtree.IDOf(model), Size: uint64(len(model))},
		{Name: "out/model.gguf.sha256", ID: blobtree.IDOf(digest), Size: uint64(len(digest))},
		{Name: "stdout", ID: blobtree.IDOf([]byte("copied\n")), Size: 7},
	})
	crid := blobtree.IDOf(cpList)
	j.ok("p2", &types.MsgCommitCheckpoint{LeaseId: clid, Index: 1, Steps: 1, GasUsed: 1_000, StateHash: hashOf("copy", 1), Done: true, ResultHash: crid[:]})

	// The copier registers first; the trainer's registration is not
	// refused for it.
	cpReg := &types.MsgRegisterModel{LeaseId: clid, Results: cpList, Output: "out/model.gguf", Digest: digest, Name: "squatted"}
	reg := &types.MsgRegisterModel{LeaseId: lid, Results: list, Output: "out/model.gguf", Digest: digest, Name: "tiny-brown"}
	j.bad("owner", cpReg, types.CodeUnauthorized, fmt.Sprintf("only order %d's owner", cid)) // still only the lease's own owner
	j.ok("outsider", cpReg)
	j.ok("owner", reg)

	v, _, err := j.app.QueryJSON(api.TrainedModelRecordsPath(sum[:]), 0)
	if err != nil {
		t.Fatal(err)
	}
	recs := v.([]api.TrainedModelView)
	if len(recs) != 2 {
		t.Fatalf("records of %x: %+v", sum, recs)
	}
	first, second := recs[0], recs[1] // by lease: the trainer's (older) first, though registered second
	if first.LeaseID != lid || first.Name != "tiny-brown" || string(first.ModuleHash) != string(train.ModuleHash) ||
		first.Owner.String() != j.addr("owner").String() || first.Trainer.String() != j.addr("p1").String() || first.Steps != 10 ||
		second.LeaseID != clid || second.Name != "squatted" || string(second.ModuleHash) != string(copier[:]) || len(second.InputHashes) != 0 ||
		second.Owner.String() != j.addr("outsider").String() || second.Trainer.String() != j.addr("p2").String() || second.Steps != 1 ||
		first.Height <= second.Height || string(first.Hash) != string(sum[:]) || string(second.Hash) != string(sum[:]) {
		t.Fatalf("records of %x: %+v", sum, recs)
	}
	for _, r := range recs {
		v, _, err := j.app.QueryJSON(api.TrainedModelRecordPath(sum[:], r.LeaseID), 0)
		if err != nil || v.(api.TrainedModelView).LeaseID != r.LeaseID || v.(api.TrainedModelView).Name != r.Name {
			t.Fatalf("record of lease %d: %+v %v", r.LeaseID, v, err)
		}
		if v, _, _ := j.app.QueryJSON(api.TrainedModelsByLeasePath(r.LeaseID), 0); len(v.([]api.TrainedModelView)) != 1 ||
			v.([]api.TrainedModelView)[0].Name != r.Name {
			t.Fatalf("models of lease %d: %+v", r.LeaseID, v)
		}
	}
	if v, _, _ := j.app.QueryJSON(api.TrainedModelsPath(), 0); len(v.([]api.TrainedModelView)) != 2 {
		t.Fatalf("all models: %+v", v)
	}
	snap, _ := j.app.Snapshot(0)
	if refs := models.ByOwner(snap, j.addr("outsider")); len(refs) != 1 || string(refs[0].Hash) != string(sum[:]) || refs[0].Lease != clid {
		t.Fatalf("the copier's records: %+v", refs)
	}

	// Each lease registers its model once: refused with the lease and
	// height, and nothing changes (j.bad checks the state's fingerprint).
	j.bad("owner", reg, types.CodeInvalid, fmt.Sprintf("model %x is already registered from lease %d (at height %d)", sum, lid, first.Height))
	j.bad("outsider", cpReg, types.CodeInvalid, fmt.Sprintf("model %x is already registered from lease %d (at height %d)", sum, clid, second.Height))
}
