package train

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/agoranet/agora/engine/native"
)

// Trainer holds a run's whole state: weights, AdamW moments, the step and
// the data cursor. Not safe for concurrent use.
type Trainer struct {
	Cfg   Config
	Hyp   Hyper
	W     []float32 // weights, in layout order
	G     []float32 // the last step's gradient
	M, V  []float32 // AdamW moments
	Step  int       // steps taken
	Data  *Data
	ts    []tensor
	byNm  map[string]tensor
	cos   []float32
	sin   []float32
	thr   int
	a     *acts
	s     scratch
	extra []float32 // tied output's gradient before it joins the embedding's
	aw    attnScratch
}

// New starts a run: weights from hyp.Seed, the data order from hyp.Seed.
// threads only changes speed, never a bit.
func New(cfg Config, hyp Hyper, data *Data, threads int) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if hyp.Batch <= 0 || hyp.Steps <= 0 || hyp.Warmup < 0 || hyp.LR <= 0 {
		return nil, fmt.Errorf("invalid hyperparameters: batch %d, steps %d, warm-up %d, lr %g", hyp.Batch, hyp.Steps, hyp.Warmup, hyp.LR)
	}
	if data != nil {
		if data.T != cfg.SeqLen {
			return nil, fmt.Errorf("data windows of %d tokens, model windows of %d", data.T, cfg.SeqLen)
		}
		if data.Windows() == 0 {
			return nil, fmt.Errorf("data of %d tokens holds no window of %d", data.Tokens(), cfg.SeqLen+1)
		}
		if data.maxID >= cfg.Vocab {
			return nil, fmt.Errorf("data holds token %d outside the vocabulary (%d)", data.maxID, cfg.Vocab)
		}
	}
	tr := &Trainer{Cfg: cfg, Hyp: hyp, Data: data, ts: cfg.layout(), byNm: map[string]tensor{}, thr: max(threads, 1)}
	for _, t := range tr.ts {
		tr.byNm[t.name] = t
	}
	n := cfg.ParamCount()
	tr.W, tr.G, tr.M, tr.V = make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
	initWeights(cfg, tr.W, hyp.Seed)
	tr.cos, tr.sin = native.RopeTables(cfg.SeqLen, cfg.HeadDim(), ropeBase)
	return tr, nil
}

// SetThreads changes the thread count (the results do not change).
func (tr *Trainer) SetThreads(n int) { tr.thr = max(n, 1) }

// Tensor is a weight's values (a view into W).
func (tr *Trainer) Tensor(name string) []float32 {
	t, ok := tr.byNm[name]
	if !ok {
		return nil
	}
	return tr.W[t.off : t.off+t.size()]
}

func (tr *Trainer) grad(name string) []float32 {
	t := tr.byNm[name]
	return tr.G[t.off : t.off+t.size()]
}

// Weights maps every tensor name to its values (views into W).
func (tr *Trainer) Weights() map[string][]float32 {
	out := make(map[string][]float32, len(tr.ts))
	for _, t := range tr.ts {
		out[t.name] = tr.W[t.off : t.off+t.size()]
	}
	return out
}

// layerActs are one layer's saved activations.
type layerActs struct {
	xin, xb1, r1, q, k, v, P, att, xmid, xb2, r2, g, u, h []float32
}

type acts struct {
	B      int
	layers []layerActs
	x      []float32 // residual stream (the last layer's output after forward)
	rf, xn []float32
	logits []float32
}

func (tr *Trainer) acts(B int) *acts {
	if tr.a != nil && tr.a.B == B {
		return tr.a
	}
	c := tr.Cfg
	N, D, T, kv := B*c.SeqLen, c.Dim, c.SeqLen, c.KVHeads*c.HeadDim()
	a := &acts{B: B, x: make([]float32, N*D), rf: make([]float32, N), xn: make([]float32, N*D), logits: make([]float32, N*c.Vocab)}
	for range c.Layers {
		a.layers = append(a.layers, layerActs{
			xin: make([]float32, N*D), xb1: make([]float32, N*D), r1: make([]float32, N),
			q: make([]float32, N*D), k: make([]float32, N*kv), v: make([]float32, N*kv),
			P: make([]float32, B*c.Heads*T*T), att: make([]float32, N*D),
			xmid: make([]float32, N*D), xb2: make([]float32, N*D), r2: make([]float32, N),
			g: make([]float32, N*c.FFN), u: make([]float32, N*c.FFN), h: make([]float32, N*c.FFN),
		})
	}
	tr.a = a
	return a
}

