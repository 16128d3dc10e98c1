package mremapreceiver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// stackConfig is the configuration of the call-stack tests: call_stack on,
// the helpers' comms, vma_lookup off (the helpers do not read their maps).
func stackConfig(probe string) *Config {
	return helperConfig(func(cfg *Config) {
		cfg.Probe = probe
		cfg.CallStack = true
		cfg.VMALookup = false
		cfg.Filter.Comms = []string{mremaptest.Comm, mremaptest.CommCStack}
	})
}

// checkStacks waits for the records of run, every field checked as
// without call_stack, and their stacks with want.
func checkStacks(t *testing.T, logs *consumertest.LogsSink, run mremapcheck.Run, want func(what string, a pcommon.Map) []string) {
	t.Helper()
	run.Stack = want
	eventually(t, func() []string { return mremapcheck.Logs(mergeLogs(logs.AllLogs()), run) })
}

// TestCallStackLogs: with call_stack, the record of a call made from known
// nested functions lists them in order in code.stacktrace, and
// code.function.name is the innermost: the C helper's (frame pointers kept,
// through glibc's leaf stubs mremap() and syscall(), whose caller the
// kernel's walk skips and the top of the stack or the link register
// brings back) and the Go helper's.
func TestCallStackLogs(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper, cstack := realPath(t, mremaptest.HelperPath(t)), realPath(t, mremaptest.CStackPath(t))
	for _, probe := range mremaptest.Probes(t) {
		t.Run(probe, func(t *testing.T) {
			for _, mode := range []string{"mremap", "syscall"} {
				t.Run("c/"+mode, func(t *testing.T) {
					logs := new(consumertest.LogsSink)
					r := startReceiver(t, stackConfig(probe), pipelines{logs: logs})
					assert.Equal(t, tracer.CallStackOn, r.core.tracer.Plan().CallStack)
					run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), Comm: mremaptest.CommCStack, ExePath: cstack, Start: time.Now()}
					run.Made = mremaptest.StartHelper(t, 1, cstack, mode, "3000")
					run.End = time.Now()
					checkStacks(t, logs, run, mremapcheck.StackWant{Functions: mremaptest.CStackFunctions, Module: cstack,
						Function: "stack_inner", End: "complete"}.Check)
				})
			}
			t.Run("go", func(t *testing.T) {
				logs := new(consumertest.LogsSink)
				startReceiver(t, stackConfig(probe), pipelines{logs: logs})
				run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: helper, Start: time.Now()}
				run.Made = mremaptest.StartHelper(t, 1, helper, "-stack", "-linger", "3s")
				run.End = time.Now()
				checkStacks(t, logs, run, mremapcheck.StackWant{Functions: mremaptest.GoStackFunctions, Module: helper,
					Function: "main.stackInner", End: "complete"}.Check)
			})
		})
	}
}

// TestCallStackStripped: a stripped copy of the C helper gives its frames
// as offsets in the file, with no name (no_symbol), and no function.
func TestCallStackStripped(t *testing.T) {
	mremaptest.RequireBPF(t)
	stripped := realPath(t, mremaptest.StrippedCopy(t, mremaptest.CStackPath(t)))
	logs := new(consumertest.LogsSink)
	startReceiver(t, stackConfig("tracepoint"), pipelines{logs: logs})
	run := mremapcheck.Run{Probe: "tracepoint", PPID: os.Getpid(), Comm: mremaptest.CommCStack, ExePath: stripped, Start: time.Now()}
	run.Made = mremaptest.StartHelper(t, 1, stripped, "mremap", "3000")
	run.End = time.Now()
	// The walk goes on past the entry point it cannot name, to an address
	// that no mapping covers, or to the end of the chain.
	checkStacks(t, logs, run, mremapcheck.StackWant{Module: stripped, FileFrames: true,
		End: "no_frame_pointers|unknown", Unresolved: "no_symbol"}.Check)
}

