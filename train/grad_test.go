package train

import (
	"fmt"
	"math"
	"testing"

	"github.com/agoranet/agora/engine/native"
)

// randVec is n uniform values in [-s, s) from a seeded stream.
func randVec(r *native.RNG, n int, s float64) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((r.Float64()*2 - 1) * s)
	}
	return v
}

func to64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// fdGrad is the central finite-difference gradient of f at x (float64).
func fdGrad(f func([]float64) float64, x []float64) []float64 {
	const h = 1e-6
	g := make([]float64, len(x))
	for i := range x {
		old := x[i]
		x[i] = old + h
		fp := f(x)
		x[i] = old - h
		fm := f(x)
		x[i] = old
		g[i] = (fp - fm) / (2 * h)
	}
	return g
}

// relErr is ‖a − b‖ / max(‖a‖, ‖b‖).
func relErr(a []float32, b []float64) float64 {
	var d, na, nb float64
	for i := range b {
		d += (float64(a[i]) - b[i]) * (float64(a[i]) - b[i])
		na += float64(a[i]) * float64(a[i])
		nb += b[i] * b[i]
	}
	return math.Sqrt(d) / max(math.Sqrt(na), math.Sqrt(nb), 1e-30)
}

// dotc is Σ c·y: the scalar each layer's gradient is checked on (dy = c).
func dotc(c []float32, y []float64) float64 {
	var s float64
	for i := range y {
		s += float64(c[i]) * y[i]
	}
	return s
}

// Float64 references of every layer type, written the obvious way.

func refLinear(x, w []float64, n, in, out int) []float64 {
	y := make([]float64, n*out)
	for t := 0; t < n; t++ {
		for o := 0; o < out; o++ {
			for i := 0; i < in; i++ {
				y[t*out+o] += x[t*in+i] * w[o*in+i]
			}
		}
	}
	return y
}

func refRMS(x, w []float64, n, d int) []float64 {
	y := make([]float64, n*d)
	for t := 0; t < n; t++ {
		var ss float64
		for i := 0; i < d; i++ {
			ss += x[t*d+i] * x[t*d+i]
		}
		r := 1 / math.Sqrt(ss/float64(d)+float64(normEps))
		for i := 0; i < d; i++ {
			y[t*d+i] = x[t*d+i] * r * w[i]
		}
	}
	return y
}

func refRope(x []float64, n, T, heads, hd int) []float64 {
	y := make([]float64, len(x))
	for t := 0; t < n; t++ {
		pos := float64(t % T)
		for h := 0; h < heads; h++ {
			for i := 0; i < hd/2; i++ {
				th := pos * math.Pow(ropeBase, -2*float64(i)/float64(hd))
				a, b := t*heads*hd+h*hd+2*i, t*heads*hd+h*hd+2*i+1
				y[a] = x[a]*math.Cos(th) - x[b]*math.Sin(th)
				y[b] = x[a]*math.Sin(th) + x[b]*math.Cos(th)
			}
		}
	}
	return y
}

