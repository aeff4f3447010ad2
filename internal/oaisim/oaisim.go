// Package oaisim is an OpenAI-compatible completions server that behaves
// like a GPU inference server for tests and benchmarks: it runs a GGUF
// model with the native engine but adds Gaussian noise to every logit, so
// its log-probs and samples, like a real GPU's, are close to but not
// bit-identical with a reference re-execution. It reports log-probs in the
// format llama.cpp's server uses (choices[].logprobs.content with bytes and
// top_logprobs).
//
// A Writer model turns it into a prefill attacker: the cheap writer samples
// every token and the served model only scores them, so the reported
// log-probs are the served model's but the text is not its work.
package oaisim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"

	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
)

// Options shape the simulated backend.
type Options struct {
	Noise  float64       // σ of the Gaussian noise added to each logit (0: exact)
	Writer *native.Model // if set, this model writes the tokens (a prefill attack)
}

// Server serves one model under a name.
type Server struct {
	name  string
	model *native.Model
	tok   *tokenizer.Tokenizer
	opts  Options
	mu    sync.Mutex // one generation at a time, like a single GPU slot
}

// New serves m (with its tokenizer) as name.
func New(name string, m *native.Model, opts Options) (*Server, error) {
	tok, err := tokenizer.FromGGUF(m.File)
	if err != nil {
		return nil, err
	}
	return &Server{name: name, model: m, tok: tok, opts: opts}, nil
}

// Handler serves GET /v1/models and POST /v1/completions.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"object": "list", "data": []any{map[string]any{"id": s.name, "object": "model"}}})
	})
	mux.HandleFunc("POST /v1/completions", s.completions)
	return mux
}

// Request is the completions request this server understands. Prompt is a
// string or an array of token ids.
type Request struct {
	Model       string          `json:"model"`
	Prompt      json.RawMessage `json:"prompt"`
	MaxTokens   int             `json:"max_tokens"`
	Temperature *float64        `json:"temperature"`
	TopP        float64         `json:"top_p"`
	TopK        int             `json:"top_k"`
	MinP        float64         `json:"min_p"`
	RepeatPen   float64         `json:"repeat_penalty"`
	FreqPen     float64         `json:"frequency_penalty"`
	PresPen     float64         `json:"presence_penalty"`
	Seed        uint64          `json:"seed"`
	Stop        []string        `json:"stop"`
	Logprobs    int             `json:"logprobs"`
	Stream      bool            `json:"stream"`
}

// TokenLogprob is one output token in the response's logprobs.content.
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float32      `json:"logprob"`
	Bytes       []int        `json:"bytes"`
	TopLogprobs []AltLogprob `json:"top_logprobs"`
}

// AltLogprob is an alternative token.
type AltLogprob struct {
	Token   string  `json:"token"`
	Logprob float32 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "malformed JSON: " + err.Error(), "type": "invalid_request_error"}})
		return
	}
	if req.Model != s.name {
		writeJSON(w, 404, map[string]any{"error": map[string]any{"message": "unknown model " + req.Model, "type": "invalid_request_error"}})
		return
	}
	var ids []int
	var text string
	if err := json.Unmarshal(req.Prompt, &ids); err != nil {
		if err := json.Unmarshal(req.Prompt, &text); err != nil {
			writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "prompt must be a string or an array of token ids", "type": "invalid_request_error"}})
			return
		}
		ids = s.tok.Encode(text, s.tok.AddBOS, false)
	}
	for _, id := range ids {
		if id < 0 || id >= s.tok.VocabSize() {
			writeJSON(w, 400, map[string]any{"error": map[string]any{"message": fmt.Sprintf("token id %d out of range", id), "type": "invalid_request_error"}})
			return
		}
	}
	p := native.SampleParams{TopP: req.TopP, TopK: req.TopK, MinP: req.MinP, RepeatPenalty: req.RepeatPen,
		FrequencyPenalty: req.FreqPen, PresencePenalty: req.PresPen, Seed: req.Seed, Temperature: 1}
	if req.Temperature != nil {
		p.Temperature = *req.Temperature
	}
	maxTok := req.MaxTokens
	if maxTok <= 0 {
		maxTok = 16
	}
	if len(ids) == 0 || len(ids)+maxTok > s.model.Config.ContextLen {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"message": "prompt empty or over the context", "type": "invalid_request_error"}})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var fl http.Flusher
	if req.Stream {
		w.Header().Set("Content-Type", "text/event-stream")
		fl, _ = w.(http.Flusher)
	}
	toks, out, finish, err := s.Generate(ids, p, maxTok, req.Stop, req.Logprobs, func(t TokenLogprob, piece string) {
		if req.Stream {
			c := map[string]any{"object": "text_completion", "model": s.name,
				"choices": []any{map[string]any{"index": 0, "text": piece, "logprobs": map[string]any{"content": []TokenLogprob{t}}}}}
			b, _ := json.Marshal(c)
			fmt.Fprintf(w, "data: %s\n\n", b)
			if fl != nil {
				fl.Flush()
			}
		}
	})
	if err != nil {
		writeJSON(w, 500, map[string]any{"error": map[string]any{"message": err.Error(), "type": "server_error"}})
		return
	}
	usage := map[string]int{"prompt_tokens": len(ids), "completion_tokens": len(toks), "total_tokens": len(ids) + len(toks)}
	if req.Stream {
		b, _ := json.Marshal(map[string]any{"object": "text_completion", "model": s.name,
			"choices": []any{map[string]any{"index": 0, "text": "", "finish_reason": finish}}, "usage": usage})
		fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", b)
		return
	}
	writeJSON(w, 200, map[string]any{"object": "text_completion", "model": s.name, "usage": usage,
		"choices": []any{map[string]any{"index": 0, "text": out, "finish_reason": finish, "logprobs": map[string]any{"content": toks}}}})
}

