package explorer

import (
	"encoding/hex"
	"encoding/json"
	"github.com/agoranet/agora/chain/api"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/types"
)

func TestServerRoutes(t *testing.T) {
	x := openIndex(t, t.TempDir())
	defer x.Close()
	f := fixture(t)
	for _, b := range f.blocks {
		if err := x.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	prov := addrOf(f.prov)
	// The provider answers /healthz; a second registered one is unreachable.
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			io.WriteString(w, "ok\n")
			return
		}
		http.NotFound(w, r)
	}))
	defer healthy.Close()
	st := fakeState{
		"/supply":     api.SupplyView{ChainID: "test", Total: 5000, Modules: []api.ModuleBalance{{Name: "fee_pool", Address: addrOf(f.other), Balance: 600}}},
		"/validators": []api.ValidatorView{{Operator: addrOf(f.val), Bonded: 900, Power: 9}},
		"/providers": []api.ProviderView{{Address: prov, Registered: true, Endpoint: healthy.URL, Models: []api.ModelView{}},
			{Address: addrOf(f.other), Registered: true, Endpoint: "http://127.0.0.1:1", Models: []api.ModelView{}}},
		"/provider/" + prov.String():          api.ProviderView{Address: prov, Registered: true},
		"/channels/provider/" + prov.String(): []api.ChannelView{},
		"/commitments/0":                      []api.CommitmentView{{Epoch: 0, Provider: prov, RecordCount: 7, Root: make([]byte, 32)}},
		"/epoch/0":                            api.EpochView{Number: 0, Seed: make([]byte, 32)},
		"/params":                             types.DefaultParams(),
	}
	srv := httptest.NewServer(NewServer(x, st).Handler())
	defer srv.Close()

	get := func(path string, wantStatus int, out any) string {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus {
			t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, wantStatus)
		}
		if out != nil {
			if err := json.Unmarshal(body, out); err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
		}
		return string(body)
	}

	var o Overview
	get("/explorer/api/overview", 200, &o)
	if o.Height != 3 || o.Totals.Requests != 7 || o.Validators != 1 || o.Bonded != 900 || o.Providers != 2 || o.ActiveProviders != 1 ||
		o.FeePool != 600 || o.Supply != 5000 || len(o.Epochs) != 2 || o.Epochs[0].Epoch != 0 || len(o.BlockTimes) != 2 || o.BlockTimes[1].Seconds != 1.5 {
		t.Fatalf("overview: %+v", o)
	}
	var rows []ProviderRow
	get("/explorer/api/providers", 200, &rows)
	if len(rows) != 2 || rows[0].Stats.Earned != 30 || rows[0].Stats.Faults != 1 || !rows[0].Online || rows[1].Online {
		t.Fatalf("providers: %+v", rows)
	}
	var ep struct {
		Commitments []EpochCommitment `json:"commitments"`
		Verdicts    []Verdict         `json:"verdicts"`
	}
	get("/explorer/api/epoch/0", 200, &ep)
	if len(ep.Commitments) != 1 || len(ep.Commitments[0].Sampled) == 0 || len(ep.Verdicts) != 1 {
		t.Fatalf("epoch 0: %+v", ep)
	}
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/explorer/api/block/2", 200, `"open_channel"`},
		{"/explorer/api/block/99", 404, "block 99 is not on chain yet"},
		{"/explorer/api/block/-1", 400, "height must be a non-negative number"},
		{"/explorer/api/tx/xyz", 400, "64 hex"},
		{"/explorer/api/tx/" + strings.Repeat("0", 64), 404, "no transaction"},
		{"/explorer/api/account/nothex", 400, "not an address"},
		{"/explorer/api/provider/" + strings.Repeat("ab", 20), 404, "no provider"},
		{"/explorer/api/epoch/50", 404, "has not started"},
		{"/explorer/api/blocks?limit=0", 400, "limit must be"},
		{"/explorer/api/blocks?before=x", 400, "before must be"},
		{"/explorer/api/nothing", 404, "unknown explorer API route"},
		{"/explorer/", 200, "<title>Agora explorer</title>"},
		{"/explorer/assets/app.js", 200, "function render"},
		{"/explorer/assets/style.css", 200, "--accent"},
		{"/explorer/no/such/page", 404, "Page not found"},
	} {
		if body := get(c.path, c.status, nil); !strings.Contains(body, c.want) {
			t.Errorf("GET %s: body %.200q does not contain %q", c.path, body, c.want)
		}
	}
	resp, err := http.Post(srv.URL+"/explorer/api/receipt/check", "text/plain", strings.NewReader("{not json"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(body), "not a receipt: malformed JSON") {
		t.Fatalf("malformed receipt: %d %s", resp.StatusCode, body)
	}
}