// TestCallStackMountNamespace: a process in a mount namespace of its own
// runs from a path that exists there alone, as a container's binaries do:
// its frames name their functions, in the file as the process sees it.
func TestCallStackMountNamespace(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	dir := filepath.Join(realPath(t, t.TempDir()), "private")
	require.NoError(t, os.Mkdir(dir, 0o755))
	inside := filepath.Join(dir, filepath.Base(helper))
	_, err := os.Stat(inside)
	require.ErrorIs(t, err, os.ErrNotExist, "the path must not resolve outside the namespace")
	logs := new(consumertest.LogsSink)
	startReceiver(t, stackConfig("tracepoint"), pipelines{logs: logs})
	run := mremapcheck.Run{Probe: "tracepoint", PPID: os.Getpid(), ExePath: inside, Start: time.Now()}
	run.Made = mremaptest.StartHelper(t, 1, helper, "-mount-ns", dir, "-stack", "-linger", "3s")
	run.End = time.Now()
	checkStacks(t, logs, run, mremapcheck.StackWant{Functions: mremaptest.GoStackFunctions, Module: inside,
		Function: "main.stackInner", End: "complete"}.Check)
}

// TestCallStackExitedProcess: a helper that exits right after its call,
// before the receiver reads the record, keeps its frames' addresses: bare
// (process_exited) when its mappings were never read, or named if they
// were read in time.
func TestCallStackExitedProcess(t *testing.T) {
	mremaptest.RequireBPF(t)
	cstack := realPath(t, mremaptest.CStackPath(t))
	logs := new(consumertest.LogsSink)
	startReceiver(t, stackConfig("tracepoint"), pipelines{logs: logs})
	run := mremapcheck.Run{Probe: "tracepoint", PPID: os.Getpid(), Comm: mremaptest.CommCStack, Start: time.Now()}
	run.Made = mremaptest.RunHelperArgs(t, cstack, "mremap", "0")
	run.End = time.Now()
	var trace string
	exited := func(what string, a pcommon.Map) []string {
		unresolved, _ := a.Get("mremap.call_stack.unresolved")
		trace = unresolved.Str() + ":\n" + str(a, "code.stacktrace")
		if unresolved.Str() != "process_exited" {
			return mremapcheck.StackWant{Functions: mremaptest.CStackFunctions, Module: cstack,
				Function: "stack_inner", End: "complete"}.Check(what, a)
		}
		st, _ := a.Get("code.stacktrace")
		frames, err := mremapcheck.ParseTrace(st.Str())
		if err != nil || len(frames) < 3 {
			return []string{what + ": want the frames' addresses: " + st.Str()}
		}
		for _, f := range frames {
			if !f.Address || f.Module != "" {
				return []string{what + ": a process that exited unread keeps bare addresses: " + st.Str()}
			}
		}
		return nil
	}
	checkStacks(t, logs, run, exited)
	t.Logf("the record's stack: %s", trace)
}

func str(a pcommon.Map, k string) string {
	v, _ := a.Get(k)
	return v.Str()
}

// TestCallStackOffByDefault: without call_stack the records carry no stack
// attribute (mremapcheck finds any unexpected), and the kernel captures
// none; with call_stack but no logs pipeline, it changes nothing and the
// startup log says so.
func TestCallStackOffByDefault(t *testing.T) {
	mremaptest.RequireBPF(t)
	assert.False(t, createDefaultConfig().CallStack)
	helper := mremaptest.HelperPath(t)
	logs := new(consumertest.LogsSink)
	r := startReceiver(t, helperConfig(func(cfg *Config) { cfg.Probe = "tracepoint"; cfg.VMALookup = false }), pipelines{logs: logs})
	assert.Equal(t, tracer.CallStackOff, r.core.tracer.Plan().CallStack)
	run := mremapcheck.Run{Probe: "tracepoint", PPID: os.Getpid(), ExePath: realPath(t, helper), Start: time.Now()}
	run.Made = mremaptest.StartHelper(t, 1, helper, "-stack", "-linger", "3s")
	run.End = time.Now()
	eventually(t, func() []string { return mremapcheck.Logs(mergeLogs(logs.AllLogs()), run) })
	r.shutdown()

	metrics := new(consumertest.MetricsSink)
	m := startReceiver(t, stackConfig("tracepoint"), pipelines{metrics: metrics})
	assert.Equal(t, tracer.CallStackNoRecords, m.core.tracer.Plan().CallStack)
	assert.True(t, strings.Contains(startupReason(m.core.tracer.Plan()), "call_stack is on but changes nothing"))
}

// realPath is path as /proc/PID/maps shows the file: absolute, no links.
func realPath(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(path)
	require.NoError(t, err)
	p, err = filepath.Abs(p)
	require.NoError(t, err)
	return p
}
