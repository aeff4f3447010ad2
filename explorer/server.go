package explorer

import (
	"context"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agoranet/agora/chain/api"
	"io"
	"io/fs"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agoranet/agora/chain/sampling"
	"github.com/agoranet/agora/chain/types"
)

//go:embed ui
var uiFiles embed.FS

// Prefix is where the explorer is mounted on the node's API server.
const Prefix = "/explorer/"

// Server serves the explorer's JSON API and web UI.
type Server struct {
	Index   *Index
	State   State
	Checker *Checker

	losses lossCharts // training jobs' loss charts, by lease

	probe struct { // providers' reachability, probed lazily (at most every probeTTL)
		sync.Mutex
		at     time.Time
		online map[string]bool
	}
}

const probeTTL = 5 * time.Second

// online reports which providers answer GET /healthz at their registered
// endpoint (1 s timeout, in parallel, cached for probeTTL).
func (s *Server) online(ctx context.Context, provs []api.ProviderView) map[string]bool {
	s.probe.Lock()
	defer s.probe.Unlock()
	if s.probe.online != nil && time.Since(s.probe.at) < probeTTL {
		return s.probe.online
	}
	hc := &http.Client{Timeout: time.Second}
	out := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, p := range provs {
		if i == 256 || !p.Registered || p.Endpoint == "" {
			continue
		}
		wg.Add(1)
		go func(addr, endpoint string) {
			defer wg.Done()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(endpoint, "/")+"/healthz", nil)
			if err != nil {
				return
			}
			resp, err := hc.Do(req)
			if err != nil {
				return
			}
			resp.Body.Close()
			mu.Lock()
			out[addr] = resp.StatusCode == http.StatusOK
			mu.Unlock()
		}(p.Address.String(), p.Endpoint)
	}
	wg.Wait()
	s.probe.at, s.probe.online = time.Now(), out
	return out
}

// NewServer returns a server over an index and the node's state.
func NewServer(x *Index, st State) *Server {
	return &Server{Index: x, State: st, Checker: &Checker{State: st, HTTP: &http.Client{Timeout: 5 * time.Second}}}
}

// Handler serves everything under Prefix.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	route := func(pattern string, h func(r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			v, err := h(r)
			if err != nil {
				status := http.StatusInternalServerError
				var he httpError
				if errors.As(err, &he) {
					status = he.status
				} else if errors.Is(err, ErrBadReceipt) {
					status = http.StatusBadRequest
				}
				writeJSON(w, status, map[string]any{"error": map[string]any{"message": err.Error(), "code": status}})
				return
			}
			writeJSON(w, http.StatusOK, v)
		})
	}
	route("GET /explorer/api/overview", s.overview)
	route("GET /explorer/api/blocks", s.blocks)
	route("GET /explorer/api/block/{height}", s.block)
	route("GET /explorer/api/tx/{hash}", s.tx)
	route("GET /explorer/api/account/{addr}", s.account)
	route("GET /explorer/api/validators", s.validators)
	route("GET /explorer/api/providers", s.providers)
	route("GET /explorer/api/provider/{addr}", s.provider)
	route("GET /explorer/api/epochs", s.epochs)
	route("GET /explorer/api/epoch/{n}", s.epoch)
	route("GET /explorer/api/verdicts", s.verdicts)
	route("GET /explorer/api/open", s.open)
	route("GET /explorer/api/channels", s.channels)
	route("GET /explorer/api/channel/{id}", s.channel)
	route("GET /explorer/api/jobs", s.jobs)
	route("GET /explorer/api/job/{id}", s.job)
	route("GET /explorer/api/job-dispute/{id}", s.jobDispute)
	route("GET /explorer/api/datasets", s.datasets)
	route("GET /explorer/api/dataset/{id}", s.dataset)
	route("GET /explorer/api/data-grant/{id}", s.dataGrant)
	route("GET /explorer/api/runs", s.runs)
	route("GET /explorer/api/storage/deals", s.storageDeals)
	route("GET /explorer/api/storage/deal/{id}", s.storageDeal)
	route("GET /explorer/api/storage/faults", s.storageFaults)
	route("GET /explorer/api/models", s.trainedModels)
	route("GET /explorer/api/model/{hash}", s.trainedModel)
	route("GET /explorer/api/zk/models", s.zkModels)
	route("GET /explorer/api/zk/model/{id}", s.zkModel)
	route("POST /explorer/api/receipt/check", s.checkReceipt)
	route("/explorer/api/", func(r *http.Request) (any, error) {
		return nil, httpError{http.StatusNotFound, "unknown explorer API route " + r.Method + " " + r.URL.Path}
	})

	mux.HandleFunc("GET /explorer/api/lease/{id}/loss.svg", s.leaseLoss)
	mux.HandleFunc("GET /explorer/api/zk/model/{id}/verifying.key", s.zkVerifyingKey)

	static, _ := fs.Sub(uiFiles, "ui")
	files := http.FileServerFS(static)
	mux.HandleFunc("GET /explorer/{$}", func(w http.ResponseWriter, r *http.Request) {
		serveIndex(w, static)
	})
	mux.Handle("GET /explorer/assets/", http.StripPrefix("/explorer/assets/", files))
	mux.HandleFunc("/explorer/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found · Agora explorer</title></head>`+
			`<body><main><h1>Page not found</h1><p>There is no explorer page at this address.</p><p><a href="/explorer/">Go to the explorer's overview</a></p></main></body></html>`)
	})
	return mux
}

