#include "textflag.h"

// Attention kernels (AVX2). Each does exactly the float32 operations of its
// Go twin in attn.go, in the same order: products rounded, then added (no
// FMA), so the assembly and the portable Go give identical bits.

// func attnScoresAVX2(q, k *float32, hd, stride, cnt int, scale float32, out *float32)
// out[j] = combine8(eight lanes of q·k_j) * scale, k_j = k + j*stride
// floats, hd a multiple of 8: lanesF32Go then combine8, one position at a time.
TEXT ·attnScoresAVX2(SB), NOSPLIT, $0-56
	MOVQ q+0(FP), SI
	MOVQ k+8(FP), DI
	MOVQ hd+16(FP), R8
	MOVQ stride+24(FP), R9
	MOVQ cnt+32(FP), CX
	VBROADCASTSS scale+40(FP), X6
	MOVQ out+48(FP), DX
	SHLQ $2, R9
	SHRQ $3, R8
scoresj:
	TESTQ CX, CX
	JZ scoresdone
	VXORPS Y0, Y0, Y0
	MOVQ SI, AX
	MOVQ DI, BX
	MOVQ R8, R10
scoresi:
	VMOVUPS (AX), Y1
	VMULPS (BX), Y1, Y1
	VADDPS Y1, Y0, Y0
	ADDQ $32, AX
	ADDQ $32, BX
	DECQ R10
	JNZ scoresi
	// ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)), as combine8
	VEXTRACTF128 $1, Y0, X1
	VHADDPS X1, X0, X2
	VHADDPS X2, X2, X3
	VMOVSHDUP X3, X4
	VADDSS X4, X3, X5
	VMULSS X6, X5, X5
	VMOVSS X5, (DX)
	ADDQ $4, DX
	ADDQ R9, DI
	DECQ CX
	JMP scoresj
scoresdone:
	VZEROUPPER
	RET

// func attnWeightedAVX2(out, v *float32, hd, stride, cnt int, w *float32)
// out[d] = Σ_{j<cnt}, in order from 0, of round(w[j]·v_j[d]), v_j = v +
// j*stride floats, hd a multiple of 8; 32 outputs at a time while they
// last (four independent accumulators), then 8.
TEXT ·attnWeightedAVX2(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), DX
	MOVQ v+8(FP), DI
	MOVQ hd+16(FP), R8
	MOVQ stride+24(FP), R9
	MOVQ cnt+32(FP), CX
	MOVQ w+40(FP), SI
	SHLQ $2, R9
	SHRQ $3, R8
wchunk4:
	CMPQ R8, $4
	JLT wchunk1
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ DI, AX
	MOVQ SI, BX
	MOVQ CX, R10
w4j:
	TESTQ R10, R10
	JZ w4store
	VBROADCASTSS (BX), Y4
	VMULPS (AX), Y4, Y5
	VADDPS Y5, Y0, Y0
	VMULPS 32(AX), Y4, Y5
	VADDPS Y5, Y1, Y1
	VMULPS 64(AX), Y4, Y5
	VADDPS Y5, Y2, Y2
	VMULPS 96(AX), Y4, Y5
	VADDPS Y5, Y3, Y3
	ADDQ $4, BX
	ADDQ R9, AX
	DECQ R10
	JMP w4j
w4store:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	ADDQ $128, DX
	ADDQ $128, DI
	SUBQ $4, R8
	JMP wchunk4
wchunk1:
	TESTQ R8, R8
	JZ wdone
	VXORPS Y0, Y0, Y0
	MOVQ DI, AX
	MOVQ SI, BX
	MOVQ CX, R10
w1j:
	TESTQ R10, R10
	JZ w1store
	VBROADCASTSS (BX), Y4
	VMULPS (AX), Y4, Y5
	VADDPS Y5, Y0, Y0
	ADDQ $4, BX
	ADDQ R9, AX
	DECQ R10
	JMP w1j
w1store:
	VMOVUPS Y0, (DX)
	ADDQ $32, DX
	ADDQ $32, DI
	DECQ R8
	JMP wchunk1
wdone:
	VZEROUPPER
	RET

// func lanesF32x4AVX2(w, x *float32, xstride, n int, l *[4][8]float32)
// For each of four activation rows x_k = x + k*xstride floats, lane i of
// l[k] accumulates w[i]·x_k[i] for i ≡ lane (mod 8), from zero, in index
// order: lanesF32Go for four tokens, the weights loaded once for all four.
// n is a multiple of 8.
TEXT ·lanesF32x4AVX2(SB), NOSPLIT, $0-40
	MOVQ w+0(FP), SI
	MOVQ x+8(FP), DI
	MOVQ xstride+16(FP), R9
	MOVQ n+24(FP), CX
	MOVQ l+32(FP), DX
	SHLQ $2, R9
	LEAQ (DI)(R9*1), R10
	LEAQ (R10)(R9*1), R11
	LEAQ (R11)(R9*1), R12
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	SHRQ $3, CX
	XORQ AX, AX
f4loop:
	TESTQ CX, CX
	JZ f4done
	VMOVUPS (SI)(AX*1), Y4
	VMULPS (DI)(AX*1), Y4, Y5
	VADDPS Y5, Y0, Y0
	VMULPS (R10)(AX*1), Y4, Y6
	VADDPS Y6, Y1, Y1
	VMULPS (R11)(AX*1), Y4, Y7
	VADDPS Y7, Y2, Y2
	VMULPS (R12)(AX*1), Y4, Y8
	VADDPS Y8, Y3, Y3
	ADDQ $32, AX
	DECQ CX
	JMP f4loop
f4done:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	VMOVUPS Y2, 64(DX)
	VMOVUPS Y3, 96(DX)
	VZEROUPPER
	RET
