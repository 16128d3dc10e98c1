//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/otelcol-mremap/otelcol-mremap/internal/callstack"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

const (
	// stackQueue is how many stacks may wait for the background
	// symbolization (a process's maps, a file's symbols) at once; past it
	// a record goes with the frames the cache makes (reason pending).
	stackQueue = 1024
	// A record waits at most stackWait for its stack, and at most
	// maxHeld records wait behind the oldest: past either, it goes with
	// what the cache had, so a slow file delays records, never loses them.
	stackWait = time.Second
	maxHeld   = 4096
)

// stackPoll is how often the reader looks whether a held call's stack
// was symbolized, while one is held.
const stackPoll = 10 * time.Millisecond

// stackStage symbolizes the calls' stacks (call_stack) for the reader,
// which hands them to the batch in the order they were read. A call whose
// files are all cached is symbolized at once; the others wait for the
// background queue, and the calls read after them wait behind them. It
// never blocks the reader on I/O. Its methods do nothing on a nil stage
// (call_stack off).
type stackStage struct {
	sym    *callstack.Symbolizer
	q      *callstack.Queue[*heldCall]
	logger *zap.Logger
	wake   chan struct{} // a queued stack was symbolized (capacity 1)

	mu      sync.Mutex
	held    []*heldCall // in the order read
	pending uint64      // records sent before their stack was symbolized
}

// heldCall is a call waiting in the stage.
type heldCall struct {
	call   observedCall
	since  time.Time
	cached callstack.Stack // what the cache had when it was read
	final  callstack.Stack // the symbolized stack, once done
	done   bool
}

func newStackStage(logger *zap.Logger) *stackStage {
	s := &stackStage{sym: callstack.New(callstack.Config{}), logger: logger, wake: make(chan struct{}, 1)}
	s.q = callstack.NewQueue(s.sym, stackQueue, s.symbolized)
	return s
}

