package verify

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"

	"github.com/agoranet/agora/engine/native"
	"github.com/agoranet/agora/engine/tokenizer"
	"github.com/agoranet/agora/protocol/inference"
)

// Reported is the transcript of a request served by a backend that cannot
// be reproduced bit for bit (an OpenAI-compatible server on a GPU): the
// prompt's token ids, the output as the tokens' bytes, and the log-probs the
// backend reported for each output token and for its top alternatives, all
// of the model's raw distribution (temperature 1, no penalties).
type Reported struct {
	PromptIDs []int
	Pieces    [][]byte
	Logprobs  []float32
	Top       [][]inference.Alt // the wire format of protocol/inference
	Params    native.SampleParams
	// Text is the response's text: the decoded output, possibly cut short
	// by a stop string (compared ignoring bytes that are not valid UTF-8).
	Text []byte
}

// Tolerances bound how far an honest backend's reported numbers may stray
// from the reference re-execution. DefaultTolerances are calibrated with
// `agora bench tolerance` (BENCHMARKS.md).
type Tolerances struct {
	// Token is the largest |reported − reference| log-prob, in nats, for the
	// sampled token or a reported alternative at one position.
	Token float64
	// OutlierFraction is the fraction of positions allowed beyond Token (or
	// beyond Slack outside the sampler's support); floor(fraction × tokens).
	OutlierFraction float64
	// Mean is the largest mean |reported − reference| over all compared
	// log-probs of a transcript.
	Mean float64
	// Overlap is the smallest mean fraction of the reported top-k tokens that
	// are in the reference top-k.
	Overlap float64
	// Slack bounds the noise, in penalised logits, that may have carried a
	// sampled token across the edge of the reference sampler's support
	// (top-k, top-p, min-p, greedy argmax): a token outside it is accepted
	// if moving every logit by at most Slack/2 would bring it in.
	Slack float64
	// FalseAlarm bounds the plausibility test's error: a transcript is
	// refused only if honest sampling would fall as short as it did with
	// probability at most FalseAlarm (a Chernoff bound computed from the
	// sampling distributions themselves, valid at any length).
	FalseAlarm float64
	// MinTestTokens is how many sampled (non-greedy) positions the
	// plausibility test needs before it judges.
	MinTestTokens int
}

// DefaultTolerances are the thresholds validators apply.
func DefaultTolerances() Tolerances {
	return Tolerances{Token: 0.5, OutlierFraction: 0.02, Mean: 0.1, Overlap: 0.6, Slack: 0.5, FalseAlarm: 1e-9, MinTestTokens: 4}
}

// ToleranceReport is what a tolerance check measured.
type ToleranceReport struct {
	Tokens     int     `json:"tokens"`
	MaxDiff    float64 `json:"max_diff"`    // largest |Δ log-prob|
	MeanDiff   float64 `json:"mean_diff"`   // mean |Δ log-prob| over every compared value
	Outliers   int     `json:"outliers"`    // positions beyond Token or outside the support beyond Slack
	Overlap    float64 `json:"overlap"`     // mean top-k agreement (1 when no alternatives)
	OffSupport int     `json:"off_support"` // sampled tokens outside the reference support (within Slack or not)
	Z          float64 `json:"z"`           // standardised plausibility statistic (0 when not applied), for reading
	Log10P     float64 `json:"log10_p"`     // log10 of the bound on an honest draw falling this short (0 when not applied)
	TestTokens int     `json:"test_tokens"` // positions the plausibility test used
}

// Vocab maps a token's bytes to the ids that decode to them (several when,
// e.g., a byte-fallback token and a text token both stand for "a"). Tokens
// that decode to nothing (control tokens such as "</s>") are indexed by
// their literal text, as servers print them among alternatives.
type Vocab struct {
	tok     *tokenizer.Tokenizer
	byPiece map[string][]int
}

// NewVocab indexes a tokenizer's pieces.
func NewVocab(tok *tokenizer.Tokenizer) *Vocab {
	v := &Vocab{tok: tok, byPiece: map[string][]int{}}
	for id := 0; id < tok.VocabSize(); id++ {
		p := tok.Piece(id)
		if p == "" {
			p = tok.Tokens[id]
		}
		if p != "" {
			v.byPiece[p] = append(v.byPiece[p], id)
		}
	}
	return v
}