func serveIndex(w http.ResponseWriter, static fs.FS) {
	bz, err := fs.ReadFile(static, "index.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(bz)
}

type httpError struct {
	status int
	msg    string
}

func (e httpError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func limitParam(r *http.Request, def, max int) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, badRequest("limit must be a number from 1 to %d", max)
	}
	return n, nil
}

func addrParam(r *http.Request) (types.Address, error) {
	a, err := types.ParseAddress(r.PathValue("addr"))
	if err != nil {
		return nil, badRequest("%q is not an address: %v", r.PathValue("addr"), err)
	}
	return a, nil
}

func uintParam(r *http.Request, name string) (uint64, error) {
	n, err := strconv.ParseUint(r.PathValue(name), 10, 64)
	if err != nil {
		return 0, badRequest("%s must be a non-negative number, got %q", name, r.PathValue(name))
	}
	return n, nil
}

// Overview is the answer of /explorer/api/overview.
type Overview struct {
	ChainID         string         `json:"chain_id"`
	Height          int64          `json:"height"`
	LatestBlockTime string         `json:"latest_block_time"`
	AvgBlockSeconds float64        `json:"avg_block_seconds"`
	EpochLength     int64          `json:"epoch_length"`
	CurrentEpoch    uint64         `json:"current_epoch"`
	Validators      int            `json:"validators"`
	Bonded          uint64         `json:"validator_bonded"`
	Providers       int            `json:"providers"`
	ActiveProviders int            `json:"active_providers"` // registered, not jailed, answering at their endpoint now
	Supply          uint64         `json:"supply"`
	FeePool         uint64         `json:"fee_pool"`
	Totals          Totals         `json:"totals"`
	Epochs          []EpochStats   `json:"epochs"` // oldest first, up to 30
	BlockTimes      []BlockSeconds `json:"block_times"`
	RecentBlocks    []Block        `json:"recent_blocks"`
	RecentVerdicts  []Verdict      `json:"recent_verdicts"`
	// KeepBlocks is the explorer's retention window (0: every block is
	// kept); OldestBlock the oldest block whose detail it still has.
	KeepBlocks  int64 `json:"keep_blocks"`
	OldestBlock int64 `json:"oldest_block"`
}

// BlockSeconds is the time between a block and the one before it.
type BlockSeconds struct {
	Height  int64   `json:"height"`
	Seconds float64 `json:"seconds"`
}