// Forward runs B windows of SeqLen tokens (inputs, B·SeqLen ids) and
// returns the logits (B·SeqLen rows of Vocab; valid until the next call).
// Position p of each window is computed as the engine computes position p
// of a sequence, with the same kernels.
func (tr *Trainer) Forward(inputs []int, B int) []float32 {
	c, th := tr.Cfg, tr.thr
	a := tr.acts(B)
	N, D, T, hd := B*c.SeqLen, c.Dim, c.SeqLen, c.HeadDim()
	kv := c.KVHeads * hd
	emb := tr.Tensor("token_embd.weight")
	parallel(N, th, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			copy(a.x[t*D:(t+1)*D], emb[inputs[t]*D:(inputs[t]+1)*D])
		}
	})
	sh := attnShape{B, T, c.Heads, c.KVHeads, hd}
	for li := range a.layers {
		l := &a.layers[li]
		p := fmt.Sprintf("blk.%d.", li)
		copy(l.xin, a.x)
		rmsFwd(l.xb1, l.r1, a.x, tr.Tensor(p+"attn_norm.weight"), N, D, normEps, th)
		matABt(l.q, l.xb1, tr.Tensor(p+"attn_q.weight"), N, D, D, th)
		matABt(l.k, l.xb1, tr.Tensor(p+"attn_k.weight"), N, kv, D, th)
		matABt(l.v, l.xb1, tr.Tensor(p+"attn_v.weight"), N, kv, D, th)
		rope(l.q, N, T, c.Heads, hd, tr.cos, tr.sin, false, th)
		rope(l.k, N, T, c.KVHeads, hd, tr.cos, tr.sin, false, th)
		attnFwd(l.att, l.P, l.q, l.k, l.v, sh, th)
		proj := tr.s.get(3, N*D)
		matABt(proj, l.att, tr.Tensor(p+"attn_output.weight"), N, D, D, th)
		addInto(a.x, proj, th)
		copy(l.xmid, a.x)
		rmsFwd(l.xb2, l.r2, a.x, tr.Tensor(p+"ffn_norm.weight"), N, D, normEps, th)
		matABt(l.g, l.xb2, tr.Tensor(p+"ffn_gate.weight"), N, c.FFN, D, th)
		matABt(l.u, l.xb2, tr.Tensor(p+"ffn_up.weight"), N, c.FFN, D, th)
		copy(l.h, l.g)
		parallel(N, th, func(lo, hi int) {
			native.SwiGLU(l.h[lo*c.FFN:hi*c.FFN], l.u[lo*c.FFN:hi*c.FFN])
		})
		proj = tr.s.get(3, N*D)
		matABt(proj, l.h, tr.Tensor(p+"ffn_down.weight"), N, D, c.FFN, th)
		addInto(a.x, proj, th)
	}
	rmsFwd(a.xn, a.rf, a.x, tr.Tensor("output_norm.weight"), N, D, normEps, th)
	matABt(a.logits, a.xn, tr.outW(), N, c.Vocab, D, th)
	return a.logits
}

func (tr *Trainer) outW() []float32 {
	if tr.Cfg.Tied {
		return tr.Tensor("token_embd.weight")
	}
	return tr.Tensor("output.weight")
}

// addInto sets x += y elementwise.
func addInto(x, y []float32, threads int) {
	parallel(len(x), threads, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x[i] += y[i]
		}
	})
}

