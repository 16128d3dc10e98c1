//go:build linux

package callstack

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// badELFs writes files made from the real static helper: truncated,
// corrupt, and one that claims huge symbol tables (sparse, 4 GiB).
func badELFs(t *testing.T) map[string]string {
	good, err := os.ReadFile(helper(t, "c-static"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := map[string]string{}
	write := func(name string, b []byte) {
		out[name] = filepath.Join(dir, name)
		if err := os.WriteFile(out[name], b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("truncated", good[:len(good)/3])
	corrupt := bytes.Clone(good)
	for i := 64; i < len(corrupt); i += 97 {
		corrupt[i] ^= 0x5a
	}
	write("corrupt", corrupt)
	write("huge", hugeSymtab(t, good))
	if err := os.Truncate(out["huge"], 4<<30); err != nil {
		t.Fatal(err)
	}
	return out
}

// hugeSymtab sets the .symtab and .strtab sizes to 3 GiB.
func hugeSymtab(t *testing.T, good []byte) []byte {
	b := bytes.Clone(good)
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	shoff := binary.LittleEndian.Uint64(b[0x28:])
	for i, s := range f.Sections {
		if s.Type == elf.SHT_SYMTAB || s.Type == elf.SHT_STRTAB {
			binary.LittleEndian.PutUint64(b[shoff+uint64(i)*64+32:], 3<<30)
		}
	}
	return b
}

// TestBadELF: each bad file parses to an error or a bounded table, never
// a panic; mapped into a live process it gives module+offset frames.
func TestBadELF(t *testing.T) {
	for name, path := range badELFs(t) {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tab, err := parseELF(f, DefaultLimits)
			if name == "huge" && !errors.Is(err, errTooLarge) && (err != nil || tab.limited != ReasonOverLimit) {
				t.Errorf("huge: %v, want it refused or over_limit", err)
			}
			r := start(t, helper(t, "c-dynamic"), "map", path)
			st := New(Config{}).Symbolize(Request{PID: r.pid(), Addresses: []uint64{r.addrs[0] + 0x10}})
			fr := st.Frames[0]
			t.Logf("parse: %v; frame %s (%s)", err, fr.String(), fr.Reason)
			if fr.Function != "" || fr.Module != path {
				t.Errorf("frame %s: want module+offset", fr.String())
			}
		})
	}
}

// TestLimits: a file past MaxSymbols keeps the sources that fit, and the
// addresses only the skipped ones would name are module+offset.
func TestLimits(t *testing.T) {
	r := start(t, helper(t, "c-static"), "print")
	st := printed(t, New(Config{Limits: Limits{MaxSymbols: 100, MaxStringTable: 1 << 20, MaxPclntab: 1 << 20}}), r)
	for _, f := range st.Frames {
		if f.Function != "" || f.Reason != ReasonOverLimit {
			t.Errorf("frame %s (%s): want module+offset, over_limit", f.String(), f.Reason)
		}
	}
}

// TestCacheShared: processes of one binary, and a copy of it at another
// path (another inode, the same build id), parse it once.
func TestCacheShared(t *testing.T) {
	bin := helper(t, "c-static")
	cp := filepath.Join(t.TempDir(), "copy")
	copyFile(t, bin, cp)
	s := New(Config{})
	for _, b := range []string{bin, bin, bin, cp} {
		wantC(t, printed(t, s, start(t, b, "print")))
	}
	if st := s.Stats(); st.FileParses != 1 || st.Processes != 4 {
		t.Errorf("stats %+v: want 1 parse for 4 processes", st)
	}
}

// TestCacheBound: with a budget smaller than two tables, tables are
// evicted and parsed again, and every stack is still named right.
func TestCacheBound(t *testing.T) {
	var sizes []int64
	for _, b := range []string{"c-static", "go"} {
		f, err := os.Open(helper(t, b))
		if err != nil {
			t.Fatal(err)
		}
		tab, err := parseELF(f, DefaultLimits)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, tab.bytes)
	}
	budget := max(sizes[0], sizes[1]) + min(sizes[0], sizes[1])/2
	s := New(Config{CacheBytes: budget})
	for i := 0; i < 2; i++ {
		for _, b := range []string{"c-static", "go"} {
			r := start(t, helper(t, b), "print")
			st := printed(t, s, r)
			if st.Frames[0].Function == "" {
				t.Errorf("%s: frame 0 unnamed", b)
			}
			r.stop()
		}
	}
	if st := s.Stats(); st.TableEvictions == 0 || st.TableBytes > budget || st.FileParses != 4 {
		t.Errorf("stats %+v: want evictions, 4 parses, at most %d bytes held", st, budget)
	}
}

// TestQueue: Cached answers from memory or says pending; the queue
// resolves a pending stack in the background; a full queue answers at
// once with ReasonPending.
func TestQueue(t *testing.T) {
	r := start(t, helper(t, "c-dynamic"), "print")
	req := Request{PID: r.pid(), Addresses: r.addrs}
	s := New(Config{})
	if st, ok := s.Cached(req); ok || st.Unresolved != ReasonPending || len(st.Frames) != len(req.Addresses) {
		t.Fatalf("cold Cached: ok=%v unresolved=%s frames=%d", ok, st.Unresolved, len(st.Frames))
	}
	done := make(chan Stack, 1)
	block := make(chan struct{})
	q := NewQueue(s, 1, func(item int, st Stack) {
		<-block
		done <- st
	})
	if st, ok := q.Submit(req, 1); ok || st.Unresolved != ReasonPending || len(st.Frames) != len(req.Addresses) {
		t.Fatalf("Submit of a cold stack: ok=%v unresolved=%s frames=%d; want it queued, with what the cache had", ok, st.Unresolved, len(st.Frames))
	}
	// The worker holds item 1 in done; one more fills the queue.
	for i := 0; ; i++ {
		st, ok := q.Submit(req, 2)
		if ok {
			if st.Unresolved != ReasonPending || s.Stats().QueueFull != 1 {
				t.Errorf("full queue: unresolved=%s stats %+v", st.Unresolved, s.Stats())
			}
			break
		}
		if i > 1 {
			t.Fatal("a queue of 1 took 3 stacks")
		}
	}
	close(block)
	wantC(t, <-done)
	q.Close()
	if st, ok := s.Cached(req); !ok {
		t.Errorf("warm Cached: pending\n%s", st.Trace)
	} else {
		wantC(t, st)
	}
}

// TestVDSO: an address in the vDSO is named from the ELF image the
// kernel maps into the process.
func TestVDSO(t *testing.T) {
	ms, err := readMaps("/proc", uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.kind != mappingVDSO {
			continue
		}
		s := New(Config{})
		w := walker{s: s, req: &Request{PID: uint32(os.Getpid()), Addresses: []uint64{1}}, io: true}
		w.loadProcess()
		res := w.resolve(find(w.pm.ms, m.start))
		tab := res.file.tableOf()
		if tab == nil || len(tab.syms) == 0 {
			t.Fatalf("vdso: no table (%s)", res.reason)
		}
		sym := tab.syms[0]
		st := s.Symbolize(Request{PID: uint32(os.Getpid()), Addresses: []uint64{m.start + sym.start + 2}})
		if f := st.Frames[0]; f.Function != sym.name || f.Module != "[vdso]" || !isSystem(&st.Frames[0]) && st.Function != "" {
			t.Errorf("frame %s, function %q: want %s in [vdso], not the application", f.String(), st.Function, sym.name)
		}
		return
	}
	t.Skip("no [vdso] mapping")
}
