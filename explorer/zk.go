package explorer

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/chain/types"
)

// The zkML registry (chain/zk): models registered by their weights
// commitment and verifying key, proofs the chain verified in the tx that
// carried them, and providers slashed for signed answers whose proof
// fails. The models come from the chain's /zk/ queries; the chain keeps
// no list of a model's proofs or faults (only records keyed by statement
// and by answer), so the index builds those lists from the txs and their
// events.
//
//	zm/<model>                    -> ZKModelStats
//	zp/<model>/<height>/<index>   -> ZKProof
//	zf/<model>/<height>/<index>   -> ZKFault (also a Verdict under f/, ft/, fe/)

// ZKModelStats is what the index knows of a zk model beyond the chain's
// record: the tx that registered it, the proofs it indexed, and the faults
// slashed on answers for it.
type ZKModelStats struct {
	ID      uint64 `json:"id"`
	Tx      string `json:"tx,omitempty"` // the registration
	Proofs  uint64 `json:"proofs"`
	Faults  int    `json:"faults"`
	Slashed uint64 `json:"slashed"`
}

// ZKProof is a statement the chain verified (verify_zk_proof).
type ZKProof struct {
	ModelID    uint64 `json:"model_id"`
	Statement  string `json:"statement_hash"` // zk.StatementHash, as the chain's record is keyed
	Submitter  string `json:"submitter"`
	Inferences int    `json:"inferences"`
	Height     int64  `json:"height"`
	Time       string `json:"time"`
	Tx         string `json:"tx"`
}

// ZKFault is a provider slashed for a signed answer whose proof does not
// verify (report_zk_fault).
type ZKFault struct {
	ModelID  uint64 `json:"model_id"`
	Provider string `json:"provider"`
	Answer   string `json:"answer_hash"` // sha256 of the signed answer, as the chain's record is keyed
	Slashed  uint64 `json:"slashed"`
	Reward   uint64 `json:"reward"` // the reporter's share
	Reporter string `json:"reporter"`
	Height   int64  `json:"height"`
	Time     string `json:"time"`
	Tx       string `json:"tx"`
}

// applyZK indexes a successful zk message of tx t (at position pos of its
// block), from the message and its result's attributes.
func (x *Index) applyZK(bt *batch, t *Tx, signer types.Address, msg any, epoch uint64, pos []byte, tot *Totals) error {
	num := func(k string) uint64 { n, _ := strconv.ParseUint(t.Results[k], 10, 64); return n }
	at := append(be64(uint64(t.Height)), pos...)
	switch m := msg.(type) {
	case *types.MsgRegisterZKModel:
		id := num("zk_model_id")
		if id == 0 {
			return nil
		}
		return bt.updateZKModel(id, func(s *ZKModelStats) { s.Tx = t.Hash })
	case *types.MsgVerifyZKProof:
		p := ZKProof{ModelID: m.ModelId, Statement: t.Results["statement"], Submitter: signer.String(), Inferences: len(m.Classes),
			Height: t.Height, Time: t.Time, Tx: t.Hash}
		bt.put(key("zp/", be64(m.ModelId), at), p)
		return bt.updateZKModel(m.ModelId, func(s *ZKModelStats) { s.Proofs++ })
	case *types.MsgReportZKFault:
		prov := types.Address(m.Provider).String()
		f := ZKFault{ModelID: m.ModelId, Provider: prov, Answer: t.Results["answer"], Slashed: num("slashed"), Reward: num("reward"),
			Reporter: signer.String(), Height: t.Height, Time: t.Time, Tx: t.Hash}
		bt.put(key("zf/", be64(m.ModelId), at), f)
		if err := bt.updateZKModel(m.ModelId, func(s *ZKModelStats) { s.Faults++; s.Slashed += f.Slashed }); err != nil {
			return err
		}
		// A slash like any other: on the provider's page, the audits page
		// and in the sums (under the epoch it happened in: it concerns no
		// epoch's receipts).
		v := Verdict{Height: t.Height, Time: t.Time, Kind: "zk_bad_proof", Epoch: epoch, Provider: prov, Target: prov, Reporter: f.Reporter,
			ZKModel: m.ModelId, Applied: true, Votes: 1, Slashed: f.Slashed, Reward: f.Reward, Tx: t.Hash}
		bt.putVerdict(t.Height, pos, v)
		return x.countFault(bt, v, tot)
	}
	return nil
}

func (bt *batch) updateZKModel(id uint64, f func(*ZKModelStats)) error {
	k := key("zm/", be64(id))
	var s ZKModelStats
	if err := bt.load(k, &s); err != nil {
		return err
	}
	s.ID = id
	f(&s)
	bt.put(k, s)
	return nil
}

// ZKModelStats returns what the index has of zk model id (zero counts when
// nothing was indexed for it).
func (x *Index) ZKModelStats(id uint64) (ZKModelStats, error) {
	s := ZKModelStats{ID: id}
	_, err := x.get(key("zm/", be64(id)), &s)
	return s, err
}

// ZKProofs returns up to limit of a zk model's verified proofs, newest first.
func (x *Index) ZKProofs(id uint64, limit int) ([]ZKProof, error) {
	return scanJSON[ZKProof](x, key("zp/", be64(id)), nil, true, limit)
}