// TestOpenDisputesAndChallenges: /explorer/api/open lists what is pending on
// chain, and empty lists (not null) when nothing is.
func TestOpenDisputesAndChallenges(t *testing.T) {
	x := openIndex(t, t.TempDir())
	defer x.Close()
	prov, client := types.Address(make([]byte, 20)), types.Address(append(make([]byte, 19), 1))
	for _, c := range []struct {
		st         fakeState
		disputes   int
		challenges int
	}{
		{fakeState{}, 0, 0},
		{fakeState{
			"/disputes":   []api.DisputeView{{Epoch: 3, Provider: prov, Index: 2, ReceiptID: make([]byte, 32), Client: client, Bond: 500, Deadline: 90, OpenedHeight: 80}},
			"/challenges": []api.ChallengeView{{Epoch: 4, Provider: prov, Index: 7, Reporter: client, Client: client, Amount: 27, Bond: 1000, Deadline: 120}, {Epoch: 4, Provider: prov, Index: 8, Reporter: client, Client: client}},
		}, 1, 2},
	} {
		srv := httptest.NewServer(NewServer(x, c.st).Handler())
		resp, err := http.Get(srv.URL + "/explorer/api/open")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		var o Open
		if err := json.Unmarshal(body, &o); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		if len(o.Disputes) != c.disputes || len(o.Challenges) != c.challenges || !strings.Contains(string(body), `"disputes":[`) {
			t.Fatalf("open: %s", body)
		}
		if c.disputes == 1 && (o.Disputes[0].Bond != 500 || o.Disputes[0].Deadline != 90 || o.Challenges[0].Amount != 27) {
			t.Fatalf("open: %+v", o)
		}
	}
}

// TestJobRoutes: the jobs pages' API merges the orders of every status
// (newest first, or one status), and an order comes with its bids and its
// leases, each with its checkpoints and disputes; unknown ids are 404,
// unknown statuses 400.
func TestJobRoutes(t *testing.T) {
	x := openIndex(t, t.TempDir())
	defer x.Close()
	owner, prov := bytesOf(1, 20), bytesOf(2, 20)
	st := fakeState{
		api.JobOrdersByStatusPath("bidding"):   []api.JobOrderView{{ID: 3, Owner: owner, Status: "bidding"}},
		api.JobOrdersByStatusPath("running"):   []api.JobOrderView{{ID: 1, Owner: owner, Status: "running", LeaseIDs: []uint64{7}}},
		api.JobOrdersByStatusPath("done"):      []api.JobOrderView{{ID: 2, Owner: owner, Status: "done"}},
		api.JobOrdersByStatusPath("unmatched"): []api.JobOrderView{},
		api.JobOrdersByStatusPath("cancelled"): []api.JobOrderView{},
		api.JobOrdersByStatusPath("ended"):     []api.JobOrderView{},
		api.JobOrderPath(1):                    api.JobOrderView{ID: 1, Owner: owner, Status: "running", LeaseIDs: []uint64{7}},
		api.JobBidsPath(1):                     []api.JobBidView{},
		api.JobLeasePath(7):                    api.JobLeaseView{ID: 7, OrderID: 1, Provider: prov, Owner: owner, Status: "running", Checkpoints: 2},
		api.JobCheckpointsPath(7):              []api.JobCheckpointView{{LeaseID: 7, Index: 1}, {LeaseID: 7, Index: 2}},
		api.JobLeaseDisputesPath(7):            []api.JobDisputeView{{ID: 4, LeaseID: 7, Index: 2, Phase: "pick", Challenger: owner, Defender: prov}},
		api.JobDisputePath(4):                  api.JobDisputeView{ID: 4, LeaseID: 7, Index: 2, Phase: "pick", Challenger: owner, Defender: prov},
	}
	srv := httptest.NewServer(NewServer(x, st).Handler())
	defer srv.Close()
	get := getter(t, srv.URL)
	var all []api.JobOrderView
	get("/explorer/api/jobs", 200, &all)
	if len(all) != 3 || all[0].ID != 3 || all[1].ID != 2 || all[2].ID != 1 {
		t.Fatalf("jobs: %+v", all)
	}
	get("/explorer/api/jobs?status=done&limit=5", 200, &all)
	if len(all) != 1 || all[0].ID != 2 {
		t.Fatalf("done jobs: %+v", all)
	}
	var j Job
	get("/explorer/api/job/1", 200, &j)
	if j.Order.ID != 1 || len(j.Leases) != 1 || len(j.Leases[0].CheckpointList) != 2 || len(j.Leases[0].Disputes) != 1 || j.Leases[0].Disputes[0].ID != 4 {
		t.Fatalf("job 1: %+v", j)
	}
	var d api.JobDisputeView
	get("/explorer/api/job-dispute/4", 200, &d)
	if d.Phase != "pick" || d.LeaseID != 7 {
		t.Fatalf("dispute: %+v", d)
	}
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/explorer/api/job/9", 404, "order 9 does not exist"},
		{"/explorer/api/job-dispute/9", 404, "dispute 9 does not exist"},
		{"/explorer/api/jobs?status=lost", 400, `unknown job status \"lost\"`},
		{"/explorer/api/job/x", 400, "id"},
		{"/explorer/assets/app.js", 200, "function viewJob("},
	} {
		if body := get(c.path, c.status, nil); !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %.200q does not contain %q", c.path, body, c.want)
		}
	}
}

