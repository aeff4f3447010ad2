package native

import (
	"fmt"
	"math"
	"sync"

	"github.com/agoranet/agora/engine/gguf"
)

// Session holds one sequence's KV cache. Not safe for concurrent use.
type Session struct {
	m      *Model
	pos    int         // tokens in the cache
	kCache [][]float32 // per layer: [positions][kvDim], grown as the sequence grows
	vCache [][]float32
}

// NewSession starts an empty sequence. Its KV cache takes memory only for
// the positions used (see Reserve), not for the whole context.
func (m *Model) NewSession() *Session {
	c := m.Config
	return &Session{m: m, kCache: make([][]float32, c.Layers), vCache: make([][]float32, c.Layers)}
}

// Reserve sizes the KV cache for n positions (at most the context length),
// so a generation whose length is known allocates once. The cache holds
// the same values whatever its capacity: results do not depend on it.
func (s *Session) Reserve(n int) {
	c := s.m.Config
	n = min(n, c.ContextLen)
	kvDim := c.KVHeads * c.HeadDim
	if n*kvDim <= len(s.kCache[0]) {
		return
	}
	for i := range s.kCache {
		k := make([]float32, n*kvDim)
		copy(k, s.kCache[i][:s.pos*kvDim])
		s.kCache[i] = k
		v := make([]float32, n*kvDim)
		copy(v, s.vCache[i][:s.pos*kvDim])
		s.vCache[i] = v
	}
}

// grow makes room for n positions, doubling so a long decode copies the
// cache O(log n) times.
func (s *Session) grow(n int) {
	kvDim := s.m.Config.KVHeads * s.m.Config.HeadDim
	if have := len(s.kCache[0]) / kvDim; n > have {
		s.Reserve(max(n, 2*have, 64))
	}
}