// backward computes G from the gradient of the loss in a.logits (which
// crossEntropy left there), for the inputs of the last Forward.
func (tr *Trainer) backward(inputs []int) {
	c, th, a := tr.Cfg, tr.thr, tr.a
	B := a.B
	N, D, T, hd := B*c.SeqLen, c.Dim, c.SeqLen, c.HeadDim()
	kv := c.KVHeads * hd
	sh := attnShape{B, T, c.Heads, c.KVHeads, hd}
	dx := make([]float32, N*D)
	dxn := make([]float32, N*D)
	dOut := tr.extra
	if !c.Tied {
		dOut = tr.grad("output.weight")
	} else if len(dOut) != c.Vocab*D {
		tr.extra = make([]float32, c.Vocab*D)
		dOut = tr.extra
	}
	linearBwd(dxn, dOut, a.logits, a.xn, tr.outW(), N, D, c.Vocab, th, &tr.s)
	rmsBwd(dx, tr.grad("output_norm.weight"), dxn, a.x, a.rf, tr.Tensor("output_norm.weight"), N, D, th)
	dA := make([]float32, N*D)  // d of a normed input
	tmp := make([]float32, N*D) // one matmul's share of it
	dh := make([]float32, N*c.FFN)
	dg := make([]float32, N*c.FFN)
	du := make([]float32, N*c.FFN)
	datt := make([]float32, N*D)
	dq := make([]float32, N*D)
	dk := make([]float32, N*kv)
	dv := make([]float32, N*kv)
	dS := make([]float32, B*c.Heads*T*T)
	for li := c.Layers - 1; li >= 0; li-- {
		l := &a.layers[li]
		p := fmt.Sprintf("blk.%d.", li)
		// FFN: x += down(silu(gate(xb2)) * up(xb2)), xb2 = norm(xmid)
		linearBwd(dh, tr.grad(p+"ffn_down.weight"), dx, l.h, tr.Tensor(p+"ffn_down.weight"), N, c.FFN, D, th, &tr.s)
		swigluBwd(dg, du, dh, l.g, l.u, th)
		linearBwd(dA, tr.grad(p+"ffn_gate.weight"), dg, l.xb2, tr.Tensor(p+"ffn_gate.weight"), N, D, c.FFN, th, &tr.s)
		linearBwd(tmp, tr.grad(p+"ffn_up.weight"), du, l.xb2, tr.Tensor(p+"ffn_up.weight"), N, D, c.FFN, th, &tr.s)
		addInto(dA, tmp, th)
		rmsBwd(dx, tr.grad(p+"ffn_norm.weight"), dA, l.xmid, l.r2, tr.Tensor(p+"ffn_norm.weight"), N, D, th)
		// attention: x += wo(attn(rope(q), rope(k), v)), from xb1 = norm(xin)
		linearBwd(datt, tr.grad(p+"attn_output.weight"), dx, l.att, tr.Tensor(p+"attn_output.weight"), N, D, D, th, &tr.s)
		attnBwd(dq, dk, dv, dS, datt, l.P, l.q, l.k, l.v, sh, th, &tr.aw)
		rope(dq, N, T, c.Heads, hd, tr.cos, tr.sin, true, th)
		rope(dk, N, T, c.KVHeads, hd, tr.cos, tr.sin, true, th)
		linearBwd(dA, tr.grad(p+"attn_q.weight"), dq, l.xb1, tr.Tensor(p+"attn_q.weight"), N, D, D, th, &tr.s)
		linearBwd(tmp, tr.grad(p+"attn_k.weight"), dk, l.xb1, tr.Tensor(p+"attn_k.weight"), N, D, kv, th, &tr.s)
		addInto(dA, tmp, th)
		linearBwd(tmp, tr.grad(p+"attn_v.weight"), dv, l.xb1, tr.Tensor(p+"attn_v.weight"), N, D, kv, th, &tr.s)
		addInto(dA, tmp, th)
		rmsBwd(dx, tr.grad(p+"attn_norm.weight"), dA, l.xin, l.r1, tr.Tensor(p+"attn_norm.weight"), N, D, th)
	}
	embBwd(tr.grad("token_embd.weight"), dx, inputs, c.Vocab, D, th)
	if c.Tied {
		addInto(tr.grad("token_embd.weight"), dOut, th)
	}
}

// embBwd sets dE[v] = Σ dx[t] over the tokens t whose id is v, in token
// order; threads split the vocabulary.
func embBwd(dE, dx []float32, ids []int, V, D, threads int) {
	// tokens grouped by id, in token order within an id (a counting sort)
	start := make([]int, V+1)
	for _, id := range ids {
		start[id+1]++
	}
	for v := 0; v < V; v++ {
		start[v+1] += start[v]
	}
	order := make([]int, len(ids))
	fill := append([]int(nil), start[:V]...)
	for t, id := range ids {
		order[fill[id]] = t
		fill[id]++
	}
	parallel(V, threads, func(lo, hi int) {
		for v := lo; v < hi; v++ {
			row := dE[v*D : (v+1)*D]
			for i := range row {
				row[i] = 0
			}
			for _, t := range order[start[v]:start[v+1]] {
				for i, g := range dx[t*D : (t+1)*D] {
					row[i] += g
				}
			}
		}
	})
}

// StepResult describes one optimisation step.
type StepResult struct {
	Loss     float64 // mean cross-entropy of the batch (nats per token)
	GradNorm float64 // before clipping
	LR       float64
	Tokens   int
}

// lr is the learning rate of step s (0-based): linear warm-up to LR, then
// cosine decay to MinLR at Steps.
func (h Hyper) lr(s int) float64 {
	if s < h.Warmup {
		return h.LR * float64(s+1) / float64(h.Warmup)
	}
	span := max(1, h.Steps-h.Warmup)
	prog := min(1, float64(s-h.Warmup)/float64(span))
	return h.MinLR + (h.LR-h.MinLR)*0.5*(1+math.Cos(math.Pi*prog))
}

