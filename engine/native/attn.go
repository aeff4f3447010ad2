package native

// attnScores sets out[j] = (q · k_j) * scale for the cnt positions whose
// keys start at k[j*stride], each dot product in dotF32's order (eight
// lanes, combine8, then the tail), whichever path runs.
func attnScores(q, k []float32, stride, cnt int, scale float32, out []float32) {
	hd := len(q)
	out = out[:cnt]
	if cnt == 0 {
		return
	}
	_ = k[(cnt-1)*stride+hd-1]
	if haveAVX2 && useSIMD && hd%8 == 0 && hd > 0 {
		attnScoresAVX2(&q[0], &k[0], hd, stride, cnt, scale, &out[0])
		return
	}
	for j := range out {
		out[j] = dotF32(q, k[j*stride:j*stride+hd]) * scale
	}
}

// attnWeighted sets out[d] = Σ_j w[j]·v_j[d] over the cnt positions whose
// values start at v[j*stride], adding the rounded products in position
// order from zero, whichever path runs.
func attnWeighted(out, v []float32, stride int, w []float32) {
	hd, cnt := len(out), len(w)
	for d := range out {
		out[d] = 0
	}
	if cnt == 0 {
		return
	}
	_ = v[(cnt-1)*stride+hd-1]
	if haveAVX2 && useSIMD && hd%8 == 0 && hd > 0 {
		attnWeightedAVX2(&out[0], &v[0], hd, stride, cnt, &w[0])
		return
	}
	for j, wj := range w {
		vj := v[j*stride : j*stride+hd]
		for d := range out {
			out[d] += float32(wj * vj[d])
		}
	}
}

// swiglu sets g[i] = silu(g[i]) * u[i] = float32(g/(1+expf(-g))) * u[i],
// four at a time in assembly where the CPU has AVX2 (the same operations,
// so the same bits), the rest in Go.
func swiglu(g, u []float32) {
	u = u[:len(g)]
	n4 := 0
	if haveAVX2 && useSIMD {
		n4 = len(g) &^ 3
		if n4 > 0 {
			swigluAVX2(&g[0], &u[0], n4)
		}
	}
	for i := n4; i < len(g); i++ {
		x := g[i]
		g[i] = float32(x/(1+expf(-x))) * u[i]
	}
}
