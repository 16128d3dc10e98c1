//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

var benchCallSink mremap.Call

// benchRawEvent is a ring buffer record as the kernel writes it: the C
// struct event in host byte order and layout.
func benchRawEvent() []byte {
	e := bpf.MremapEvent{
		EnterNs:    1_000_000_000,
		ExitNs:     1_000_002_500,
		OldAddress: 0x7f3a2c000000,
		OldSize:    4096,
		NewSize:    8192,
		Flags:      mremap.FlagMayMove,
		Ret:        0x7f3a2c100000,
		Tgid:       4242,
		Tid:        4243,
		Ppid:       1,
		Uid:        1000,
	}
	for i, c := range []byte("mremap-helper") {
		e.Comm[i] = int8(c)
	}
	raw := make([]byte, unsafe.Sizeof(e))
	copy(raw, unsafe.Slice((*byte)(unsafe.Pointer(&e)), unsafe.Sizeof(e)))
	return raw
}

// BenchmarkDecodeEvent decodes one record again and again, as the reader
// does a run of records of one process.
func BenchmarkDecodeEvent(b *testing.B) {
	raw := benchRawEvent()
	d := decoder{clock: ClockWithOffset(1_700_000_000_000_000_000)}
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		c, err := d.decode(raw)
		if err != nil {
			b.Fatal(err)
		}
		benchCallSink = c
	}
}

// BenchmarkSyscallOverhead measures one real mremap(2) call: each op
// alternately shrinks a 2-page anonymous mapping to 1 page and grows it back
// in place (flags 0), with nothing attached, with the tracer keeping only
// aggregates, and with the tracer also submitting one ring buffer record per
// call that a goroutine reads. Compare the ns/op of the sub-benchmarks; the
// difference is what observation costs per call. The -lru sub-benchmarks
// pair entry and exit in the LRU hash of PREEMPT_RT kernels; the others in
// the kernel's own choice.
func BenchmarkSyscallOverhead(b *testing.B) {
	mremaptest.RequireBPF(b)

	b.Run("no-probe", func(b *testing.B) {
		benchMremapLoop(b)
	})
	for _, p := range []struct {
		suffix  string
		pairing Pairing
	}{{"", pairingAuto}, {"-lru", PairingLRU}} {
		benchObserved(b, p.suffix, p.pairing)
	}
}

func benchObserved(b *testing.B, suffix string, pairing Pairing) {
	b.Run("metrics-only"+suffix, func(b *testing.B) {
		tr, err := New(Options{Probe: ProbeAuto, pairing: pairing})
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		b.Logf("%+v", tr.Plan())
		calls := benchMremapLoop(b)
		a, err := tr.ReadAggregates()
		if err != nil {
			b.Fatal(err)
		}
		var counted uint64
		for _, cc := range a.Calls {
			counted += cc.Count
		}
		// Every call on the host is counted, ours and others'.
		if counted < calls {
			b.Errorf("aggregates count %d calls, the loop made %d", counted, calls)
		}
		benchReportDrops(b, a)
	})

	b.Run("logs+metrics"+suffix, func(b *testing.B) {
		tr, err := New(Options{Probe: ProbeAuto, Events: true, RingBufferSize: 1 << 22, pairing: pairing})
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		b.Logf("%+v", tr.Plan())

		pid := uint32(os.Getpid())
		type counts struct{ all, own uint64 }
		done := make(chan counts)
		go func() {
			var n counts
			for {
				c, err := tr.Read()
				if errors.Is(err, ErrClosed) {
					done <- n
					return
				}
				if err != nil {
					b.Error(err)
					continue
				}
				n.all++
				if c.Process.PID == pid {
					n.own++
				}
			}
		}()

		calls := benchMremapLoop(b)

		// Detach, then read what is left: Read returns ErrClosed once the
		// ring buffer is empty.
		if err := tr.Stop(); err != nil {
			b.Fatal(err)
		}
		n := <-done
		a, err := tr.ReadAggregates()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n.all), "records")
		benchReportDrops(b, a)
		// Nothing is lost silently: each of our calls was read, or a drop
		// was counted (the drops may include other processes' calls).
		if n.own+a.Drops.RingBufferFull+a.Drops.RateLimited < calls {
			b.Errorf("the loop made %d calls; read %d of them, %d dropped (ring_buffer_full %d, rate_limited %d)",
				calls, n.own, a.Drops.RingBufferFull+a.Drops.RateLimited, a.Drops.RingBufferFull, a.Drops.RateLimited)
		}
		b.Logf("calls %d, records read %d (%d of this process), ring_buffer_full %d",
			calls, n.all, n.own, a.Drops.RingBufferFull)
	})
}

