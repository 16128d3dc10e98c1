//go:build linux

package callstack

import (
	"debug/elf"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// symbol is one function: [start, end) in the file's virtual addresses.
type symbol struct {
	start, end uint64
	name       string // as the file has it (mangled)
}

// load is one PT_LOAD segment: how a file offset becomes a virtual address.
type load struct{ off, vaddr, filesz uint64 }

// table is what one ELF file tells the symbolizer. It is shared by every
// process that maps the file and is never changed once built, except for
// the prologue and call-site facts the slow path learns (both atomic or
// locked).
type table struct {
	syms    []symbol
	loads   []load
	plt     [][2]uint64       // PLT sections' [start, end) vaddrs
	got     map[uint64]string // GOT slot vaddr -> the symbol bound to it
	machine elf.Machine
	goBin   bool // a Go binary: every Go function keeps a frame pointer
	static  bool // no PT_INTERP: the C library, if any, is linked in
	buildID string
	// limited is ReasonOverLimit when a symbol section was too large to
	// read, else Resolved.
	limited Reason
	bytes   int64  // estimated memory held
	image   []byte // the file's bytes, for the vDSO (read from memory)

	demangled sync.Map // symbol index -> demangled name

	fp       []atomic.Uint32 // 2 bits per symbol: fpUnknown, fpYes, fpNo
	moduleFP atomic.Uint32   // for addresses no symbol covers: most functions'
	mu       sync.Mutex
	sites    map[uint64]bool // verified call sites (vaddr of the return address)

	lastUsed atomic.Int64
	evicted  atomic.Bool
}

const (
	fpUnknown = 0
	fpYes     = 1
	fpNo      = 2
	maxSites  = 4096
)

// candidate is a symbol before the table is sorted and deduplicated.
type candidate struct {
	symbol
	size   uint64
	secEnd uint64 // end of its section: where a zero-sized symbol stops
	rank   int    // lower is preferred among symbols at one address
}

// newTable sorts the candidates, keeps one name per address and gives
// zero-sized symbols the extent up to the next symbol.
func newTable(cands []candidate) *table {
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].start != cands[j].start {
			return cands[i].start < cands[j].start
		}
		return cands[i].rank < cands[j].rank
	})
	t := &table{}
	for i, c := range cands {
		if i > 0 && c.start == cands[i-1].start {
			continue
		}
		end := c.start + c.size
		if c.size == 0 {
			end = c.secEnd
			if n := nextStart(cands, i); n != 0 && n < end {
				end = n
			}
		}
		if end <= c.start {
			continue
		}
		t.syms = append(t.syms, symbol{start: c.start, end: end, name: c.name})
		t.bytes += int64(len(c.name)) + 40
	}
	t.fp = make([]atomic.Uint32, (len(t.syms)+15)/16)
	t.bytes += int64(len(t.fp)) * 4
	return t
}

func nextStart(cands []candidate, i int) uint64 {
	for j := i + 1; j < len(cands); j++ {
		if cands[j].start != cands[i].start {
			return cands[j].start
		}
	}
	return 0
}

// rankOf orders names at one address: fewer leading underscores, then
// global over weak over local, then the source (symtab, pclntab, dynsym).
func rankOf(name string, bind elf.SymBind, source int) int {
	under := len(name) - len(strings.TrimLeft(name, "_"))
	b := 2
	switch bind {
	case elf.STB_GLOBAL:
		b = 0
	case elf.STB_WEAK:
		b = 1
	}
	return under*100 + b*10 + source
}

// lookup returns the index of the symbol that covers vaddr, or -1.
func (t *table) lookup(vaddr uint64) int {
	i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].start > vaddr }) - 1
	if i >= 0 && vaddr < t.syms[i].end {
		return i
	}
	return -1
}

// vaddr turns a file offset into the file's virtual address, through the
// PT_LOAD segment that holds it; ok is false when none does.
func (t *table) vaddr(off uint64) (uint64, bool) {
	for _, l := range t.loads {
		if off >= l.off && off < l.off+l.filesz {
			return off - l.off + l.vaddr, true
		}
	}
	return 0, false
}

// fileOff is the inverse of vaddr.
func (t *table) fileOff(va uint64) (uint64, bool) {
	for _, l := range t.loads {
		if va >= l.vaddr && va < l.vaddr+l.filesz {
			return va - l.vaddr + l.off, true
		}
	}
	return 0, false
}

func (t *table) gotName(va uint64) string { return t.got[va] }

func (t *table) inPLT(va uint64) bool {
	for _, r := range t.plt {
		if va >= r[0] && va < r[1] {
			return true
		}
	}
	return false
}

// framePointer says whether symbol i sets up a frame pointer (fpYes,
// fpNo) or is not known yet (fpUnknown).
func (t *table) framePointer(i int) uint32 {
	if t.goBin {
		return fpYes
	}
	return t.fp[i/16].Load() >> (2 * (i % 16)) & 3
}

func (t *table) setFramePointer(i int, v uint32) {
	w := &t.fp[i/16]
	shift := 2 * (i % 16)
	for {
		old := w.Load()
		nw := old&^(3<<shift) | v<<shift
		if w.CompareAndSwap(old, nw) {
			return
		}
	}
}

// site returns whether the call site at return address va was verified,
// and whether it has been checked at all.
func (t *table) site(va uint64) (verified, known bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	verified, known = t.sites[va]
	return
}

func (t *table) setSite(va uint64, verified bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sites == nil || len(t.sites) >= maxSites {
		t.sites = make(map[uint64]bool)
	}
	t.sites[va] = verified
}
