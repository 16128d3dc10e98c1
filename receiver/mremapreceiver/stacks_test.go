package mremapreceiver

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.uber.org/zap"

	"github.com/otelcol-mremap/otelcol-mremap/internal/callstack"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
)

func TestCallStackReason(t *testing.T) {
	assert.Empty(t, callStackReason(tracer.Plan{}))
	on := callStackReason(tracer.Plan{CallStack: tracer.CallStackOn})
	assert.Contains(t, on, "frame pointers (bpf_get_stack) at the syscall's exit")
	frames := callStackReason(tracer.Plan{CallStack: tracer.CallStackFramesOnly, CallStackLacks: []string{"no bpf_task_pt_regs"}})
	assert.True(t, strings.HasPrefix(frames, on) && strings.HasSuffix(frames, "is not recovered: no bpf_task_pt_regs"), frames)
	assert.Contains(t, callStackReason(tracer.Plan{CallStack: tracer.CallStackNoRecords}), "no logs pipeline")
	assert.Contains(t, startupReason(tracer.Plan{CallStack: tracer.CallStackOn}), "; "+on)
	assert.Contains(t, kernelText(&tracer.KernelError{Lacks: []tracer.Lack{{What: "no bpf_get_stack", For: tracer.NeedCallStack}}}),
		"no bpf_get_stack; set call_stack: false")
}

func TestRedactTrace(t *testing.T) {
	trace := "mremap+0x30 (/usr/lib/libc.so.6)\n0x55d0c0001234 (/usr/bin/app+0x1234)\n0x7f0000000010\nmain+0x10 (/usr/bin/app)"
	assert.Equal(t, "mremap+0x30 (/usr/lib/libc.so.6)\n0x? (/usr/bin/app+0x1234)\n0x?\nmain+0x10 (/usr/bin/app)", redactTrace(trace))
}

func TestPutStack(t *testing.T) {
	put := func(st *mremap.SymbolizedStack, redact bool) map[string]any {
		var w attributeWriter
		w.start(stackAttributeCount(st))
		putStack(&w, st, redact)
		attrs := pcommon.NewMap()
		w.into(attrs)
		assert.Equal(t, stackAttributeCount(st), attrs.Len(), "stackAttributeCount")
		return attrs.AsRaw()
	}
	assert.Empty(t, put(&mremap.SymbolizedStack{}, false), "no stack symbolized: no attribute")
	assert.Equal(t, map[string]any{"mremap.call_stack.end": "not_captured"}, put(&mremap.SymbolizedStack{End: "not_captured"}, false))
	assert.Equal(t, map[string]any{"code.stacktrace": "0x? (/bin/x+0x34)\nmain+0x1 (/bin/x)", "code.function.name": "main",
		"mremap.call_stack.end": "complete", "mremap.call_stack.unresolved": "no_symbol"},
		put(&mremap.SymbolizedStack{Trace: "0x1234 (/bin/x+0x34)\nmain+0x1 (/bin/x)", Function: "main",
			End: "complete", Unresolved: "no_symbol"}, true))
}

// ownStack is a stack of this test process, as the kernel would capture
// it: the return addresses of its goroutine.
func ownStack() mremap.Stack {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(1, pcs)
	s := mremap.Stack{Captured: true}
	for _, pc := range pcs[:n] {
		s.Addresses = append(s.Addresses, uint64(pc))
	}
	return s
}

// TestStackStageOrder: the stage hands the calls on in the order read,
// each with its stack symbolized: the first of a process waits for its
// maps and files, the ones behind it wait too, and a call without a stack
// says not_captured.
func TestStackStageOrder(t *testing.T) {
	s := newStackStage(zap.NewNop())
	proc := mremap.Process{PID: uint32(os.Getpid())}
	for i := 0; i < 10; i++ {
		c := observedCall{Call: mremap.Call{Process: proc, TID: uint32(i), Stack: ownStack()}}
		if i == 5 {
			c.Stack = mremap.Stack{}
		}
		s.hold(&c)
	}
	var got []observedCall
	s.drain(func(oc *observedCall) { got = append(got, *oc) })
	require.Len(t, got, 10)
	assert.Nil(t, s.held)
	for i, c := range got {
		assert.Equal(t, uint32(i), c.TID, "calls out of order")
		st := c.Stack.Symbolized
		if i == 5 {
			assert.Equal(t, mremap.SymbolizedStack{End: "not_captured"}, st)
			continue
		}
		assert.Contains(t, st.Trace, "mremapreceiver.TestStackStageOrder", "call %d", i)
		assert.Equal(t, "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver.ownStack", st.Function, "call %d", i)
		assert.Nil(t, c.Stack.Addresses, "the addresses are let go once symbolized")
	}
}

// TestStackStageWaitsBounded: a call whose stack is still being
// symbolized after stackWait goes on with what the cache had: frames
// without names, reason pending; the calls behind it follow.
func TestStackStageWaitsBounded(t *testing.T) {
	s := &stackStage{wake: make(chan struct{}, 1)}
	cached := callstack.Stack{Trace: "0x1234", End: callstack.EndUnknown, Unresolved: callstack.ReasonPending}
	done := callstack.Stack{Trace: "main+0x1 (/bin/x)", Function: "main", End: callstack.EndComplete}
	s.held = []*heldCall{
		{call: observedCall{Call: mremap.Call{TID: 1}}, since: time.Now().Add(-stackWait), cached: cached},
		{call: observedCall{Call: mremap.Call{TID: 2}}, since: time.Now(), final: done, done: true},
		{call: observedCall{Call: mremap.Call{TID: 3}}, since: time.Now(), cached: cached},
	}
	var got []observedCall
	next := s.release(func(oc *observedCall) { got = append(got, *oc) }, false)
	require.Len(t, got, 2, "the third waits")
	assert.Equal(t, mremap.SymbolizedStack{Trace: "0x1234", End: "unknown", Unresolved: "pending"}, got[0].Stack.Symbolized)
	assert.Equal(t, mremap.SymbolizedStack{Trace: "main+0x1 (/bin/x)", Function: "main", End: "complete"}, got[1].Stack.Symbolized)
	assert.Equal(t, uint64(1), s.pending)
	assert.WithinDuration(t, time.Now().Add(stackWait), next, stackWait/2, "when the third must go")
	assert.WithinDuration(t, time.Now().Add(stackPoll), s.next(), stackPoll, "the reader looks again soon")
	var off *stackStage
	assert.Zero(t, off.next(), "call_stack off: no deadline")
}
