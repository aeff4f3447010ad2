#include "textflag.h"

// func dotQ8SumsAVX2(w *byte, x *int8, n int, sums *int32)
// For each of n Q8_0 blocks (34 bytes: f16 scale, 32 int8) at w and 32 int8
// activations at x, writes the exact int32 sum of the 32 products to sums.
TEXT ·dotQ8SumsAVX2(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ sums+24(FP), DX
loop:
	TESTQ CX, CX
	JZ done
	VPMOVSXBW 2(SI), Y0
	VPMOVSXBW 18(SI), Y1
	VPMOVSXBW (DI), Y2
	VPMOVSXBW 16(DI), Y3
	VPMADDWD Y2, Y0, Y0
	VPMADDWD Y3, Y1, Y1
	VPADDD Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0x4E, X0, X1
	VPADDD X1, X0, X0
	VPSHUFD $0xB1, X0, X1
	VPADDD X1, X0, X0
	VMOVD X0, (DX)
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JMP loop
done:
	VZEROUPPER
	RET

// func dotRowQ8x4AVX2(w *byte, x0, x1, x2, x3 *int8, xd *float32, dtab *float32, nb int, out *float32)
// A whole Q8_0 row against four quantized activation rows: for each block b,
// the four exact int32 block sums (weights loaded once for the four rows),
// converted to float32 (exact: |sum| < 2^24), times float32(d_b × xd[4b+t])
// (d_b the block's f16 scale looked up in dtab), added to the running sums —
// one multiply and one add, each rounded, in block order: exactly dotRow's
// arithmetic per row.
TEXT ·dotRowQ8x4AVX2(SB), NOSPLIT, $0-72
	MOVQ w+0(FP), SI
	MOVQ x0+8(FP), DI
	MOVQ x1+16(FP), R8
	MOVQ x2+24(FP), R9
	MOVQ x3+32(FP), R10
	MOVQ xd+40(FP), R11
	MOVQ dtab+48(FP), R12
	MOVQ nb+56(FP), CX
	MOVQ out+64(FP), DX
	VXORPS X8, X8, X8
rowloop:
	TESTQ CX, CX
	JZ rowdone
	VPMOVSXBW 2(SI), Y0
	VPMOVSXBW 18(SI), Y1
	VPMOVSXBW (DI), Y2
	VPMOVSXBW 16(DI), Y3
	VPMADDWD Y2, Y0, Y2
	VPMADDWD Y3, Y1, Y3
	VPADDD Y3, Y2, Y4
	VPMOVSXBW (R8), Y2
	VPMOVSXBW 16(R8), Y3
	VPMADDWD Y2, Y0, Y2
	VPMADDWD Y3, Y1, Y3
	VPADDD Y3, Y2, Y5
	VPMOVSXBW (R9), Y2
	VPMOVSXBW 16(R9), Y3
	VPMADDWD Y2, Y0, Y2
	VPMADDWD Y3, Y1, Y3
	VPADDD Y3, Y2, Y6
	VPMOVSXBW (R10), Y2
	VPMOVSXBW 16(R10), Y3
	VPMADDWD Y2, Y0, Y2
	VPMADDWD Y3, Y1, Y3
	VPADDD Y3, Y2, Y7
	VPHADDD Y5, Y4, Y4
	VPHADDD Y7, Y6, Y6
	VPHADDD Y6, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPADDD X5, X4, X4
	VCVTDQ2PS X4, X4
	MOVWLZX (SI), AX
	VBROADCASTSS (R12)(AX*4), X6
	VMULPS (R11), X6, X6
	VMULPS X6, X4, X4
	VADDPS X4, X8, X8
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $16, R11
	DECQ CX
	JMP rowloop
rowdone:
	VMOVUPS X8, (DX)
	VZEROUPPER
	RET

// func lanesF32AVX2(a, b *float32, n int, l *[8]float32)
// Lane k of l accumulates a[i]·b[i] for i ≡ k (mod 8), in order: each
// product rounded, then added (no FMA), exactly lanesF32Go's arithmetic.
TEXT ·lanesF32AVX2(SB), NOSPLIT, $0-32
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ n+16(FP), CX
	MOVQ l+24(FP), DX
	VMOVUPS (DX), Y0
	SHRQ $3, CX
lanesloop:
	TESTQ CX, CX
	JZ lanesdone
	VMOVUPS (SI), Y1
	VMULPS (DI), Y1, Y1
	VADDPS Y1, Y0, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JMP lanesloop
lanesdone:
	VMOVUPS Y0, (DX)
	VZEROUPPER
	RET