func refAttn(q, k, v []float64, sh attnShape) []float64 {
	B, T, H, KV, hd := sh.B, sh.T, sh.H, sh.KV, sh.HD
	out := make([]float64, B*T*H*hd)
	for b := 0; b < B; b++ {
		for h := 0; h < H; h++ {
			g := h / (H / KV)
			for t := 0; t < T; t++ {
				s := make([]float64, t+1)
				mx := math.Inf(-1)
				for j := 0; j <= t; j++ {
					for i := 0; i < hd; i++ {
						s[j] += q[(b*T+t)*H*hd+h*hd+i] * k[(b*T+j)*KV*hd+g*hd+i]
					}
					s[j] /= math.Sqrt(float64(hd))
					mx = max(mx, s[j])
				}
				var sum float64
				for j := range s {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				for j := range s {
					for i := 0; i < hd; i++ {
						out[(b*T+t)*H*hd+h*hd+i] += s[j] / sum * v[(b*T+j)*KV*hd+g*hd+i]
					}
				}
			}
		}
	}
	return out
}

func refSwiGLU(g, u []float64) []float64 {
	y := make([]float64, len(g))
	for i := range g {
		y[i] = g[i] / (1 + math.Exp(-g[i])) * u[i]
	}
	return y
}

func refCE(l []float64, targets []int, V int) float64 {
	var loss float64
	for t, tg := range targets {
		row := l[t*V : (t+1)*V]
		mx := math.Inf(-1)
		for _, x := range row {
			mx = max(mx, x)
		}
		var s float64
		for _, x := range row {
			s += math.Exp(x - mx)
		}
		loss += math.Log(s) + mx - row[tg]
	}
	return loss / float64(len(targets))
}

// TestLayerGradients checks each layer type's backward pass (float32)
// against central finite differences of a float64 reference of its
// forward pass, on the scalar Σ c·y for a random c. The bound is float32
// rounding: a wrong term gives errors of order 1.
func TestLayerGradients(t *testing.T) {
	const bound = 1e-4
	r := native.NewRNG(7)
	const n, in, out = 6, 16, 12
	sh := attnShape{B: 2, T: 5, H: 4, KV: 2, HD: 8}
	N := sh.B * sh.T
	type check struct {
		name string
		got  []float32
		want []float64
	}
	cases := []struct {
		name string
		run  func() []check
	}{
		{"linear", func() []check {
			x, w, c := randVec(r, n*in, 1), randVec(r, out*in, 1), randVec(r, n*out, 1)
			dx, dw := make([]float32, n*in), make([]float32, out*in)
			linearBwd(dx, dw, c, x, w, n, in, out, 2, &scratch{})
			w64, x64 := to64(w), to64(x)
			return []check{
				{"dx", dx, fdGrad(func(v []float64) float64 { return dotc(c, refLinear(v, w64, n, in, out)) }, x64)},
				{"dW", dw, fdGrad(func(v []float64) float64 { return dotc(c, refLinear(x64, v, n, in, out)) }, w64)},
			}
		}},
		{"rmsnorm", func() []check {
			x, w, c := randVec(r, n*in, 2), randVec(r, in, 1.5), randVec(r, n*in, 1)
			y, rs := make([]float32, n*in), make([]float32, n)
			rmsFwd(y, rs, x, w, n, in, normEps, 2)
			dx, dw := make([]float32, n*in), make([]float32, in)
			rmsBwd(dx, dw, c, x, rs, w, n, in, 2)
			w64, x64 := to64(w), to64(x)
			return []check{
				{"dx", dx, fdGrad(func(v []float64) float64 { return dotc(c, refRMS(v, w64, n, in)) }, x64)},
				{"dw", dw, fdGrad(func(v []float64) float64 { return dotc(c, refRMS(x64, v, n, in)) }, w64)},
			}
		}},
		{"rope", func() []check {
			const heads, hd, T = 2, 8, 5
			x, c := randVec(r, 2*T*heads*hd, 1), randVec(r, 2*T*heads*hd, 1)
			cos, sin := native.RopeTables(T, hd, ropeBase)
			dx := append([]float32(nil), c...)
			rope(dx, 2*T, T, heads, hd, cos, sin, true, 2)
			return []check{{"dx", dx, fdGrad(func(v []float64) float64 { return dotc(c, refRope(v, 2*T, T, heads, hd)) }, to64(x))}}
		}},
		{"attention (causal, GQA)", func() []check {
			qd, kd := sh.H*sh.HD, sh.KV*sh.HD
			q, k, v, c := randVec(r, N*qd, 1), randVec(r, N*kd, 1), randVec(r, N*kd, 1), randVec(r, N*qd, 1)
			att, P := make([]float32, N*qd), make([]float32, sh.B*sh.H*sh.T*sh.T)
			attnFwd(att, P, q, k, v, sh, 2)
			dq, dk, dv, dS := make([]float32, N*qd), make([]float32, N*kd), make([]float32, N*kd), make([]float32, len(P))
			attnBwd(dq, dk, dv, dS, c, P, q, k, v, sh, 2, &attnScratch{})
			q64, k64, v64 := to64(q), to64(k), to64(v)
			return []check{
				{"dq", dq, fdGrad(func(x []float64) float64 { return dotc(c, refAttn(x, k64, v64, sh)) }, q64)},
				{"dk", dk, fdGrad(func(x []float64) float64 { return dotc(c, refAttn(q64, x, v64, sh)) }, k64)},
				{"dv", dv, fdGrad(func(x []float64) float64 { return dotc(c, refAttn(q64, k64, x, sh)) }, v64)},
			}
		}},
		{"swiglu", func() []check {
			g, u, c := randVec(r, n*in, 4), randVec(r, n*in, 2), randVec(r, n*in, 1)
			dg, du := make([]float32, n*in), make([]float32, n*in)
			swigluBwd(dg, du, c, g, u, 2)
			g64, u64 := to64(g), to64(u)
			return []check{
				{"dgate", dg, fdGrad(func(x []float64) float64 { return dotc(c, refSwiGLU(x, u64)) }, g64)},
				{"dup", du, fdGrad(func(x []float64) float64 { return dotc(c, refSwiGLU(g64, x)) }, u64)},
			}
		}},
		{"embedding", func() []check {
			const V, D = 7, 5
			ids := []int{3, 1, 3, 6, 0, 3}
			e, c := randVec(r, V*D, 1), randVec(r, len(ids)*D, 1)
			dE := make([]float32, V*D)
			embBwd(dE, c, ids, V, D, 2)
			return []check{{"dE", dE, fdGrad(func(x []float64) float64 {
				y := make([]float64, len(ids)*D)
				for t, id := range ids {
					copy(y[t*D:(t+1)*D], x[id*D:(id+1)*D])
				}
				return dotc(c, y)
			}, to64(e))}}
		}},
		{"cross-entropy", func() []check {
			const V = 11
			targets := []int{0, 4, 10, 4, 7}
			l := randVec(r, len(targets)*V, 3)
			l64 := to64(l)
			d := append([]float32(nil), l...)
			crossEntropy(d, targets, V, make([]float64, len(targets)), 2)
			return []check{{"dlogits", d, fdGrad(func(x []float64) float64 { return refCE(x, targets, V) }, l64)}}
		}},
	}
	for _, tc := range cases {
		for _, ch := range tc.run() {
			e := relErr(ch.got, ch.want)
			t.Logf("%-24s %-8s relative error %.2e", tc.name, ch.name, e)
			if !(e < bound) {
				t.Errorf("%s %s: relative error %.3e exceeds %.0e", tc.name, ch.name, e, bound)
			}
		}
	}
}

// tinyConfig is a model small enough to differentiate numerically.
func tinyConfig(tied bool) Config {
	return Config{Dim: 16, Layers: 2, Heads: 4, KVHeads: 2, FFN: 32, Vocab: 300, SeqLen: 6, Tied: tied}
}

// TestModelGradient checks the whole model's gradient (tied and untied)
// against finite differences of its float32 loss (accumulated in float64),
// on the largest gradient entries of every tensor. The float32 loss makes
// the differences noisy (bound 5e-3); a missing or wrong term is off by
// far more.
func TestModelGradient(t *testing.T) {
	for _, tied := range []bool{true, false} {
		t.Run(fmt.Sprintf("tied=%v", tied), func(t *testing.T) {
			cfg := tinyConfig(tied)
			hyp := Presets["tiny"].Hyper
			hyp.Steps, hyp.Seed = 10, 3
			r := native.NewRNG(11)
			toks := make([]int, 2*cfg.SeqLen+1)
			for i := range toks {
				toks[i] = int(r.Uint64() % 40)
			}
			tr, err := New(cfg, hyp, nil, 2)
			if err != nil {
				t.Fatal(err)
			}
			d := NewData(toks, cfg.SeqLen, 1)
			inputs, targets := d.windows(0, 2)
			tr.lossAndGrad(inputs, targets)
			g := append([]float32(nil), tr.G...)
			loss := func() float64 {
				logits := tr.Forward(inputs, 2)
				losses := make([]float64, len(targets))
				crossEntropy(logits, targets, cfg.Vocab, losses, 1)
				var s float64
				for _, l := range losses {
					s += l
				}
				return s / float64(len(losses))
			}
			worst := 0.0
			for _, ts := range tr.ts {
				// the 3 entries with the largest gradient
				var idx []int
				for k := 0; k < 3; k++ {
					best := -1
					for i := ts.off; i < ts.off+ts.size(); i++ {
						if contains(idx, i) {
							continue
						}
						if best < 0 || math.Abs(float64(g[i])) > math.Abs(float64(g[best])) {
							best = i
						}
					}
					idx = append(idx, best)
				}
				var num, den float64
				for _, i := range idx {
					const h = 3e-3
					old := tr.W[i]
					tr.W[i] = old + h
					fp := loss()
					tr.W[i] = old - h
					fm := loss()
					tr.W[i] = old
					fd := (fp - fm) / (2 * h)
					num += (fd - float64(g[i])) * (fd - float64(g[i]))
					den += fd * fd
				}
				e := math.Sqrt(num / max(den, 1e-20))
				worst = max(worst, e)
				if !(e < 5e-3) {
					t.Errorf("%s: relative error %.3e (grad %v)", ts.name, e, g[idx[0]])
				}
			}
			t.Logf("whole model (tied=%v): worst relative error over the tensors %.2e", tied, worst)
		})
	}
}

func contains(s []int, x int) bool {
	for _, v := range s {
		if v == x {
			return true
		}
	}
	return false
}
