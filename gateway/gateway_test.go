package gateway

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/agoranet/agora/protocol/inference"
)

func TestNewRefusesNegativeChannelLifetime(t *testing.T) {
	_, err := New(Config{ChainRPC: "tcp://127.0.0.1:1", Listen: "127.0.0.1:0", ChannelBlocks: -5}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "channel lifetime -5 blocks") {
		t.Fatalf("New with ChannelBlocks -5: err = %v; want a channel lifetime error", err)
	}
}

func TestRouteScore(t *testing.T) {
	cases := []struct {
		name          string
		better, worse [5]float64 // priceIn, priceOut, failures, latency s, reputation bps
	}{
		{"cheaper output", [5]float64{100, 200, 0, 0.01, 0}, [5]float64{100, 300, 0, 0.01, 0}},
		{"input counts a quarter", [5]float64{400, 200, 0, 0, 0}, [5]float64{0, 350, 0, 0, 0}},
		{"trusted at 1.4x the price", [5]float64{0, 140, 0, 0, 10_000}, [5]float64{0, 100, 0, 0, 0}},
		{"unknown at 1/1.6 the price", [5]float64{0, 100, 0, 0, 0}, [5]float64{0, 160, 0, 0, 10_000}},
		{"half the failures", [5]float64{0, 100, 0.4, 0, 0}, [5]float64{0, 100, 0.9, 0, 0}},
		{"faster", [5]float64{0, 100, 0, 0.05, 0}, [5]float64{0, 100, 0, 1.5, 0}},
		{"a slow cheap one loses", [5]float64{0, 150, 0, 0.1, 0}, [5]float64{0, 100, 0, 2, 0}},
	}
	score := func(v [5]float64) float64 {
		return routeScore(uint64(v[0]), uint64(v[1]), v[2], v[3], uint64(v[4]))
	}
	for _, c := range cases {
		if b, w := score(c.better), score(c.worse); !(b < w) {
			t.Errorf("%s: score %v, want below %v", c.name, b, w)
		}
	}
	if routeScore(0, 100, 0, 0, 50_000) != routeScore(0, 100, 0, 0, 10_000) {
		t.Error("a reputation above 100 % must count as 100 %")
	}
}

func TestCandidatesOrder(t *testing.T) {
	entry := func(name string, out uint64, rep uint64, failures float64) *providerEntry {
		return &providerEntry{endpoint: name, priceOut: out, reputationBps: rep, models: map[string]int{"m": 2048},
			stats: &stats{failures: failures, failedAt: time.Now(), halfLife: time.Hour}}
	}
	g := &Gateway{providers: []*providerEntry{
		entry("failing-cheap", 10, 10_000, 2),
		entry("unknown", 100, 0, 0),
		entry("trusted", 130, 10_000, 0),
		entry("dear", 400, 0, 0),
		{endpoint: "other-model", priceOut: 1, models: map[string]int{"x": 2048}, stats: &stats{}},
	}}
	var got []string
	for _, p := range g.candidates("m") {
		got = append(got, p.endpoint)
	}
	if want := "trusted unknown dear failing-cheap"; strings.Join(got, " ") != want {
		t.Fatalf("order %v, want %s", got, want)
	}
}

// receiptNext spots the provider's receipt comment at the head of what is
// buffered, whole, and nothing else.
func TestReceiptNext(t *testing.T) {
	for _, c := range []struct {
		buffered string
		want     bool
	}{
		{inference.ReceiptComment + "AAAA\n", true},
		{inference.ReceiptComment, true},
		{inference.ReceiptComment[:len(inference.ReceiptComment)-1], false}, // not yet all there
		{"data: {}\n\n" + inference.ReceiptComment + "AAAA\n", false},
		{": keep-alive\n", false},
		{"", false},
	} {
		br := bufio.NewReader(strings.NewReader(c.buffered))
		br.Peek(len(c.buffered)) // buffer it all
		if got := receiptNext(br); got != c.want {
			t.Errorf("buffered %q: %v, want %v", c.buffered, got, c.want)
		}
	}
}

// TestBound: what a request reserves is bounded by the body's length (the
// prompt) and by max_tokens and the model's registered context (the
// output), at the higher of the provider's current and previous prices.
func TestBound(t *testing.T) {
	p := &providerEntry{priceIn: 1000, priceOut: 2000, prevIn: 3000, prevOut: 1000, models: map[string]int{"m": 4096, "old": 0}}
	for _, c := range []struct {
		model                  string
		body, maxOut           int
		wantOut                int
		wantPrompt, wantOutput int // tokens priced
	}{
		{"m", 100, 50, 50, 116, 50},                        // small: as asked
		{"m", 100, 1_000_000, 4096, 116, 4096},             // a habitual huge max_tokens: the context
		{"m", 1 << 20, 10, 10, 1<<20 + 16, 10},             // a long body: priced as sent (an adapter may take it)
		{"old", 100, 1_000_000, 1_000_000, 116, 1_000_000}, // no context known: as asked
	} {
		cost, out := p.bound(c.model, c.body, c.maxOut)
		if want := inference.Cost(c.wantPrompt, c.wantOutput, 3000, 2000); cost != want || out != c.wantOut {
			t.Errorf("%+v: cost %d out %d, want %d and %d", c, cost, out, want, c.wantOut)
		}
	}
}
