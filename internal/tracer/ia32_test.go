package tracer

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// When tracepoint mode attaches the ia32 raw tracepoints, and what the
// startup reason says when it does not.
func TestIa32Raw(t *testing.T) {
	tests := []struct {
		name   string
		facts  ia32Facts
		attach bool
		why    []string // each in the reason; none: nothing said
	}{
		{"emulation on", ia32Facts{symbol: true, cmdline: "console=ttyS0 quiet"}, true, nil},
		{"no emulation built in", ia32Facts{}, false, nil},
		{"kallsyms unreadable", ia32Facts{kallsymsErr: os.ErrPermission}, false,
			[]string{"32-bit (ia32) calls are not caught: ", "/proc/kallsyms", "could not be read (permission denied)", "no 32-bit support is assumed"}},
		{"ia32_emulation=0", ia32Facts{symbol: true, cmdline: "quiet ia32_emulation=0 panic=1"}, false,
			[]string{"32-bit (ia32) calls are not caught: ", "ia32 emulation is off (ia32_emulation=0 on the kernel command line)", "not attached"}},
		{"ia32_emulation=off", ia32Facts{symbol: true, cmdline: "ia32_emulation=off"}, false, []string{"ia32_emulation=0"}},
		{"ia32_emulation=false", ia32Facts{symbol: true, cmdline: "ia32_emulation=false"}, false, []string{"ia32_emulation=0"}},
		{"the last one wins", ia32Facts{symbol: true, cmdline: "ia32_emulation=0 ia32_emulation=1"}, true, nil},
		{"init's arguments are not the kernel's", ia32Facts{symbol: true, cmdline: "quiet -- ia32_emulation=0"}, true, nil},
		{"default disabled", ia32Facts{symbol: true, defaultDisabled: true, cmdline: "quiet"}, false,
			[]string{"CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y and no ia32_emulation=1", "not attached"}},
		{"default disabled, turned on", ia32Facts{symbol: true, defaultDisabled: true, cmdline: "ia32_emulation=on"}, true, nil},
		{"default disabled, ia32_emulation=y", ia32Facts{symbol: true, defaultDisabled: true, cmdline: "ia32_emulation=y"}, true, nil},
		{"an unreadable value is ignored", ia32Facts{symbol: true, cmdline: "ia32_emulation=maybe"}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attach, why := tt.facts.ia32Raw()
			assert.Equal(t, tt.attach, attach)
			if tt.why == nil {
				assert.Empty(t, why)
			}
			for _, w := range tt.why {
				assert.Contains(t, why, w)
			}
		})
	}
}

// This host: an x86-64 kernel with ia32 emulation, on by default and not
// turned off, so the raw tracepoints are attached (the 32-bit helper runs
// here, TestIa32Caller).
func TestIa32TracepointsHere(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		attach, why := ia32Tracepoints()
		assert.False(t, attach)
		assert.Empty(t, why)
		return
	}
	facts := readIa32Facts("__ia32_sys_mremap")
	if facts.kallsymsErr != nil {
		t.Skipf("/proc/kallsyms: %v", facts.kallsymsErr)
	}
	cmdline, _ := os.ReadFile("/proc/cmdline")
	t.Logf("facts: symbol %v, default disabled %v, cmdline %q", facts.symbol, facts.defaultDisabled, strings.TrimSpace(string(cmdline)))
	attach, why := ia32Tracepoints()
	want, _ := facts.ia32Raw()
	assert.Equal(t, want, attach, why)

	// Tracepoint mode attaches the raw tracepoints as decided, and says
	// why not where it does not.
	mremaptest.RequireBPF(t)
	tr := newTracer(t, Options{Probe: ProbeTracepoint})
	assert.Equal(t, attach, tr.ia32Raw, tr.Reason())
	if attach {
		assert.Contains(t, tr.Reason(), "32-bit (ia32) calls, which syscall tracepoints skip, are caught by raw_syscalls")
	} else {
		assert.Contains(t, tr.Reason(), why)
	}
	t.Logf("reason: %s", tr.Reason())
}

// With SkipIa32Tracepoints (the receiver's ia32_raw_tracepoints: false),
// tracepoint mode leaves the raw_syscalls programs out and says so: a
// 32-bit helper's calls are not seen, a 64-bit helper's still are.
func TestIa32TracepointsOff(t *testing.T) {
	attach, _ := ia32Tracepoints()
	if !attach {
		t.Skip("this kernel gets no ia32 raw tracepoints anyway")
	}
	mremaptest.RequireBPF(t)
	tr := newTracer(t, Options{Probe: ProbeTracepoint, SkipIa32Tracepoints: true, Filter: helperOnly()})
	assert.False(t, tr.ia32Raw)
	loaded := 0
	for _, p := range tr.programs {
		if p != nil {
			loaded++
		}
	}
	assert.Equal(t, 2, loaded, "the two syscall tracepoint programs only")
	assert.Contains(t, tr.Reason(), "32-bit (ia32) calls are not seen: ia32_raw_tracepoints is off")

	mremaptest.RunHelper(t, mremaptest.Helper386Path(t))
	agg, err := tr.ReadAggregates()
	if err != nil {
		t.Fatal(err)
	}
	assert.Empty(t, agg.Calls, "32-bit calls counted without the raw tracepoints")

	made := mremaptest.RunHelper(t, mremaptest.HelperPath(t))
	agg, err = tr.ReadAggregates()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range agg.Calls {
		n += c.Count
	}
	assert.Equal(t, uint64(len(made)), n, "64-bit calls")
}
