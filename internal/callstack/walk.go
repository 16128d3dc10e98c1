//go:build linux

package callstack

import (
	"os"
	"time"
)

// walker symbolizes one stack. With io false it only reads what is in
// memory and sets pending when it needed more.
type walker struct {
	s       *Symbolizer
	req     *Request
	io      bool
	pending bool
	// wordsRead is how many of req.StackWords the walk looked at: the
	// words up to the caller's return address, when it looked for one.
	wordsRead int
	p         *process
	pm        *procMaps
	open      map[*mapping]*os.File // files opened during this walk
}

func (w *walker) close() {
	for _, f := range w.open {
		f.Close()
	}
}

func (w *walker) walk() Stack {
	if len(w.req.Addresses) == 0 {
		return Stack{End: EndNotCaptured}
	}
	w.loadProcess()
	fs, cut := w.frames()
	st := Stack{Frames: fs, End: w.end(fs, cut)}
	st.finish()
	return st
}

func (w *walker) loadProcess() {
	w.p = w.s.processFor(w.req, w.io)
	if w.p == nil {
		w.pending = true
		return
	}
	if w.pm = w.p.maps.Load(); w.pm == nil {
		if !w.io {
			w.pending = true
			return
		}
		w.pm = w.s.refresh(w.p, nil)
	}
}

// frames makes the frames: the instruction pointer, the leaf stub's
// caller when it is recovered, then the walk's return addresses until one
// comes from a frame whose code keeps no frame pointer (the next link is
// then untrustworthy), or leads nowhere. cut says whether it stopped so.
func (w *walker) frames() (fs []Frame, cut bool) {
	addrs := w.req.Addresses
	fs = make([]Frame, 0, len(addrs)+1)
	fs = append(fs, w.frame(addrs[0], false))
	if w.req.Compat && fs[0].m != nil && fs[0].m.kind == mappingVDSO {
		// A 32-bit system call through the vDSO's __kernel_vsyscall:
		// the kernel's fast 32-bit entry takes the frame pointer its
		// caller had before the call into the vDSO, so the walk's next
		// return addresses skip the callers. Only the vDSO frame is
		// sure.
		return fs, true
	}
	next := uint64(0)
	if len(addrs) > 1 {
		next = addrs[1]
	}
	if fr, ok := w.leafCaller(&fs[0], next); ok {
		fs = append(fs, fr)
	}
	for _, a := range addrs[1:] {
		if a == 0 {
			break
		}
		if isRoot(fs[len(fs)-1].Function) {
			break
		}
		if w.framePointer(&fs[len(fs)-1]) == fpNo {
			return fs, true
		}
		f := w.frame(a, true)
		if f.m == nil && f.Reason == ReasonNoMapping {
			return fs, true // an address no mapping covers: the chain is garbage
		}
		fs = append(fs, f)
	}
	// The walk ended on its own: if that was in code without a frame
	// pointer, it ended because of it.
	last := &fs[len(fs)-1]
	return fs, !isRoot(last.Function) && w.framePointer(last) == fpNo
}

func (w *walker) end(fs []Frame, cut bool) End {
	switch last := fs[len(fs)-1]; {
	case isRoot(last.Function):
		return EndComplete
	case cut:
		return EndNoFramePointers
	case w.req.Truncated:
		return EndTruncated
	}
	return EndUnknown
}

// mappingOf returns the mapping of addr. An address outside the known
// mappings makes them be read again (dlopen), at most once per
// MapsRefresh.
func (w *walker) mappingOf(addr uint64) (*mapping, Reason) {
	if w.pm == nil {
		return nil, ReasonPending
	}
	if m := find(w.pm.ms, addr); m != nil {
		return m, Resolved
	}
	if w.pm.err != Resolved {
		return nil, w.pm.err
	}
	if !w.p.exited.Load() && time.Since(w.pm.readAt) >= w.s.cfg.MapsRefresh {
		if !w.io {
			w.pending = true
			return nil, ReasonPending
		}
		w.pm = w.s.refresh(w.p, w.pm)
		if m := find(w.pm.ms, addr); m != nil {
			return m, Resolved
		}
	}
	return nil, ReasonNoMapping
}

// frame symbolizes one address; ret says it is a return address, looked
// up one byte back so that a call at the end of a function is found in it.
func (w *walker) frame(addr uint64, ret bool) Frame {
	f := Frame{Address: addr, idx: -1}
	m, why := w.mappingOf(addr)
	if m == nil {
		f.Reason = why
		return f
	}
	f.m, f.ModuleOffset = m, m.fileOffset(addr)
	switch m.kind {
	case mappingAnon:
		f.Reason = ReasonNoMapping
		return f
	case mappingSpecial:
		f.Module, f.Reason = m.path, ReasonNoSymbol
		return f
	}
	f.Module = m.path
	t, why := w.table(m)
	if t == nil {
		f.Reason = why
		return f
	}
	va, ok := t.vaddr(f.ModuleOffset)
	if !ok {
		f.Reason = ReasonNoSymbol
		return f
	}
	f.tab, f.va = t, va
	look := va
	if ret && look > 0 {
		look--
	}
	if f.idx = t.lookup(look); f.idx < 0 {
		f.Reason = ReasonNoSymbol
		if t.limited != Resolved {
			f.Reason = t.limited
		}
		return f
	}
	f.Function, f.Offset = t.name(f.idx), va-t.syms[f.idx].start
	return f
}

// table returns the symbol table of m's file, loading it when io allows.
func (w *walker) table(m *mapping) (*table, Reason) {
	res := m.res.Load()
	if res != nil && res.file == nil {
		return nil, res.reason
	}
	if res != nil {
		if t := res.file.tableOf(); t != nil {
			w.s.files.touch(t)
			return t, Resolved
		}
		if r := Reason(res.file.reason.Load()); r != Resolved {
			return nil, r
		}
	}
	if !w.io {
		w.pending = true
		return nil, ReasonPending
	}
	res = w.resolve(m)
	if res.file == nil {
		return nil, res.reason
	}
	if t := res.file.tableOf(); t != nil {
		return t, Resolved
	}
	if r := Reason(res.file.reason.Load()); r != Resolved {
		return nil, r
	}
	return nil, ReasonFileUnreadable
}
