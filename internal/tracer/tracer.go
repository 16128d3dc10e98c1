//go:build linux

// Package tracer loads the eBPF program that observes mremap(2), attaches it
// to the kernel, and reads what it reports: one Call per mremap(2) from the
// ring buffer, and the Aggregates the kernel keeps for metrics.
//
// By concern: facts.go probes what the kernel offers, once; plan.go chooses
// from those facts how to run (probe mode, pairing, mapping lookup, 32-bit
// callers), with typed reasons; load.go loads the programs the plan needs;
// attach.go attaches them, exits first; read.go and decode.go read the ring
// buffer; aggregates_read.go reads the aggregate maps; missed.go counts the
// returns the kernel's kretprobes missed. The tracer speaks in kernel terms
// only: its caller turns the plan and the errors into its users' words.
package tracer

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// membarrierCmdGlobal is MEMBARRIER_CMD_GLOBAL from <linux/membarrier.h>.
const membarrierCmdGlobal = 1

// Tracer is the loaded and attached eBPF program.
type Tracer struct {
	plan Plan
	objs *objects

	linksMu     sync.Mutex // guards links and kretprobes against Stop
	links       []link.Link
	kretprobes  *kretprobes
	ia32        *ia32Watcher // with Ia32RawTracepoints; stopped with the links
	finalMissed uint64       // probe misses when Stop detached the probes
	stopped     atomic.Bool

	reader  *ringbuf.Reader // nil without Options.Events
	record  ringbuf.Record
	decoder decoder
	clockAt time.Time // when the decoder's clock was measured
	// sinceClock counts the records read since the clock was checked.
	sinceClock int
	pollAt     time.Time // the reader's deadline
	// malformed counts the ring buffer records Read skipped because they
	// were truncated or corrupt (Drops.MalformedRecord).
	malformed atomic.Uint64
}

// New checks privileges, probes the kernel, chooses a plan, then loads and
// attaches the programs. With ProbeAuto, if attaching kprobes fails it falls
// back to tracepoint mode, and the plan says why. Close releases everything.
func New(opts Options) (*Tracer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	facts, err := prepare()
	if err != nil {
		return nil, err
	}
	plan, err := facts.plan(opts)
	if err != nil {
		return nil, err
	}
	// A collector that was killed left its tracefs kretprobes behind,
	// whichever mode this one runs in.
	removeStaleKprobes(facts.tracefs)

	t, err := open(opts, plan, facts.tracefs)
	if err != nil && plan.ProbeChoice == ChoiceAuto && plan.Probe == ProbeKprobe {
		if plan, err = facts.fallBack(opts, err); err != nil {
			return nil, err
		}
		t, err = open(opts, plan, facts.tracefs)
	}
	return t, err
}

// open loads and attaches the plan's programs and opens the ring buffer.
func open(opts Options, plan Plan, tracefs string) (_ *Tracer, err error) {
	objs, err := load(opts, plan)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			objs.Close()
		}
	}()

	k := newKretprobes(tracefs)
	links, err := attach(objs, plan, k)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			closeLinks(links)
		}
	}()

	var ia32 *ia32Watcher
	if plan.Ia32 == Ia32RawTracepoints {
		if ia32, err = newIa32Watcher(objs, opts.OnIa32Start, opts.ia32Hold); err != nil {
			return nil, err
		}
		defer func() {
			if err != nil {
				ia32.stop()
			}
		}()
	}

	var reader *ringbuf.Reader
	if opts.Events {
		if reader, err = ringbuf.NewReader(objs.maps.Events); err != nil {
			return nil, fmt.Errorf("open ring buffer reader: %w", err)
		}
	}
	t := &Tracer{
		plan: plan, objs: objs, links: links, kretprobes: k, ia32: ia32,
		reader: reader, decoder: decoder{clock: NewClock()}, clockAt: time.Now(),
	}
	if reader != nil {
		t.setPoll(time.Now().Add(pollInterval))
	}
	return t, nil
}

// Ia32Attached tells whether the raw_syscalls programs that catch 32-bit
// callers in tracepoint mode are attached: with Ia32RawTracepoints, while a
// 32-bit program runs.
func (t *Tracer) Ia32Attached() bool {
	t.linksMu.Lock()
	defer t.linksMu.Unlock()
	if t.ia32 != nil {
		return t.ia32.Attached()
	}
	return t.plan.Ia32 == Ia32RawTracepointsAlways && t.links != nil
}

// stopIa32 stops the watch of 32-bit programs, once (t.linksMu held).
func (t *Tracer) stopIa32() error {
	if t.ia32 == nil {
		return nil
	}
	err := t.ia32.stop()
	t.ia32 = nil
	return err
}

// Probe is the mode the tracer attached in: kprobe or tracepoint.
func (t *Tracer) Probe() Probe { return t.plan.Probe }

// Plan is how the tracer runs, and why.
func (t *Tracer) Plan() Plan { return t.plan }

// probeMissed is the number of returns our kretprobes missed; after Stop,
// the count when they were detached.
func (t *Tracer) probeMissed() (uint64, error) {
	t.linksMu.Lock()
	defer t.linksMu.Unlock()
	if t.stopped.Load() {
		return t.finalMissed, nil
	}
	return t.kretprobes.missed()
}

// Stop detaches the probes, so no new call is observed, and makes Read
// return the records still in the ring buffer, then ErrClosed. The maps stay
// readable until Close.
func (t *Tracer) Stop() error {
	t.linksMu.Lock()
	defer t.linksMu.Unlock()
	if t.stopped.Load() {
		return nil
	}
	// The kretprobes' misses are read from their tracefs events, which go
	// with them: take the last count before.
	missed, err := t.kretprobes.missed()
	t.finalMissed = missed
	errs := []error{err, t.stopIa32(), closeLinks(t.links)}
	t.links = nil
	t.stopped.Store(true)
	// A program that was running on another CPU when its link closed may
	// still submit a record: wait for every CPU to pass an RCU grace
	// period (membarrier's global command runs synchronize_rcu) before the
	// reader takes the end of the ring buffer as the end.
	_, _, _ = unix.Syscall(unix.SYS_MEMBARRIER, membarrierCmdGlobal, 0, 0)
	if t.reader != nil {
		errs = append(errs, t.reader.Flush())
	}
	return errors.Join(errs...)
}

// Close detaches and unloads everything, in reverse order of creation, and
// makes a blocked Read return ErrClosed.
func (t *Tracer) Close() error {
	var errs []error
	if t.reader != nil {
		errs = append(errs, t.reader.Close())
	}
	t.linksMu.Lock()
	errs = append(errs, t.stopIa32(), closeLinks(t.links))
	t.links = nil
	t.linksMu.Unlock()
	errs = append(errs, t.objs.Close())
	return errors.Join(errs...)
}

// closed tells whether a ring buffer read ended because the reader was
// closed.
func closed(err error) bool {
	return errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed)
}

// errFlushed tells whether a read ended at the end of what Stop flushed.
func errFlushed(err error) bool { return errors.Is(err, ringbuf.ErrFlushed) }
