//go:build linux

package callstack

import (
	"sync"
	"sync/atomic"
	"time"
)

// Config sets the symbolizer's bounds. Zero fields take the defaults.
type Config struct {
	// Limits bound what one file may cost (DefaultLimits).
	Limits Limits
	// CacheBytes bounds the memory of the cached symbol tables, all files
	// together (default 256 MiB).
	CacheBytes int64
	// MaxProcesses bounds how many processes' mappings are kept (default
	// 4096); the least recently used are forgotten.
	MaxProcesses int
	// MapsRefresh is the shortest time between two reads of one process's
	// /proc/PID/maps when an address falls outside what is known
	// (default 1s): a stack with a garbage address does not make the
	// maps be read again for every call.
	MapsRefresh time.Duration
}

// MaxFrames is the most frames the kernel captures for one stack.
const MaxFrames = 64

// MaxStackWords is the most stack words looked at for the caller of a
// frameless function: 256 bytes, more than glibc's mremap() frame (96).
const MaxStackWords = 32

// Request is one captured user stack.
type Request struct {
	// PID is the process (tgid) as the host's pid namespace numbers it.
	PID uint32
	// StartTime is when the process started, in nanoseconds since boot
	// (CLOCK_BOOTTIME: the group leader's start_boottime), so that a pid
	// reused by another process is noticed; 0 if not known.
	StartTime uint64
	// Addresses are what bpf_get_stack(BPF_F_USER_STACK) returns: the
	// user instruction pointer at the syscall, then the return addresses
	// of the frame-pointer walk, innermost first. Empty when the kernel
	// captured no stack.
	Addresses []uint64
	// StackWords are the first words on top of the user stack at the
	// syscall, from the stack pointer up (x86; at most MaxStackWords).
	// LinkRegister is x30 at the syscall (arm64). They recover the caller
	// of a function that sets up no frame pointer (glibc's mremap() and
	// syscall(), Go's internal/runtime/syscall/linux.Syscall6): the walk
	// skips that caller, whose return address lies in them. Empty and 0
	// when not captured.
	StackWords   []uint64
	LinkRegister uint64
	// Truncated is true when the kernel filled its buffer: deeper frames
	// exist and were not captured.
	Truncated bool
	// Compat is true for a 32-bit (ia32) caller on x86-64, whose
	// StackWords are 4-byte words, zero-extended.
	Compat bool
}

// Symbolizer turns captured stacks into frames with function names. It is
// safe for concurrent use. Cached never does I/O; Symbolize reads
// /proc/PID/maps and files as needed (see Queue for running it off the
// caller's goroutine).
type Symbolizer struct {
	cfg        Config
	proc       string // "/proc"
	noMapFiles bool   // tests: do not open /proc/PID/map_files
	files      *fileCache
	parseMu    sync.Mutex // one file parsed at a time

	mu    sync.Mutex
	procs map[uint32]*process
	clock atomic.Int64
	memo  memo // the stacks symbolized lately

	stats counters
}

// process is what is known of one process: its executable mappings.
type process struct {
	pid      uint32
	start    uint64 // clock ticks since boot, from /proc/PID/stat; 0 unknown
	maps     atomic.Pointer[procMaps]
	exited   atomic.Bool
	lastUsed atomic.Int64
	refresh  sync.Mutex
}

type procMaps struct {
	ms     []*mapping
	readAt time.Time
	err    Reason // why there are no mappings: the process exited, no access
}

// New returns a symbolizer with cfg's bounds.
func New(cfg Config) *Symbolizer {
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 256 << 20
	}
	if cfg.MaxProcesses <= 0 {
		cfg.MaxProcesses = 4096
	}
	if cfg.MapsRefresh <= 0 {
		cfg.MapsRefresh = time.Second
	}
	return &Symbolizer{cfg: cfg, proc: "/proc", files: newFileCache(cfg.CacheBytes, 16384),
		procs: map[uint32]*process{}, memo: memo{every: cfg.MapsRefresh}}
}

// Cached symbolizes req from what is in memory, without I/O. ok is false
// when something it needs is not loaded yet: the stack then has the
// frames it could make (module+offset, or bare addresses) and
// Unresolved == ReasonPending, and Symbolize would do better.
func (s *Symbolizer) Cached(req Request) (st Stack, ok bool) {
	s.stats.stacks.Add(1)
	if st, ok := s.memo.get(&req); ok {
		return st, true
	}
	w := walker{s: s, req: &req}
	st = w.walk()
	if w.pending {
		s.stats.pending.Add(1)
		st.Unresolved = ReasonPending
		return st, false
	}
	s.remember(&req, st, w.wordsRead)
	return st, true
}

// remember keeps a stack whose frames came from mappings and files known
// and readable: one of a process that exited, or with frames that no
// mapping covered yet, is walked again next time.
func (s *Symbolizer) remember(req *Request, st Stack, wordsRead int) {
	for i := range st.Frames {
		if r := st.Frames[i].Reason; r == ReasonProcessExited || r == ReasonNoMapping || r == ReasonPending {
			return
		}
	}
	s.memo.put(req, st, wordsRead)
}

// Symbolize symbolizes req, reading the process's mappings and files as
// needed. It blocks for as long as that I/O takes: parsing a large file
// for the first time can take a second.
func (s *Symbolizer) Symbolize(req Request) Stack {
	s.stats.stacks.Add(1)
	w := walker{s: s, req: &req, io: true}
	defer w.close()
	st := w.walk()
	s.remember(&req, st, w.wordsRead)
	return st
}

// processFor returns the process of req, or nil when it is not known (and
// create is false).
func (s *Symbolizer) processFor(req *Request, create bool) *process {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.procs[req.PID]
	if p != nil && req.StartTime != 0 && p.start != 0 && p.start != startTicks(req.StartTime) {
		p = nil // the pid was reused: a new process
		delete(s.procs, req.PID)
	}
	if p == nil && create {
		if len(s.procs) >= s.cfg.MaxProcesses {
			s.evictProcessLocked()
		}
		p = &process{pid: req.PID, start: startTicks(req.StartTime)}
		s.procs[req.PID] = p
	}
	if p != nil {
		p.lastUsed.Store(s.clock.Add(1))
	}
	return p
}

func (s *Symbolizer) evictProcessLocked() {
	var oldest *process
	for _, p := range s.procs {
		if oldest == nil || p.lastUsed.Load() < oldest.lastUsed.Load() {
			oldest = p
		}
	}
	if oldest != nil {
		delete(s.procs, oldest.pid)
	}
}

// userHZ is the unit of /proc/PID/stat's start time: USER_HZ, 100 on
// every Linux architecture the receiver runs on.
const userHZ = 100

func startTicks(ns uint64) uint64 { return ns / (1e9 / userHZ) }
