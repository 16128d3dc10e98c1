//go:build linux

package mremaptest

// syscallCode is a function that makes the system call whose number is in
// x8 (arguments in x0 to x4) and returns: svc #0; ret.
var syscallCode = []byte{0x01, 0x00, 0x00, 0xd4, 0xc0, 0x03, 0x5f, 0xd6}

// callCode calls the code at code with the system call's number and
// arguments in its registers, and returns x0.
func callCode(code, nr, a1, a2, a3, a4, a5 uintptr) uintptr