func (s *Server) overview(r *http.Request) (any, error) {
	o := Overview{Height: s.Index.Height(), EpochLength: s.Index.epochLength, KeepBlocks: s.Index.KeepBlocks()}
	if o.Height > 0 {
		o.OldestBlock = s.Index.Pruned() + 1
	}
	var err error
	if o.Totals, err = s.Index.Totals(); err != nil {
		return nil, err
	}
	var sup api.SupplyView
	if _, err := query(s.State, "/supply", &sup); err != nil {
		return nil, err
	}
	o.ChainID, o.Supply = sup.ChainID, sup.Total
	for _, m := range sup.Modules {
		if m.Name == "fee_pool" {
			o.FeePool = m.Balance
		}
	}
	var vals []api.ValidatorView
	if _, err := query(s.State, "/validators", &vals); err != nil {
		return nil, err
	}
	for _, v := range vals {
		if v.Power > 0 {
			o.Validators++
			o.Bonded += v.Bonded
		}
	}
	if o.Height > 0 {
		o.CurrentEpoch = uint64((o.Height - 1) / s.Index.epochLength)
	}
	provs, err := s.providerRows(r.Context())
	if err != nil {
		return nil, err
	}
	for _, p := range provs {
		if !p.Registered {
			continue
		}
		o.Providers++
		if !p.Jailed && p.Online {
			o.ActiveProviders++
		}
	}
	recent, err := s.Index.Blocks(0, 61)
	if err != nil {
		return nil, err
	}
	if len(recent) > 0 {
		o.LatestBlockTime = recent[0].Time
	}
	for i := len(recent) - 2; i >= 0; i-- {
		t1, e1 := time.Parse(time.RFC3339Nano, recent[i+1].Time)
		t2, e2 := time.Parse(time.RFC3339Nano, recent[i].Time)
		if e1 == nil && e2 == nil {
			o.BlockTimes = append(o.BlockTimes, BlockSeconds{Height: recent[i].Height, Seconds: t2.Sub(t1).Seconds()})
		}
	}
	if n := len(o.BlockTimes); n > 0 {
		var sum float64
		for _, b := range o.BlockTimes {
			sum += b.Seconds
		}
		o.AvgBlockSeconds = sum / float64(n)
	}
	if o.BlockTimes == nil {
		o.BlockTimes = []BlockSeconds{}
	}
	if len(recent) > 8 {
		recent = recent[:8]
	}
	o.RecentBlocks = recent
	eps, err := s.Index.Epochs(30)
	if err != nil {
		return nil, err
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].Epoch < eps[j].Epoch })
	o.Epochs = eps
	if o.RecentVerdicts, err = s.Index.Verdicts(5); err != nil {
		return nil, err
	}
	return o, nil
}

func (s *Server) blocks(r *http.Request) (any, error) {
	limit, err := limitParam(r, 25, 200)
	if err != nil {
		return nil, err
	}
	var before int64
	if b := r.URL.Query().Get("before"); b != "" {
		if before, err = strconv.ParseInt(b, 10, 64); err != nil || before < 1 {
			return nil, badRequest("before must be a positive height")
		}
	}
	return s.Index.Blocks(before, limit)
}

func (s *Server) block(r *http.Request) (any, error) {
	h, err := uintParam(r, "height")
	if err != nil {
		return nil, err
	}
	b, err := s.Index.Block(int64(h))
	if err != nil {
		return nil, err
	}
	if b == nil {
		if perr := s.Index.prunedBlock(int64(h)); perr != nil {
			return nil, notFound("%v", perr)
		}
		return nil, notFound("block %d is not on chain yet (latest indexed: %d)", h, s.Index.Height())
	}
	txs, err := s.Index.Txs(b.TxHashes)
	if err != nil {
		return nil, err
	}
	return map[string]any{"block": b, "txs": txs}, nil
}

func (s *Server) tx(r *http.Request) (any, error) {
	t, err := s.Index.Tx(strings.ToLower(r.PathValue("hash")))
	if err != nil {
		return nil, badRequest("%v", err)
	}
	if t == nil {
		if perr := s.Index.prunedTx(r.PathValue("hash")); perr != nil {
			return nil, notFound("%v", perr)
		}
		return nil, notFound("no transaction %s on chain", r.PathValue("hash"))
	}
	return t, nil
}

