package native

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/agoranet/agora/engine/tokenizer"
)

// SampleParams control decoding. The zero value is greedy decoding.
type SampleParams struct {
	Temperature      float64 // <= 0: greedy (argmax, lowest id on ties)
	TopK             int     // 0: off
	TopP             float64 // 0 or 1: off
	MinP             float64 // 0: off
	RepeatPenalty    float64 // 0 or 1: off (llama.cpp rule: divide positive logits, multiply negative)
	RepeatLastN      int     // window for penalties (0: 64)
	FrequencyPenalty float64
	PresencePenalty  float64
	Seed             uint64
	MaxTokens        int
	Stop             []string
	TopLogprobs      int // alternatives to report per token (max 20)
}

// Alt is an alternative token with its log-probability.
type Alt struct {
	ID      int     `json:"id"`
	Text    string  `json:"text"`
	Logprob float32 `json:"logprob"`
}

// TokenResult is one generated token. Logprob is log-softmax of the model's
// raw logits (before temperature and penalties) at the chosen token.
type TokenResult struct {
	ID      int     `json:"id"`
	Text    string  `json:"text"`
	Logprob float32 `json:"logprob"`
	Top     []Alt   `json:"top_logprobs,omitempty"`
}

// Result is a finished generation.
type Result struct {
	PromptTokens  []int         `json:"prompt_tokens"`
	Tokens        []TokenResult `json:"tokens"`
	Text          string        `json:"text"`
	FinishReason  string        `json:"finish_reason"` // stop, length
	PromptSeconds float64       `json:"prompt_seconds"`
	DecodeSeconds float64       `json:"decode_seconds"`
}

// PromptTokensPerSecond is the prefill speed.
func (r *Result) PromptTokensPerSecond() float64 {
	return float64(len(r.PromptTokens)) / math.Max(r.PromptSeconds, 1e-9)
}

// DecodeTokensPerSecond is the decode speed (tokens after the first).
func (r *Result) DecodeTokensPerSecond() float64 {
	if len(r.Tokens) < 2 {
		return 0
	}
	return float64(len(r.Tokens)-1) / math.Max(r.DecodeSeconds, 1e-9)
}

// LogSoftmax returns log p(id) for every id of logits, computed in a fixed
// order (float32 exp, float64 sum in index order).
func LogSoftmax(logits []float32) []float32 {
	maxv := float32(math.Inf(-1))
	for _, l := range logits {
		if l > maxv {
			maxv = l
		}
	}
	var sum float64
	for _, l := range logits {
		sum += float64(expf(l - maxv))
	}
	lse := maxv + float32(math.Log(sum))
	out := make([]float32, len(logits))
	for i, l := range logits {
		out[i] = l - lse
	}
	return out
}

func topAlts(tok *tokenizer.Tokenizer, lp []float32, n int) []Alt {
	if n <= 0 {
		return nil
	}
	n = min(n, 20, len(lp))
	idx := make([]int, len(lp))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return lp[idx[a]] > lp[idx[b]] })
	out := make([]Alt, n)
	for i := 0; i < n; i++ {
		out[i] = Alt{ID: idx[i], Logprob: lp[idx[i]]}
		if tok != nil {
			out[i].Text = tok.Piece(idx[i])
		}
	}
	return out
}

// Sampler picks tokens from logits with SampleParams and its own RNG.
type Sampler struct {
	p   SampleParams
	rng *RNG
}

// NewSampler returns a sampler seeded with p.Seed.
func NewSampler(p SampleParams) *Sampler { return &Sampler{p: p, rng: NewRNG(p.Seed)} }

// Sample chooses the next token given the logits and the tokens so far.
// cand is a sampling candidate: a token id and its scaled logit.
type cand struct {
	id int
	l  float32
}

// before is the candidates' order: higher logit first, lower id on ties.
func (c cand) before(o cand) bool {
	if c.l != o.l {
		return c.l > o.l
	}
	return c.id < o.id
}

