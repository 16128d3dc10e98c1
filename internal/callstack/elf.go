//go:build linux

package callstack

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// Limits bound what one file may cost. A file past a limit keeps the
// symbol sources that fit; addresses only the skipped sources would have
// named get module+offset frames with ReasonOverLimit, never the name of a
// neighboring function.
type Limits struct {
	// MaxSymbols per symbol source (.symtab, .dynsym, .gopclntab).
	MaxSymbols int
	// MaxStringTable is the largest string table read, in bytes.
	MaxStringTable int64
	// MaxPclntab is the largest .gopclntab read, in bytes.
	MaxPclntab int64
}

// DefaultLimits: about 1 GiB of peak parse memory for the largest files
// allowed, far less for usual ones (glibc: 3,000 symbols).
var DefaultLimits = Limits{MaxSymbols: 1 << 20, MaxStringTable: 64 << 20, MaxPclntab: 256 << 20}

var errBadELF = errors.New("not a valid ELF file")

const maxNameLen = 4096

// parseELF reads the symbol tables of one ELF file. Any failure to parse is
// an error wrapping errBadELF; a panic in the parsers is one too.
func parseELF(r io.ReaderAt, lim Limits) (t *table, err error) {
	defer func() {
		if p := recover(); p != nil {
			t, err = nil, fmt.Errorf("%w: %v", errBadELF, p)
		}
	}()
	if err := precheck(r, lim); err != nil {
		return nil, err
	}
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadELF, err)
	}
	var cands []candidate
	limited := Resolved
	runtimeText := uint64(0)
	for _, src := range []struct {
		typ  elf.SectionType
		rank int
	}{{elf.SHT_SYMTAB, 1}, {elf.SHT_DYNSYM, 2}} {
		c, rt, over := elfSymbols(f, src.typ, src.rank, lim)
		cands = append(cands, c...)
		if over {
			limited = ReasonOverLimit
		}
		if rt != 0 {
			runtimeText = rt
		}
	}
	goBin := f.Section(".gopclntab") != nil || f.Section(".go.buildinfo") != nil
	if c, over := goSymbols(f, runtimeText, lim); over {
		limited = ReasonOverLimit
	} else {
		cands = append(cands, c...)
	}
	t = newTable(cands)
	t.machine, t.goBin, t.limited = f.Machine, goBin, limited
	t.static = true
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_LOAD:
			t.loads = append(t.loads, load{off: p.Off, vaddr: p.Vaddr, filesz: p.Filesz})
		case elf.PT_INTERP:
			t.static = false
		}
	}
	for _, s := range f.Sections {
		if s.Name == ".plt" || s.Name == ".plt.sec" || s.Name == ".plt.got" {
			t.plt = append(t.plt, [2]uint64{s.Addr, s.Addr + s.Size})
		}
	}
	t.buildID = buildID(f)
	t.got = gotNames(f, lim)
	return t, nil
}

// gotNames maps the GOT slots that PLT entries and -fno-plt calls read to
// the symbols their relocations bind (JUMP_SLOT, GLOB_DAT).
func gotNames(f *elf.File, lim Limits) map[uint64]string {
	if f.Machine != elf.EM_X86_64 && f.Machine != elf.EM_386 {
		return nil
	}
	dyn, err := f.DynamicSymbols()
	if err != nil || len(dyn) > lim.MaxSymbols {
		return nil
	}
	out := map[uint64]string{}
	for _, s := range f.Sections {
		if (s.Type != elf.SHT_RELA && s.Type != elf.SHT_REL) || s.Size > uint64(lim.MaxSymbols)*24 {
			continue
		}
		data, err := s.Data()
		if err != nil {
			continue
		}
		addGOTNames(out, f, s.Type == elf.SHT_RELA, data, dyn)
	}
	return out
}

func addGOTNames(out map[uint64]string, f *elf.File, rela bool, data []byte, dyn []elf.Symbol) {
	bo, is64 := f.ByteOrder, f.Class == elf.ELFCLASS64
	size := map[[2]bool]int{{true, true}: 24, {false, true}: 16, {true, false}: 12, {false, false}: 8}[[2]bool{rela, is64}]
	for off := 0; off+size <= len(data); off += size {
		var addr, sym, typ uint64
		if is64 {
			addr, sym, typ = bo.Uint64(data[off:]), bo.Uint64(data[off+8:])>>32, bo.Uint64(data[off+8:])&0xffffffff
		} else {
			info := uint64(bo.Uint32(data[off+4:]))
			addr, sym, typ = uint64(bo.Uint32(data[off:])), info>>8, info&0xff
		}
		// JUMP_SLOT is 7 and GLOB_DAT 6 on both x86-64 and i386.
		if (typ == 6 || typ == 7) && sym >= 1 && sym <= uint64(len(dyn)) {
			out[addr] = dyn[sym-1].Name
		}
	}
}

var errTooLarge = errors.New("section header string table past the limits")

