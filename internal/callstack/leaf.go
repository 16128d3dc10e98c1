//go:build linux

package callstack

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"strings"
)

// prologueLen is how far into a function its frame setup is looked for:
// past endbr64/bti, a Go stack-bound check, or a shrink-wrapped early exit.
const prologueLen = 48

const fpUnreadable = 3 // the code could not be read: unknown, do not retry

// framePointer tells whether the function of f sets up a frame pointer,
// reading its first bytes once (the table keeps the answer). For an
// address no symbol covers, it tells whether most of the file's functions
// do.
func (w *walker) framePointer(f *Frame) uint32 {
	if f.tab == nil {
		return fpUnknown
	}
	var v uint32
	if f.idx < 0 {
		v = f.tab.moduleFP.Load()
	} else {
		v = f.tab.framePointer(f.idx)
	}
	switch {
	case v == fpUnreadable:
		return fpUnknown
	case v != fpUnknown:
		return v
	case !w.io:
		w.pending = true
		return fpUnknown
	}
	if f.idx < 0 {
		v = w.moduleFramePointer(f)
		f.tab.moduleFP.Store(v)
	} else {
		v = w.functionFramePointer(f.m, f.tab, f.idx)
		f.tab.setFramePointer(f.idx, v)
	}
	if v == fpUnreadable {
		return fpUnknown
	}
	return v
}

func (w *walker) functionFramePointer(m *mapping, t *table, i int) uint32 {
	b, ok := w.code(m, t, t.syms[i].start, prologueLen, t.syms[i].end)
	switch {
	case !ok:
		return fpUnreadable
	case keepsFramePointer(t.machine, b):
		return fpYes
	}
	return fpNo
}

// moduleFramePointer samples up to 32 of the file's functions.
func (w *walker) moduleFramePointer(f *Frame) uint32 {
	t := f.tab
	step := len(t.syms)/32 + 1
	yes, no := 0, 0
	for i := 0; i < len(t.syms); i += step {
		switch w.functionFramePointer(f.m, t, i) {
		case fpYes:
			yes++
		case fpNo:
			no++
		}
	}
	switch {
	case yes+no == 0:
		return fpUnreadable
	case yes >= no:
		return fpYes
	}
	return fpNo
}

// keepsFramePointer looks for the instruction that makes the frame
// pointer: mov %rsp,%rbp (x86-64) or mov %esp,%ebp after a push %ebp
// (i386), which compilers may schedule a few instructions after the push,
// and on arm64 add x29, sp, #n (C: mov x29, sp is n = 0, and GCC writes
// add x29, sp, #16 when the frame record is above the locals) or
// sub x29, sp, #n (Go: #8).
func keepsFramePointer(m elf.Machine, b []byte) bool {
	switch m {
	case elf.EM_X86_64:
		return hasSeq(b, 0x48, 0x89, 0xe5) || hasSeq(b, 0x48, 0x8b, 0xec)
	case elf.EM_386:
		return len(b) > 0 && b[0] == 0x55 && (hasSeq(b, 0x89, 0xe5) || hasSeq(b, 0x8b, 0xec))
	case elf.EM_AARCH64:
		for i := 0; i+4 <= len(b); i += 4 {
			// ADD or SUB (immediate, 64-bit), any shift and immediate,
			// from sp (Rn 31) to x29 (Rd 29).
			if insn := binary.LittleEndian.Uint32(b[i:]) & 0xbf8003ff; insn == 0x910003fd {
				return true
			}
		}
	}
	return false
}

func hasSeq(b []byte, seq ...byte) bool {
	for i := 0; i+len(seq) <= len(b); i++ {
		if string(b[i:i+len(seq)]) == string(seq) {
			return true
		}
	}
	return false
}

// leafCaller recovers the caller of a function that sets up no frame
// pointer: the walk's first return address then belongs to its caller's
// caller. The caller's return address is in the link register (arm64) or
// among the words on top of the stack (x86), below the function's own
// frame: the first word that is the return address of a call into that
// very function is taken (see callsInto), never a guess.
func (w *walker) leafCaller(f0 *Frame, next uint64) (Frame, bool) {
	if f0.tab == nil || f0.idx < 0 || (len(w.req.StackWords) == 0 && w.req.LinkRegister == 0) {
		return Frame{}, false
	}
	if w.framePointer(f0) != fpNo {
		return Frame{}, false // it has a frame: the walk found its caller
	}
	cands := w.req.StackWords
	if len(cands) > MaxStackWords {
		cands = cands[:MaxStackWords]
	}
	fromWords := w.req.LinkRegister == 0
	if !fromWords {
		cands = []uint64{w.req.LinkRegister}
	}
	for i, r := range cands {
		if fromWords {
			w.wordsRead = i + 1
		}
		if r == 0 {
			continue
		}
		if r == next {
			return Frame{}, false
		}
		fr := w.frame(r, true)
		if fr.tab == nil || (fr.tab == f0.tab && fr.idx == f0.idx) {
			continue
		}
		ok, known := fr.tab.site(fr.va)
		if !known {
			if !w.io {
				w.pending = true
				return Frame{}, false
			}
			ok = w.callsInto(&fr, f0)
			fr.tab.setSite(fr.va, ok)
		}
		if ok {
			return fr, true
		}
	}
	return Frame{}, false
}