// Generate decodes with noisy logits, as a completions request would, and
// returns the output tokens with their log-probs (and topN alternatives),
// the text (cut at a stop string) and the finish reason. The noise is drawn
// from a generator seeded by the request seed, so a run is repeatable; the
// reported log-probs are those of the (noisy) raw distribution. emit, if
// set, sees each token as it is produced.
func (s *Server) Generate(prompt []int, p native.SampleParams, maxTok int, stops []string, topN int, emit func(TokenLogprob, string)) ([]TokenLogprob, string, string, error) {
	served := s.model.NewSession()
	logits, err := served.Forward(prompt, false)
	if err != nil {
		return nil, "", "", err
	}
	last := logits[0]
	var writer *native.Session
	var wlast []float32
	if s.opts.Writer != nil {
		writer = s.opts.Writer.NewSession()
		wl, err := writer.Forward(prompt, false)
		if err != nil {
			return nil, "", "", err
		}
		wlast = wl[0]
	}
	noise := native.NewRNG(p.Seed ^ 0x6e6f697365) // "noise"
	sampler := native.NewSampler(p)
	history := append([]int(nil), prompt...)
	var toks []TokenLogprob
	var text strings.Builder
	finish := "length"
	for i := 0; i < maxTok; i++ {
		noisy := s.perturb(last, noise)
		draw := noisy
		if writer != nil {
			draw = s.perturb(wlast, noise)
		}
		id := sampler.Sample(draw, history)
		if id == s.tok.EOS {
			finish = "stop"
			break
		}
		lp := native.LogSoftmax(noisy)
		piece, shown := s.tok.Piece(id), s.tok.Piece(id)
		if shown == "" {
			shown = s.tok.Tokens[id] // a control token, printed as its text
		}
		t := TokenLogprob{Token: shown, Logprob: lp[id], Bytes: byteInts(shown), TopLogprobs: []AltLogprob{}}
		for _, a := range topN1(lp, topN) {
			ap := s.tok.Piece(a)
			if ap == "" {
				ap = s.tok.Tokens[a] // a control token, printed as its text
			}
			t.TopLogprobs = append(t.TopLogprobs, AltLogprob{Token: ap, Logprob: lp[a], Bytes: byteInts(ap)})
		}
		toks = append(toks, t)
		history = append(history, id)
		text.WriteString(piece)
		if emit != nil {
			emit(t, piece)
		}
		if cut := firstStop(text.String(), stops); cut >= 0 {
			return toks, text.String()[:cut], "stop", nil
		}
		if i+1 == maxTok {
			break
		}
		out, err := served.Forward([]int{id}, false)
		if err != nil {
			return nil, "", "", err
		}
		last = out[0]
		if writer != nil {
			wo, err := writer.Forward([]int{id}, false)
			if err != nil {
				return nil, "", "", err
			}
			wlast = wo[0]
		}
	}
	return toks, text.String(), finish, nil
}

func (s *Server) perturb(logits []float32, rng *native.RNG) []float32 {
	out := append([]float32(nil), logits...)
	if s.opts.Noise <= 0 {
		return out
	}
	for i := range out {
		// Box–Muller from two uniform draws.
		u1, u2 := rng.Float64(), rng.Float64()
		g := math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
		out[i] += float32(s.opts.Noise * g)
	}
	return out
}

// topN1 returns the n most likely ids, best first (lower id on ties).
func topN1(lp []float32, n int) []int {
	n = min(n, 20, len(lp))
	var out []int
	for len(out) < n {
		best := -1
		for i, v := range lp {
			if !contains(out, i) && (best < 0 || v > lp[best]) {
				best = i
			}
		}
		out = append(out, best)
	}
	return out
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func firstStop(text string, stops []string) int {
	best := -1
	for _, s := range stops {
		if i := strings.Index(text, s); s != "" && i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	return best
}

// byteInts is the OpenAI "bytes" field: a token's bytes as integers, exact
// even when the token is not valid UTF-8 on its own.
func byteInts(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i])
	}
	return out
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