// TrainStep takes the next batch, computes the loss and gradient, clips
// the gradient's global norm and applies AdamW.
func (tr *Trainer) TrainStep() (StepResult, error) {
	if tr.Data == nil {
		return StepResult{}, fmt.Errorf("no training data")
	}
	inputs, targets := tr.Data.Next(tr.Hyp.Batch)
	loss := tr.lossAndGrad(inputs, targets)
	norm := tr.clip()
	lr := tr.Hyp.lr(tr.Step)
	tr.adamW(lr)
	tr.Step++
	return StepResult{Loss: loss, GradNorm: norm, LR: lr, Tokens: len(inputs)}, nil
}

// lossAndGrad runs forward and backward on one batch and returns the mean
// loss (per-token losses summed in token order).
func (tr *Trainer) lossAndGrad(inputs, targets []int) float64 {
	B := len(inputs) / tr.Cfg.SeqLen
	logits := tr.Forward(inputs, B)
	losses := make([]float64, len(targets))
	crossEntropy(logits, targets, tr.Cfg.Vocab, losses, tr.thr)
	tr.backward(inputs)
	var sum float64
	for _, l := range losses {
		sum += l
	}
	return sum / float64(len(losses))
}

// chunk is the fixed span of the gradient-norm partial sums: the sum does
// not depend on the thread count.
const chunk = 1 << 14

// clip scales G so its global L2 norm is at most Hyp.Clip and returns the
// norm before. Squares are summed in float64 per fixed chunk, the chunks'
// sums added in order.
func (tr *Trainer) clip() float64 {
	n := len(tr.G)
	parts := make([]float64, (n+chunk-1)/chunk)
	parallel(len(parts), tr.thr, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var s float64
			for _, g := range tr.G[c*chunk : min(n, (c+1)*chunk)] {
				s += float64(g) * float64(g)
			}
			parts[c] = s
		}
	})
	var ss float64
	for _, s := range parts {
		ss += s
	}
	norm := math.Sqrt(ss)
	if tr.Hyp.Clip > 0 && norm > tr.Hyp.Clip {
		scale := float32(tr.Hyp.Clip / norm)
		parallel(n, tr.thr, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				tr.G[i] *= scale
			}
		})
	}
	return norm
}

// adamW updates W, M, V from G (step tr.Step+1 for the bias corrections),
// elementwise in float32 with every product rounded (no FMA):
// m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²; w −= lr·(m̂/(√v̂+ε) + λ·w),
// λ only on matrices.
func (tr *Trainer) adamW(lr float64) {
	h := tr.Hyp
	b1c, b2c := 1.0, 1.0
	for range tr.Step + 1 {
		b1c *= h.Beta1
		b2c *= h.Beta2
	}
	b1, b2 := float32(h.Beta1), float32(h.Beta2)
	ob1, ob2 := float32(1-h.Beta1), float32(1-h.Beta2)
	c1, c2 := float32(1-b1c), float32(1-b2c)
	eps, lr32, wd := float32(h.AdamEps), float32(lr), float32(h.WeightDecay)
	for _, t := range tr.ts {
		decay := t.decay && wd != 0
		w, g, m, v := tr.W[t.off:t.off+t.size()], tr.G[t.off:t.off+t.size()], tr.M[t.off:t.off+t.size()], tr.V[t.off:t.off+t.size()]
		parallel(len(w), tr.thr, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				gi := g[i]
				mi := float32(b1*m[i]) + float32(ob1*gi)
				vi := float32(b2*v[i]) + float32(float32(ob2*gi)*gi)
				m[i], v[i] = mi, vi
				upd := (mi / c1) / (float32(math.Sqrt(float64(vi/c2))) + eps)
				if decay {
					upd += float32(wd * w[i])
				}
				w[i] -= float32(lr32 * upd)
			}
		})
	}
}

// Eval returns the mean loss (nats per token) over d's first windows
// windows, in order, batch windows at a time, without training.
func (tr *Trainer) Eval(d *Data, windows, batch int) float64 {
	var sum float64
	var n int
	nw := min(windows, d.Windows())
	for w0 := 0; w0 < nw; w0 += batch {
		w1 := min(nw, w0+batch)
		inputs, targets := d.windows(w0, w1)
		logits := tr.Forward(inputs, w1-w0)
		losses := make([]float64, len(targets))
		crossEntropy(logits, targets, tr.Cfg.Vocab, losses, tr.thr)
		for _, l := range losses {
			sum += l
		}
		n += len(losses)
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// putF32s appends values as little-endian float32 bits.
func putF32s(h interface{ Write([]byte) (int, error) }, vals []float32, buf []byte) {
	for len(vals) > 0 {
		n := min(len(vals), len(buf)/4)
		for i, v := range vals[:n] {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		h.Write(buf[:4*n])
		vals = vals[n:]
	}
}
