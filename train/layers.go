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

// attnScratch holds attnBwd's transposed copies.
type attnScratch struct {
	dST, PT, qT, dattT, kT []float32
}

func (w *attnScratch) size(sh attnShape) {
	n := sh.B * sh.H * sh.T * sh.T
	if len(w.dST) != n {
		w.dST, w.PT = make([]float32, n), make([]float32, n)
		w.qT, w.dattT = make([]float32, sh.B*sh.H*sh.HD*sh.T), make([]float32, sh.B*sh.H*sh.HD*sh.T)
		w.kT = make([]float32, sh.B*sh.KV*sh.HD*sh.T)
	}
}

// attnBwd sets dq, dk, dv from datt, every sum a fixed-order dot:
//
//  1. per (sequence, head, token t): dP_j = datt_t·v_j, s = Σ_j P_j·dP_j (positions
//     in order), dS_j = P_j·(dP_j − s) for j ≤ t and 0 after;
//  2. the transposes: dSᵀ, Pᵀ per (sequence, head) [j][t], q and datt per head
//     [i][t], k per kv head [i][j];
//  3. dq_t[i] = scale·(dS_t · kᵀ_i) over all T positions (dS is 0 past t);
//  4. dk_j[i] = scale·Σ_h (dSᵀ_j · qᵀ_i), dv_j[i] = Σ_h (Pᵀ_j · dattᵀ_i), the group's
//     heads added in order.
//
// Rows go four at a time through DotF32x4 (tokens grouped from 0 in fours,
// whatever the threads).
func attnBwd(dq, dk, dv, dS, datt, P, q, k, v []float32, sh attnShape, threads int, w *attnScratch) {
	B, T, H, KV, hd := sh.B, sh.T, sh.H, sh.KV, sh.HD
	qDim, kvDim, group := H*hd, KV*hd, H/KV
	scale := float32(1 / math.Sqrt(float64(hd)))
	w.size(sh)
	parallel(B*H*T, threads, func(lo, hi int) {
		for it := lo; it < hi; it++ {
			b, h, t := it/(H*T), it/T%H, it%T
			kvh := h / group
			row := b*T + t
			p := P[((b*H+h)*T+t)*T : ((b*H+h)*T+t+1)*T]
			ds := dS[((b*H+h)*T+t)*T : ((b*H+h)*T+t+1)*T]
			da := datt[row*qDim+h*hd : row*qDim+(h+1)*hd]
			var s float32
			for j := 0; j <= t; j++ {
				vj := v[(b*T+j)*kvDim+kvh*hd : (b*T+j)*kvDim+(kvh+1)*hd]
				dp := native.DotF32(da, vj)
				ds[j] = dp
				s += float32(p[j] * dp)
			}
			for j := 0; j <= t; j++ {
				ds[j] = float32(p[j] * (ds[j] - s))
			}
			for j := t + 1; j < T; j++ {
				ds[j] = 0
			}
		}
	})
	parallel(B*H, threads, func(lo, hi int) {
		for bh := lo; bh < hi; bh++ {
			b, h := bh/H, bh%H
			transpose(w.dST[bh*T*T:(bh+1)*T*T], dS[bh*T*T:(bh+1)*T*T], T, T, 1)
			transpose(w.PT[bh*T*T:(bh+1)*T*T], P[bh*T*T:(bh+1)*T*T], T, T, 1)
			for i := 0; i < hd; i++ {
				qt, at := w.qT[(bh*hd+i)*T:(bh*hd+i+1)*T], w.dattT[(bh*hd+i)*T:(bh*hd+i+1)*T]
				for t := 0; t < T; t++ {
					qt[t] = q[(b*T+t)*qDim+h*hd+i]
					at[t] = datt[(b*T+t)*qDim+h*hd+i]
				}
			}
		}
	})
	parallel(B*KV, threads, func(lo, hi int) {
		for bk := lo; bk < hi; bk++ {
			b, kvh := bk/KV, bk%KV
			for i := 0; i < hd; i++ {
				kt := w.kT[(bk*hd+i)*T : (bk*hd+i+1)*T]
				for j := 0; j < T; j++ {
					kt[j] = k[(b*T+j)*kvDim+kvh*hd+i]
				}
			}
		}
	})
	groups := (T + 3) / 4
	parallel(B*H*groups, threads, func(lo, hi int) {
		var o [4]float32
		for it := lo; it < hi; it++ {
			b, h, t0 := it/(H*groups), it/groups%H, 4*(it%groups)
			bh, bk := b*H+h, b*KV+h/group
			n := min(4, T-t0)
			for i := 0; i < hd; i++ {
				kt := w.kT[(bk*hd+i)*T : (bk*hd+i+1)*T]
				rows := dS[(bh*T+t0)*T : (bh*T+t0+n)*T]
				dots4(kt, rows, n, &o)
				for r := 0; r < n; r++ {
					dq[(b*T+t0+r)*qDim+h*hd+i] = float32(o[r] * scale)
				}
			}
		}
	})
	parallel(B*KV*groups, threads, func(lo, hi int) {
		var o [4]float32
		for it := lo; it < hi; it++ {
			b, kvh, j0 := it/(KV*groups), it/groups%KV, 4*(it%groups)
			n := min(4, T-j0)
			for i := 0; i < hd; i++ {
				var ak, av [4]float32
				for h := kvh * group; h < (kvh+1)*group; h++ {
					bh := b*H + h
					dots4(w.qT[(bh*hd+i)*T:(bh*hd+i+1)*T], w.dST[(bh*T+j0)*T:(bh*T+j0+n)*T], n, &o)
					for r := 0; r < n; r++ {
						ak[r] += o[r]
					}
					dots4(w.dattT[(bh*hd+i)*T:(bh*hd+i+1)*T], w.PT[(bh*T+j0)*T:(bh*T+j0+n)*T], n, &o)
					for r := 0; r < n; r++ {
						av[r] += o[r]
					}
				}
				for r := 0; r < n; r++ {
					off := (b*T+j0+r)*kvDim + kvh*hd + i
					dk[off] = float32(ak[r] * scale)
					dv[off] = av[r]
				}
			}
		}
	})
}

// dots4 sets o[r] = w · rows[r] for n ≤ 4 rows of len(w) stored back to
// back: four at once when there are four (the same bits as one at a time).
func dots4(w, rows []float32, n int, o *[4]float32) {
	if n == 4 {
		native.DotF32x4(w, rows, o)
		return
	}
	L := len(w)
	for r := 0; r < n; r++ {
		o[r] = native.DotF32(w, rows[r*L:(r+1)*L])
	}
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
