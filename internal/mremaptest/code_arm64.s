//go:build linux

#include "textflag.h"

// func callCode(code, nr, a1, a2, a3, a4, a5 uintptr) uintptr
// A frame of its own, so that the link register is saved across the call.
TEXT ·callCode(SB),NOSPLIT,$16-64
	MOVD nr+8(FP), R8
	MOVD a1+16(FP), R0
	MOVD a2+24(FP), R1
	MOVD a3+32(FP), R2
	MOVD a4+40(FP), R3
	MOVD a5+48(FP), R4
	MOVD code+0(FP), R9
	CALL (R9)
	MOVD R0, ret+56(FP)
	RET
