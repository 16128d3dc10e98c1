//go:build linux

package callstack

import (
	"slices"
	"testing"
	"time"
)

// TestMemo: a stack captured again is answered from the memo, the same as
// walked; another stack, a changed address or link register, or an
// expired memo is walked again; a stack of a process that exited is not
// kept.
func TestMemo(t *testing.T) {
	r := start(t, helper(t, "c-dynamic"), "print", "3")
	req := Request{PID: r.pid(), Addresses: r.addrs}
	s := New(Config{MapsRefresh: time.Hour})
	walked := s.Symbolize(req)
	if len(s.memo.entries) != 1 {
		t.Fatalf("memo holds %d stacks after one, want 1", len(s.memo.entries))
	}
	got, ok := s.memo.get(&req)
	if !ok || got.Trace != walked.Trace || got.Function != walked.Function || got.End != walked.End {
		t.Fatalf("memo: %v %+v, want %+v", ok, got, walked)
	}
	if st, ok := s.Cached(req); !ok || st.Trace != walked.Trace {
		t.Errorf("Cached: %v %q, want %q", ok, st.Trace, walked.Trace)
	}

	other := req
	other.Addresses = slices.Clone(req.Addresses)
	other.Addresses[len(other.Addresses)-1]++
	if _, ok := s.memo.get(&other); ok {
		t.Error("a changed return address was answered from the memo")
	}
	other = req
	other.LinkRegister = 1
	if _, ok := s.memo.get(&other); ok {
		t.Error("a changed link register was answered from the memo")
	}
	other = req
	other.PID++
	if _, ok := s.memo.get(&other); ok {
		t.Error("another process was answered from the memo")
	}

	s.memo.since = time.Now().Add(-2 * time.Hour)
	if _, ok := s.memo.get(&req); ok {
		t.Error("an expired memo answered")
	}

	// Frames of a process that exited are not kept: its next stack (a
	// reused pid) must be walked.
	s.remember(&req, Stack{Frames: []Frame{{Reason: ReasonProcessExited}}}, 0)
	if _, ok := s.memo.get(&req); ok {
		t.Error("a stack with process_exited frames was kept")
	}
}

// TestMemoWords: of the stack words only those the walk looked at must
// match: the first, which held the return address it recovered; the words
// after it may differ, the ones it read may not.
func TestMemoWords(t *testing.T) {
	m := memo{every: time.Hour}
	req := Request{PID: 1, Addresses: []uint64{0x1000, 0x2000}, StackWords: []uint64{0x3000, 7, 8}}
	m.put(&req, Stack{Trace: "t"}, 1)
	later := req
	later.StackWords = []uint64{0x3000, 9, 10}
	if st, ok := m.get(&later); !ok || st.Trace != "t" {
		t.Errorf("other words after the one read: %v %q, want the kept stack", ok, st.Trace)
	}
	later.StackWords = []uint64{0x3001, 7, 8}
	if _, ok := m.get(&later); ok {
		t.Error("another first word was answered from the memo")
	}
	later.StackWords = nil
	if _, ok := m.get(&later); ok {
		t.Error("no words were answered from the memo")
	}
	// A stack walked without words (nothing read) is not one with words.
	bare := Request{PID: 1, Addresses: []uint64{0x1000, 0x2000}}
	m.put(&bare, Stack{Trace: "bare"}, 0)
	if st, ok := m.get(&req); ok && st.Trace == "bare" {
		t.Error("a stack walked without words answered one with words")
	}
}

// TestMemoBound: the memo never holds more than memoEntries stacks.
func TestMemoBound(t *testing.T) {
	m := memo{every: time.Hour}
	for i := range memoEntries + 10 {
		m.put(&Request{PID: 1, Addresses: []uint64{uint64(i)}}, Stack{}, 0)
	}
	if n := len(m.entries); n == 0 || n > memoEntries {
		t.Errorf("memo holds %d stacks, want 1..%d", n, memoEntries)
	}
}