func (s *Server) account(r *http.Request) (any, error) {
	a, err := addrParam(r)
	if err != nil {
		return nil, err
	}
	var acc api.AccountView
	if _, err := query(s.State, "/account/"+a.String(), &acc); err != nil {
		return nil, err
	}
	txs, err := s.Index.AccountTxs(a, 50)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"account": acc, "txs": txs}
	var pv api.ProviderView
	if found, err := query(s.State, "/provider/"+a.String(), &pv); err == nil && found {
		out["provider"] = true
	}
	var vv api.ValidatorView
	if found, err := query(s.State, "/validator/"+a.String(), &vv); err == nil && found {
		out["validator"] = vv
	}
	return out, nil
}

func (s *Server) validators(*http.Request) (any, error) {
	var vals []api.ValidatorView
	if _, err := query(s.State, "/validators", &vals); err != nil {
		return nil, err
	}
	return vals, nil
}

// ProviderRow is a provider's on-chain registration with its indexed
// history and whether its endpoint answers now.
type ProviderRow struct {
	api.ProviderView
	Stats  ProviderStats `json:"stats"`
	Online bool          `json:"online"`
}

func (s *Server) providerRows(ctx context.Context) ([]ProviderRow, error) {
	var provs []api.ProviderView
	if _, err := query(s.State, "/providers", &provs); err != nil {
		return nil, err
	}
	online := s.online(ctx, provs)
	out := []ProviderRow{}
	for _, p := range provs {
		st, err := s.Index.Provider(p.Address)
		if err != nil {
			return nil, err
		}
		out = append(out, ProviderRow{ProviderView: p, Stats: st, Online: online[p.Address.String()]})
	}
	return out, nil
}

func (s *Server) providers(r *http.Request) (any, error) { return s.providerRows(r.Context()) }

func (s *Server) provider(r *http.Request) (any, error) {
	a, err := addrParam(r)
	if err != nil {
		return nil, err
	}
	var pv api.ProviderView
	found, err := query(s.State, "/provider/"+a.String(), &pv)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("no provider %s on chain", a)
	}
	st, err := s.Index.Provider(a)
	if err != nil {
		return nil, err
	}
	cms, err := s.Index.ProviderCommitments(a, 100)
	if err != nil {
		return nil, err
	}
	var chans []api.ChannelView
	if _, err := query(s.State, "/channels/provider/"+a.String(), &chans); err != nil {
		return nil, err
	}
	verdicts, err := s.Index.VerdictsAgainst(a, 200)
	if err != nil {
		return nil, err
	}
	var everyone []api.ProviderView
	if _, err := query(s.State, "/providers", &everyone); err != nil {
		return nil, err
	}
	online := s.online(r.Context(), everyone)[a.String()]
	return map[string]any{"provider": ProviderRow{ProviderView: pv, Stats: st, Online: online}, "commitments": cms, "channels": chans, "verdicts": verdicts}, nil
}

func (s *Server) epochs(r *http.Request) (any, error) {
	limit, err := limitParam(r, 50, 500)
	if err != nil {
		return nil, err
	}
	return s.Index.Epochs(limit)
}

