//go:build linux

package callstack

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParseELF: any bytes parse to an error or a table whose lookups stay
// in bounds, never a panic or an unbounded allocation.
func FuzzParseELF(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := parseELF(bytes.NewReader(data), Limits{MaxSymbols: 1 << 14, MaxStringTable: 1 << 20, MaxPclntab: 1 << 20})
		if err != nil {
			return
		}
		for _, va := range []uint64{0, 0x1000, 0x401000, ^uint64(0)} {
			if i := tab.lookup(va); i >= 0 {
				_ = tab.name(i)
			}
			tab.vaddr(va)
			tab.fileOff(va)
		}
	})
}

// FuzzParsePclntab: debug/gosym's panics on bad tables become errors.
func FuzzParsePclntab(f *testing.F) {
	f.Add([]byte("\xf1\xff\xff\xff\x00\x00\x01\x08"), uint64(0x401000))
	f.Fuzz(func(t *testing.T, data []byte, text uint64) {
		out, err := parsePclntab(data, text, 1<<14)
		if err == nil {
			newTable(out)
		}
	})
}

// FuzzParseMaps: any /proc/PID/maps text parses or fails cleanly.
func FuzzParseMaps(f *testing.F) {
	f.Add("55d4c8a00000-55d4c8a02000 r-xp 00002000 fd:01 1234   /usr/bin/a b (deleted)\n7ffd1e3f0000-7ffd1e3f2000 r-xp 00000000 00:00 0  [vdso]\n")
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := parseMaps(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.end <= m.start {
				t.Fatalf("mapping %x-%x", m.start, m.end)
			}
			find(ms, m.start)
		}
	})
}
