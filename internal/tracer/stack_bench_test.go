//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// BenchmarkCallStack measures what capturing the caller's user stack adds
// to a logged mremap(2) call (tracepoint mode, records read by a
// goroutine, the benchmark's own calls only): CallStack off, then on with
// the benchmark's own stack (about 10 frames), then on with 50 frames more
// (a deep stack: the walk's cost grows with the frames). The
// difference of ns/op is the kernel's cost per call; its record grows from
// 128 to 928 bytes.
func BenchmarkCallStack(b *testing.B) {
	mremaptest.RequireBPF(b)
	for _, c := range []struct {
		on    bool
		extra int
	}{{false, 0}, {true, 0}, {true, 50}} {
		name := fmt.Sprintf("CallStack=%v", c.on)
		if c.extra > 0 {
			name += fmt.Sprintf("/frames+%d", c.extra)
		}
		b.Run(name, func(b *testing.B) {
			tr, err := New(Options{Probe: ProbeTracepoint, Events: true, RingBufferSize: 1 << 24, CallStack: c.on,
				Filter: Filter{PIDs: []uint32{uint32(os.Getpid())}}})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			done := make(chan uint64)
			go func() {
				var n, frames uint64
				for {
					c, err := tr.Read()
					if errors.Is(err, ErrClosed) {
						if n > 0 {
							frames /= n
						}
						done <- frames
						return
					}
					n++
					frames += uint64(len(c.Stack.Addresses))
				}
			}()
			calls := deepStack(c.extra, func() uint64 { return benchMremapLoop(b) })
			if err := tr.Stop(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(<-done), "frames/record")
			a, err := tr.ReadAggregates()
			if err != nil {
				b.Fatal(err)
			}
			benchReportDrops(b, a)
			_ = calls
		})
	}
}

// deepStack runs f n frames deeper.
//
//go:noinline
func deepStack(n int, f func() uint64) uint64 {
	if n == 0 {
		return f()
	}
	return deepStack(n-1, f) + 0
}

// BenchmarkDecodeEventStack is BenchmarkDecodeEvent with a stack of 12
// frames on the record (928 bytes).
func BenchmarkDecodeEventStack(b *testing.B) {
	ips := make([]uint64, 12)
	for i := range ips {
		ips[i] = 0x555500001000 + uint64(i)*0x40
	}
	raw := withStack(eventFields{enterNs: 1, exitNs: 2, comm: comm16("mremap-helper")},
		stackFields{frames: 12, ips: ips, flags: 2})
	clock := ClockWithOffset(1_700_000_000_000_000_000)
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		c, err := decodeEvent(raw, clock)
		if err != nil {
			b.Fatal(err)
		}
		benchCallSink = c
	}
}
