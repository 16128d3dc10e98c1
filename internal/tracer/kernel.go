package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
)

// kernel is what the running kernel offers the tracer, found by probing it
// before anything is loaded, so that a missing feature gets a message that
// says what is missing rather than a verifier or loader error.
type kernel struct {
	// ringBuf is nil if the kernel has BPF ring buffers (Linux 5.8+),
	// which carry the per-call records.
	ringBuf error
	// btf is nil if the kernel describes its own types in BTF
	// (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): CO-RE relocates
	// the program's reads of kernel structs against it.
	btf error
	// kprobes and kprobesWhy: can kprobes be attached, and why (not).
	kprobes    bool
	kprobesWhy string
	// tracepoints is nil if syscalls:sys_{enter,exit}_mremap exist
	// (CONFIG_FTRACE_SYSCALLS).
	tracepoints error
}

// errTracefsDenied: tracefs exists but this process may not read it.
var errTracefsDenied = errors.New("tracefs is not readable")

// probeKernel asks the running kernel.
func probeKernel(tracefs string) kernel {
	k := kernel{ringBuf: features.HaveMapType(ebpf.RingBuf)}
	if _, err := btf.LoadKernelSpec(); err != nil {
		k.btf = err
	}
	k.kprobes, k.kprobesWhy = kprobeSupport(tracefs)
	k.tracepoints = syscallTracepoints(tracefs)
	return k
}

// syscallTracepoints tells whether mremap's syscall tracepoints exist.
func syscallTracepoints(tracefs string) error {
	var errs []error
	for _, name := range []string{"sys_enter_mremap", "sys_exit_mremap"} {
		path := tracefs + "/events/syscalls/" + name + "/id"
		f, err := os.Open(path)
		switch {
		case err == nil:
			f.Close()
		case errors.Is(err, os.ErrPermission):
			return fmt.Errorf("%w: %v", errTracefsDenied, err)
		case errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("no %s", path))
		default:
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("the kernel has no syscall tracepoints for mremap (%v; CONFIG_FTRACE_SYSCALLS is off)", errors.Join(errs...))
	}
	return nil
}

// choose picks the probe mode for want, and says why; or it says what the
// kernel lacks. It decides from k alone, so that each case can be tested.
func (k kernel) choose(want Probe) (Probe, string, error) {
	var lacks []string
	if k.ringBuf != nil {
		lacks = append(lacks, fmt.Sprintf("the kernel has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8 or later; %v), which carries the per-call records", k.ringBuf))
	}
	if k.btf != nil {
		lacks = append(lacks, fmt.Sprintf("the kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF; %v), so CO-RE cannot fit the eBPF program to its structs", k.btf))
	}
	if !k.kprobes && k.tracepoints != nil {
		lacks = append(lacks, fmt.Sprintf("the kernel has neither kprobes (%s) nor syscall tracepoints (%v)", k.kprobesWhy, k.tracepoints))
	}
	if len(lacks) > 0 {
		return "", "", fmt.Errorf("this kernel cannot run the mremap probes: %s", strings.Join(lacks, "; "))
	}

	switch want {
	case ProbeKprobe:
		if !k.kprobes {
			return "", "", fmt.Errorf("probe kprobe: %s", k.kprobesWhy)
		}
		return ProbeKprobe, "probe kprobe was configured", nil
	case ProbeTracepoint:
		if k.tracepoints != nil {
			return "", "", fmt.Errorf("probe tracepoint: %v", k.tracepoints)
		}
		return ProbeTracepoint, "probe tracepoint was configured", nil
	case ProbeAuto:
		if k.kprobes {
			return ProbeKprobe, "probe auto chose kprobe: " + k.kprobesWhy, nil
		}
		return ProbeTracepoint, "probe auto chose tracepoint: " + k.kprobesWhy, nil
	}
	return "", "", fmt.Errorf("unknown probe %q", want)
}