// CheckTolerance re-executes a reported transcript with one teacher-forced
// pass over prompt + output and compares it with what the backend reported:
//
//   - every reported log-prob (sampled token and alternatives) within
//     Token of the reference, but for OutlierFraction of the positions, and
//     within Mean on average;
//   - the reported top-k mostly the reference top-k (Overlap);
//   - each sampled token inside the reference sampler's support, or near
//     enough to its cut that Slack of noise explains it (an outlier
//     otherwise);
//   - the plausibility test: under honest sampling the shortfall
//     Eᵢ − log q(xᵢ) has mean zero at every position (q the sampling
//     distribution after penalties, temperature and truncation, Eᵢ its
//     Σ q log q). Tokens written by another model and merely scored by the
//     claimed one (a prefill attack) are systematically less likely under
//     it; the summed shortfall is refused when a Chernoff bound computed
//     from the q themselves puts an honest draw that short below
//     FalseAlarm — exact at any length, no normal approximation.
//
// Tokens are given as bytes; where several ids share those bytes, the one
// whose reference log-prob is closest to the reported one is taken. The
// error describes the first rule broken; the report holds the measurements
// either way.
func CheckTolerance(m *native.Model, v *Vocab, t Reported, tol Tolerances) (ToleranceReport, error) {
	n := len(t.Pieces)
	rep := ToleranceReport{Tokens: n, Overlap: 1}
	if err := v.CheckShape(t); err != nil {
		return rep, err
	}
	if len(t.PromptIDs)+n > m.Config.ContextLen {
		return rep, fmt.Errorf("transcript of %d tokens exceeds the model's context %d", len(t.PromptIDs)+n, m.Config.ContextLen)
	}
	if n == 0 {
		return rep, nil
	}
	cands := make([][]int, n)
	for i, p := range t.Pieces {
		cands[i] = v.byPiece[string(p)]
	}

	var (
		ids                     = make([]int, n)
		sumDiff                 float64
		diffs, overlapPositions int
		overlapSum              float64
		sumX, sumV              float64
		mgf                     [len(chernoffLambdas)]float64 // Σ log E[exp(λ·(E − log q(x)))] per λ
		history                 = append([]int(nil), t.PromptIDs...)
	)
	// position scores the reference logits that predicted output token pos.
	position := func(pos int, logits []float32) error {
		lp := native.LogSoftmax(logits)
		if len(cands[pos]) > 1 { // resolve shared bytes by the reported log-prob
			best := cands[pos][0]
			for _, c := range cands[pos][1:] {
				if math.Abs(float64(lp[c]-t.Logprobs[pos])) < math.Abs(float64(lp[best]-t.Logprobs[pos])) {
					best = c
				}
			}
			ids[pos] = best
		}
		id := ids[pos]
		worst := math.Abs(float64(lp[id] - t.Logprobs[pos]))
		sumDiff += worst
		diffs++
		if k := len(t.Top[pos]); k > 0 {
			ref := topIDs(lp, k)
			hits := 0
			for _, a := range t.Top[pos] {
				cs := v.byPiece[string(a.Token)]
				if len(cs) == 0 {
					return fmt.Errorf("token %d: alternative %q is not in the model's vocabulary", pos, a.Token)
				}
				c := cs[0]
				for _, x := range cs[1:] {
					if math.Abs(float64(lp[x]-a.Logprob)) < math.Abs(float64(lp[c]-a.Logprob)) {
						c = x
					}
				}
				d := math.Abs(float64(lp[c] - a.Logprob))
				worst = math.Max(worst, d)
				sumDiff += d
				diffs++
				if ref[c] {
					hits++
				}
			}
			overlapSum += float64(hits) / float64(k)
			overlapPositions++
		}
		rep.MaxDiff = math.Max(rep.MaxDiff, worst)
		outlier := worst > tol.Token

		dist := native.Distribution(t.Params, logits, history)
		q := -1.0
		for _, tp := range dist {
			if tp.ID == id {
				q = tp.Prob
			}
		}
		if q <= 0 {
			rep.OffSupport++
			if !nearSupport(t.Params, native.Penalized(t.Params, logits, history), id, tol.Slack) {
				outlier = true
			}
		} else if len(dist) > 1 {
			var e, e2 float64
			for _, tp := range dist {
				if tp.Prob > 0 {
					l := math.Log(tp.Prob)
					e += tp.Prob * l
					e2 += tp.Prob * l * l
				}
			}
			sumX += math.Log(q) - e
			sumV += math.Max(e2-e*e, 0)
			for k, lam := range chernoffLambdas {
				var s float64 // Σ q^(1−λ)
				for _, tp := range dist {
					if tp.Prob > 0 {
						s += math.Exp((1 - lam) * math.Log(tp.Prob))
					}
				}
				mgf[k] += lam*e + math.Log(s)
			}
			rep.TestTokens++
		}
		if outlier {
			rep.Outliers++
		}
		history = append(history, id)
		return nil
	}

	// Teacher forcing in as few batches as possible: the prompt but its last
	// token without logits, then runs of output tokens whose id is certain;
	// a token with shared bytes ends a run, because its id (resolved from
	// the logits that predict it) is the input of the next position.
	s := m.NewSession()
	last := len(t.PromptIDs) - 1
	if last > 0 {
		if _, err := s.Forward(t.PromptIDs[:last], false); err != nil {
			return rep, fmt.Errorf("re-execution: %w", err)
		}
	}
	pending := t.PromptIDs[last]
	for i := 0; i < n; {
		j := i
		for j < n && len(cands[j]) == 1 {
			ids[j] = cands[j][0]
			j++
		}
		end := min(j, n-1) // the last position this batch predicts
		batch := append([]int{pending}, ids[i:end]...)
		logits, err := s.Forward(batch, true)
		if err != nil {
			return rep, fmt.Errorf("re-execution: %w", err)
		}
		for k := range batch {
			if err := position(i+k, logits[k]); err != nil {
				return rep, err
			}
		}
		pending, i = ids[end], end+1
	}

	rep.MeanDiff = sumDiff / float64(diffs)
	if overlapPositions > 0 {
		rep.Overlap = overlapSum / float64(overlapPositions)
	}
	if sumV > 0 {
		rep.Z = sumX / math.Sqrt(sumV)
	}
	if rep.TestTokens > 0 {
		// Chernoff: P(Σ(E − X) ≥ t) ≤ min over λ of exp(−λt + Σ log E[exp(λ(E − X))]),
		// with t = −sumX the observed shortfall; exact per position from q.
		logP := 0.0
		for k, lam := range chernoffLambdas {
			logP = math.Min(logP, lam*sumX+mgf[k])
		}
		rep.Log10P = logP / math.Ln10
	}
	allowed := int(tol.OutlierFraction * float64(n))
	switch {
	case rep.Outliers > allowed:
		return rep, fmt.Errorf("reported log-probs or tokens differ from the model's at %d of %d positions (largest difference %.3f nats; %d tokens outside the sampler's support)", rep.Outliers, n, rep.MaxDiff, rep.OffSupport)
	case rep.MeanDiff > tol.Mean:
		return rep, fmt.Errorf("reported log-probs differ from the model's by %.3f nats on average (tolerance %.3f)", rep.MeanDiff, tol.Mean)
	case rep.Overlap < tol.Overlap:
		return rep, fmt.Errorf("reported top alternatives agree with the model's on %.0f%% (tolerance %.0f%%)", 100*rep.Overlap, 100*tol.Overlap)
	case rep.TestTokens >= tol.MinTestTokens && rep.Log10P < math.Log10(tol.FalseAlarm):
		return rep, fmt.Errorf("the output is an implausible draw from the model at these sampling settings (an honest draw falls this short with probability below 1e%.0f; z = %.1f over %d tokens): another model wrote it", math.Ceil(rep.Log10P), rep.Z, rep.TestTokens)
	}
	return rep, nil
}

