package native

import (
	"fmt"
	"math"
	"sync"
)

// Session holds one sequence's KV cache. Not safe for concurrent use.
type Session struct {
	m      *Model
	pos    int         // tokens in the cache
	kCache [][]float32 // per layer: [ContextLen][kvDim]
	vCache [][]float32
}

// NewSession starts an empty sequence.
func (m *Model) NewSession() *Session {
	c := m.Config
	kvDim := c.KVHeads * c.HeadDim
	s := &Session{m: m, kCache: make([][]float32, c.Layers), vCache: make([][]float32, c.Layers)}
	for i := range s.kCache {
		s.kCache[i] = make([]float32, c.ContextLen*kvDim)
		s.vCache[i] = make([]float32, c.ContextLen*kvDim)
	}
	return s
}

// Pos is the number of tokens processed.
func (s *Session) Pos() int { return s.pos }

// Reset empties the cache.
func (s *Session) Reset() { s.pos = 0 }

// Truncate drops cached positions from n on.
func (s *Session) Truncate(n int) {
	if n < s.pos {
		s.pos = n
	}
}

// parallel runs fn over [0,n) split into contiguous chunks across threads.
// Each index is computed by exactly one call, so results do not depend on
// the split.
func parallel(n, threads int, fn func(lo, hi int)) {
	if threads <= 1 || n < 2 {
		fn(0, n)
		return
	}
	threads = min(threads, n)
	var wg sync.WaitGroup
	chunk := (n + threads - 1) / threads
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	wg.Wait()
}

// quantized holds an activation batch and its quantizations (Q8_0/Q8_1 for
// the 32-element block types, with the scales of each group of four tokens
// interleaved for the four-token Q8_0 kernel; Q8_K for the K-quants), made
// on first use, so the matmuls reading the same activations (q, k, v; gate,
// up) quantize once even when their tensors have different types.
type quantized struct {
	x       []float32
	cols, T int
	xq      []q8Row
	xq4     []q8Group
	xk      []q8KRow
	xkd4    [][]float32
}

// prepare makes the activation form w needs.
func (qz *quantized) prepare(w *Matrix, x []float32, T int) {
	qz.x, qz.cols, qz.T = x, w.Cols, T
	switch w.act() {
	case actQ8:
		if qz.xq != nil {
			return
		}
		qz.xq = make([]q8Row, T)
		for t := 0; t < T; t++ {
			quantizeQ8(x[t*w.Cols:(t+1)*w.Cols], &qz.xq[t])
		}
		for t := 0; t+4 <= T; t += 4 {
			qz.xq4 = append(qz.xq4, interleaveScales(qz.xq[t:t+4]))
		}
	case actQ8K:
		if qz.xk != nil {
			return
		}
		qz.xk = make([]q8KRow, T)
		for t := 0; t < T; t++ {
			quantizeQ8K(x[t*w.Cols:(t+1)*w.Cols], &qz.xk[t])
		}
		for t := 0; t+4 <= T; t += 4 {
			nb := len(qz.xk[t].d)
			d := make([]float32, 4*nb)
			for b := 0; b < nb; b++ {
				for k := 0; k < 4; k++ {
					d[4*b+k] = qz.xk[t+k].d[b]
				}
			}
			qz.xkd4 = append(qz.xkd4, d)
		}
	}
}

// matmul computes out[t*m.Rows+r] = row r · x[t] for T tokens, splitting
// rows across threads. Tokens go four at a time through each chunk of
// weight rows (read once for the four while hot), the rest one by one;
// every kernel gives a token the same bits in a tile as alone. qz, if
// not nil, shares x's quantization with other matmuls over the same x.
func (m *Model) matmul(w *Matrix, out, x []float32, T int, qz *quantized) {
	if qz == nil {
		qz = &quantized{}
	}
	qz.prepare(w, x, T)
	parallel(w.Rows, m.threads, func(lo, hi int) {
		var buf [4 * rowChunk]float32
		for r0 := lo; r0 < hi; r0 += rowChunk {
			r1 := min(hi, r0+rowChunk)
			t := 0
			for ; t+4 <= T; t += 4 {
				w.dotRows(r0, r1, qz, t, 4, buf[:4*(r1-r0)])
				for r := r0; r < r1; r++ {
					for k := 0; k < 4; k++ {
						out[(t+k)*w.Rows+r] = buf[4*(r-r0)+k]
					}
				}
			}
			for ; t < T; t++ {
				w.dotRows(r0, r1, qz, t, 1, buf[:r1-r0])
				copy(out[t*w.Rows+r0:t*w.Rows+r1], buf[:r1-r0])
			}
		}
	})
}

// rowChunk is how many weight rows a matmul takes per pass over the token
// tiles (their bytes stay in cache while the tiles reuse them).
const rowChunk = 64

// rmsnorm writes x / rms(x) * w; the mean of squares is accumulated in
// float64 in index order.
func rmsnorm(out, x, w []float32, eps float32) {
	var ss float64
	for _, v := range x {
		ss += float64(float32(v * v))
	}
	scale := float32(1 / math.Sqrt(ss/float64(len(x))+float64(eps)))
	for i, v := range x {
		out[i] = float32(v*scale) * w[i]
	}
}

func (m *Model) rope(v []float32, pos, heads int) {
	c := m.Config
	half := c.RopeDims / 2
	cos := m.ropeCos[pos*half : (pos+1)*half]
	sin := m.ropeSin[pos*half : (pos+1)*half]
	for h := 0; h < heads; h++ {
		x := v[h*c.HeadDim : (h+1)*c.HeadDim]
		for i := 0; i < half; i++ {
			var a, b int
			if c.RopeNeoX {
				a, b = i, i+half
			} else {
				a, b = 2*i, 2*i+1
			}
			x0, x1 := x[a], x[b]
			x[a] = float32(x0*cos[i]) - float32(x1*sin[i])
			x[b] = float32(x0*sin[i]) + float32(x1*cos[i])
		}
	}
}

