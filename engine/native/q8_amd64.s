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