// topK returns the k best candidates (in no particular order), keeping a
// min-heap whose root is the worst of the best k seen so far.
func topK(cs []cand, k int) []cand {
	h := append([]cand(nil), cs[:k]...)
	down := func(i int) {
		for {
			w := i
			if c := 2*i + 1; c < k && h[w].before(h[c]) {
				w = c
			}
			if c := 2*i + 2; c < k && h[w].before(h[c]) {
				w = c
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for i := k/2 - 1; i >= 0; i-- {
		down(i)
	}
	for _, c := range cs[k:] {
		if c.before(h[0]) {
			h[0] = c
			down(0)
		}
	}
	return h
}

func (s *Sampler) Sample(logits []float32, history []int) int {
	cands, probs, total := support(s.p, logits, history)
	if s.p.Temperature <= 0 {
		return cands[0].id // greedy draws no random number
	}
	u := s.rng.Float64() * total
	var cum float64
	for i := range cands {
		cum += probs[i]
		if u < cum {
			return cands[i].id
		}
	}
	return cands[len(cands)-1].id
}

// TokenProb is a token the sampler can draw and its probability.
type TokenProb struct {
	ID   int
	Prob float64
}

// Distribution is the distribution Sample draws from for these logits,
// history and parameters: the tokens left after penalties, temperature and
// the top-k, top-p and min-p cuts, best first, with probabilities summing to
// one. Greedy decoding gives the single argmax with probability one.
func Distribution(p SampleParams, logits []float32, history []int) []TokenProb {
	cands, probs, total := support(p, logits, history)
	out := make([]TokenProb, len(cands))
	for i, c := range cands {
		out[i] = TokenProb{ID: c.id, Prob: probs[i] / total}
	}
	if len(out) == 1 {
		out[0].Prob = 1
	}
	return out
}

// Penalized returns a copy of logits with the repeat, frequency and
// presence penalties applied over the last RepeatLastN tokens of history
// (llama.cpp's rules), in a fixed order.
func Penalized(p SampleParams, logits []float32, history []int) []float32 {
	l := append([]float32(nil), logits...)
	window := p.RepeatLastN
	if window == 0 {
		window = 64
	}
	if (p.RepeatPenalty != 0 && p.RepeatPenalty != 1) || p.FrequencyPenalty != 0 || p.PresencePenalty != 0 {
		counts := map[int]int{}
		for _, t := range history[max(0, len(history)-window):] {
			counts[t]++
		}
		ids := make([]int, 0, len(counts))
		for id := range counts {
			ids = append(ids, id)
		}
		sort.Ints(ids) // fixed order
		for _, id := range ids {
			if p.RepeatPenalty != 0 && p.RepeatPenalty != 1 {
				if l[id] > 0 {
					l[id] = float32(float64(l[id]) / p.RepeatPenalty)
				} else {
					l[id] = float32(float64(l[id]) * p.RepeatPenalty)
				}
			}
			l[id] -= float32(float64(counts[id])*p.FrequencyPenalty + p.PresencePenalty)
		}
	}
	return l
}

// support applies penalties, temperature and the truncations, returning the
// surviving candidates (best first), their unnormalised probabilities and
// the probabilities' sum. Sample and Distribution share it, so what a
// verifier computes is exactly what the sampler draws from.
func support(p SampleParams, logits []float32, history []int) ([]cand, []float64, float64) {
	l := Penalized(p, logits, history)
	if p.Temperature <= 0 {
		best := 0
		for i, v := range l {
			if v > l[best] {
				best = i
			}
		}
		return []cand{{best, l[best]}}, []float64{1}, 1
	}
	cands := make([]cand, len(l))
	for i, v := range l {
		cands[i] = cand{i, float32(float64(v) / p.Temperature)}
	}
	if p.TopK > 0 && p.TopK < len(cands) {
		// The k best under a strict total order are one set whatever the
		// method, so selecting them first gives exactly what sorting the
		// whole vocabulary and truncating gave, in O(V log k).
		cands = topK(cands, p.TopK)
	}
	sort.Slice(cands, func(a, b int) bool { return cands[a].before(cands[b]) })
	probs := make([]float64, len(cands))
	var sum float64
	for i, c := range cands {
		probs[i] = float64(expf(c.l - cands[0].l))
		sum += probs[i]
	}
	n := len(cands)
	if p.TopP > 0 && p.TopP < 1 {
		var cum float64
		for i := range probs {
			cum += probs[i] / sum
			if cum >= p.TopP {
				n = i + 1
				break
			}
		}
	}
	if p.MinP > 0 {
		for i := 1; i < n; i++ {
			if probs[i] < p.MinP*probs[0] {
				n = i
				break
			}
		}
	}
	var total float64
	for i := 0; i < n; i++ {
		total += probs[i]
	}
	return cands[:n], probs[:n], total
}

// ErrContextFull is returned when the prompt does not fit the context.
var ErrContextFull = errors.New("prompt and max tokens exceed the context length")

// Generate prefills prompt in one batch, then decodes one token at a time.
// onToken, if set, sees each token as it is produced and may stop early by
// returning false.
func (m *Model) Generate(tok *tokenizer.Tokenizer, prompt []int, p SampleParams, onToken func(TokenResult) bool) (*Result, error) {
	if len(prompt) == 0 {
		return nil, errors.New("empty prompt")
	}
	if p.MaxTokens <= 0 {
		p.MaxTokens = 128
	}
	if len(prompt)+p.MaxTokens > m.Config.ContextLen {
		if len(prompt) >= m.Config.ContextLen {
			return nil, fmt.Errorf("%w: %d prompt tokens, context %d", ErrContextFull, len(prompt), m.Config.ContextLen)
		}
		p.MaxTokens = m.Config.ContextLen - len(prompt)
	}
	s := m.NewSession()
	s.Reserve(len(prompt) + p.MaxTokens) // the cache this request can use, no more
	sampler := NewSampler(p)
	res := &Result{PromptTokens: append([]int(nil), prompt...), FinishReason: "length"}
	t0 := time.Now()
	logits, err := s.Forward(prompt, false)
	if err != nil {
		return nil, err
	}
	res.PromptSeconds = time.Since(t0).Seconds()
	history := append([]int(nil), prompt...)
	var text strings.Builder
	t1 := time.Now()
	last := logits[0]
	for i := 0; i < p.MaxTokens; i++ {
		id := sampler.Sample(last, history)
		lp := LogSoftmax(last)
		tr := TokenResult{ID: id, Logprob: lp[id], Top: topAlts(tok, lp, p.TopLogprobs)}
		if tok != nil {
			tr.Text = tok.Piece(id)
		}
		if tok != nil && tok.IsEOG(id) { // EOS, or a turn ender such as <end_of_turn>
			res.FinishReason = "stop"
			break
		}
		res.Tokens = append(res.Tokens, tr)
		history = append(history, id)
		text.WriteString(tr.Text)
		if stop, at := findStop(text.String(), p.Stop); stop {
			res.Text = text.String()[:at]
			res.FinishReason = "stop"
			res.DecodeSeconds = time.Since(t1).Seconds()
			return res, nil
		}
		if onToken != nil && !onToken(tr) {
			res.FinishReason = "stop"
			break
		}
		if i+1 == p.MaxTokens {
			break
		}
		out, err := s.Forward([]int{id}, false)
		if err != nil {
			return nil, err
		}
		last = out[0]
	}
	res.Text = text.String()
	res.DecodeSeconds = time.Since(t1).Seconds()
	return res, nil
}

func findStop(text string, stops []string) (bool, int) {
	best := -1
	for _, s := range stops {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && (best < 0 || i < best) {
			best = i
		}
	}
	return best >= 0, best
}