// callsInto checks that the instruction before the return address fr is
// a call that reaches f0's function: a direct call to its start, a call
// through a PLT entry or GOT slot bound to its name, or (arm64, from the
// link register, which holds no stale value) any BL/BLR.
func (w *walker) callsInto(fr, f0 *Frame) bool {
	t := fr.tab
	n := uint64(7)
	if t.machine == elf.EM_AARCH64 {
		n = 4
	}
	if fr.va < n {
		return false
	}
	b, ok := w.code(fr.m, t, fr.va-n, int(n), fr.va)
	if !ok {
		return false
	}
	target, direct, isCall := decodeCall(t.machine, b, fr.va)
	switch {
	case !isCall:
		return false
	case t.machine == elf.EM_AARCH64:
		return true
	case direct && t == f0.tab && target == f0.tab.syms[f0.idx].start:
		return true
	case direct && t.inPLT(target):
		return sameSymbol(w.pltSymbol(fr.m, t, target), f0.tab.syms[f0.idx].name)
	case !direct && len(b) >= 6 && b[1] == 0xff && b[2] == 0x15: // call *disp32(%rip)
		got := fr.va + uint64(int64(int32(binary.LittleEndian.Uint32(b[3:]))))
		return sameSymbol(t.gotName(got), f0.tab.syms[f0.idx].name)
	}
	return false
}

// pltSymbol returns the symbol a PLT entry jumps to: the entry's
// jmp *disp32(%rip) reads a GOT slot, which a relocation binds to it.
func (w *walker) pltSymbol(m *mapping, t *table, entry uint64) string {
	b, ok := w.code(m, t, entry, 16, 0)
	if !ok {
		return ""
	}
	for i := 0; i+6 <= len(b); i++ {
		if b[i] == 0xff && b[i+1] == 0x25 {
			disp := int64(int32(binary.LittleEndian.Uint32(b[i+2:])))
			return t.gotName(entry + uint64(i) + 6 + uint64(disp))
		}
	}
	return ""
}

// sameSymbol compares symbol names the way aliases are spelled: glibc's
// __mremap and mremap are one function.
func sameSymbol(a, b string) bool {
	return a != "" && strings.TrimLeft(a, "_") == strings.TrimLeft(b, "_")
}

// decodeCall decodes the call instruction that ends right before ret, in
// b (the bytes before ret): its target when direct.
func decodeCall(m elf.Machine, b []byte, ret uint64) (target uint64, direct, ok bool) {
	switch m {
	case elf.EM_X86_64, elf.EM_386:
		if len(b) >= 5 && b[len(b)-5] == 0xe8 {
			rel := int32(binary.LittleEndian.Uint32(b[len(b)-4:]))
			return ret + uint64(int64(rel)), true, true
		}
		return 0, false, indirectCallX86(b, m == elf.EM_X86_64)
	case elf.EM_AARCH64:
		if len(b) < 4 {
			return 0, false, false
		}
		insn := binary.LittleEndian.Uint32(b[len(b)-4:])
		if insn&0xfc000000 == 0x94000000 { // BL imm26
			off := int64(int32(insn<<6)>>6) * 4
			return ret - 4 + uint64(off), true, true
		}
		// BLR, and BLRAA/BLRAB/BLRAAZ/BLRABZ (pointer authentication)
		return 0, false, insn&0xfffffc1f == 0xd63f0000 || insn&0xfefff800 == 0xd63f0800
	}
	return 0, false, false
}

// indirectCallX86 reports whether b ends with an indirect call: opcode
// 0xff with ModRM reg field 2 (call r/m), optionally REX-prefixed.
func indirectCallX86(b []byte, rex bool) bool {
	for start := len(b) - 2; start >= 0; start-- {
		p := start
		if rex && b[p]&0xf0 == 0x40 {
			p++
		}
		if p+1 >= len(b) || b[p] != 0xff || (b[p+1]>>3)&7 != 2 {
			continue
		}
		if p+1+modrmExtra(b[p+1], b, p+2) == len(b)-1 {
			return true
		}
	}
	return false
}

// modrmExtra is the number of bytes after ModRM (SIB and displacement).
func modrmExtra(modrm byte, b []byte, sib int) int {
	mod, rm := modrm>>6, modrm&7
	extra := 0
	if mod != 3 && rm == 4 {
		extra = 1
		if mod == 0 && sib < len(b) && b[sib]&7 == 5 {
			extra += 4
		}
	}
	switch {
	case mod == 0 && rm == 5:
		extra += 4
	case mod == 1:
		extra++
	case mod == 2:
		extra += 4
	}
	return extra
}

// code reads n bytes of the file at virtual address va, which must lie
// below limit (the end of the function or the return address).
func (w *walker) code(m *mapping, t *table, va uint64, n int, limit uint64) ([]byte, bool) {
	if limit > va && uint64(n) > limit-va {
		n = int(limit - va)
	}
	off, ok := t.fileOff(va)
	if !ok || n <= 0 {
		return nil, false
	}
	if t.image != nil {
		if off+uint64(n) > uint64(len(t.image)) {
			return nil, false
		}
		return t.image[off : off+uint64(n)], true
	}
	f := w.fileFor(m)
	if f == nil {
		return nil, false
	}
	b := make([]byte, n)
	if k, _ := f.ReadAt(b, int64(off)); k < n {
		return nil, false
	}
	return b, true
}

// fileFor returns m's file opened during this walk, opening it again if
// needed; it must still be the version the table was parsed from.
func (w *walker) fileFor(m *mapping) *os.File {
	if f := w.open[m]; f != nil {
		return f
	}
	res := m.res.Load()
	if !w.io || res == nil || res.file == nil {
		return nil
	}
	f, k, _ := w.s.openMapped(w.p.pid, m)
	if f == nil {
		return nil
	}
	if k != res.file.key {
		f.Close()
		return nil
	}
	w.keep(m, f)
	return f
}