// CheckShape checks what can be checked of a transcript without the model:
// a prompt of vocabulary ids, one log-prob and one (at most 20-long) list
// of alternatives per output token, every log-prob a finite number ≤ 0,
// every token and alternative a token of the vocabulary, and the text a
// prefix of the decoded tokens (ignoring bytes that are not valid UTF-8).
// Providers run it on what their backend returned before they sign a
// receipt for it, so a backend that reports something unauditable fails the
// request instead of getting its provider slashed.
func (v *Vocab) CheckShape(t Reported) error {
	n := len(t.Pieces)
	switch {
	case len(t.PromptIDs) == 0:
		return errors.New("transcript has no prompt")
	case len(t.Logprobs) != n || len(t.Top) != n:
		return fmt.Errorf("transcript has %d tokens, %d log-probs and %d top lists", n, len(t.Logprobs), len(t.Top))
	}
	for _, id := range t.PromptIDs {
		if id < 0 || id >= v.tok.VocabSize() {
			return fmt.Errorf("prompt token id %d outside the vocabulary", id)
		}
	}
	var decoded []byte
	for i, p := range t.Pieces {
		cands := v.byPiece[string(p)]
		if len(cands) == 0 {
			return fmt.Errorf("token %d (%q) is not in the model's vocabulary", i, p)
		}
		decoded = append(decoded, v.tok.Piece(cands[0])...) // ids sharing bytes decode alike
		if !finiteLogprob(t.Logprobs[i]) {
			return fmt.Errorf("token %d: log-prob %v is not a log-probability", i, t.Logprobs[i])
		}
		if len(t.Top[i]) > 20 {
			return fmt.Errorf("token %d: %d alternatives (at most 20)", i, len(t.Top[i]))
		}
		for _, a := range t.Top[i] {
			if !finiteLogprob(a.Logprob) {
				return fmt.Errorf("token %d: alternative log-prob %v is not a log-probability", i, a.Logprob)
			}
			if len(v.byPiece[string(a.Token)]) == 0 {
				return fmt.Errorf("token %d: alternative %q is not in the model's vocabulary", i, a.Token)
			}
		}
	}
	if !bytes.HasPrefix(validRunes(decoded), validRunes(t.Text)) {
		return errors.New("the response text is not the decoded output tokens")
	}
	return nil
}

