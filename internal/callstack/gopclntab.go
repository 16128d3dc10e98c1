//go:build linux

package callstack

import (
	"debug/elf"
	"debug/gosym"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// goSymbols reads the functions of a Go binary from .gopclntab, which
// stripping leaves in place. over is true when it is past the limits.
func goSymbols(f *elf.File, runtimeText uint64, lim Limits) (out []candidate, over bool) {
	s := f.Section(".gopclntab")
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil, false
	}
	if s.Size > uint64(lim.MaxPclntab) {
		return nil, true
	}
	data, err := s.Data()
	if err != nil {
		return nil, false
	}
	text := runtimeText
	if text == 0 {
		// Without symbols, the Go functions begin at .text when the Go
		// linker laid it out (internal linking); the entry point, which
		// is then Go's _rt0_*, checks that below.
		if t := f.Section(".text"); t != nil {
			text = t.Addr
		}
	}
	out, err = parsePclntab(data, text, lim.MaxSymbols)
	if errors.Is(err, errTooManyFuncs) {
		return nil, true
	}
	if err != nil || (runtimeText == 0 && !entryIsGo(out, f.Entry)) {
		// An externally linked (cgo) binary without .symtab: where Go's
		// text begins is unknown, so no name rather than a wrong one.
		return nil, false
	}
	return out, false
}

var errTooManyFuncs = errors.New("too many functions")

// parsePclntab lists the functions of a pclntab whose text begins at
// text. It never panics on bad input: debug/gosym's panics become errors.
func parsePclntab(data []byte, text uint64, max int) (out []candidate, err error) {
	defer func() {
		if p := recover(); p != nil {
			out, err = nil, fmt.Errorf("%w: pclntab: %v", errBadELF, p)
		}
	}()
	if err := checkPclnHeader(data, max); err != nil {
		return nil, err
	}
	lt := gosym.NewLineTable(data, text)
	tab, err := gosym.NewTable(nil, lt)
	if err != nil {
		return nil, fmt.Errorf("%w: pclntab: %w", errBadELF, err)
	}
	if len(tab.Funcs) > max {
		return nil, errTooManyFuncs
	}
	out = make([]candidate, 0, len(tab.Funcs))
	for i := range tab.Funcs {
		fn := &tab.Funcs[i]
		if fn.End <= fn.Entry || fn.Name == "" {
			continue
		}
		name := fn.Name
		if len(name) > maxNameLen {
			name = name[:maxNameLen]
		}
		out = append(out, candidate{symbol: symbol{start: fn.Entry, end: fn.End, name: name},
			size: fn.End - fn.Entry, secEnd: fn.End, rank: rankOf(name, elf.STB_GLOBAL, 0)})
	}
	return out, nil
}

// checkPclnHeader bounds the counts debug/gosym allocates from before it
// reads anything else: nfunc (and, since Go 1.16, nfiles) at offset 8,
// each as wide as a pointer. A table cannot hold more functions than it
// has bytes for their entries.
func checkPclnHeader(data []byte, max int) error {
	if len(data) < 16 || (data[7] != 4 && data[7] != 8) {
		return fmt.Errorf("%w: pclntab: short header", errBadELF)
	}
	ptr := int(data[7])
	word := func(off int) uint64 {
		if off+ptr > len(data) {
			return ^uint64(0)
		}
		if ptr == 4 {
			return uint64(binary.LittleEndian.Uint32(data[off:]))
		}
		return binary.LittleEndian.Uint64(data[off:])
	}
	nfunc, nfiles := word(8), word(8+ptr)
	if nfunc > uint64(max) {
		return errTooManyFuncs
	}
	if nfunc*8 > uint64(len(data)) || nfiles > uint64(len(data)) {
		return fmt.Errorf("%w: pclntab: counts past its size", errBadELF)
	}
	return nil
}

func entryIsGo(funcs []candidate, entry uint64) bool {
	for _, c := range funcs {
		if entry >= c.start && entry < c.start+c.size {
			return strings.HasPrefix(c.name, "_rt0_")
		}
	}
	return false
}
