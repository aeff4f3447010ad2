// Package train is Agora's deterministic trainer for llama-family models:
// pure Go, F32, forward and backward written by hand.
//
// A training run is a pure function of (initial weights, data,
// hyperparameters, seed): every value the step computes is one reduction in
// an order the code fixes, and threads split work by output element (a row,
// a token, a weight element), never a reduction, so the bits do not depend
// on the thread count. The forward pass uses the engine's own kernels
// (engine/native: dot products, RMSNorm, exp, SwiGLU, attention), so a
// trained model's logits in the engine are the trainer's bits, and the
// engine's SIMD and pure-Go paths give the same bits.
package train

import (
	"math"
	"sync"

	"github.com/agoranet/agora/engine/native"
)

// parallel runs fn over [0,n) split into contiguous chunks across threads;
// every index is computed by exactly one call, so results do not depend on
// the split.
func parallel(n, threads int, fn func(lo, hi int)) {
	if threads <= 1 || n < 2 {
		fn(0, n)
		return
	}
	threads = min(threads, n)
	chunk := (n + threads - 1) / threads
	var wg sync.WaitGroup
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	fn(0, min(chunk, n))
	wg.Wait()
}

// matABt sets out[i*nb+j] = a_i · b_j (a: na rows, b: nb rows, both of k
// columns), each with the engine's fixed-order dot product. Every matrix
// product of the forward and backward passes has this form (the backward
// ones on transposed copies), so each output element is one dot in one
// order. Threads split rows of a, or rows of b when a has fewer rows than
// threads (decode-sized products).
func matABt(out, a, b []float32, na, nb, k, threads int) {
	const blk = 16 // rows of b kept hot across a chunk of a's rows
	// rows of a go four at a time through DotF32x4 (the same bits as one
	// at a time); a chunk of a's rows starts on a multiple of four
	if na/4 >= threads || na >= nb {
		parallel((na+3)/4, threads, func(lo, hi int) {
			var o4 [4]float32
			for j0 := 0; j0 < nb; j0 += blk {
				j1 := min(nb, j0+blk)
				for g := lo; g < hi; g++ {
					i := 4 * g
					if i+4 <= na {
						a4 := a[i*k : (i+4)*k]
						for j := j0; j < j1; j++ {
							native.DotF32x4(b[j*k:(j+1)*k], a4, &o4)
							out[i*nb+j], out[(i+1)*nb+j], out[(i+2)*nb+j], out[(i+3)*nb+j] = o4[0], o4[1], o4[2], o4[3]
						}
						continue
					}
					for ; i < na; i++ {
						ai := a[i*k : (i+1)*k]
						for j := j0; j < j1; j++ {
							out[i*nb+j] = native.DotF32(ai, b[j*k:(j+1)*k])
						}
					}
				}
			}
		})
		return
	}
	parallel(nb, threads, func(lo, hi int) {
		for i := 0; i < na; i++ {
			ai := a[i*k : (i+1)*k]
			for j := lo; j < hi; j++ {
				out[i*nb+j] = native.DotF32(ai, b[j*k:(j+1)*k])
			}
		}
	})
}

// transpose sets dst (cols x rows) to src (rows x cols) transposed.
func transpose(dst, src []float32, rows, cols, threads int) {
	parallel(cols, threads, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			d := dst[c*rows : (c+1)*rows]
			for r := range d {
				d[r] = src[r*cols+c]
			}
		}
	})
}

// linearBwd: for y = x·Wᵀ (x: n x in, W: out x in, dy: n x out) it sets
// dx = dy·W (n x in) and dW = dyᵀ·x (out x in). dx[t][i] is one dot of
// dy's row t with W's column i; dW[o][i] one dot over the n tokens in
// order; scratch holds the transposes.
func linearBwd(dx, dW, dy, x, w []float32, n, in, out, threads int, s *scratch) {
	wt := s.get(0, in*out)
	transpose(wt, w, out, in, threads)
	if dx != nil {
		matABt(dx, dy, wt, n, in, out, threads)
	}
	dyt := s.get(1, out*n)
	transpose(dyt, dy, n, out, threads)
	xt := s.get(2, in*n)
	transpose(xt, x, n, in, threads)
	matABt(dW, dyt, xt, out, in, n, threads)
}

// scratch is reusable temporary memory, grown on demand.
type scratch struct{ bufs [4][]float32 }

func (s *scratch) get(i, n int) []float32 {
	if cap(s.bufs[i]) < n {
		s.bufs[i] = make([]float32, n)
	}
	return s.bufs[i][:n]
}

