//go:build linux && !amd64 && !arm64

package mremaptest

// syscallCode is empty: MakeSignalCalls needs code of amd64 or arm64.
var syscallCode []byte

func callCode(code, nr, a1, a2, a3, a4, a5 uintptr) uintptr { panic("callCode: amd64 and arm64 only") }
