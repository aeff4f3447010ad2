package explorer

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/agoranet/agora/chain/api"
	"github.com/agoranet/agora/protocol/blob"
	pjobs "github.com/agoranet/agora/protocol/jobs"
	"github.com/agoranet/agora/train"
)

// TestLeaseLossChart: a training lease's loss curve is fetched from its
// provider, checked against the chain and drawn; compute-to-data runs,
// jobs without a loss log, unfinished leases and a provider sending other
// bytes are refused with the reason.
func TestLeaseLossChart(t *testing.T) {
	x := openIndex(t, t.TempDir())
	defer x.Close()
	loss, _ := json.Marshal(train.LossLog{Preset: "tiny", Steps: 3, Seed: 1, Loss: []float64{6.6, 5.5, 4.4}})
	lossID := blob.Of(loss)
	list := (&pjobs.Results{Outputs: []pjobs.Output{{Name: LossOutput, ID: lossID, Size: uint64(len(loss))}}}).Encode()
	plain := (&pjobs.Results{Outputs: []pjobs.Output{{Name: "stdout", ID: blob.Of(nil)}}}).Encode()
	blobs := map[string][]byte{blob.BlobPath(blob.Of(list)): list, blob.BlobPath(lossID): loss, blob.BlobPath(blob.Of(plain)): plain}
	lie := false
	prov := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := blobs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if lie && r.URL.Path == blob.BlobPath(lossID) {
			b = []byte(`{"loss":[0.1]}`)
		}
		w.Write(b)
	}))
	defer prov.Close()
	p := bytesOf(7, 20)
	lid, pid := blob.Of(list), blob.Of(plain)
	st := fakeState{
		api.JobLeasePath(1): api.JobLeaseView{ID: 1, OrderID: 1, Provider: p, Owner: p, Status: "done", ResultHash: lid[:]},
		api.JobLeasePath(2): api.JobLeaseView{ID: 2, OrderID: 2, Provider: p, Owner: p, Status: "done", ResultHash: lid[:]},
		api.JobLeasePath(3): api.JobLeaseView{ID: 3, OrderID: 1, Provider: p, Owner: p, Status: "running"},
		api.JobLeasePath(4): api.JobLeaseView{ID: 4, OrderID: 1, Provider: p, Owner: p, Status: "done", ResultHash: pid[:]},
		api.JobLeasePath(5): api.JobLeaseView{ID: 5, OrderID: 1, Provider: p, Owner: p, Status: "done", ResultHash: lid[:]},
		api.JobOrderPath(1): api.JobOrderView{ID: 1, Owner: p},
		api.JobOrderPath(2): api.JobOrderView{ID: 2, Owner: p, DatasetID: 3},
		api.ProviderPath(p): api.ProviderView{Address: p, Endpoint: prov.URL},
	}
	srv := httptest.NewServer(NewServer(x, st).Handler())
	defer srv.Close()
	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ct, body := get("/explorer/api/lease/1/loss.svg"); code != 200 || ct != "image/svg+xml" || !strings.Contains(body, "Training loss, lease 1 (order 1)") || !strings.Contains(body, "<svg") {
		t.Fatalf("lease 1's chart: %d %s %.300s", code, ct, body)
	}
	lie = true
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/explorer/api/lease/1/loss.svg", 200, "Training loss, lease 1"}, // cached: drawn once from checked bytes
		{"/explorer/api/lease/5/loss.svg", 502, "the provider sent bytes of ID"},
		{"/explorer/api/lease/2/loss.svg", 404, "compute-to-data run: its results are sealed to the buyer"},
		{"/explorer/api/lease/3/loss.svg", 404, "lease 3 has no results yet (running)"},
		{"/explorer/api/lease/4/loss.svg", 404, "wrote no out/loss.json (not a training job)"},
		{"/explorer/api/lease/9/loss.svg", 404, "lease 9 does not exist"},
		{"/explorer/api/lease/x/loss.svg", 400, `want a number`},
	} {
		if code, _, body := get(c.path); code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("GET %s: %d %.300s, want %d %q", c.path, code, body, c.code, c.want)
		}
	}
	// A refusal is remembered for a while: a visitor asking again does not
	// make the explorer fetch from the provider again.
	lie = false
	if code, _, body := get("/explorer/api/lease/5/loss.svg"); code != 502 || !strings.Contains(body, "the provider sent bytes of ID") {
		t.Errorf("lease 5 again within a minute: %d %.200s, want the remembered 502", code, body)
	}
}
