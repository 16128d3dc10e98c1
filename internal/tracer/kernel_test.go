package tracer

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// The real probes on this host: it has ring buffers, BTF and syscall
// tracepoints, so every mode it supports is chosen without complaint.
func TestProbeKernelHere(t *testing.T) {
	mremaptest.RequireBPF(t)
	tracefs, err := tracefsPath()
	require.NoError(t, err)
	k := probeKernel(tracefs)
	assert.NoError(t, k.ringBuf, "BPF ring buffer")
	assert.NoError(t, k.btf, "kernel BTF")
	assert.NoError(t, k.tracepoints, "syscall tracepoints")
	assert.Equal(t, mremaptest.HasKprobes(), k.kprobes, k.kprobesWhy)

	probe, reason, err := k.choose(ProbeAuto)
	require.NoError(t, err)
	want := ProbeTracepoint
	if k.kprobes {
		want = ProbeKprobe
	}
	assert.Equal(t, want, probe)
	assert.Contains(t, reason, "probe auto chose "+string(want)+": ")
	probe, _, err = k.choose(ProbeTracepoint)
	require.NoError(t, err)
	assert.Equal(t, ProbeTracepoint, probe)
}

// What the startup error or log says for each kernel gap.
func TestKernelChoose(t *testing.T) {
	ok := kernel{kprobes: true, kprobesWhy: "the kernel supports kprobes (kprobe PMU present) and has __x64_sys_mremap"}
	noKprobes := "the kernel has no kprobe support (neither /sys/bus/event_source/devices/kprobe/type nor /sys/kernel/tracing/kprobe_events exists; CONFIG_KPROBES is off)"
	noTracepoints := errors.New("the kernel has no syscall tracepoints for mremap (no /sys/kernel/tracing/events/syscalls/sys_enter_mremap/id; CONFIG_FTRACE_SYSCALLS is off)")
	tests := []struct {
		name       string
		k          func(k *kernel)
		want       Probe
		wantProbe  Probe
		wantReason string
		wantErr    []string // each in the error
	}{
		{"everything, auto", func(k *kernel) {}, ProbeAuto, ProbeKprobe, "probe auto chose kprobe: the kernel supports kprobes", nil},
		{"everything, tracepoint", func(k *kernel) {}, ProbeTracepoint, ProbeTracepoint, "probe tracepoint was configured", nil},
		{"everything, kprobe", func(k *kernel) {}, ProbeKprobe, ProbeKprobe, "probe kprobe was configured", nil},
		{"no kprobes, auto: tracepoint, and why", func(k *kernel) { k.kprobes, k.kprobesWhy = false, noKprobes }, ProbeAuto, ProbeTracepoint,
			"probe auto chose tracepoint: the kernel has no kprobe support", nil},
		{"no kprobes, kprobe", func(k *kernel) { k.kprobes, k.kprobesWhy = false, noKprobes }, ProbeKprobe, "", "",
			[]string{"probe kprobe:", "CONFIG_KPROBES is off"}},
		{"no tracepoints, auto: kprobe", func(k *kernel) { k.tracepoints = noTracepoints }, ProbeAuto, ProbeKprobe, "probe auto chose kprobe", nil},
		{"no tracepoints, tracepoint", func(k *kernel) { k.tracepoints = noTracepoints }, ProbeTracepoint, "", "",
			[]string{"probe tracepoint:", "CONFIG_FTRACE_SYSCALLS is off"}},
		{"neither kprobes nor tracepoints", func(k *kernel) { k.kprobes, k.kprobesWhy, k.tracepoints = false, noKprobes, noTracepoints }, ProbeAuto, "", "",
			[]string{"cannot run the mremap probes", "neither kprobes", "CONFIG_KPROBES is off", "nor syscall tracepoints", "CONFIG_FTRACE_SYSCALLS is off"}},
		{"no ring buffer", func(k *kernel) { k.ringBuf = errors.New("map type ringbuf: not supported") }, ProbeAuto, "", "",
			[]string{"cannot run the mremap probes", "no BPF ring buffer", "Linux 5.8 or later", "not supported"}},
		{"no BTF", func(k *kernel) { k.btf = os.ErrNotExist }, ProbeTracepoint, "", "",
			[]string{"cannot run the mremap probes", "no BTF", "/sys/kernel/btf/vmlinux", "CONFIG_DEBUG_INFO_BTF", "CO-RE"}},
		{"an old kernel lacks all three", func(k *kernel) {
			k.ringBuf, k.btf, k.kprobes, k.kprobesWhy, k.tracepoints = errors.New("not supported"), os.ErrNotExist, false, noKprobes, noTracepoints
		}, ProbeAuto, "", "", []string{"no BPF ring buffer", "no BTF", "neither kprobes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := ok
			tt.k(&k)
			probe, reason, err := k.choose(tt.want)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				// One line: it is a startup error.
				assert.False(t, strings.Contains(err.Error(), "\n"), "multi-line error %q", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantProbe, probe)
			assert.True(t, strings.HasPrefix(reason, tt.wantReason), "reason %q, want it to start with %q", reason, tt.wantReason)
		})
	}
}

func TestSyscallTracepoints(t *testing.T) {
	dir := t.TempDir()
	err := syscallTracepoints(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no "+dir+"/events/syscalls/sys_enter_mremap/id")
	assert.Contains(t, err.Error(), "CONFIG_FTRACE_SYSCALLS")
	for _, name := range []string{"sys_enter_mremap", "sys_exit_mremap"} {
		require.NoError(t, os.MkdirAll(dir+"/events/syscalls/"+name, 0o755))
		require.NoError(t, os.WriteFile(dir+"/events/syscalls/"+name+"/id", []byte("42\n"), 0o644))
	}
	assert.NoError(t, syscallTracepoints(dir))
}

func TestCapabilitiesError(t *testing.T) {
	err := capabilitiesError([]string{"CAP_BPF", "CAP_DAC_READ_SEARCH"})
	for _, w := range []string{"missing capabilities CAP_BPF, CAP_DAC_READ_SEARCH:", "CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH", "CAP_DAC_OVERRIDE for kprobe mode", "CAP_SYS_PTRACE"} {
		assert.Contains(t, err.Error(), w)
	}
}
