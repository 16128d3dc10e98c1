//go:build linux

package callstack

import (
	"math/bits"
	"slices"
	"sync"
	"time"
)

// memoEntries bounds the stacks the memo keeps: a program makes most of
// its calls from a few call sites, so a few thousand cover a node's.
const memoEntries = 4096

// memo keeps the stacks symbolized lately, by what the kernel captured: a
// call made from where an earlier one was gets that one's stack without a
// walk (one hash and a comparison). Of the stack words (x86), only those
// the walk looked at count: up to the return address into a leaf function
// it recovered, usually the first. It forgets everything every
// MapsRefresh, as the mappings themselves are looked at again no sooner,
// so a library loaded or unloaded since shows within that time, and when
// full. Only stacks that needed nothing pending are kept.
type memo struct {
	mu      sync.Mutex
	every   time.Duration
	since   time.Time
	entries map[memoKey]memoEntry
}

type memoKey struct {
	pid   uint32
	start uint64
	hash  uint64
}

type memoEntry struct {
	addrs []uint64 // compared, so that a hash collision never gives another's stack
	lr    uint64
	// words are the stack words the walk looked at, the first ones: a
	// request whose first words are these gets the same stack, whatever
	// the words after them (the caller's locals).
	words []uint64
	st    Stack
}

// get returns the stack symbolized for a request captured as req, if kept.
func (m *memo) get(req *Request) (Stack, bool) {
	k := memoKeyOf(req)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.expiredLocked() {
		return Stack{}, false
	}
	e, ok := m.entries[k]
	if !ok || e.lr != req.LinkRegister || !slices.Equal(e.addrs, req.Addresses) ||
		len(req.StackWords) < len(e.words) || !slices.Equal(e.words, req.StackWords[:len(e.words)]) {
		return Stack{}, false
	}
	return e.st, true
}

// put keeps st, the stack symbolized for req, whose first wordsRead stack
// words the walk looked at.
func (m *memo) put(req *Request, st Stack, wordsRead int) {
	if len(req.Addresses) == 0 {
		return
	}
	k := memoKeyOf(req)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.expiredLocked() || len(m.entries) >= memoEntries {
		m.entries, m.since = make(map[memoKey]memoEntry), time.Now()
	}
	words := req.StackWords[:min(wordsRead, len(req.StackWords))]
	m.entries[k] = memoEntry{addrs: slices.Clone(req.Addresses), lr: req.LinkRegister, words: slices.Clone(words), st: st}
}

// expiredLocked clears the memo once it is every old.
func (m *memo) expiredLocked() bool {
	if m.entries != nil && time.Since(m.since) < m.every {
		return false
	}
	m.entries, m.since = nil, time.Time{}
	return true
}

// memoKeyOf hashes what the walk reads of req, but the stack words: which
// of them it reads depends on the stack (an entry keeps those).
func memoKeyOf(req *Request) memoKey {
	h := mix(uint64(len(req.Addresses)), req.LinkRegister)
	for _, a := range req.Addresses {
		h = mix(h, a)
	}
	var flags uint64
	if req.Truncated {
		flags |= 1
	}
	if req.Compat {
		flags |= 2
	}
	if len(req.StackWords) > 0 { // without words the walk recovers no leaf's caller
		flags |= 4
	}
	return memoKey{pid: req.PID, start: req.StartTime, hash: mix(h, flags)}
}

func mix(h, v uint64) uint64 {
	return bits.RotateLeft64((h^v)*0x9e3779b97f4a7c15, 31) * 0xbf58476d1ce4e5b9
}
