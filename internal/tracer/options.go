//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"os"
)

// MaxCommLen is the longest process name the kernel keeps (TASK_COMM_LEN-1).
const MaxCommLen = 15

// MaxRingBufferSize is the largest BPF ring buffer the kernel creates.
const MaxRingBufferSize = 1 << 31

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
	Filter              Filter

	// pairing overrides the kernel's choice of where calls in flight are
	// kept (for tests and benchmarks of both on one kernel).
	pairing Pairing
}

// CheckRingBufferSize is the kernel's rule for a BPF ring buffer's size: a
// power of two and a multiple of the page size, at most MaxRingBufferSize.
func CheckRingBufferSize(n int) error {
	page := os.Getpagesize()
	if n < page || n&(n-1) != 0 || n > MaxRingBufferSize {
		return fmt.Errorf("must be a power of two of at least one page (%d bytes) and at most 2 GiB, got %d", page, n)
	}
	return nil
}

// CheckComm is the kernel's rule for a process name: 1 to MaxCommLen bytes.
func CheckComm(c string) error {
	if c == "" || len(c) > MaxCommLen {
		return fmt.Errorf("process name %q must be 1 to %d characters (the kernel's comm length)", c, MaxCommLen)
	}
	return nil
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
