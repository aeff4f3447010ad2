#include "textflag.h"

// Constants of expf (kernels.go), as float32 (and float64) bits.
DATA swlog2e<>+0(SB)/4, $0x3fb8aa3b
GLOBL swlog2e<>(SB), RODATA|NOPTR, $4
DATA swln2hi<>+0(SB)/4, $0x3f318000
GLOBL swln2hi<>(SB), RODATA|NOPTR, $4
DATA swln2lo<>+0(SB)/4, $0xb95e8083
GLOBL swln2lo<>(SB), RODATA|NOPTR, $4
DATA swc0<>+0(SB)/4, $0x39506967
GLOBL swc0<>(SB), RODATA|NOPTR, $4
DATA swc1<>+0(SB)/4, $0x3ab743ce
GLOBL swc1<>(SB), RODATA|NOPTR, $4
DATA swc2<>+0(SB)/4, $0x3c088908
GLOBL swc2<>(SB), RODATA|NOPTR, $4
DATA swc3<>+0(SB)/4, $0x3d2aa9c1
GLOBL swc3<>(SB), RODATA|NOPTR, $4
DATA swc4<>+0(SB)/4, $0x3e2aaaaa
GLOBL swc4<>(SB), RODATA|NOPTR, $4
DATA swc5<>+0(SB)/4, $0x3f000000
GLOBL swc5<>(SB), RODATA|NOPTR, $4
DATA swhi<>+0(SB)/4, $0x42b16666
GLOBL swhi<>(SB), RODATA|NOPTR, $4
DATA swlo<>+0(SB)/4, $0xc2cfcccd
GLOBL swlo<>(SB), RODATA|NOPTR, $4
DATA swone<>+0(SB)/4, $0x3f800000
GLOBL swone<>(SB), RODATA|NOPTR, $4
DATA swinf<>+0(SB)/4, $0x7f800000
GLOBL swinf<>(SB), RODATA|NOPTR, $4
DATA swsign<>+0(SB)/4, $0x80000000
GLOBL swsign<>(SB), RODATA|NOPTR, $4
DATA swhalf<>+0(SB)/8, $0x3fe0000000000000
GLOBL swhalf<>(SB), RODATA|NOPTR, $8
DATA swbias<>+0(SB)/8, $1023
GLOBL swbias<>(SB), RODATA|NOPTR, $8

// func swigluAVX2(gate, up *float32, n int)
// g[i] = float32(g/(1+expf(-g))) * u[i] for i < n (a multiple of 4), four
// at a time with expf's exact operations: float32 products and sums
// rounded one by one (no FMA), floor(z + 0.5) in float64 (VROUNDPD), the
// result y·2^n formed in float64 and rounded once, the range limits
// blended in — the Go loop's bits.
TEXT ·swigluAVX2(SB), NOSPLIT, $0-24
	MOVQ gate+0(FP), SI
	MOVQ up+8(FP), DI
	MOVQ n+16(FP), CX
	SHRQ $2, CX
	VXORPS X15, X15, X15
	VBROADCASTSS swinf<>(SB), X14
	VBROADCASTSS swsign<>(SB), X11
swloop:
	TESTQ CX, CX
	JZ swdone
	VMOVUPS (SI), X0
	VXORPS X11, X0, X1
	VBROADCASTSS swlog2e<>(SB), X2
	VMULPS X2, X1, X2
	VCVTPS2PD X2, Y3
	VBROADCASTSD swhalf<>(SB), Y4
	VADDPD Y4, Y3, Y3
	VROUNDPD $1, Y3, Y3
	VCVTPD2PSY Y3, X4
	VBROADCASTSS swln2hi<>(SB), X5
	VMULPS X5, X4, X5
	VSUBPS X5, X1, X6
	VBROADCASTSS swln2lo<>(SB), X5
	VMULPS X5, X4, X5
	VSUBPS X5, X6, X6
	VBROADCASTSS swc0<>(SB), X7
	VMULPS X6, X7, X7
	VBROADCASTSS swc1<>(SB), X5
	VADDPS X5, X7, X7
	VMULPS X6, X7, X7
	VBROADCASTSS swc2<>(SB), X5
	VADDPS X5, X7, X7
	VMULPS X6, X7, X7
	VBROADCASTSS swc3<>(SB), X5
	VADDPS X5, X7, X7
	VMULPS X6, X7, X7
	VBROADCASTSS swc4<>(SB), X5
	VADDPS X5, X7, X7
	VMULPS X6, X7, X7
	VBROADCASTSS swc5<>(SB), X5
	VADDPS X5, X7, X7
	VMULPS X6, X7, X7
	VMULPS X6, X7, X7
	VADDPS X6, X7, X7
	VBROADCASTSS swone<>(SB), X12
	VADDPS X12, X7, X7
	VCVTPD2DQY Y3, X8
	VPMOVSXDQ X8, Y8
	VPBROADCASTQ swbias<>(SB), Y9
	VPADDQ Y9, Y8, Y8
	VPSLLQ $52, Y8, Y8
	VCVTPS2PD X7, Y9
	VMULPD Y8, Y9, Y9
	VCVTPD2PSY Y9, X9
	VBROADCASTSS swhi<>(SB), X5
	VCMPPS $0x1e, X5, X1, X10
	VBLENDVPS X10, X14, X9, X9
	VBROADCASTSS swlo<>(SB), X5
	VCMPPS $0x11, X5, X1, X10
	VBLENDVPS X10, X15, X9, X9
	VADDPS X12, X9, X9
	VDIVPS X9, X0, X0
	VMULPS (DI), X0, X0
	VMOVUPS X0, (SI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ CX
	JMP swloop
swdone:
	VZEROUPPER
	RET