// benchMremapLoop makes one mremap(2) call per op on a locked OS thread and
// returns how many it made.
func benchMremapLoop(b *testing.B) uint64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	page := uintptr(os.Getpagesize())
	m, err := unix.Mmap(-1, 0, int(2*page), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		b.Fatal(err)
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
	size := 2 * page
	defer unix.Syscall(unix.SYS_MUNMAP, addr, size, 0)

	var calls uint64
	for b.Loop() {
		newSize := page
		if size == page {
			newSize = 2 * page
		}
		r, _, errno := unix.Syscall6(unix.SYS_MREMAP, addr, size, newSize, 0, 0, 0)
		if errno != 0 || r != addr {
			b.Fatalf("mremap(%#x, %d, %d, 0) = %#x, %v", addr, size, newSize, r, errno)
		}
		size = newSize
		calls++
	}
	return calls
}

func benchReportDrops(b *testing.B, a *Aggregates) {
	b.ReportMetric(float64(a.Drops.RingBufferFull), "ringbuf-full-drops")
	if d := a.Drops.Unpaired + a.Drops.CardinalityLimit + a.Drops.RateLimited + a.Drops.ProbeMissed; d > 0 {
		b.ReportMetric(float64(d), "other-drops")
	}
}

// BenchmarkUnrelatedSyscall measures what the tracer adds to a syscall
// other than mremap (getppid), on a locked thread: with nothing attached;
// in tracepoint mode without the ia32 raw tracepoints (the cost of the
// syscall tracepoint machinery, which the mremap tracepoints switch on for
// every syscall); and in tracepoint mode with them (on x86-64 kernels with
// ia32 emulation), which run a program on every syscall's entry and exit.
// The last two differ by what the raw_syscalls programs cost.
func BenchmarkUnrelatedSyscall(b *testing.B) {
	mremaptest.RequireBPF(b)
	loop := func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for b.Loop() {
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
	}
	b.Run("no-probe", loop)
	for _, mode := range []struct {
		name     string
		skipIa32 bool
	}{{"tracepoint-without-ia32", true}, {"tracepoint", false}} {
		b.Run(mode.name, func(b *testing.B) {
			tr, err := New(Options{Probe: ProbeTracepoint, Events: true, RingBufferSize: 1 << 20, SkipIa32Tracepoints: mode.skipIa32})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			if !mode.skipIa32 && tr.plan.Ia32 != Ia32RawTracepoints {
				b.Skip("no ia32 raw tracepoints on this kernel")
			}
			loop(b)
		})
	}
}

// BenchmarkVMALookup measures what the lookup of the mapping at old_address
// adds to a mremap call (tracepoint mode, records read by a goroutine): on
// an anonymous mapping, and on a shared mapping of a file in /dev/shm,
// whose path the kernel builds (two names and a mount point).
func BenchmarkVMALookup(b *testing.B) {
	mremaptest.RequireBPF(b)
	page := os.Getpagesize()
	anon := func() ([]byte, func(), error) {
		m, err := unix.Mmap(-1, 0, 2*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		return m, func() {}, err
	}
	file := func() ([]byte, func(), error) {
		f, err := os.CreateTemp("/dev/shm", "mremap-bench-*")
		if err != nil {
			return nil, nil, err
		}
		defer f.Close()
		if err := f.Truncate(int64(2 * page)); err != nil {
			return nil, nil, err
		}
		m, err := unix.Mmap(int(f.Fd()), 0, 2*page, unix.PROT_READ, unix.MAP_SHARED)
		return m, func() { os.Remove(f.Name()) }, err
	}
	for _, mapping := range []struct {
		name string
		make func() ([]byte, func(), error)
	}{{"anonymous", anon}, {"file", file}} {
		for _, lookup := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/lookup=%v", mapping.name, lookup), func(b *testing.B) {
				tr, err := New(Options{Probe: ProbeTracepoint, Events: true, RingBufferSize: 1 << 22, SkipVMALookup: !lookup,
					Filter: Filter{PIDs: []uint32{uint32(os.Getpid())}}})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				go func() {
					for {
						if _, err := tr.Read(); errors.Is(err, ErrClosed) {
							return
						}
					}
				}()
				m, cleanup, err := mapping.make()
				if err != nil {
					b.Fatal(err)
				}
				defer cleanup()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				addr := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
				size := uintptr(2 * page)
				for b.Loop() {
					newSize := uintptr(page)
					if size == uintptr(page) {
						newSize = uintptr(2 * page)
					}
					r, _, errno := unix.Syscall6(unix.SYS_MREMAP, addr, size, newSize, 0, 0, 0)
					if errno != 0 || r != addr {
						b.Fatalf("mremap(%#x, %d, %d, 0) = %#x, %v", addr, size, newSize, r, errno)
					}
					size = newSize
				}
				unix.Syscall(unix.SYS_MUNMAP, addr, size, 0)
			})
		}
	}
}
