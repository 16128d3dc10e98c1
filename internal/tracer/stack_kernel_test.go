//go:build linux

package tracer

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/callstack"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// TestCallStackCapture: with CallStack, each record carries the caller's
// user stack, captured at the syscall's exit: the frames of the Go helper's
// known nested functions, the registers that recover the caller of its
// leaf stub, and the process's start time as /proc/PID/stat has it.
func TestCallStackCapture(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	cstack := mremaptest.CStackPath(t)
	for _, probe := range probesToTest(t) {
		t.Run(string(probe), func(t *testing.T) {
			t.Run("go", func(t *testing.T) {
				tr := newTracer(t, Options{Probe: probe, Events: true, RingBufferSize: 1 << 20, CallStack: true, Filter: helperOnly()})
				made := mremaptest.StartHelper(t, 1, helper, "-stack", "-linger", "1m")
				checkCapture(t, tr, made[0], mremaptest.GoStackFunctions)
			})
			t.Run("c", func(t *testing.T) {
				tr := newTracer(t, Options{Probe: probe, Events: true, RingBufferSize: 1 << 20, CallStack: true,
					Filter: Filter{Comms: []string{mremaptest.CommCStack}}})
				for _, mode := range []string{"mremap", "syscall"} {
					made := mremaptest.StartHelper(t, 1, cstack, mode, "60000")
					checkCapture(t, tr, made[0], mremaptest.CStackFunctions)
				}
			})
		})
	}
}

// checkCapture reads the call made and checks its stack, symbolized while
// the helper still runs.
func checkCapture(t *testing.T, tr *Tracer, made mremaptest.Made, functions []string) {
	t.Helper()
	assert.Equal(t, CallStackOn, tr.Plan().CallStack, "kernels since 5.15 reach the saved user registers")
	c := readCalls(t, tr, 1)[0]
	require.Equal(t, made.OldAddress, c.OldAddress, "the call read is not the one made")
	s := c.Stack
	require.True(t, s.Captured, "no stack on the record")
	require.Zero(t, s.Err)
	require.NotEmpty(t, s.Addresses)
	assert.False(t, s.Truncated)
	assert.False(t, s.Compat)
	if runtime.GOARCH == "arm64" {
		assert.NotZero(t, s.LinkRegister, "the link register")
		assert.Empty(t, s.Words)
	} else {
		assert.Len(t, s.Words, 32, "the top of the user stack")
		assert.Zero(t, s.LinkRegister)
	}
	assert.Equal(t, startTicks(t, made.PID), s.StartTime/1e7, "start time: /proc/PID/stat's, in clock ticks")
	st := callstack.New(callstack.Config{}).Symbolize(callstack.Request{PID: c.Process.PID, StartTime: s.StartTime,
		Addresses: s.Addresses, StackWords: s.Words, LinkRegister: s.LinkRegister, Truncated: s.Truncated})
	t.Logf("end=%s unresolved=%s function=%q\n%s", st.End, st.Unresolved, st.Function, st.Trace)
	var got []string
	for _, f := range st.Frames {
		got = append(got, f.Function)
	}
	assert.True(t, mremaptest.InOrder(got, functions...), "frames %q: want %q in order", got, functions)
	assert.Equal(t, functions[0], st.Function)
}

// startTicks is the start time of process pid, in clock ticks since boot
// (field 22 of /proc/PID/stat).
func startTicks(t *testing.T, pid uint32) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	n, err := strconv.ParseUint(f[19], 10, 64)
	require.NoError(t, err)
	return n
}

// TestCallStackRecordSizes: without CallStack the records are as they
// were, the sizes of the fixed part; with it each has the stack after.
func TestCallStackRecordSizes(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	event := int(unsafe.Sizeof(bpf.MremapEvent{}))
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("CallStack=%v", on), func(t *testing.T) {
			tr := newTracer(t, Options{Probe: ProbeTracepoint, Events: true, RingBufferSize: 1 << 20, CallStack: on, Filter: helperOnly()})
			made := mremaptest.RunHelper(t, helper)
			sizes := map[int]int{}
			for range made {
				sizes[readRaw(t, tr)]++
			}
			want := []int{eventSizeNoPath, event}
			if on {
				want = []int{eventSizeNoPath + stackTailSize, event + stackTailSize}
			}
			for n := range sizes {
				assert.Contains(t, want, n, "record sizes %v", sizes)
			}
			assert.Len(t, sizes, 2, "records with and without a path: %v", sizes)
		})
	}
}

// readRaw reads one record from the ring buffer and returns its size.
func readRaw(t *testing.T, tr *Tracer) int {
	t.Helper()
	// The kernel wakes the reader only once a share of the ring buffer
	// is full: poll, as Read does.
	for end := time.Now().Add(10 * time.Second); ; {
		tr.reader.SetDeadline(time.Now().Add(pollInterval))
		err := tr.reader.ReadInto(&tr.record)
		if err == nil {
			break
		}
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.True(t, time.Now().Before(end), "no record within 10s")
	}
	_, err := tr.decoder.decode(tr.record.RawSample)
	require.NoError(t, err)
	return len(tr.record.RawSample)
}

// TestCallStackOff: without CallStack no record carries a stack, and the
// plan says so.
func TestCallStackOff(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	tr := newTracer(t, Options{Probe: ProbeTracepoint, Events: true, RingBufferSize: 1 << 20, Filter: helperOnly()})
	assert.Equal(t, CallStackOff, tr.Plan().CallStack)
	made := mremaptest.RunHelper(t, helper)
	for _, c := range readCalls(t, tr, len(made)) {
		assert.Equal(t, mremap.Stack{}, c.Stack)
	}
}

// TestCallStackIa32: a 32-bit caller's stack is captured too, its 32-bit
// frames walked and its stack words 4 bytes each (cmd/mremap-helper32,
// whose glibc mremap() enters through the vDSO).
func TestCallStackIa32(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper32 := mremaptest.HelperGlibc32Path(t)
	for _, probe := range probesToTest(t) {
		t.Run(string(probe), func(t *testing.T) {
			tr := newTracer(t, Options{Probe: probe, Events: true, RingBufferSize: 1 << 20, CallStack: true,
				Filter: Filter{Comms: []string{mremaptest.CommGlibc32}}})
			made := mremaptest.StartHelper(t, len(mremaptest.ExpectedGlibc32), helper32, "-linger", "60s")
			for i, c := range readCalls(t, tr, len(made)) {
				s := c.Stack
				assert.True(t, s.Captured && s.Compat, "call %d: captured %v, compat %v", i, s.Captured, s.Compat)
				require.NotEmpty(t, s.Addresses, "call %d", i)
				for _, a := range s.Addresses {
					assert.Less(t, a, uint64(1<<32), "call %d: a 32-bit address", i)
				}
				require.Len(t, s.Words, 32)
				for _, w := range s.Words {
					assert.Less(t, w, uint64(1<<32), "call %d: a 4-byte word", i)
				}
				// glibc's i386 mremap() enters through the vDSO, where
				// the walk is cut: the frames after it skip callers.
				st := callstack.New(callstack.Config{}).Symbolize(callstack.Request{PID: c.Process.PID,
					StartTime: s.StartTime, Addresses: s.Addresses, StackWords: s.Words, Compat: true})
				t.Logf("call %d: end=%s unresolved=%s\n%s", i, st.End, st.Unresolved, st.Trace)
				assert.Equal(t, callstack.EndNoFramePointers, st.End, "call %d", i)
				assert.Len(t, st.Frames, 1, "call %d", i)
				assert.Empty(t, st.Function, "call %d", i)
			}
		})
	}
}