func (s *Server) epoch(r *http.Request) (any, error) {
	n, err := uintParam(r, "n")
	if err != nil {
		return nil, err
	}
	h := s.Index.Height()
	if h < 1 || n > uint64((h-1)/s.Index.epochLength) {
		return nil, notFound("epoch %d has not started yet", n)
	}
	st, err := s.Index.Epoch(n)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"stats": st}
	var ev api.EpochView
	if found, err := query(s.State, "/epoch/"+strconv.FormatUint(n, 10), &ev); err != nil {
		return nil, err
	} else if found {
		out["epoch"] = ev
	}
	var cms []api.CommitmentView
	if _, err := query(s.State, "/commitments/"+strconv.FormatUint(n, 10), &cms); err != nil {
		return nil, err
	}
	var params types.Params
	if _, err := query(s.State, "/params", &params); err != nil {
		return nil, err
	}
	rows := []EpochCommitment{}
	for _, c := range cms {
		row := EpochCommitment{CommitmentView: c, Sampled: []uint64{}}
		if len(ev.Seed) > 0 {
			// The rule the chain and the validators apply.
			row.Sampled = sampling.Sample(ev.Seed, c.Provider, c.RecordCount, params.AuditFloorBps, params.AuditCeilingBps, c.ReputationBps)
			sort.Slice(row.Sampled, func(i, j int) bool { return row.Sampled[i] < row.Sampled[j] })
		}
		rows = append(rows, row)
	}
	out["commitments"] = rows
	if out["scores"], err = s.Index.EpochScores(n); err != nil {
		return nil, err
	}
	if out["verdicts"], err = s.Index.EpochVerdicts(n, 1000); err != nil {
		return nil, err
	}
	return out, nil
}

// EpochCommitment is a commitment with the receipts its epoch's seed selects
// for audit (empty until the seed is drawn).
type EpochCommitment struct {
	api.CommitmentView
	Sampled []uint64 `json:"sampled"`
}

func (s *Server) verdicts(r *http.Request) (any, error) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return nil, err
	}
	return s.Index.Verdicts(limit)
}

// Open is what is pending on chain right now: client disputes awaiting the
// validators' re-execution and omission challenges awaiting the provider's
// inclusion proof, each with its deadline.
type Open struct {
	Disputes   []api.DisputeView   `json:"disputes"`
	Challenges []api.ChallengeView `json:"challenges"`
}

func (s *Server) open(*http.Request) (any, error) {
	o := Open{Disputes: []api.DisputeView{}, Challenges: []api.ChallengeView{}}
	if _, err := query(s.State, "/disputes", &o.Disputes); err != nil {
		return nil, err
	}
	if _, err := query(s.State, "/challenges", &o.Challenges); err != nil {
		return nil, err
	}
	return o, nil
}

func (s *Server) channels(r *http.Request) (any, error) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return nil, err
	}
	opened, err := s.Index.Channels(limit)
	if err != nil {
		return nil, err
	}
	out := []api.ChannelView{}
	for _, c := range opened {
		var cv api.ChannelView
		found, err := query(s.State, "/channel/"+strconv.FormatUint(c.ID, 10), &cv)
		if err != nil {
			return nil, err
		}
		if found {
			out = append(out, cv)
		}
	}
	return out, nil
}

func (s *Server) channel(r *http.Request) (any, error) {
	id, err := uintParam(r, "id")
	if err != nil {
		return nil, err
	}
	var cv api.ChannelView
	found, err := query(s.State, "/channel/"+strconv.FormatUint(id, 10), &cv)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("channel %d does not exist", id)
	}
	return cv, nil
}

