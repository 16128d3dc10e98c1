//go:build linux

package callstack

import (
	"debug/elf"
	"encoding/binary"
	"testing"
)

// TestKeepsFramePointer: the prologues that set up a frame pointer, as
// GCC, clang and Go write them, and look-alikes that do not.
func TestKeepsFramePointer(t *testing.T) {
	arm64 := func(insns ...uint32) []byte {
		b := make([]byte, 4*len(insns))
		for i, in := range insns {
			binary.LittleEndian.PutUint32(b[4*i:], in)
		}
		return b
	}
	for _, c := range []struct {
		name    string
		machine elf.Machine
		code    []byte
		want    bool
	}{
		{"x86-64 push; mov %rsp,%rbp", elf.EM_X86_64, []byte{0x55, 0x48, 0x89, 0xe5}, true},
		{"x86-64 no frame", elf.EM_X86_64, []byte{0x48, 0x83, 0xec, 0x08}, false},
		{"i386 push; mov %esp,%ebp", elf.EM_386, []byte{0x55, 0x89, 0xe5}, true},
		{"i386 mov without push", elf.EM_386, []byte{0x89, 0xe5}, false},
		// stp x29, x30, [sp, #-32]!; mov x29, sp
		{"arm64 mov x29, sp", elf.EM_AARCH64, arm64(0xa9be7bfd, 0x910003fd), true},
		// sub sp, sp, #0x50; stp x29, x30, [sp, #16]; add x29, sp, #0x10 (GCC -O2)
		{"arm64 add x29, sp, #16", elf.EM_AARCH64, arm64(0xd10143ff, 0xa9017bfd, 0x910043fd), true},
		// Go: sub x29, sp, #8
		{"arm64 sub x29, sp, #8", elf.EM_AARCH64, arm64(0xf81f0ffe, 0xd10023fd), true},
		// mov x0, sp; adds x29, sp, #16: neither writes x29 from sp as a frame pointer
		{"arm64 look-alikes", elf.EM_AARCH64, arm64(0x910003e0, 0xb10043fd), false},
	} {
		if got := keepsFramePointer(c.machine, c.code); got != c.want {
			t.Errorf("%s: keepsFramePointer = %v, want %v", c.name, got, c.want)
		}
	}
}