// TestDataRoutes: the data pages' API lists datasets newest first, a
// dataset comes with its grants and its compute-to-data runs, the runs
// page merges every dataset's runs newest first (or one dataset's), a
// grant reads alone; unknown ids are 404, bad ids 400.
func TestDataRoutes(t *testing.T) {
	x := openIndex(t, t.TempDir())
	defer x.Close()
	owner, host, buyer := bytesOf(1, 20), bytesOf(2, 20), bytesOf(3, 20)
	run := func(id, ds uint64, st string) api.JobOrderView {
		return api.JobOrderView{ID: id, Owner: buyer, Status: st, DatasetID: ds, RunPrice: 5, RunHeld: 5}
	}
	st := fakeState{
		api.DatasetsPath():            []api.DatasetView{{ID: 1, Owner: owner, Host: host, Name: "brown"}, {ID: 2, Owner: owner, Host: host, Name: "mnist", Retired: true}},
		api.DatasetPath(1):            api.DatasetView{ID: 1, Owner: owner, Host: host, Name: "brown", Grants: 1},
		api.DataGrantsPath(1, nil):    []api.DataGrantView{{ID: 4, DatasetID: 1, Buyer: buyer, Price: 7}},
		api.DataGrantPath(4):          api.DataGrantView{ID: 4, DatasetID: 1, Buyer: buyer, Price: 7},
		api.JobOrdersByDatasetPath(1): []api.JobOrderView{run(3, 1, "done"), run(8, 1, "bidding")},
		api.JobOrdersByDatasetPath(2): []api.JobOrderView{run(5, 2, "running")},
	}
	srv := httptest.NewServer(NewServer(x, st).Handler())
	defer srv.Close()
	get := getter(t, srv.URL)
	var ds []api.DatasetView
	get("/explorer/api/datasets", 200, &ds)
	if len(ds) != 2 || ds[0].ID != 2 || ds[1].ID != 1 {
		t.Fatalf("datasets: %+v", ds)
	}
	get("/explorer/api/datasets?limit=1", 200, &ds)
	if len(ds) != 1 || ds[0].ID != 2 {
		t.Fatalf("datasets, limit 1: %+v", ds)
	}
	var d Dataset
	get("/explorer/api/dataset/1", 200, &d)
	if d.Dataset.Name != "brown" || len(d.Grants) != 1 || d.Grants[0].ID != 4 || len(d.Runs) != 2 || d.Runs[1].ID != 8 {
		t.Fatalf("dataset 1: %+v", d)
	}
	var runs []api.JobOrderView
	get("/explorer/api/runs", 200, &runs)
	if len(runs) != 3 || runs[0].ID != 8 || runs[1].ID != 5 || runs[2].ID != 3 {
		t.Fatalf("runs: %+v", runs)
	}
	get("/explorer/api/runs?dataset=2", 200, &runs)
	if len(runs) != 1 || runs[0].ID != 5 || runs[0].DatasetID != 2 || runs[0].RunHeld != 5 {
		t.Fatalf("dataset 2's runs: %+v", runs)
	}
	var g api.DataGrantView
	get("/explorer/api/data-grant/4", 200, &g)
	if g.Price != 7 || g.DatasetID != 1 {
		t.Fatalf("grant: %+v", g)
	}
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/explorer/api/dataset/9", 404, "dataset 9 does not exist"},
		{"/explorer/api/data-grant/9", 404, "grant 9 does not exist"},
		{"/explorer/api/dataset/x", 400, "id"},
		{"/explorer/api/runs?dataset=x", 400, `dataset \"x\": want a number`},
		{"/explorer/assets/app.js", 200, "function viewDataset("},
		{"/explorer/", 200, `href="#/datasets"`},
	} {
		if body := get(c.path, c.status, nil); !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %.200q does not contain %q", c.path, body, c.want)
		}
	}
}