func (s *Server) checkReceipt(r *http.Request) (any, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err != nil {
		return nil, badRequest("read body: %v", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	return s.Checker.Check(ctx, string(body))
}

// The job market (chain/jobs): current state through the app's /job/
// queries; the txs that made it are indexed like any message.

// JobStatuses are the order statuses /explorer/api/jobs lists, newest
// order first within the whole list.
var JobStatuses = []string{"bidding", "running", "done", "unmatched", "cancelled", "ended"}

// JobLease is a lease with its checkpoints and the disputes over them.
type JobLease struct {
	api.JobLeaseView
	CheckpointList []api.JobCheckpointView `json:"checkpoint_list"`
	Disputes       []api.JobDisputeView    `json:"disputes"`
	Models         []api.TrainedModelView  `json:"models"` // registered from this lease (chain/models)
}

// Job is an order with its open bids and its leases.
type Job struct {
	Order  api.JobOrderView `json:"order"`
	Bids   []api.JobBidView `json:"bids"`
	Leases []JobLease       `json:"leases"`
}

func (s *Server) jobs(r *http.Request) (any, error) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return nil, err
	}
	statuses := JobStatuses
	if st := r.URL.Query().Get("status"); st != "" {
		if _, ok := api.ParseJobStatus(st); !ok {
			return nil, badRequest("unknown job status %q", st)
		}
		statuses = []string{st}
	}
	out := []api.JobOrderView{}
	for _, st := range statuses {
		var page []api.JobOrderView
		if _, err := query(s.State, api.JobOrdersByStatusPath(st), &page); err != nil {
			return nil, err
		}
		out = append(out, page...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *Server) job(r *http.Request) (any, error) {
	id, err := uintParam(r, "id")
	if err != nil {
		return nil, err
	}
	var j Job
	found, err := query(s.State, api.JobOrderPath(id), &j.Order)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("order %d does not exist", id)
	}
	if _, err := query(s.State, api.JobBidsPath(id), &j.Bids); err != nil {
		return nil, err
	}
	for _, lid := range j.Order.LeaseIDs {
		var l JobLease
		if _, err := query(s.State, api.JobLeasePath(lid), &l.JobLeaseView); err != nil {
			return nil, err
		}
		if _, err := query(s.State, api.JobCheckpointsPath(lid), &l.CheckpointList); err != nil {
			return nil, err
		}
		if _, err := query(s.State, api.JobLeaseDisputesPath(lid), &l.Disputes); err != nil {
			return nil, err
		}
		if _, err := query(s.State, api.TrainedModelsByLeasePath(lid), &l.Models); err != nil {
			return nil, err
		}
		j.Leases = append(j.Leases, l)
	}
	return j, nil
}

func (s *Server) jobDispute(r *http.Request) (any, error) {
	id, err := uintParam(r, "id")
	if err != nil {
		return nil, err
	}
	var d api.JobDisputeView
	found, err := query(s.State, api.JobDisputePath(id), &d)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("dispute %d does not exist", id)
	}
	return d, nil
}

// The data market (chain/data): datasets, their download grants and their
// compute-to-data runs (job orders on a dataset), through the app's
// /data/ and /job/orders/dataset/ queries.

// Dataset is a dataset with its grants and its runs.
type Dataset struct {
	Dataset api.DatasetView     `json:"dataset"`
	Grants  []api.DataGrantView `json:"grants"`
	Runs    []api.JobOrderView  `json:"runs"`
}

func (s *Server) allDatasets() ([]api.DatasetView, error) {
	var ds []api.DatasetView
	if _, err := query(s.State, api.DatasetsPath(), &ds); err != nil {
		return nil, err
	}
	return ds, nil
}

// datasets lists the datasets, newest first.
func (s *Server) datasets(r *http.Request) (any, error) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return nil, err
	}
	ds, err := s.allDatasets()
	if err != nil {
		return nil, err
	}
	out := []api.DatasetView{}
	for i := len(ds) - 1; i >= 0 && len(out) < limit; i-- {
		out = append(out, ds[i])
	}
	return out, nil
}

func (s *Server) dataset(r *http.Request) (any, error) {
	id, err := uintParam(r, "id")
	if err != nil {
		return nil, err
	}
	var d Dataset
	found, err := query(s.State, api.DatasetPath(id), &d.Dataset)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("dataset %d does not exist", id)
	}
	if _, err := query(s.State, api.DataGrantsPath(id, nil), &d.Grants); err != nil {
		return nil, err
	}
	if _, err := query(s.State, api.JobOrdersByDatasetPath(id), &d.Runs); err != nil {
		return nil, err
	}
	if d.Grants == nil {
		d.Grants = []api.DataGrantView{}
	}
	if d.Runs == nil {
		d.Runs = []api.JobOrderView{}
	}
	return d, nil
}

func (s *Server) dataGrant(r *http.Request) (any, error) {
	id, err := uintParam(r, "id")
	if err != nil {
		return nil, err
	}
	var g api.DataGrantView
	found, err := query(s.State, api.DataGrantPath(id), &g)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("grant %d does not exist", id)
	}
	return g, nil
}