// CacheBytes is the memory the KV cache holds now.
func (s *Session) CacheBytes() int64 {
	var n int64
	for i := range s.kCache {
		n += 4 * int64(len(s.kCache[i])+len(s.vCache[i]))
	}
	return n
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
	// The caller takes the first chunk itself: one goroutine fewer to
	// start and wake per job.
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	fn(0, min(chunk, n))
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

// prepare makes the activation form w needs, quantizing groups of four
// tokens across threads (each token's quantization depends on its row
// alone, so the split changes no bit).
func (qz *quantized) prepare(w *Matrix, x []float32, T, threads int) {
	qz.x, qz.cols, qz.T = x, w.Cols, T
	groups := (T + 3) / 4
	switch w.act() {
	case actQ8:
		if qz.xq != nil {
			return
		}
		qz.xq = make([]q8Row, T)
		qz.xq4 = make([]q8Group, T/4)
		parallel(groups, threads, func(lo, hi int) {
			for g := lo; g < hi; g++ {
				t1 := min(T, 4*g+4)
				for t := 4 * g; t < t1; t++ {
					quantizeQ8(x[t*w.Cols:(t+1)*w.Cols], &qz.xq[t])
				}
				if t1-4*g == 4 {
					qz.xq4[g] = interleaveScales(qz.xq[4*g : 4*g+4])
				}
			}
		})
	case actQ8K:
		if qz.xk != nil {
			return
		}
		qz.xk = make([]q8KRow, T)
		qz.xkd4 = make([][]float32, T/4)
		parallel(groups, threads, func(lo, hi int) {
			for g := lo; g < hi; g++ {
				t1 := min(T, 4*g+4)
				for t := 4 * g; t < t1; t++ {
					quantizeQ8K(x[t*w.Cols:(t+1)*w.Cols], &qz.xk[t])
				}
				if t1-4*g < 4 {
					continue
				}
				nb := len(qz.xk[4*g].d)
				d := make([]float32, 4*nb)
				for b := 0; b < nb; b++ {
					for k := 0; k < 4; k++ {
						d[4*b+k] = qz.xk[4*g+k].d[b]
					}
				}
				qz.xkd4[g] = d
			}
		})
	}
}

// matmul computes out[t*m.Rows+r] = row r · x[t] for T tokens, splitting
// rows across threads. Tokens go four at a time through each chunk of
// weight rows (read once for the four while hot), the rest one by one;
// every kernel gives a token the same bits in a tile as alone. qz, if
// not nil, shares x's quantization with other matmuls over the same x.
func (m *Model) matmul(w *Matrix, out, x []float32, T int, qz *quantized) {
	m.matmuls([]*Matrix{w}, [][]float32{out}, x, T, qz)
}

// matmuls runs several matmuls over the same activations as one parallel
// job (q, k and v; gate and up): the threads split the rows of all of
// them together, so one barrier instead of one per matrix, and a thread
// idle at the end of one matrix is not left waiting for the others.
func (m *Model) matmuls(ws []*Matrix, outs [][]float32, x []float32, T int, qz *quantized) {
	if qz == nil {
		qz = &quantized{}
	}
	if halfActs && qz.xq == nil && qz.xk == nil && (ws[0].Type == gguf.BF16 || ws[0].Type == gguf.F16) {
		// test-only: llama.cpp's F16/BF16 matmuls convert the activations
		// to the weights' type first (ggml's vec_dot_type)
		xr := make([]float32, len(x))
		for i, v := range x {
			if ws[0].Type == gguf.BF16 {
				xr[i] = math.Float32frombits(uint32(bf16Round(v)) << 16)
			} else {
				xr[i] = f16Table[F32ToF16(v)]
			}
		}
		x = xr
	}
	total := 0
	for _, w := range ws {
		qz.prepare(w, x, T, m.threads)
		total += w.Rows
	}
	parallel(total, m.threads, func(lo, hi int) {
		var buf [4 * rowChunk]float32
		base := 0
		for i, w := range ws {
			wlo, whi := max(lo-base, 0), min(hi-base, w.Rows)
			base += w.Rows
			if wlo >= whi {
				continue
			}
			out := outs[i]
			for r0 := wlo; r0 < whi; r0 += rowChunk {
				r1 := min(whi, r0+rowChunk)
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

func (m *Model) rope(v []float32, pos, heads int, local bool) {
	c := m.Config
	half := c.RopeDims / 2
	tc, ts := m.ropeCos, m.ropeSin
	if local {
		tc, ts = m.ropeCosLocal, m.ropeSinLocal
	}
	cos := tc[pos*half : (pos+1)*half]
	sin := ts[pos*half : (pos+1)*half]
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
	s.grow(s.pos + T)
	dim, kvDim, qDim, hd := c.Dim, c.KVHeads*c.HeadDim, c.Heads*c.HeadDim, c.HeadDim
	// Every step outside the matmuls and attention works on one token at a
	// time, so it is split across threads by token (forTokens): each token
	// goes through the same operations in the same order whatever the split.
	forTokens := func(fn func(t int)) {
		parallel(T, m.threads, func(lo, hi int) {
			for t := lo; t < hi; t++ {
				fn(t)
			}
		})
	}
	x := make([]float32, T*dim)
	forTokens(func(t int) {
		xt := x[t*dim : (t+1)*dim]
		m.tokEmbd.Row(tokens[t], xt)
		if c.EmbedScale != 0 {
			for i := range xt {
				xt[i] *= c.EmbedScale
			}
		}
	})
	xb := make([]float32, T*dim)
	q := make([]float32, T*qDim)
	k := make([]float32, T*kvDim)
	v := make([]float32, T*kvDim)
	att := make([]float32, T*qDim)
	proj := make([]float32, T*dim)
	hb := make([]float32, T*c.FFN)
	hb2 := make([]float32, T*c.FFN)
	scale := float32(1 / math.Sqrt(float64(hd)))
	if c.QScale != 0 {
		scale = 1 // q carries the scale (Gemma 3, as llama.cpp orders it)
	}
	group := c.Heads / c.KVHeads

	for li := range m.layers {
		l := &m.layers[li]
		forTokens(func(t int) {
			rmsnorm(xb[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim], l.attnNorm, c.Eps)
		})
		m.matmuls([]*Matrix{l.wq, l.wk, l.wv}, [][]float32{q, k, v}, xb, T, nil)
		forTokens(func(t int) {
			qt, kt := q[t*qDim:(t+1)*qDim], k[t*kvDim:(t+1)*kvDim]
			addBias(qt, l.bq)
			addBias(kt, l.bk)
			addBias(v[t*kvDim:(t+1)*kvDim], l.bv)
			if l.qNorm != nil {
				for h := 0; h < c.Heads; h++ {
					rmsnorm(qt[h*hd:(h+1)*hd], qt[h*hd:(h+1)*hd], l.qNorm, c.Eps)
				}
				for h := 0; h < c.KVHeads; h++ {
					rmsnorm(kt[h*hd:(h+1)*hd], kt[h*hd:(h+1)*hd], l.kNorm, c.Eps)
				}
			}
			pos := s.pos + t
			m.rope(qt, pos, c.Heads, l.local)
			m.rope(kt, pos, c.KVHeads, l.local)
			if c.QScale != 0 {
				for i := range qt {
					qt[i] *= c.QScale
				}
			}
			if attnF16 {
				roundF16(qt)
				roundF16(kt)
				roundF16(v[t*kvDim : (t+1)*kvDim])
			}
			copy(s.kCache[li][pos*kvDim:], kt)
			copy(s.vCache[li][pos*kvDim:], v[t*kvDim:(t+1)*kvDim])
		})
		// Attention: one (head, token) pair per work item; each reads the
		// cache for its visible positions in order, whatever T is. A local
		// layer sees the last SlidingWindow positions (llama.cpp's mask:
		// key j is hidden when pos - j >= window). Items are ordered head
		// first so that contiguous chunks split heads, not early and late
		// tokens (a late token sees more positions: a token split would
		// give the last thread most of the work).
		kc, vc := s.kCache[li], s.vCache[li]
		parallel(T*c.Heads, m.threads, func(lo, hi int) {
			scores := make([]float32, s.pos+T)
			for i := lo; i < hi; i++ {
				h, t := i/T, i%T
				pos := s.pos + t
				first := 0
				if l.local {
					first = max(0, pos-c.SlidingWindow+1)
				}
				kvh := h / group
				qh := q[t*qDim+h*hd : t*qDim+(h+1)*hd]
				n := pos + 1 - first
				sc := scores[:n]
				attnScores(qh, kc[first*kvDim+kvh*hd:], kvDim, n, scale, sc)
				maxv := float32(math.Inf(-1))
				for _, v := range sc {
					if v > maxv {
						maxv = v
					}
				}
				var sum float32
				for j, v := range sc {
					e := expf(v - maxv)
					sc[j] = e
					sum += e
				}
				inv := 1 / sum
				for j := range sc {
					sc[j] *= inv
				}
				if attnF16 {
					roundF16(sc)
				}
				attnWeighted(att[t*qDim+h*hd:t*qDim+(h+1)*hd], vc[first*kvDim+kvh*hd:], kvDim, sc)
			}
		})
		m.matmul(l.wo, proj, att, T, nil)
		forTokens(func(t int) {
			pt, xt := proj[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim]
			if l.postAttnNorm != nil {
				rmsnorm(pt, pt, l.postAttnNorm, c.Eps)
			}
			for i := range xt {
				xt[i] += pt[i]
			}
			rmsnorm(xb[t*dim:(t+1)*dim], xt, l.ffnNorm, c.Eps)
		})
		m.matmuls([]*Matrix{l.wGate, l.wUp}, [][]float32{hb, hb2}, xb, T, nil)
		forTokens(func(t int) {
			g1, u := hb[t*c.FFN:(t+1)*c.FFN], hb2[t*c.FFN:(t+1)*c.FFN]
			if c.GELU {
				for i := range g1 {
					g1[i] = geluTanh(g1[i]) * u[i] // GeGLU
				}
			} else {
				swiglu(g1, u) // SwiGLU: silu(gate) * up
			}
		})
		m.matmul(l.wDown, proj, hb, T, nil)
		forTokens(func(t int) {
			pt, xt := proj[t*dim:(t+1)*dim], x[t*dim:(t+1)*dim]
			if l.postFFNNorm != nil {
				rmsnorm(pt, pt, l.postFFNNorm, c.Eps)
			}
			for i := range xt {
				xt[i] += pt[i]
			}
		})
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
	if cap := c.LogitSoftcap; cap != 0 {
		for i, l := range logits {
			logits[i] = float32(math.Tanh(float64(l/cap))) * cap
		}
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = logits[i*c.Vocab : (i+1)*c.Vocab]
	}
	return out, nil
}

// geluTanh is GELU's tanh approximation (what Gemma is trained with), with
// the tanh in float64 from Go's portable math.Tanh and the rest in float32
// in a fixed order, so every platform gives the same bits.
func geluTanh(x float32) float32 {
	const sqrt2OverPi = 0.79788456080286535587989211986876
	const coef = 0.044715
	// Each product is rounded explicitly so no compiler fuses it into an FMA.
	x2 := float32(x * x)
	inner := float32(float32(sqrt2OverPi)*x) * (1 + float32(float32(coef)*x2))
	return float32(0.5*x) * (1 + float32(math.Tanh(float64(inner))))
}

// attnF16 (tests only) rounds q, the cached k and v, and the softmax
// weights through f16, as llama.cpp's default f16 KV cache does (its
// f16 matmuls convert q and the weights to f16): a diagnostic of where
// the engine and llama.cpp differ, not a mode of the engine.
var attnF16 = false

// halfActs (tests only) rounds the activations of F16/BF16 matmuls to the
// weights' type, as ggml's vec_dot_type does: a diagnostic like attnF16.
var halfActs = false

// bf16Round is ggml's fp32 → bf16 conversion: round to nearest even.
func bf16Round(f float32) uint16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return uint16(u>>16 | 64)
	}
	return uint16((u + (0x7fff + (u >> 16 & 1))) >> 16)
}

func roundF16(x []float32) {
	for i, v := range x {
		x[i] = f16Table[F32ToF16(v)]
	}
}

func addBias(x, b []float32) {
	for i := range b {
		x[i] += b[i]
	}
}
