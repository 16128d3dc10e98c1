package tracer

// The rules of the kernel that the tracer's callers check their
// configuration against: the same on every platform, so that a
// configuration is validated where the tracer itself cannot run.

import (
	"fmt"
	"os"
)

// Probe is how the tracer attaches to mremap(2).
type Probe string

const (
	// ProbeAuto takes kprobe where the kernel supports kprobes, else tracepoint.
	ProbeAuto Probe = "auto"
	// ProbeKprobe attaches a kprobe and a kretprobe to the syscall's arch
	// wrapper (__x64_sys_mremap, and __ia32_sys_mremap where it exists).
	ProbeKprobe Probe = "kprobe"
	// ProbeTracepoint attaches to syscalls:sys_enter_mremap and
	// syscalls:sys_exit_mremap.
	ProbeTracepoint Probe = "tracepoint"
)

func (p Probe) String() string { return string(p) }

// ParseProbe checks a probe name.
func ParseProbe(s string) (Probe, error) {
	switch p := Probe(s); p {
	case ProbeAuto, ProbeKprobe, ProbeTracepoint:
		return p, nil
	}
	return "", fmt.Errorf("unknown probe %q: want auto, kprobe or tracepoint", s)
}

// MaxCommLen is the longest process name the kernel keeps (TASK_COMM_LEN-1).
const MaxCommLen = 15

// MaxRingBufferSize is the largest BPF ring buffer the kernel creates.
const MaxRingBufferSize = 1 << 31

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
