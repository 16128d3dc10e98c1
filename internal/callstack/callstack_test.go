//go:build linux

package callstack

import (
	"strings"
	"syscall"
	"testing"
)

const sysMremap = syscall.SYS_MREMAP

// TestCLeafStub: glibc's mremap() and syscall() are leaf stubs, so the
// kernel's frame-pointer walk skips stack_inner, their caller; the return
// address on top of the stack brings it back, and Function
// names it.
func TestCLeafStub(t *testing.T) {
	for _, bin := range []string{"c-dynamic", "c-static"} {
		for _, mode := range []string{"mremap", "syscall"} {
			t.Run(bin+"/"+mode, func(t *testing.T) {
				req, stop := atSyscall(t, sysMremap, helper(t, bin), mode)
				defer stop()
				st := New(Config{}).Symbolize(req)
				t.Logf("end=%s unresolved=%s\n%s", st.End, st.Unresolved, st.Trace)
				got := functions(st)
				if !inOrder(got, "stack_inner", "stack_deep", "stack_middle", "stack_outer", "main") {
					t.Errorf("frames %q: want stack_inner, stack_deep, stack_middle, stack_outer, main in order", got)
				}
				if want := map[string]string{"mremap": "mremap", "syscall": "syscall"}[mode]; got[0] != want {
					t.Errorf("frame 0 is %q, want %q", got[0], want)
				}
				if st.Function != "stack_inner" {
					t.Errorf("Function = %q, want stack_inner", st.Function)
				}
			})
		}
	}
}

// TestCLeafStubWithoutReturn: without the top-of-stack word, the walk
// would name stack_middle as the caller; it stops instead.
func TestCLeafStubWithoutReturn(t *testing.T) {
	req, stop := atSyscall(t, sysMremap, helper(t, "c-dynamic"), "mremap")
	defer stop()
	req.StackWords = nil
	st := New(Config{}).Symbolize(req)
	if st.End != EndNoFramePointers || st.Function != "" || len(st.Frames) != 1 {
		t.Errorf("end=%s function=%q frames:\n%s\nwant the stub's frame alone, no_frame_pointers", st.End, st.Function, st.Trace)
	}
}

// TestCRealloc: realloc() goes through glibc's internal functions; this
// host's glibc (Debian 12) keeps no frame pointers, so the walk stops
// there and says so, never naming a function that did not make the call.
func TestCRealloc(t *testing.T) {
	req, stop := atSyscall(t, sysMremap, helper(t, "c-dynamic"), "realloc")
	defer stop()
	st := New(Config{}).Symbolize(req)
	t.Logf("end=%s unresolved=%s function=%q\n%s", st.End, st.Unresolved, st.Function, st.Trace)
	if st.Function != "" && st.Function != "stack_inner" {
		t.Errorf("Function = %q: only stack_inner made the call", st.Function)
	}
	if st.Function == "" && st.End != EndNoFramePointers {
		t.Errorf("no function and end=%s: want no_frame_pointers", st.End)
	}
	if !strings.Contains(st.Frames[0].Module, "libc.so.6") {
		t.Errorf("frame 0 in %q, want libc.so.6", st.Frames[0].Module)
	}
}

// TestGoLeafStub: Go's syscall path ends in an assembly leaf
// (internal/runtime/syscall.Syscall6); main.goInner is named.
func TestGoLeafStub(t *testing.T) {
	for _, bin := range []string{"go", "go-pie", "go-stripped"} {
		t.Run(bin, func(t *testing.T) {
			req, stop := atSyscall(t, sysMremap, helper(t, bin), "mremap")
			defer stop()
			st := New(Config{}).Symbolize(req)
			t.Logf("end=%s unresolved=%s\n%s", st.End, st.Unresolved, st.Trace)
			got := functions(st)
			if !inOrder(got, "syscall.Syscall6", "main.goInner", "main.goMiddle", "main.goOuter", "main.main", "runtime.main", "runtime.goexit") {
				t.Errorf("frames %q: want syscall.Syscall6, main.goInner, ..., runtime.goexit", got)
			}
			if st.Function != "main.goInner" || st.End != EndComplete {
				t.Errorf("Function = %q, end %s; want main.goInner, complete", st.Function, st.End)
			}
		})
	}
}
