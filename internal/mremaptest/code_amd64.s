//go:build linux

#include "textflag.h"

// func callCode(code, nr, a1, a2, a3, a4, a5 uintptr) uintptr
TEXT ·callCode(SB),NOSPLIT,$0-64
	MOVQ nr+8(FP), AX
	MOVQ a1+16(FP), DI
	MOVQ a2+24(FP), SI
	MOVQ a3+32(FP), DX
	MOVQ a4+40(FP), R10
	MOVQ a5+48(FP), R8
	MOVQ code+0(FP), R11
	CALL R11
	MOVQ AX, ret+56(FP)
	RET
