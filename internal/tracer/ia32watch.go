//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
)

// ia32Hold is how long the raw_syscalls programs stay attached after the
// last 32-bit program ended, so that one starting again soon is seen at
// once.
const ia32Hold = 10 * time.Second

// ia32Check is how often the watcher looks whether 32-bit programs still
// run.
const ia32Check = time.Second

// Ia32Start is a 32-bit program that began while the raw_syscalls
// programs were detached: its calls are seen from when they were attached,
// Latency after its exec.
type Ia32Start struct {
	TGID    uint32
	Latency time.Duration
}

// ia32Watcher attaches the raw_syscalls programs that catch 32-bit callers
// in tracepoint mode only while a 32-bit program runs: they run on every
// syscall of the host. ia32_procs holds the 32-bit processes (ia32.bpf.h);
// ia32_starts says when one starts.
type ia32Watcher struct {
	objs    *objects
	starts  *ringbuf.Reader
	onStart func(Ia32Start)
	hold    time.Duration
	done    sync.WaitGroup

	mu        sync.Mutex
	links     []link.Link // the raw_syscalls links while attached
	idleSince time.Time   // since when no 32-bit program runs, while attached
}

// newIa32Watcher finds the 32-bit programs running now, attaches the
// raw_syscalls programs if there is one, and watches for more.
func newIa32Watcher(o *objects, onStart func(Ia32Start), hold time.Duration) (*ia32Watcher, error) {
	if err := scanIa32(o); err != nil {
		return nil, err
	}
	starts, err := ringbuf.NewReader(o.maps.Ia32Starts)
	if err != nil {
		return nil, fmt.Errorf("open the ring buffer of 32-bit starts: %w", err)
	}
	if hold == 0 {
		hold = ia32Hold
	}
	w := &ia32Watcher{objs: o, starts: starts, onStart: onStart, hold: hold}
	if w.running() {
		if err := w.attach(); err != nil {
			starts.Close()
			return nil, err
		}
	}
	w.done.Add(1)
	go w.watch()
	return w, nil
}

// scanIa32 runs the task iterator that puts the 32-bit processes running
// now in ia32_procs: the exec tracepoint, attached before, catches the
// ones that start from then on.
func scanIa32(o *objects) error {
	l, err := link.AttachIter(link.IterOptions{Program: o.program(bpf.MremapProgIa32Scan)})
	if err != nil {
		return fmt.Errorf("attach the task iterator that finds 32-bit processes: %w", err)
	}
	defer l.Close()
	r, err := l.Open()
	if err != nil {
		return fmt.Errorf("run the task iterator that finds 32-bit processes: %w", err)
	}
	defer r.Close()
	_, err = io.Copy(io.Discard, r)
	return err
}

// running tells whether a 32-bit process runs.
func (w *ia32Watcher) running() bool {
	var tgid uint32
	var start uint64
	return w.objs.maps.Ia32Procs.Iterate().Next(&tgid, &start)
}

// Attached tells whether the raw_syscalls programs are attached.
func (w *ia32Watcher) Attached() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.links != nil
}

func (w *ia32Watcher) attach() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.idleSince = time.Time{}
	if w.links != nil {
		return nil
	}
	for _, a := range ia32Attachments {
		l, err := attachOne(a, w.objs.program(a.program), nil)
		if err != nil {
			closeLinks(w.links)
			w.links = nil
			return err
		}
		w.links = append(w.links, l)
	}
	return nil
}

// detach detaches the raw_syscalls programs once no 32-bit program has run
// for w.hold.
func (w *ia32Watcher) detachIdle(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.links == nil {
		return
	}
	if w.idleSince.IsZero() {
		w.idleSince = now
		return
	}
	if now.Sub(w.idleSince) >= w.hold {
		closeLinks(w.links)
		w.links, w.idleSince = nil, time.Time{}
	}
}

// watch attaches when a 32-bit program starts, and detaches when none has
// run for a while, until stop.
func (w *ia32Watcher) watch() {
	defer w.done.Done()
	var rec ringbuf.Record
	for {
		w.starts.SetDeadline(time.Now().Add(ia32Check))
		err := w.starts.ReadInto(&rec)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
		case err != nil:
			return // closed
		case len(rec.RawSample) >= int(unsafe.Sizeof(bpf.MremapIa32Start{})):
			attached := w.Attached()
			if err := w.attach(); err == nil && !attached && w.onStart != nil {
				s := (*bpf.MremapIa32Start)(unsafe.Pointer(&rec.RawSample[0]))
				w.onStart(Ia32Start{TGID: s.Tgid, Latency: time.Duration(monotonicNs() - s.ExecNs)})
			}
		}
		if w.running() {
			w.mu.Lock()
			w.idleSince = time.Time{}
			w.mu.Unlock()
		} else {
			w.detachIdle(time.Now())
		}
	}
}

// stop ends the watch and detaches the raw_syscalls programs.
func (w *ia32Watcher) stop() error {
	err := w.starts.Close()
	w.done.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	err = errors.Join(err, closeLinks(w.links))
	w.links = nil
	return err
}

// monotonicNs is CLOCK_MONOTONIC in nanoseconds, bpf_ktime_get_ns's clock.
func monotonicNs() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}