// precheck bounds what debug/elf reads whole before anything else: the
// section headers and the section name table.
func precheck(r io.ReaderAt, lim Limits) error {
	var h [64]byte
	if _, err := r.ReadAt(h[:], 0); err != nil && err != io.EOF {
		return fmt.Errorf("%w: %w", errBadELF, err)
	}
	if string(h[:4]) != elf.ELFMAG {
		return fmt.Errorf("%w: bad magic", errBadELF)
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if elf.Data(h[elf.EI_DATA]) == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	var shoff, shentsize, shnum, shstrndx uint64
	is64 := elf.Class(h[elf.EI_CLASS]) == elf.ELFCLASS64
	if is64 {
		shoff, shentsize, shnum, shstrndx = bo.Uint64(h[0x28:]), uint64(bo.Uint16(h[0x3a:])), uint64(bo.Uint16(h[0x3c:])), uint64(bo.Uint16(h[0x3e:]))
	} else {
		shoff, shentsize, shnum, shstrndx = uint64(bo.Uint32(h[0x20:])), uint64(bo.Uint16(h[0x2e:])), uint64(bo.Uint16(h[0x30:])), uint64(bo.Uint16(h[0x32:]))
	}
	if shnum == 0 || shstrndx >= shnum || shentsize < 40 {
		return nil // debug/elf judges the rest
	}
	var sh [64]byte
	if _, err := r.ReadAt(sh[:shentsize&63|40], int64(shoff+shstrndx*shentsize)); err != nil {
		return nil
	}
	size := uint64(bo.Uint32(sh[0x14:]))
	if is64 {
		size = bo.Uint64(sh[0x20:])
	}
	if size > uint64(lim.MaxStringTable) {
		return errTooLarge
	}
	return nil
}

// elfSymbols returns the functions of the symbol section of type typ, and
// the address of runtime.text if it is there. over is true when the
// section or its string table is past the limits and was not read.
func elfSymbols(f *elf.File, typ elf.SectionType, rank int, lim Limits) (out []candidate, runtimeText uint64, over bool) {
	s := sectionOfType(f, typ)
	if s == nil {
		return nil, 0, false
	}
	entsize := uint64(elf.Sym64Size)
	if f.Class == elf.ELFCLASS32 {
		entsize = elf.Sym32Size
	}
	if s.Size/entsize > uint64(lim.MaxSymbols) {
		return nil, 0, true
	}
	if int(s.Link) < len(f.Sections) && f.Sections[s.Link].Size > uint64(lim.MaxStringTable) {
		return nil, 0, true
	}
	read := f.Symbols
	if typ == elf.SHT_DYNSYM {
		read = f.DynamicSymbols
	}
	syms, err := read()
	if err != nil {
		return nil, 0, false
	}
	for _, sym := range syms {
		if sym.Name == "runtime.text" {
			runtimeText = sym.Value
		}
		st := elf.ST_TYPE(sym.Info)
		if (st != elf.STT_FUNC && st != elf.STT_LOOS) || sym.Section == elf.SHN_UNDEF || sym.Value == 0 || sym.Name == "" {
			continue
		}
		name := sym.Name
		if len(name) > maxNameLen {
			name = name[:maxNameLen]
		}
		c := candidate{symbol: symbol{start: sym.Value, name: name}, size: sym.Size,
			secEnd: sym.Value + sym.Size, rank: rankOf(name, elf.ST_BIND(sym.Info), rank)}
		if int(sym.Section) < len(f.Sections) {
			sec := f.Sections[sym.Section]
			c.secEnd = sec.Addr + sec.Size
		}
		out = append(out, c)
	}
	return out, runtimeText, false
}

func sectionOfType(f *elf.File, typ elf.SectionType) *elf.Section {
	for _, s := range f.Sections {
		if s.Type == typ {
			return s
		}
	}
	return nil
}

// maxNotes caps the note bytes read while looking for the build id.
const maxNotes = 64 << 10

// buildID returns the GNU build id as hex, or "".
func buildID(f *elf.File) string {
	for _, p := range f.Progs {
		if p.Type == elf.PT_NOTE {
			if id := noteBuildID(p.Open(), p.Filesz, f.ByteOrder); id != "" {
				return id
			}
		}
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NOTE {
			if id := noteBuildID(s.Open(), s.Size, f.ByteOrder); id != "" {
				return id
			}
		}
	}
	return ""
}

func noteBuildID(r io.Reader, size uint64, bo binary.ByteOrder) string {
	if size > maxNotes {
		size = maxNotes
	}
	b := make([]byte, size)
	n, _ := io.ReadFull(r, b)
	b = b[:n]
	for len(b) >= 12 {
		namesz, descsz, typ := uint64(bo.Uint32(b)), uint64(bo.Uint32(b[4:])), bo.Uint32(b[8:])
		nameEnd := 12 + (namesz+3)&^3
		descEnd := nameEnd + (descsz+3)&^3
		if nameEnd > uint64(len(b)) || descEnd > uint64(len(b)) || 12+namesz > uint64(len(b)) {
			return ""
		}
		if typ == 3 && bytes.Equal(b[12:12+namesz], []byte("GNU\x00")) {
			return hex.EncodeToString(b[nameEnd : nameEnd+descsz])
		}
		b = b[descEnd:]
	}
	return ""
}
