//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"errors"
	"fmt"
	"strings"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
)

// startupReason says, in the configuration's words, how the probes run and
// why: the probe mode, the pairing, and what is left out.
func startupReason(p tracer.Plan) string {
	parts := []string{probeReason(p), pairingReason(p)}
	if p.PreallocatedAggregates {
		parts = append(parts, "the metrics' maps are allocated at their full size at start (about 12 MiB of kernel memory): before Linux 6.1 a tracing program cannot allocate map elements as keys come")
	}
	if p.VMALookup == tracer.VMALookupKernel {
		parts = append(parts, "vma_lookup is off, so log records have no mremap.vma.* attributes: "+strings.Join(p.VMALookupLacks, "; "))
	}
	for _, u := range p.Unraised {
		parts = append(parts, unraisedReason(u))
	}
	if why := ia32Reason(p); why != "" {
		parts = append(parts, why)
	}
	if why := callStackReason(p); why != "" {
		parts = append(parts, why)
	}
	return strings.Join(parts, "; ")
}

// callStackReason says how call_stack captures the stacks, or why it
// changes nothing.
func callStackReason(p tracer.Plan) string {
	const how = "call_stack: the kernel walks the caller's user stack by its frame pointers (bpf_get_stack) at the syscall's exit of each call that is logged, and the collector symbolizes it"
	switch p.CallStack {
	case tracer.CallStackOn:
		return how
	case tracer.CallStackFramesOnly:
		return how + "; the caller of a function that sets up no frame (glibc's mremap(), syscall()) is not recovered: " + strings.Join(p.CallStackLacks, "; ")
	case tracer.CallStackNoRecords:
		return "call_stack is on but changes nothing: the receiver is in no logs pipeline, and stacks go on log records only"
	}
	return ""
}

// unraisedReason says which signals are not raised, and why.
func unraisedReason(u tracer.Unraised) string {
	var names []string
	u.Signals.Each(func(s mremap.Signal) { names = append(names, s.String()) })
	what := "signal " + names[0] + " is"
	if len(names) > 1 {
		what = "signals " + strings.Join(names, ", ") + " are"
	}
	switch u.Why {
	case tracer.VMALookupSkipped:
		return what + " not raised: vma_lookup is off"
	case tracer.VMALookupKernel:
		return what + " not raised: the kernel cannot look up mappings (above)"
	}
	return what + " not raised: " + strings.Join(u.Lacks, "; ")
}

func probeReason(p tracer.Plan) string {
	switch p.ProbeChoice {
	case tracer.ChoiceAuto:
		return fmt.Sprintf("probe auto chose %s: %s", p.Probe, p.KprobesWhy)
	case tracer.ChoiceAutoFallback:
		return fmt.Sprintf("probe auto chose %s: attaching kprobes failed: %v", p.Probe, p.KprobeErr)
	}
	return fmt.Sprintf("probe %s was configured", p.Probe)
}

func pairingReason(p tracer.Plan) string {
	switch p.PairingReason {
	case tracer.PairingRealtime:
		return fmt.Sprintf("pairing: %s (PREEMPT_RT kernel)", p.Pairing)
	case tracer.PairingForced:
		return fmt.Sprintf("pairing: %s (chosen by the caller)", p.Pairing)
	}
	return "pairing: " + p.Pairing.String()
}

// ia32Reason says how 32-bit callers are caught where the user should know:
// tracepoint mode's raw_syscalls programs run on every syscall, and where
// they are left out 32-bit calls go unseen.
func ia32Reason(p tracer.Plan) string {
	const notCaught = "32-bit (ia32) calls are not caught: "
	const notAttached = "so no 32-bit program runs; the raw_syscalls raw tracepoints, which would run on every syscall, are not attached"
	switch p.Ia32 {
	case tracer.Ia32RawTracepoints:
		return "32-bit (ia32) calls, which syscall tracepoints skip, are caught by raw_syscalls:sys_enter/sys_exit raw tracepoints filtered in the kernel to the i386 mremap (163), attached only while a 32-bit program runs (they run on every syscall)"
	case tracer.Ia32RawTracepointsAlways:
		return "32-bit (ia32) calls, which syscall tracepoints skip, are caught by raw_syscalls:sys_enter/sys_exit raw tracepoints filtered in the kernel to the i386 mremap (163), attached all the time: this kernel cannot tell 32-bit programs apart (bpf_task_pt_regs, Linux 5.15)"
	case tracer.Ia32Skipped:
		return "32-bit (ia32) calls are not seen: ia32_raw_tracepoints is off, so the raw_syscalls programs that would catch them (and run on every syscall) are not attached"
	case tracer.Ia32KallsymsUnreadable:
		return notCaught + fmt.Sprintf("/proc/kallsyms, where __ia32_sys_mremap shows whether the kernel runs 32-bit programs, could not be read (%v), so no 32-bit support is assumed and the raw_syscalls raw tracepoints are not attached", p.Ia32Err)
	case tracer.Ia32EmulationOff:
		return notCaught + "ia32 emulation is off (ia32_emulation=0 on the kernel command line), " + notAttached
	case tracer.Ia32EmulationDefaultOff:
		return notCaught + "ia32 emulation is off (CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y and no ia32_emulation=1 on the kernel command line), " + notAttached
	}
	return ""
}

// startError puts the tracer's error in the configuration's words: what to
// grant, which key to change.
func startError(err error) error {
	var caps *tracer.MissingCapabilitiesError
	var kernel *tracer.KernelError
	var probe *tracer.ProbeError
	switch {
	case errors.As(err, &caps):
		err = fmt.Errorf("%w: run as root, or grant %s (tracepoint mode; add CAP_DAC_OVERRIDE for kprobe mode, CAP_SYS_PTRACE for process.executable.path of other users' processes), e.g. setpriv or systemd AmbientCapabilities, see docs/privileges.md",
			err, strings.Join(tracer.MinimalCapabilities, ", "))
	case errors.As(err, &kernel):
		err = explained{kernelText(kernel), err}
	case errors.As(err, &probe):
		err = explained{fmt.Sprintf("probe %s: %s", probe.Probe, probe.Why), err}
	}
	return fmt.Errorf("mremap receiver: %w", err)
}

// kernelText says what the kernel lacks, and for a lack that only a key
// brings, which key to remove.
func kernelText(e *tracer.KernelError) string {
	what := make([]string, len(e.Lacks))
	for i, l := range e.Lacks {
		what[i] = l.What
		switch l.For {
		case tracer.NeedCgroupFilter:
			what[i] += "; remove filter::cgroups to run on this kernel"
		case tracer.NeedCallStack:
			what[i] += "; set call_stack: false to run on this kernel"
		}
	}
	return "this kernel cannot run the mremap probes: " + strings.Join(what, "; ")
}

// explained is an error said in other words.
type explained struct {
	text  string
	cause error
}

func (e explained) Error() string { return e.text }
func (e explained) Unwrap() error { return e.cause }
