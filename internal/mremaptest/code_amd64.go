//go:build linux

package mremaptest

// syscallCode is a function that makes the system call whose number is in
// rax (arguments in rdi, rsi, rdx, r10, r8) and returns: syscall; ret.
var syscallCode = []byte{0x0f, 0x05, 0xc3}

// callCode calls the code at code with the system call's number and
// arguments in its registers, and returns rax.
func callCode(code, nr, a1, a2, a3, a4, a5 uintptr) uintptr
