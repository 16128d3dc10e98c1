//go:build linux

package tracer

import (
	"errors"
	"strings"
)

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("tracer closed")

// KernelError says what the running kernel lacks to run the probes.
type KernelError struct {
	Lacks []Lack
}

// Lack is one thing the kernel lacks, in kernel terms, and what needs it.
type Lack struct {
	What string
	For  Need
}

// Need is what needs a kernel feature.
type Need uint8

const (
	NeedAlways       Need = iota // the probes themselves
	NeedCgroupFilter             // Filter.CgroupIDs
	NeedCallStack                // Options.CallStack
)

func (e *KernelError) Error() string {
	what := make([]string, len(e.Lacks))
	for i, l := range e.Lacks {
		what[i] = l.What
	}
	return "this kernel cannot run the mremap probes: " + strings.Join(what, "; ")
}

// ProbeError says why the probe mode asked for cannot run on this kernel.
type ProbeError struct {
	Probe Probe
	Why   string
}

func (e *ProbeError) Error() string { return string(e.Probe) + " mode: " + e.Why }
