//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"time"
)

// Filter selects calls in the kernel. The zero Filter selects everything.
type Filter struct {
	PIDs         []uint32 // process ids (tgid) to keep
	Comms        []string // process names to keep
	ExcludeComms []string // process names to drop
	// CgroupIDs are cgroup v2 ids (see CgroupID): a call is kept if the
	// calling task's cgroup or one of its ancestors is one of them.
	CgroupIDs []uint64
	// MinSizeDelta drops calls whose abs(new_size - old_size) is smaller,
	// from records and aggregates alike.
	MinSizeDelta uint64
	// ErrorsOnly submits records only for failed calls; aggregates still
	// count every selected call.
	ErrorsOnly bool
}

// Options configure a Tracer.
type Options struct {
	// Probe is the attach mode wanted; ProbeAuto lets the kernel's facts
	// decide.
	Probe Probe
	// Events makes the kernel submit one record per call to the ring
	// buffer, for Read. Without it only Aggregates are kept.
	Events bool
	// RingBufferSize in bytes (CheckRingBufferSize). Used only with
	// Events.
	RingBufferSize int
	// MaxEventsPerSecond caps the records submitted; 0 means no cap.
	MaxEventsPerSecond uint64
	// SkipVMALookup leaves out the lookup, at each call's entry, of the
	// mapping at old_address (Call.VMA stays empty). The lookup takes the
	// mm's mmap lock for reading.
	SkipVMALookup bool
	// SkipIa32Tracepoints leaves out, in tracepoint mode, the raw_syscalls
	// programs that catch 32-bit (ia32) callers: they run on every syscall
	// of the host, so 32-bit mremap calls go unseen in exchange for that
	// cost. Kprobe mode is not affected.
	SkipIa32Tracepoints bool
	// CallStack makes the kernel capture, on each record, the calling
	// thread's user stack (Call.Stack): the frame-pointer walk, and what
	// recovers the caller of a leaf stub. Used only with Events.
	CallStack bool
	Filter    Filter
	// OnIa32Start is called, from a goroutine of the tracer, for each
	// 32-bit program that starts while none runs, in tracepoint mode: its
	// calls are seen from when the raw_syscalls programs are attached.
	OnIa32Start func(Ia32Start)

	// pairing overrides the kernel's choice of where calls in flight are
	// kept (for tests and benchmarks of both on one kernel).
	pairing Pairing
	// preallocate allocates the aggregation hashes at load, as on kernels
	// before 6.1 (for tests of that path on a newer kernel).
	preallocate bool
	// ia32Hold overrides ia32Hold (for tests).
	ia32Hold time.Duration
}

func (o Options) validate() error {
	var errs []error
	if _, err := ParseProbe(string(o.Probe)); err != nil {
		errs = append(errs, err)
	}
	if o.Events {
		if err := CheckRingBufferSize(o.RingBufferSize); err != nil {
			errs = append(errs, fmt.Errorf("ring buffer size: %w", err))
		}
	}
	for _, c := range append(append([]string{}, o.Filter.Comms...), o.Filter.ExcludeComms...) {
		if err := CheckComm(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
