package train

import "math"

// Bigram is the baseline a trained model is compared with: a bigram model
// with Witten–Bell interpolation toward an add-one unigram,
// P(b|a) = (c(a,b) + n(a)·P(b)) / (c(a) + n(a)), n(a) the number of
// distinct tokens seen after a, P(b) = (c(b) + 1) / (N + V).
type Bigram struct {
	V     int
	uni   []int
	total int
	pair  map[[2]int]int
	after []int // c(a) as a context
	types []int // n(a)
}

// NewBigram counts the bigrams of tokens (ids below V).
func NewBigram(tokens []int, V int) *Bigram {
	b := &Bigram{V: V, uni: make([]int, V), pair: map[[2]int]int{}, after: make([]int, V), types: make([]int, V)}
	for i, t := range tokens {
		b.uni[t]++
		b.total++
		if i == 0 {
			continue
		}
		k := [2]int{tokens[i-1], t}
		if b.pair[k] == 0 {
			b.types[k[0]]++
		}
		b.pair[k]++
		b.after[k[0]]++
	}
	return b
}

// Prob is P(next | prev).
func (b *Bigram) Prob(prev, next int) float64 {
	pu := float64(b.uni[next]+1) / float64(b.total+b.V)
	n := float64(b.types[prev])
	if b.after[prev] == 0 {
		return pu
	}
	return (float64(b.pair[[2]int{prev, next}]) + n*pu) / (float64(b.after[prev]) + n)
}

// Loss is the mean negative log-likelihood (nats) of each target after
// its predecessor, over the targets of d's windows [0, windows) — the
// tokens a model's Eval predicts over the same windows.
func (b *Bigram) Loss(d *Data, windows int) float64 {
	var sum float64
	n := 0
	for w := 0; w < min(windows, d.Windows()); w++ {
		s := d.tokens[w*d.T : w*d.T+d.T+1]
		for i := 1; i < len(s); i++ {
			sum -= math.Log(b.Prob(s[i-1], s[i]))
			n++
		}
	}
	return sum / float64(max(n, 1))
}
