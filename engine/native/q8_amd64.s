#include "textflag.h"

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