// rmsFwd normalizes each of n rows of x (width d) with the engine's
// RMSNorm and records each row's scale 1/rms (recomputed exactly as the
// engine does: squares rounded to float32, summed in float64 in order).
func rmsFwd(out, rs, x, w []float32, n, d int, eps float32, threads int) {
	parallel(n, threads, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			xt := x[t*d : (t+1)*d]
			native.RMSNorm(out[t*d:(t+1)*d], xt, w, eps)
			var ss float64
			for _, v := range xt {
				ss += float64(float32(v * v))
			}
			rs[t] = float32(1 / math.Sqrt(ss/float64(d)+float64(eps)))
		}
	})
}

// rmsBwd adds to dx the gradient through y = x·r·w (r = 1/rms(x)) and sets
// dw. Per token: dx_i += r·w_i·dy_i − x_i·r³/d·Σ_j w_j·dy_j·x_j (the sum
// in float64, index order). dw_i = Σ_t dy_ti·x_ti·r_t, over tokens in order,
// threads splitting i.
func rmsBwd(dx, dw, dy, x, rs, w []float32, n, d int, threads int) {
	parallel(n, threads, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			xt, dyt, dxt := x[t*d:(t+1)*d], dy[t*d:(t+1)*d], dx[t*d:(t+1)*d]
			r := rs[t]
			var s float64
			for i := range xt {
				s += float64(float32(float32(w[i]*dyt[i]) * xt[i]))
			}
			c := float32(float64(r) * float64(r) * float64(r) * s / float64(d))
			for i := range xt {
				dxt[i] += float32(float32(r*w[i])*dyt[i]) - float32(xt[i]*c)
			}
		}
	})
	if dw == nil {
		return
	}
	parallel(d, threads, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			var s float32
			for t := 0; t < n; t++ {
				s += float32(float32(dy[t*d+i]*x[t*d+i]) * rs[t])
			}
			dw[i] = s
		}
	})
}

// rope rotates each head's pairs (2i, 2i+1) by the angle of the token's
// position (t mod T within its sequence), as the engine does for llama;
// inverse rotates back (the backward pass: the transpose of a rotation).
func rope(x []float32, n, T, heads, hd int, cos, sin []float32, inverse bool, threads int) {
	half := hd / 2
	parallel(n, threads, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			pos := t % T
			c, s := cos[pos*half:(pos+1)*half], sin[pos*half:(pos+1)*half]
			row := x[t*heads*hd : (t+1)*heads*hd]
			for h := 0; h < heads; h++ {
				v := row[h*hd : (h+1)*hd]
				for i := 0; i < half; i++ {
					x0, x1 := v[2*i], v[2*i+1]
					if inverse {
						v[2*i] = float32(x0*c[i]) + float32(x1*s[i])
						v[2*i+1] = float32(x1*c[i]) - float32(x0*s[i])
					} else {
						v[2*i] = float32(x0*c[i]) - float32(x1*s[i])
						v[2*i+1] = float32(x0*s[i]) + float32(x1*c[i])
					}
				}
			}
		}
	})
}

// attnShape is the shape of causal attention over B sequences of T tokens.
type attnShape struct{ B, T, H, KV, HD int }

// attnFwd computes causal attention as the engine does (scores q·k·scale,
// softmax with the engine's exp summed in position order, the weighted
// value sum in position order) and keeps the probabilities P[b][h][t][j].
// Work items are (sequence, head, token).
func attnFwd(att, P, q, k, v []float32, sh attnShape, threads int) {
	B, T, H, KV, hd := sh.B, sh.T, sh.H, sh.KV, sh.HD
	qDim, kvDim, group := H*hd, KV*hd, H/KV
	scale := float32(1 / math.Sqrt(float64(hd)))
	parallel(B*H*T, threads, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			b, h, t := it/(H*T), it/T%H, it%T
			kvh := h / group
			row := b*T + t
			sc := P[((b*H+h)*T+t)*T : ((b*H+h)*T+t+1)*T]
			for j := t + 1; j < T; j++ {
				sc[j] = 0
			}
			sc = sc[:t+1]
			qh := q[row*qDim+h*hd : row*qDim+(h+1)*hd]
			native.AttnScores(qh, k[b*T*kvDim+kvh*hd:], kvDim, t+1, scale, sc)
			maxv := float32(math.Inf(-1))
			for _, s := range sc {
				maxv = max(maxv, s)
			}
			var sum float32
			for j, s := range sc {
				e := native.Expf(s - maxv)
				sc[j] = e
				sum += e
			}
			inv := 1 / sum
			for j := range sc {
				sc[j] *= inv
			}
			native.AttnWeighted(att[row*qDim+h*hd:row*qDim+(h+1)*hd], v[b*T*kvDim+kvh*hd:], kvDim, sc)
		}
	})
}