// TestModelRoutes: the trained-model pages' API lists every record newest
// first; a model comes with every record of its hash (the same bytes
// registered from several leases: the trainer's and a copier's, each with
// its module) and the providers offering it; a malformed hash is 400, an
// unregistered one 404.
func TestModelRoutes(t *testing.T) {
	x := openIndex(t, t.TempDir())
	defer x.Close()
	h1, h2, owner, trainer := bytesOf(1, 32), bytesOf(2, 32), bytesOf(3, 20), bytesOf(4, 20)
	m1 := api.TrainedModelView{Hash: h1, Name: "old", Owner: owner, Trainer: trainer, OrderID: 1, LeaseID: 1, LeaseStatus: "done", Height: 10}
	m2 := api.TrainedModelView{Hash: h2, Name: "new", Owner: owner, Trainer: trainer, OrderID: 2, LeaseID: 3, LeaseStatus: "done", Height: 20,
		ModuleHash: bytesOf(6, 32)}
	m2copy := api.TrainedModelView{Hash: h2, Name: "copy", Owner: bytesOf(7, 20), Trainer: bytesOf(8, 20), OrderID: 3, LeaseID: 4, LeaseStatus: "done",
		Height: 15, ModuleHash: bytesOf(9, 32)}
	st := fakeState{
		api.TrainedModelsPath():         []api.TrainedModelView{m1, m2, m2copy},
		api.TrainedModelRecordsPath(h2): []api.TrainedModelView{m2, m2copy},
		api.ProvidersForModelPath(h2):   []api.ProviderView{{Address: bytesOf(5, 20), Endpoint: "http://127.0.0.1:9"}},
		api.TrainedModelRecordsPath(h1): []api.TrainedModelView{m1},
		api.ProvidersForModelPath(h1):   []api.ProviderView{},
	}
	srv := httptest.NewServer(NewServer(x, st).Handler())
	defer srv.Close()
	get := getter(t, srv.URL)
	var ms []api.TrainedModelView
	get("/explorer/api/models", 200, &ms)
	if len(ms) != 3 || ms[0].Name != "new" || ms[1].Name != "copy" || ms[2].Name != "old" {
		t.Fatalf("models: %+v", ms)
	}
	get("/explorer/api/models?limit=1", 200, &ms)
	if len(ms) != 1 || ms[0].Name != "new" {
		t.Fatalf("models, limit 1: %+v", ms)
	}
	var m TrainedModel
	get("/explorer/api/model/"+hex.EncodeToString(h2), 200, &m)
	if len(m.Records) != 2 || m.Records[0].LeaseID != 3 || m.Records[1].LeaseID != 4 ||
		string(m.Records[0].ModuleHash) != string(bytesOf(6, 32)) || string(m.Records[1].ModuleHash) != string(bytesOf(9, 32)) ||
		len(m.Providers) != 1 || m.Providers[0].Endpoint != "http://127.0.0.1:9" {
		t.Fatalf("model: %+v", m)
	}
	get("/explorer/api/model/"+hex.EncodeToString(h1), 200, &m)
	if len(m.Records) != 1 || m.Records[0].Name != "old" || len(m.Providers) != 0 {
		t.Fatalf("model: %+v", m)
	}
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/explorer/api/model/" + hex.EncodeToString(bytesOf(9, 32)), 404, "is registered"},
		{"/explorer/api/model/xyz", 400, "want 64 hex digits"},
		{"/explorer/assets/app.js", 200, "function viewModel("},
		{"/explorer/assets/app.js", 200, "registered by ${recs.length} leases"},
		{"/explorer/", 200, `href="#/models"`},
	} {
		if body := get(c.path, c.status, nil); !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %.200q does not contain %q", c.path, body, c.want)
		}
	}
}

