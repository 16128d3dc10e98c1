//go:build linux

package tracer

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// When tracepoint mode attaches the ia32 raw tracepoints, and why not.
func TestIa32Raw(t *testing.T) {
	tests := []struct {
		name  string
		facts ia32Facts
		want  Ia32
	}{
		{"emulation on", ia32Facts{symbol: true, cmdline: "console=ttyS0 quiet"}, Ia32RawTracepoints},
		{"no emulation built in", ia32Facts{}, Ia32None},
		{"kallsyms unreadable", ia32Facts{kallsymsErr: os.ErrPermission}, Ia32KallsymsUnreadable},
		{"ia32_emulation=0", ia32Facts{symbol: true, cmdline: "quiet ia32_emulation=0 panic=1"}, Ia32EmulationOff},
		{"ia32_emulation=off", ia32Facts{symbol: true, cmdline: "ia32_emulation=off"}, Ia32EmulationOff},
		{"ia32_emulation=false", ia32Facts{symbol: true, cmdline: "ia32_emulation=false"}, Ia32EmulationOff},
		{"the last one wins", ia32Facts{symbol: true, cmdline: "ia32_emulation=0 ia32_emulation=1"}, Ia32RawTracepoints},
		{"init's arguments are not the kernel's", ia32Facts{symbol: true, cmdline: "quiet -- ia32_emulation=0"}, Ia32RawTracepoints},
		{"default disabled", ia32Facts{symbol: true, defaultDisabled: true, cmdline: "quiet"}, Ia32EmulationDefaultOff},
		{"default disabled, turned on", ia32Facts{symbol: true, defaultDisabled: true, cmdline: "ia32_emulation=on"}, Ia32RawTracepoints},
		{"default disabled, ia32_emulation=y", ia32Facts{symbol: true, defaultDisabled: true, cmdline: "ia32_emulation=y"}, Ia32RawTracepoints},
		{"an unreadable value is ignored", ia32Facts{symbol: true, cmdline: "ia32_emulation=maybe"}, Ia32RawTracepoints},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.facts.ia32Raw())
		})
	}
	// The plan of kprobe mode, and of a skipped raw tracepoint.
	f := facts{ia32: ia32Facts{symbol: true}, compat: []string{"__ia32_sys_mremap"}}
	if runtime.GOARCH == "amd64" {
		got, _ := f.chooseIa32(ProbeKprobe, Options{})
		assert.Equal(t, Ia32Kprobe, got)
		got, _ = f.chooseIa32(ProbeTracepoint, Options{SkipIa32Tracepoints: true})
		assert.Equal(t, Ia32Skipped, got)
	}
}

// hereIa32 is what tracepoint mode decides of 32-bit callers on this host.
func hereIa32(t *testing.T) Ia32 {
	tracefs, err := tracefsPath()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := probeFacts(tracefs).chooseIa32(ProbeTracepoint, Options{})
	return got
}

// This host: an x86-64 kernel with ia32 emulation, on by default and not
// turned off, so the raw tracepoints are attached (the 32-bit helper runs
// here, TestIa32Caller).
func TestIa32TracepointsHere(t *testing.T) {
	mremaptest.RequireBPF(t)
	want := hereIa32(t)
	if runtime.GOARCH != "amd64" {
		assert.Equal(t, Ia32None, want)
		return
	}
	facts := readIa32Facts(true, nil)
	cmdline, _ := os.ReadFile("/proc/cmdline")
	t.Logf("facts: default disabled %v, cmdline %q: %v", facts.defaultDisabled, strings.TrimSpace(string(cmdline)), want)

	// Tracepoint mode attaches the raw tracepoints as decided.
	tr := newTracer(t, Options{Probe: ProbeTracepoint})
	assert.Equal(t, want, tr.Plan().Ia32)
	_, attached := tr.objs.programs[bpf.MremapProgIa32SysEnter]
	assert.Equal(t, want == Ia32RawTracepoints, attached, "the ia32 programs are loaded")
}

// With SkipIa32Tracepoints,
// tracepoint mode leaves the raw_syscalls programs out and says so: a
// 32-bit helper's calls are not seen, a 64-bit helper's still are.
func TestIa32TracepointsOff(t *testing.T) {
	mremaptest.RequireBPF(t)
	if hereIa32(t) != Ia32RawTracepoints {
		t.Skip("this kernel gets no ia32 raw tracepoints anyway")
	}
	tr := newTracer(t, Options{Probe: ProbeTracepoint, SkipIa32Tracepoints: true, Filter: helperOnly()})
	assert.Equal(t, Ia32Skipped, tr.Plan().Ia32)
	assert.Len(t, tr.objs.programs, 2, "the two syscall tracepoint programs only")

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

// In tracepoint mode the raw_syscalls programs are attached only while a
// 32-bit program runs: not before one starts, at once when one does (and
// the tracer says after how long), until a while after the last one ends.
// The 32-bit program's calls are all seen.
func TestIa32OnDemand(t *testing.T) {
	mremaptest.RequireBPF(t)
	if hereIa32(t) != Ia32RawTracepoints {
		t.Skipf("tracepoint mode does not attach the raw tracepoints on demand here: %v", hereIa32(t))
	}
	helper := mremaptest.Helper386Path(t) // holds a 32-bit process for the test: ended below
	starts := make(chan Ia32Start, 4)
	tr := newTracer(t, Options{Probe: ProbeTracepoint, Filter: helperOnly(), ia32Hold: time.Second,
		OnIa32Start: func(s Ia32Start) { starts <- s }})
	assert.True(t, tr.Ia32Attached(), "a 32-bit process runs: the start finds it")
	mremaptest.Stop32Bit(t)
	require.Eventually(t, func() bool { return !tr.Ia32Attached() }, 10*time.Second, 50*time.Millisecond,
		"the raw tracepoints stay attached with no 32-bit program")

	// A 32-bit program starts: attached at once, and its calls are seen.
	sleeper := exec.Command(helper, "-sleep", "10s")
	require.NoError(t, sleeper.Start())
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	select {
	case s := <-starts:
		assert.Equal(t, uint32(sleeper.Process.Pid), s.TGID)
		assert.Positive(t, s.Latency)
		t.Logf("the raw tracepoints were attached %v after the 32-bit program's exec", s.Latency)
	case <-time.After(10 * time.Second):
		t.Fatal("no 32-bit start reported")
	}
	assert.True(t, tr.Ia32Attached())
	made := mremaptest.RunHelper(t, helper)
	a, err := tr.ReadAggregates()
	require.NoError(t, err)
	var n uint64
	for _, c := range a.Calls {
		n += c.Count
	}
	assert.Equal(t, uint64(len(made)), n, "the 32-bit helper's calls")

	sleeper.Process.Kill()
	sleeper.Wait()
	require.Eventually(t, func() bool { return !tr.Ia32Attached() }, 10*time.Second, 50*time.Millisecond)
}
