package mremapreceiver

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
)

// What the startup log says for each plan the tracer can choose.
func TestStartupReason(t *testing.T) {
	kprobes := "the kernel supports kprobes (kprobe PMU present) and has __x64_sys_mremap"
	noKprobes := "the kernel has no kprobe support (neither /sys/bus/event_source/devices/kprobe/type nor /sys/kernel/tracing/kprobe_events exists; CONFIG_KPROBES is off)"
	base := tracer.Plan{Pairing: tracer.PairingTaskStorage}
	plan := func(m func(p *tracer.Plan)) tracer.Plan {
		p := base
		m(&p)
		return p
	}
	tests := []struct {
		name string
		plan tracer.Plan
		want []string // in this order, joined by "; "
	}{
		{"auto chose kprobe", plan(func(p *tracer.Plan) {
			p.Probe, p.ProbeChoice, p.KprobesWhy, p.Ia32 = tracer.ProbeKprobe, tracer.ChoiceAuto, kprobes, tracer.Ia32Kprobe
		}), []string{"probe auto chose kprobe: " + kprobes, "pairing: task storage"}},
		{"auto chose tracepoint", plan(func(p *tracer.Plan) {
			p.Probe, p.ProbeChoice, p.KprobesWhy, p.Ia32 = tracer.ProbeTracepoint, tracer.ChoiceAuto, noKprobes, tracer.Ia32RawTracepoints
		}), []string{"probe auto chose tracepoint: " + noKprobes, "pairing: task storage",
			"32-bit (ia32) calls, which syscall tracepoints skip, are caught by raw_syscalls:sys_enter/sys_exit raw tracepoints filtered in the kernel to the i386 mremap (163), attached only while a 32-bit program runs (they run on every syscall)"}},
		{"auto fell back", plan(func(p *tracer.Plan) {
			p.Probe, p.ProbeChoice, p.KprobeErr = tracer.ProbeTracepoint, tracer.ChoiceAutoFallback, errors.New("attach kretprobe __x64_sys_mremap: permission denied")
		}), []string{"probe auto chose tracepoint: attaching kprobes failed: attach kretprobe __x64_sys_mremap: permission denied", "pairing: task storage"}},
		{"configured", plan(func(p *tracer.Plan) { p.Probe = tracer.ProbeKprobe }), []string{"probe kprobe was configured", "pairing: task storage"}},
		{"PREEMPT_RT", plan(func(p *tracer.Plan) {
			p.Probe, p.Pairing, p.PairingReason = tracer.ProbeTracepoint, tracer.PairingLRU, tracer.PairingRealtime
		}), []string{"probe tracepoint was configured", "pairing: LRU hash (PREEMPT_RT kernel)"}},
		{"pairing forced", plan(func(p *tracer.Plan) {
			p.Probe, p.Pairing, p.PairingReason = tracer.ProbeTracepoint, tracer.PairingLRU, tracer.PairingForced
		}), []string{"probe tracepoint was configured", "pairing: LRU hash (chosen by the caller)"}},
		{"no lookup before 5.17", plan(func(p *tracer.Plan) {
			p.Probe, p.VMALookup = tracer.ProbeTracepoint, tracer.VMALookupKernel
			p.VMALookupLacks = []string{"tracepoint programs cannot call bpf_find_vma (Linux 5.17 or later), which finds the mapping at old_address: not supported"}
		}), []string{"probe tracepoint was configured", "pairing: task storage",
			"vma_lookup is off, so log records have no mremap.vma.* attributes: tracepoint programs cannot call bpf_find_vma (Linux 5.17 or later), which finds the mapping at old_address: not supported"}},
		{"lookup turned off: nothing to say", plan(func(p *tracer.Plan) { p.Probe, p.VMALookup = tracer.ProbeTracepoint, tracer.VMALookupSkipped }),
			[]string{"probe tracepoint was configured", "pairing: task storage"}},
		{"ia32_raw_tracepoints off", plan(func(p *tracer.Plan) { p.Probe, p.Ia32 = tracer.ProbeTracepoint, tracer.Ia32Skipped }),
			[]string{"probe tracepoint was configured", "pairing: task storage",
				"32-bit (ia32) calls are not seen: ia32_raw_tracepoints is off, so the raw_syscalls programs that would catch them (and run on every syscall) are not attached"}},
		{"kallsyms unreadable", plan(func(p *tracer.Plan) {
			p.Probe, p.Ia32, p.Ia32Err = tracer.ProbeTracepoint, tracer.Ia32KallsymsUnreadable, os.ErrPermission
		}), []string{"probe tracepoint was configured", "pairing: task storage",
			"32-bit (ia32) calls are not caught: /proc/kallsyms, where __ia32_sys_mremap shows whether the kernel runs 32-bit programs, could not be read (permission denied), so no 32-bit support is assumed and the raw_syscalls raw tracepoints are not attached"}},
		{"ia32_emulation=0", plan(func(p *tracer.Plan) { p.Probe, p.Ia32 = tracer.ProbeTracepoint, tracer.Ia32EmulationOff }),
			[]string{"probe tracepoint was configured", "pairing: task storage",
				"32-bit (ia32) calls are not caught: ia32 emulation is off (ia32_emulation=0 on the kernel command line), so no 32-bit program runs; the raw_syscalls raw tracepoints, which would run on every syscall, are not attached"}},
		{"ia32 default disabled", plan(func(p *tracer.Plan) { p.Probe, p.Ia32 = tracer.ProbeTracepoint, tracer.Ia32EmulationDefaultOff }),
			[]string{"probe tracepoint was configured", "pairing: task storage",
				"32-bit (ia32) calls are not caught: ia32 emulation is off (CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y and no ia32_emulation=1 on the kernel command line), so no 32-bit program runs; the raw_syscalls raw tracepoints, which would run on every syscall, are not attached"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, strings.Join(tt.want, "; "), startupReason(tt.plan))
		})
	}
}

// What a failed start says, in the configuration's words.
func TestStartError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string // each in the message
	}{
		{"capabilities", &tracer.MissingCapabilitiesError{Missing: []string{"CAP_BPF", "CAP_DAC_READ_SEARCH"}},
			[]string{"mremap receiver: missing capabilities CAP_BPF, CAP_DAC_READ_SEARCH: run as root, or grant CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH",
				"CAP_DAC_OVERRIDE for kprobe mode", "CAP_SYS_PTRACE for process.executable.path", "docs/privileges.md"}},
		{"a cgroup filter the kernel cannot match", &tracer.KernelError{Lacks: []tracer.Lack{
			{What: "the kernel has no task storage maps"},
			{What: "tracepoint programs cannot call bpf_get_current_ancestor_cgroup_id (Linux 5.14 or later)", For: tracer.NeedCgroupFilter},
		}}, []string{"mremap receiver: this kernel cannot run the mremap probes: the kernel has no task storage maps; tracepoint programs cannot call bpf_get_current_ancestor_cgroup_id (Linux 5.14 or later); remove filter::cgroups to run on this kernel"}},
		{"probe kprobe", &tracer.ProbeError{Probe: tracer.ProbeKprobe, Why: "the kernel has no kprobe support"},
			[]string{"mremap receiver: probe kprobe: the kernel has no kprobe support"}},
		{"anything else", errors.New("load eBPF programs into the kernel: invalid argument"),
			[]string{"mremap receiver: load eBPF programs into the kernel: invalid argument"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := startError(tt.err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.ErrorIs(t, err, tt.err)
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}