// TestStorageRoutes: the storage pages' API lists deals (newest first, or
// one status), a deal with its epochs and faults, and the latest faults;
// unknown ids are 404, unknown statuses 400.
func TestStorageRoutes(t *testing.T) {
	x := openIndex(t, t.TempDir())
	defer x.Close()
	client, prov := bytesOf(1, 20), bytesOf(2, 20)
	fault := api.StorageFaultView{ID: 1, DealID: 2, Provider: prov, Epoch: 7, Height: 170, Slashed: 100_000, Refunded: 1000, Consecutive: 1, Score: 7500}
	st := fakeState{
		api.StorageDealsPath: []api.StorageDealView{{ID: 3, Client: client, Status: "open"}, {ID: 2, Client: client, Provider: prov, Status: "active", Missed: 1},
			{ID: 1, Client: client, Provider: prov, Status: "done"}},
		api.StorageDealsByStatusPath("active"): []api.StorageDealView{{ID: 2, Client: client, Provider: prov, Status: "active", Missed: 1}},
		api.StorageDealPath(2):                 api.StorageDealView{ID: 2, Client: client, Provider: prov, Status: "active", Proved: 1, Missed: 1},
		api.StorageEpochsPath(2): []api.StorageEpochView{{DealID: 2, Epoch: 6, Provider: prov, Proved: true, Paid: 950, Fee: 50},
			{DealID: 2, Epoch: 7, Provider: prov, Slashed: 100_000}},
		api.StorageFaultsPath(2):    []api.StorageFaultView{fault},
		api.StorageRecentFaultsPath: []api.StorageFaultView{fault},
	}
	srv := httptest.NewServer(NewServer(x, st).Handler())
	defer srv.Close()
	get := getter(t, srv.URL)
	var ds []api.StorageDealView
	get("/explorer/api/storage/deals", 200, &ds)
	if len(ds) != 3 || ds[0].ID != 3 || ds[2].ID != 1 {
		t.Fatalf("deals: %+v", ds)
	}
	get("/explorer/api/storage/deals?status=active&limit=5", 200, &ds)
	if len(ds) != 1 || ds[0].ID != 2 {
		t.Fatalf("active deals: %+v", ds)
	}
	get("/explorer/api/storage/deals?limit=2", 200, &ds)
	if len(ds) != 2 || ds[1].ID != 2 {
		t.Fatalf("2 deals: %+v", ds)
	}
	var d StorageDeal
	get("/explorer/api/storage/deal/2", 200, &d)
	if d.Deal.ID != 2 || len(d.Epochs) != 2 || !d.Epochs[0].Proved || d.Epochs[1].Proved || len(d.Faults) != 1 || d.Faults[0].Slashed != 100_000 {
		t.Fatalf("deal 2: %+v", d)
	}
	var fs []api.StorageFaultView
	get("/explorer/api/storage/faults", 200, &fs)
	if len(fs) != 1 || fs[0].Epoch != 7 || fs[0].Score != 7500 {
		t.Fatalf("faults: %+v", fs)
	}
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/explorer/api/storage/deal/9", 404, "storage deal 9 does not exist"},
		{"/explorer/api/storage/deals?status=lost", 400, `unknown deal status \"lost\"`},
		{"/explorer/api/storage/deal/x", 400, "id"},
		{"/explorer/assets/app.js", 200, "function viewStorageDeal("},
		{"/explorer/assets/app.js", 200, "function viewStorageFaults("},
	} {
		if body := get(c.path, c.status, nil); !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %.200q does not contain %q", c.path, body, c.want)
		}
	}
}

// getter GETs a path of the server at base, checks the status, decodes the
// JSON body into out (if not nil) and returns the body.
func getter(t *testing.T, base string) func(path string, status int, out any) string {
	return func(path string, status int, out any) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status {
			t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, status)
		}
		if out != nil {
			if err := json.Unmarshal(body, out); err != nil {
				t.Fatal(err)
			}
		}
		return string(body)
	}
}
