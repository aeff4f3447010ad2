package inference

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestCost(t *testing.T) {
	cases := []struct {
		p, c    int
		in, out uint64
		want    uint64
	}{
		{0, 0, 100, 200, 0},
		{1, 0, 1, 1, 1},          // rounds up
		{1000, 1000, 10, 20, 30}, // exact
		{1500, 10, 10, 20, 16},   // 15 + 0.2 → 16
		{math.MaxInt32, math.MaxInt32, math.MaxUint64, 1, math.MaxUint64}, // saturates
		{1, 0, math.MaxUint64 - 998, 0, math.MaxUint64},                   // rounding up would overflow
	}
	for _, c := range cases {
		if got := Cost(c.p, c.c, c.in, c.out); got != c.want {
			t.Errorf("Cost(%d, %d, %d, %d) = %d, want %d", c.p, c.c, c.in, c.out, got, c.want)
		}
	}
}

// TestPathsReachRoutes serves the routes on a ServeMux and checks that each
// path builder reaches its route with the values it was built from, so the
// client side (gateway, validator, explorer) and the provider cannot drift.
func TestPathsReachRoutes(t *testing.T) {
	mux := http.NewServeMux()
	got := map[string]string{}
	for _, route := range []string{ProofRoute, RequestReceiptRoute, OpeningsRoute, OpeningRoute} {
		mux.HandleFunc(route, func(w http.ResponseWriter, r *http.Request) {
			got = map[string]string{"route": route, "id": r.PathValue("id"), "epoch": r.PathValue("epoch"), "index": r.PathValue("index")}
		})
	}
	id := "00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff"
	for _, c := range []struct {
		path, want string
		values     map[string]string
	}{
		{ProofPath(id), "/v1/receipts/" + id + "/proof", map[string]string{"route": ProofRoute, "id": id, "epoch": "", "index": ""}},
		{RequestReceiptPath("0123456789abcdef0123456789abcdef"), "/v1/requests/0123456789abcdef0123456789abcdef/receipt", map[string]string{"route": RequestReceiptRoute, "id": "0123456789abcdef0123456789abcdef", "epoch": "", "index": ""}},
		{OpeningsPath(42), "/v1/openings/42", map[string]string{"route": OpeningsRoute, "id": "", "epoch": "42", "index": ""}},
		{OpeningPath(18446744073709551615, 3), "/v1/openings/18446744073709551615/3", map[string]string{"route": OpeningRoute, "id": "", "epoch": "18446744073709551615", "index": "3"}},
	} {
		if c.path != c.want {
			t.Errorf("path %q, want %q", c.path, c.want)
		}
		got = nil
		mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, c.path, nil))
		for k, v := range c.values {
			if got[k] != v {
				t.Errorf("GET %s: %s = %q, want %q (matched %v)", c.path, k, got[k], v, got)
			}
		}
	}
}

// TestTranscriptJSON pins the transcript's field names: validators decode
// what providers of other versions encode.
func TestTranscriptJSON(t *testing.T) {
	tr := Transcript{Model: "m", PromptIDs: []int{1}, OutputIDs: []int{2}, Logprobs: []float32{-0.5}, Temperature: 0.7, TopP: 0.9, TopK: 40, MinP: 0.05,
		RepeatPen: 1.1, FreqPen: 0.2, PresPen: 0.3, Stop: []string{"\n"}, Seed: 9, MaxTokens: 16, Text: []byte{0xff}, Cancelled: true,
		Verify: VerifyTolerance, Pieces: [][]byte{{'a'}}, Top: [][]Alt{{{Token: []byte("b"), Logprob: -1.25}}}}
	b, err := json.Marshal(tr)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"model":"m","prompt_ids":[1],"output_ids":[2],"logprobs":[-0.5],"temperature":0.7,"top_p":0.9,"top_k":40,"min_p":0.05,` +
		`"repeat_penalty":1.1,"frequency_penalty":0.2,"presence_penalty":0.3,"stop":["\n"],"seed":9,"max_tokens":16,"text":"/w==","cancelled":true,` +
		`"verify":"tolerance","pieces":["YQ=="],"top":[[{"token":"Yg==","logprob":-1.25}]]}`
	if string(b) != want {
		t.Fatalf("transcript JSON\n got %s\nwant %s", b, want)
	}
	// the exact path leaves the tolerance fields out
	b, _ = json.Marshal(Transcript{Model: "m", Verify: VerifyExact})
	if want := `{"model":"m","prompt_ids":null,"output_ids":null,"logprobs":null,"temperature":0,"top_p":0,"top_k":0,"min_p":0,"seed":0,"max_tokens":0,"text":null}`; string(b) != want {
		t.Fatalf("exact transcript JSON\n got %s\nwant %s", b, want)
	}
}