// ZKFaults returns up to limit of the faults slashed on a zk model's
// answers, newest first.
func (x *Index) ZKFaults(id uint64, limit int) ([]ZKFault, error) {
	return scanJSON[ZKFault](x, key("zf/", be64(id)), nil, true, limit)
}

// ZKModel is a registered zk model as the explorer lists it: the chain's
// record without the verifying key's bytes (served apart, see
// ZKVerifyingKeyPath), with the index's counts.
type ZKModel struct {
	ID         uint64         `json:"id"`
	Name       string         `json:"name"`
	Owner      types.Address  `json:"owner"`
	Commitment types.HexBytes `json:"commitment"` // Poseidon2 of the int8 weights, a BN254 scalar
	VKHash     types.HexBytes `json:"vk_hash"`    // sha256 of the verifying key's bytes
	VKSize     int            `json:"vk_size"`
	Batch      uint32         `json:"batch"`
	InLen      uint32         `json:"in_len"`
	OutLen     uint32         `json:"out_len"`
	Price      uint64         `json:"price"` // uagr per proven inference
	Height     int64          `json:"height"`
	Proofs     uint64         `json:"proofs"` // verified on chain (the chain's count)
	Faults     int            `json:"faults"`
	Slashed    uint64         `json:"slashed"`
	Tx         string         `json:"tx,omitempty"`
}

// ZKModelPage is /explorer/api/zk/model/{id}.
type ZKModelPage struct {
	Model ZKModel `json:"model"`
	// VerifyingKeyURL serves the key's bytes, for `agora zk verify --vk`.
	VerifyingKeyURL string    `json:"verifying_key_url"`
	ProofList       []ZKProof `json:"proof_list"` // newest first
	FaultList       []ZKFault `json:"fault_list"` // newest first
}

// ZKVerifyingKeyPath is where the explorer serves zk model id's verifying key.
func ZKVerifyingKeyPath(id uint64) string {
	return Prefix + "api/zk/model/" + strconv.FormatUint(id, 10) + "/verifying.key"
}

func (s *Server) zkRow(v api.ZKModelView) (ZKModel, error) {
	st, err := s.Index.ZKModelStats(v.ID)
	if err != nil {
		return ZKModel{}, err
	}
	return ZKModel{ID: v.ID, Name: v.Name, Owner: v.Owner, Commitment: v.Commitment, VKHash: v.VKHash, VKSize: len(v.VerifyingKey),
		Batch: v.Batch, InLen: v.InLen, OutLen: v.OutLen, Price: v.Price, Height: v.Height, Proofs: v.Proofs,
		Faults: st.Faults, Slashed: st.Slashed, Tx: st.Tx}, nil
}

// zkModels lists the registered zk models, newest first.
func (s *Server) zkModels(r *http.Request) (any, error) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return nil, err
	}
	var ms []api.ZKModelView
	if _, err := query(s.State, api.ZKModelsPath(), &ms); err != nil {
		return nil, err
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].ID > ms[j].ID })
	out := []ZKModel{}
	for _, m := range ms[:min(limit, len(ms))] {
		row, err := s.zkRow(m)
		if err != nil {
			return nil, err
		}
		out = append(out, row)
	}
	return out, nil
}

func (s *Server) zkModelView(r *http.Request) (api.ZKModelView, error) {
	var v api.ZKModelView
	id, err := uintParam(r, "id")
	if err != nil {
		return v, err
	}
	found, err := query(s.State, api.ZKModelPath(id), &v)
	if err != nil {
		return v, err
	}
	if !found {
		return v, notFound("zk model %d does not exist", id)
	}
	return v, nil
}

func (s *Server) zkModel(r *http.Request) (any, error) {
	limit, err := limitParam(r, 200, 1000)
	if err != nil {
		return nil, err
	}
	v, err := s.zkModelView(r)
	if err != nil {
		return nil, err
	}
	p := ZKModelPage{VerifyingKeyURL: ZKVerifyingKeyPath(v.ID)}
	if p.Model, err = s.zkRow(v); err != nil {
		return nil, err
	}
	if p.ProofList, err = s.Index.ZKProofs(v.ID, limit); err != nil {
		return nil, err
	}
	if p.FaultList, err = s.Index.ZKFaults(v.ID, limit); err != nil {
		return nil, err
	}
	return p, nil
}

// zkVerifyingKey serves a zk model's verifying key as the chain holds it
// (gnark's encoding, as a ceremony's verifying.key): its sha256 is the
// model's vk_hash, and `agora zk verify --vk` reads it.
func (s *Server) zkVerifyingKey(w http.ResponseWriter, r *http.Request) {
	v, err := s.zkModelView(r)
	if err != nil {
		status := http.StatusInternalServerError
		if he, ok := err.(httpError); ok {
			status = he.status
		}
		writeJSON(w, status, map[string]any{"error": map[string]any{"message": err.Error(), "code": status}})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="zk-model-%d-verifying.key"`, v.ID))
	w.Header().Set("Content-Length", strconv.Itoa(len(v.VerifyingKey)))
	// A registered model's key never changes.
	w.Header().Set("Cache-Control", "max-age=3600")
	w.Write(v.VerifyingKey)
}