// symbolized is the queue's answer for h, from its goroutine.
func (s *stackStage) symbolized(h *heldCall, st callstack.Stack) {
	s.mu.Lock()
	h.final, h.done = st, true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// next is when the reader should look at the stage again: soon while it
// holds a call, the zero time (never) while it holds none.
func (s *stackStage) next() time.Time {
	if s == nil {
		return time.Time{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.held) == 0 {
		return time.Time{}
	}
	return earliest(s.held[0].since.Add(stackWait), time.Now().Add(stackPoll))
}

// drain hands on the calls left once the reader stopped: each as soon as
// its stack is symbolized, all of them by stackWait at the latest; then it
// stops the queue.
func (s *stackStage) drain(add func(*observedCall)) {
	if s == nil {
		return
	}
	deadline := time.NewTimer(stackWait)
	defer deadline.Stop()
	for !s.release(add, false).IsZero() {
		select {
		case <-s.wake:
		case <-deadline.C:
			s.release(add, true)
		}
	}
	s.q.Close()
	s.report()
}

// hold takes a call read from the ring buffer.
func (s *stackStage) hold(oc *observedCall) {
	h := &heldCall{call: *oc, since: time.Now()}
	var st callstack.Stack
	ok := true
	if oc.Stack.Captured {
		st, ok = s.q.Submit(stackRequest(&oc.Call), h)
	} else {
		st = callstack.Stack{End: callstack.EndNotCaptured}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h.cached = st
	if ok {
		h.final, h.done = st, true
	}
	s.held = append(s.held, h)
}

// release hands to add the calls at the head that may go: symbolized, or
// waited long enough, or all of them; it returns when the oldest call left
// must go (the zero time: none is left).
func (s *stackStage) release(add func(*observedCall), all bool) time.Time {
	if s == nil {
		return time.Time{}
	}
	now := time.Now()
	s.mu.Lock()
	n := 0
	for ; n < len(s.held); n++ {
		h := s.held[n]
		if !h.done && !all && now.Sub(h.since) < stackWait && len(s.held)-n <= maxHeld {
			break
		}
		if !h.done {
			h.final = h.cached
			s.pending++
		}
		setSymbolized(&h.call.Stack, &h.final)
	}
	gone := s.held[:n:n]
	s.held = s.held[n:]
	if len(s.held) == 0 {
		s.held = nil // let the array go
	}
	var next time.Time
	if len(s.held) > 0 {
		next = s.held[0].since.Add(stackWait)
	}
	s.mu.Unlock()
	// The queue no longer writes to the calls gone: each is done, or
	// left (its answer, if it comes, sets only final and done, which are
	// read no more).
	for _, h := range gone {
		add(&h.call)
	}
	clear(gone) // the stage holds its array still
	return next
}

// stackRequest is what the symbolizer needs of a call's stack.
func stackRequest(c *mremap.Call) callstack.Request {
	s := &c.Stack
	return callstack.Request{PID: c.Process.PID, StartTime: s.StartTime, Addresses: s.Addresses,
		StackWords: s.Words, LinkRegister: s.LinkRegister, Truncated: s.Truncated, Compat: s.Compat}
}

// setSymbolized puts the symbolized stack st on the call's stack, as the
// log record carries it.
func setSymbolized(s *mremap.Stack, st *callstack.Stack) {
	s.Symbolized = mremap.SymbolizedStack{Trace: st.Trace, Function: st.Function, End: st.End.String()}
	if st.Unresolved != callstack.Resolved {
		s.Symbolized.Unresolved = st.Unresolved.String()
	}
	// The addresses are not needed any more: the record does not keep
	// them.
	s.Addresses, s.Words = nil, nil
}

// report logs, at shutdown, how many records went before their stack was
// symbolized, so that no frame without a name goes unexplained.
func (s *stackStage) report() {
	st := s.sym.Stats()
	if s.pending == 0 && st.QueueFull == 0 {
		return
	}
	s.logger.Info("mremap call stacks: some records were sent before their stacks' symbols were loaded (mremap.call_stack.unresolved: pending)",
		zap.Uint64("records", s.pending), zap.Int64("queue_full", st.QueueFull),
		zap.Int64("stacks", st.Stacks), zap.Int64("files_parsed", st.FileParses))
}

// stackAttributeCount is how many attributes putStack writes.
func stackAttributeCount(s *mremap.SymbolizedStack) int {
	if s.End == "" {
		return 0
	}
	n := 1
	for _, v := range []string{s.Trace, s.Function, s.Unresolved} {
		if v != "" {
			n++
		}
	}
	return n
}

// putStack writes the call's stack attributes, once the stage symbolized
// it: the trace (its addresses written 0x? with redact_addresses) and the
// function, how the stack ended and why a frame has no name.
func putStack(a *attributeWriter, s *mremap.SymbolizedStack, redact bool) {
	if s.End == "" {
		return
	}
	if s.Trace != "" {
		trace := s.Trace
		if redact {
			trace = redactTrace(trace)
		}
		a.putStr("code.stacktrace", trace)
	}
	if s.Function != "" {
		a.putStr("code.function.name", s.Function)
	}
	a.putStr("mremap.call_stack.end", s.End)
	if s.Unresolved != "" {
		a.putStr("mremap.call_stack.unresolved", s.Unresolved)
	}
}

// redactTrace writes 0x? for the address of each frame that has no
// function name ("0x7f3a2c0013a8 (path+0x13a8)", "0x7f3a2c0013a8"): a
// named frame shows an offset in its function, and a file frame its offset
// in the file, neither of which reveals the process's memory layout.
func redactTrace(trace string) string {
	var b strings.Builder
	b.Grow(len(trace))
	for i, line := range strings.Split(trace, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		if strings.HasPrefix(line, "0x") {
			_, rest, _ := strings.Cut(line, " ")
			b.WriteString("0x?")
			if rest != "" {
				b.WriteString(" " + rest)
			}
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}
