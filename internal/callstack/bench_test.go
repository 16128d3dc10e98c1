//go:build linux

package callstack

import (
	"os"
	"testing"
)

// BenchmarkCached20: a 20-frame stack of a live process, every file
// already parsed, walked: what the ring-buffer reader pays for a stack
// it has not seen in the last MapsRefresh.
func BenchmarkCached20(b *testing.B) {
	r := start(b, helper(b, "c-dynamic"), "print", "14")
	req := Request{PID: r.pid(), Addresses: r.addrs}
	if len(req.Addresses) != 20 {
		b.Fatalf("%d frames, want 20", len(req.Addresses))
	}
	s := New(Config{})
	s.Symbolize(req)
	if _, ok := s.Cached(req); !ok {
		b.Fatal("not cached")
	}
	b.ReportAllocs()
	for b.Loop() {
		s.memo.mu.Lock()
		s.memo.entries = nil // walk, every time
		s.memo.mu.Unlock()
		s.Cached(req)
	}
}

// BenchmarkMemo20: the same stack captured again (a call from where an
// earlier one was, the usual case): the memo's answer.
func BenchmarkMemo20(b *testing.B) {
	r := start(b, helper(b, "c-dynamic"), "print", "14")
	req := Request{PID: r.pid(), Addresses: r.addrs}
	s := New(Config{})
	s.Symbolize(req)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Cached(req); !ok {
			b.Fatal("not cached")
		}
	}
}

// BenchmarkColdParse: parsing a file the first time (the slow path).
func BenchmarkColdParse(b *testing.B) {
	for _, bin := range []string{"/usr/lib/x86_64-linux-gnu/libc.so.6", "c-static", "go"} {
		path := bin
		if bin[0] != '/' {
			path = helper(b, bin)
		}
		b.Run(bin, func(b *testing.B) {
			f, err := os.Open(path)
			if err != nil {
				b.Skip(err)
			}
			defer f.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parseELF(f, DefaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