// validRunes drops invalid UTF-8 and U+FFFD: a token may end inside a
// character, and servers replace such bytes in JSON text in different ways,
// so text and tokens are compared on the characters both carry intact.
func validRunes(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r != utf8.RuneError {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}

// nearSupport reports whether id would be in the sampler's support if every
// (penalised) logit in pl moved by at most slack/2: within slack of the
// argmax (greedy), of the k-th best (top-k) and of the min-p threshold, and
// with the least tempered mass ranked above it such moves allow below
// top-p.
func nearSupport(p native.SampleParams, pl []float32, id int, slack float64) bool {
	best := 0
	for i, v := range pl {
		if v > pl[best] {
			best = i
		}
	}
	x, maxl := float64(pl[id]), float64(pl[best])
	if p.Temperature <= 0 {
		return maxl-x <= slack
	}
	in := func(int) bool { return true } // the candidates top-k leaves
	if p.TopK > 0 && p.TopK < len(pl) {
		kth := float64(pl[kthLargest(pl, p.TopK)])
		if x < kth-slack {
			return false
		}
		in = func(j int) bool { return float64(pl[j]) >= kth }
	}
	if p.MinP > 0 && x < maxl+p.Temperature*math.Log(p.MinP)-slack {
		return false
	}
	if p.TopP > 0 && p.TopP < 1 {
		// Shrinking the weights ranked above id by e^(−slack/2T) and growing
		// the rest by e^(slack/2T) gives the least mass above it: A/(A + B·e^(slack/T)).
		var above, rest float64
		for j, v := range pl {
			if !in(j) {
				continue
			}
			w := math.Exp((float64(v) - maxl) / p.Temperature)
			if v > pl[id] {
				above += w
			} else {
				rest += w
			}
		}
		if above/(above+rest*math.Exp(slack/p.Temperature)) >= p.TopP {
			return false
		}
	}
	return true
}

// kthLargest is the id of the k-th largest value (1-based).
func kthLargest(v []float32, k int) int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return v[idx[a]] > v[idx[b]] || (v[idx[a]] == v[idx[b]] && idx[a] < idx[b]) })
	return idx[k-1]
}

// chernoffLambdas are the λ the plausibility test's Chernoff bound is
// minimised over (λ < 1 keeps every moment finite).
var chernoffLambdas = [...]float64{0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}

func finiteLogprob(x float32) bool {
	return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) && x <= 0
}

// topIDs is the set of the k most likely ids (lower id first on ties),
// kept in a small sorted slice: O(V) for the usual k ≤ 20.
func topIDs(lp []float32, k int) map[int]bool {
	k = min(k, len(lp))
	best := make([]int, 0, k+1)
	better := func(a, b int) bool { return lp[a] > lp[b] || (lp[a] == lp[b] && a < b) }
	for id := range lp {
		if len(best) == k && !better(id, best[k-1]) {
			continue
		}
		at := sort.Search(len(best), func(i int) bool { return better(id, best[i]) })
		best = append(best, 0)
		copy(best[at+1:], best[at:])
		best[at] = id
		if len(best) > k {
			best = best[:k]
		}
	}
	out := make(map[int]bool, k)
	for _, id := range best {
		out[id] = true
	}
	return out
}