// attnBwd sets dq, dk, dv from datt. Pass 1, per (sequence, head, token):
// dP_j = datt·v_j, dS_j = P_j·(dP_j − Σ P·dP), dq = scale·Σ_j dS_j·k_j
// (positions in order). Pass 2, per (sequence, kv head, position j): dk_j =
// scale·Σ_h Σ_{t≥j} dS_tj·q_t, dv_j = Σ_h Σ_{t≥j} P_tj·datt_t, over the
// group's heads then tokens in order.
func attnBwd(dq, dk, dv, dS, datt, P, q, k, v []float32, sh attnShape, threads int) {
	B, T, H, KV, hd := sh.B, sh.T, sh.H, sh.KV, sh.HD
	qDim, kvDim, group := H*hd, KV*hd, H/KV
	scale := float32(1 / math.Sqrt(float64(hd)))
	parallel(B*H*T, threads, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			b, h, t := it/(H*T), it/T%H, it%T
			kvh := h / group
			row := b*T + t
			p := P[((b*H+h)*T+t)*T : ((b*H+h)*T+t)*T+t+1]
			ds := dS[((b*H+h)*T+t)*T : ((b*H+h)*T+t)*T+t+1]
			da := datt[row*qDim+h*hd : row*qDim+(h+1)*hd]
			var s float32
			for j := range p {
				vj := v[(b*T+j)*kvDim+kvh*hd : (b*T+j)*kvDim+(kvh+1)*hd]
				dp := native.DotF32(da, vj)
				ds[j] = dp
				s += float32(p[j] * dp)
			}
			dqh := dq[row*qDim+h*hd : row*qDim+(h+1)*hd]
			for i := range dqh {
				dqh[i] = 0
			}
			for j := range p {
				ds[j] = float32(p[j] * (ds[j] - s))
				kj := k[(b*T+j)*kvDim+kvh*hd : (b*T+j)*kvDim+(kvh+1)*hd]
				w := float32(ds[j] * scale)
				for i := range dqh {
					dqh[i] += float32(w * kj[i])
				}
			}
		}
	})
	parallel(B*KV*T, threads, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			b, kvh, j := it/(KV*T), it/T%KV, it%T
			off := (b*T+j)*kvDim + kvh*hd
			dkj, dvj := dk[off:off+hd], dv[off:off+hd]
			for i := range dkj {
				dkj[i], dvj[i] = 0, 0
			}
			for h := kvh * group; h < (kvh+1)*group; h++ {
				for t := j; t < T; t++ {
					idx := ((b*H+h)*T+t)*T + j
					row := b*T + t
					qt := q[row*qDim+h*hd : row*qDim+(h+1)*hd]
					dat := datt[row*qDim+h*hd : row*qDim+(h+1)*hd]
					w, pw := float32(dS[idx]*scale), P[idx]
					for i := range dkj {
						dkj[i] += float32(w * qt[i])
						dvj[i] += float32(pw * dat[i])
					}
				}
			}
		}
	})
}

// swigluBwd: for h = silu(g)·u it sets dg = dh·u·silu'(g) and du =
// dh·silu(g), with σ(g) = 1/(1+exp(−g)) from the engine's exp and
// silu'(g) = σ·(1 + g·(1−σ)); elementwise, any split.
func swigluBwd(dg, du, dh, g, u []float32, threads int) {
	parallel(len(g), threads, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			x := g[i]
			e := native.Expf(-x)
			sg := 1 / (1 + e)
			silu := float32(x / (1 + e)) // the engine's SwiGLU expression
			du[i] = float32(dh[i] * silu)
			d := float32(sg * (1 + float32(x*(1-sg))))
			dg[i] = float32(float32(dh[i]*u[i]) * d)
		}
	})
}

// crossEntropy turns logits (n x V) into the gradient of the mean
// negative log-likelihood of targets, in place, and returns each token's
// loss. p_i = exp(l_i − max)/Σ exp (the engine's exp, the sum in float64
// in index order); dl_i = (p_i − [i = target]) / n.
func crossEntropy(logits []float32, targets []int, V int, losses []float64, threads int) {
	n := len(targets)
	inv := 1 / float64(n)
	parallel(n, threads, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			l := logits[t*V : (t+1)*V]
			maxv := float32(math.Inf(-1))
			for _, x := range l {
				maxv = max(maxv, x)
			}
			tgt := targets[t]
			lt := float64(l[tgt] - maxv)
			var sum float64
			for i, x := range l {
				e := native.Expf(x - maxv)
				l[i] = e
				sum += float64(e)
			}
			losses[t] = math.Log(sum) - lt
			for i := range l {
				l[i] = float32(float64(l[i]) / sum * inv)
			}
			l[tgt] -= float32(inv)
		}
	})
}