// runs lists the compute-to-data runs (orders on a dataset) of every
// dataset, or of ?dataset=ID, newest first.
func (s *Server) runs(r *http.Request) (any, error) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return nil, err
	}
	var ids []uint64
	if v := r.URL.Query().Get("dataset"); v != "" {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, badRequest("dataset %q: want a number", v)
		}
		ids = []uint64{id}
	} else {
		ds, err := s.allDatasets()
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
	}
	out := []api.JobOrderView{}
	for _, id := range ids {
		var page []api.JobOrderView
		if _, err := query(s.State, api.JobOrdersByDatasetPath(id), &page); err != nil {
			return nil, err
		}
		out = append(out, page...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Storage deals (chain/storage): current state through the app's
// /storage/ queries.

// StorageDeal is a deal with its settled epochs and its faults.
type StorageDeal struct {
	Deal   api.StorageDealView    `json:"deal"`
	Epochs []api.StorageEpochView `json:"epochs"`
	Faults []api.StorageFaultView `json:"faults"`
}

// storageDeals lists the deals, newest first, or those of one status.
func (s *Server) storageDeals(r *http.Request) (any, error) {
	limit, err := limitParam(r, 100, api.MaxStorageDeals)
	if err != nil {
		return nil, err
	}
	path := api.StorageDealsPath
	if st := r.URL.Query().Get("status"); st != "" {
		if _, ok := api.ParseDealStatus(st); !ok {
			return nil, badRequest("unknown deal status %q (open, active, done, cancelled)", st)
		}
		path = api.StorageDealsByStatusPath(st)
	}
	out := []api.StorageDealView{}
	if _, err := query(s.State, path, &out); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *Server) storageDeal(r *http.Request) (any, error) {
	id, err := uintParam(r, "id")
	if err != nil {
		return nil, err
	}
	var d StorageDeal
	found, err := query(s.State, api.StorageDealPath(id), &d.Deal)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("storage deal %d does not exist", id)
	}
	if _, err := query(s.State, api.StorageEpochsPath(id), &d.Epochs); err != nil {
		return nil, err
	}
	if _, err := query(s.State, api.StorageFaultsPath(id), &d.Faults); err != nil {
		return nil, err
	}
	return d, nil
}

// The trained-model registry (chain/models): models a compute job
// produced, with their provenance and the providers serving them.

// TrainedModel is a registered model: every record of its sha256 (one per
// lease that registered those bytes, the oldest lease first: the trainer's
// and any copier's, each naming its module) and the registered providers
// whose offers name the hash.
type TrainedModel struct {
	Records   []api.TrainedModelView `json:"records"`
	Providers []api.ProviderView     `json:"providers"`
}

// trainedModels lists the registry's records, newest first.
func (s *Server) trainedModels(r *http.Request) (any, error) {
	limit, err := limitParam(r, 100, 1000)
	if err != nil {
		return nil, err
	}
	var ms []api.TrainedModelView
	if _, err := query(s.State, api.TrainedModelsPath(), &ms); err != nil {
		return nil, err
	}
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Height > ms[j].Height })
	return ms[:min(limit, len(ms))], nil
}

func (s *Server) trainedModel(r *http.Request) (any, error) {
	h, err := hex.DecodeString(r.PathValue("hash"))
	if err != nil || len(h) != 32 {
		return nil, httpError{http.StatusBadRequest, fmt.Sprintf("model hash %q: want 64 hex digits (the file's sha256)", r.PathValue("hash"))}
	}
	var m TrainedModel
	found, err := query(s.State, api.TrainedModelRecordsPath(h), &m.Records)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("no model %x is registered", h)
	}
	m.Providers = []api.ProviderView{}
	if _, err := query(s.State, api.ProvidersForModelPath(h), &m.Providers); err != nil {
		return nil, err
	}
	return m, nil
}

// storageFaults lists the latest missed epochs of every deal, newest first.
func (s *Server) storageFaults(r *http.Request) (any, error) {
	limit, err := limitParam(r, 100, api.MaxStorageDeals)
	if err != nil {
		return nil, err
	}
	out := []api.StorageFaultView{}
	if _, err := query(s.State, api.StorageRecentFaultsPath, &out); err != nil {
		return nil, err
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