// Forward runs tokens (appended at the session's position) through the model
// and returns logits: for every token if all, else for the last one only.
// Computing T tokens at once gives bit-identical logits to computing them one
// at a time.
func (s *Session) Forward(tokens []int, all bool) ([][]float32, error) {
	m, c := s.m, s.m.Config
	T := len(tokens)
	if T == 0 {
		return nil, fmt.Errorf("no tokens")
	}
	if s.pos+T > c.ContextLen {
		return nil, fmt.Errorf("context full: %d + %d tokens exceed %d", s.pos, T, c.ContextLen)
	}
	for _, tok := range tokens {
		if tok < 0 || tok >= c.Vocab {
			return nil, fmt.Errorf("token %d outside the vocabulary (%d)", tok, c.Vocab)
		}
	}
	dim, kvDim := c.Dim, c.KVHeads*c.HeadDim
	x := make([]float32, T*dim)
	for t, tok := range tokens {
		m.tokEmbd.Row(tok, x[t*dim:(t+1)*dim])
	}
	xb := make([]float32, T*dim)
	q := make([]float32, T*dim)
	k := make([]float32, T*kvDim)
	v := make([]float32, T*kvDim)
	att := make([]float32, T*dim)
	proj := make([]float32, T*dim)
	hb := make([]float32, T*c.FFN)
	hb2 := make([]float32, T*c.FFN)
	scale := float32(1 / math.Sqrt(float64(c.HeadDim)))
	group := c.Heads / c.KVHeads

	for li := range m.layers {
		l := &m.layers[li]
		for t := 0; t < T; t++ {
			rmsnorm(xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], l.attnNorm, c.Eps)
		}
		qx := &quantized{}
		m.matmul(l.wq, q, xb, T, qx)
		m.matmul(l.wk, k, xb, T, qx)
		m.matmul(l.wv, v, xb, T, qx)
		for t := 0; t < T; t++ {
			addBias(q[t*dim:(t+1)*dim], l.bq)
			addBias(k[t*kvDim:(t+1)*kvDim], l.bk)
			addBias(v[t*kvDim:(t+1)*kvDim], l.bv)
			pos := s.pos + t
			m.rope(q[t*dim:(t+1)*dim], pos, c.Heads)
			m.rope(k[t*kvDim:(t+1)*kvDim], pos, c.KVHeads)
			copy(s.kCache[li][pos*kvDim:], k[t*kvDim:(t+1)*kvDim])
			copy(s.vCache[li][pos*kvDim:], v[t*kvDim:(t+1)*kvDim])
		}
		// Attention: one (token, head) pair per work item; each reads the
		// cache for positions 0..pos in order, whatever T is.
		kc, vc := s.kCache[li], s.vCache[li]
		parallel(T*c.Heads, m.threads, func(lo, hi int) {
			scores := make([]float32, s.pos+T)
			for i := lo; i < hi; i++ {
				t, h := i/c.Heads, i%c.Heads
				pos := s.pos + t
				kvh := h / group
				qh := q[t*dim+h*c.HeadDim : t*dim+(h+1)*c.HeadDim]
				maxv := float32(math.Inf(-1))
				for j := 0; j <= pos; j++ {
					sc := dotF32(qh, kc[j*kvDim+kvh*c.HeadDim:j*kvDim+(kvh+1)*c.HeadDim]) * scale
					scores[j] = sc
					if sc > maxv {
						maxv = sc
					}
				}
				var sum float32
				for j := 0; j <= pos; j++ {
					e := expf(scores[j] - maxv)
					scores[j] = e
					sum += e
				}
				inv := 1 / sum
				out := att[t*dim+h*c.HeadDim : t*dim+(h+1)*c.HeadDim]
				for d := range out {
					out[d] = 0
				}
				for j := 0; j <= pos; j++ {
					w := scores[j] * inv
					vh := vc[j*kvDim+kvh*c.HeadDim : j*kvDim+(kvh+1)*c.HeadDim]
					for d := range out {
						out[d] += float32(w * vh[d])
					}
				}
			}
		})
		m.matmul(l.wo, proj, att, T, nil)
		for i := range x {
			x[i] += proj[i]
		}
		for t := 0; t < T; t++ {
			rmsnorm(xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], l.ffnNorm, c.Eps)
		}
		qf := &quantized{}
		m.matmul(l.wGate, hb, xb, T, qf)
		m.matmul(l.wUp, hb2, xb, T, qf)
		for i := range hb {
			g := hb[i]
			hb[i] = float32(g/(1+expf(-g))) * hb2[i] // SwiGLU: silu(gate) * up
		}
		m.matmul(l.wDown, proj, hb, T, nil)
		for i := range x {
			x[i] += proj[i]
		}
	}
	s.pos += T

	first := 0
	if !all {
		first = T - 1
	}
	n := T - first
	xn := make([]float32, n*dim)
	for t := first; t < T; t++ {
		rmsnorm(xn[(t-first)*dim:(t-first+1)*dim], x[t*dim:(t+1)*dim], m.outNorm, c.Eps)
	}
	logits := make([]float32, n*c.Vocab)
	m.matmul(m.output, logits, xn, n, nil)
	out := make([][]float32, n)
	for i := range out {
		out[i] = logits[i*c.Vocab : (i+1)*c.Vocab]
	}
	return out, nil
}

func addBias(x, b []float32) {
	for i := range b {
		x[i] += b[i]
	}
}
