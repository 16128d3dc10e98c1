// Package tracer loads the eBPF program that observes mremap(2), attaches it
// to the kernel, and reads what it reports: one Call per mremap(2) from the
// ring buffer, and the Aggregates the kernel keeps for metrics.
package tracer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// MaxCommLen is the longest process name the kernel keeps (TASK_COMM_LEN-1).
const MaxCommLen = 15

// kretprobeMaxActive is how many calls a kretprobe can track at once. The
// default is max(10, 2*CPUs); beyond it the kernel misses returns. 4096 is
// the kernel's maximum (KRETPROBE_MAXACTIVE_MAX). Setting it makes
// cilium/ebpf create the probe through tracefs.
const kretprobeMaxActive = 4096

// The kernel wakes the reader when a ring buffer holds 1/wakeupFraction of
// its size; between wake-ups Read polls every pollInterval, so records of a
// quiet host are read within that time.
const (
	wakeupFraction = 8
	pollInterval   = 100 * time.Millisecond
)

// membarrierCmdGlobal is MEMBARRIER_CMD_GLOBAL from <linux/membarrier.h>.
const membarrierCmdGlobal = 1

// clockRefresh is how often Read measures the clock offset again.
const clockRefresh = time.Minute

// ErrClosed is returned by Read after Close.
var ErrClosed = errors.New("tracer closed")

// Filter selects calls in the kernel. The zero Filter selects everything.
type Filter struct {
	PIDs         []uint32 // process ids (tgid) to keep
	Comms        []string // process names to keep
	ExcludeComms []string // process names to drop
	// CgroupIDs are cgroup v2 ids (see CgroupID): a call is kept if the
	// calling task's cgroup or one of its ancestors is one of them.
	CgroupIDs []uint64
	// MinSizeDelta drops calls whose abs(new_size - old_size) is smaller,
	// from records and aggregates alike.
	MinSizeDelta uint64
	// ErrorsOnly submits records only for failed calls; aggregates still
	// count every selected call.
	ErrorsOnly bool
}

// Options configure a Tracer.
type Options struct {
	Probe Probe
	// Events makes the kernel submit one record per call to the ring
	// buffer, for Read. Without it only Aggregates are kept.
	Events bool
	// RingBufferSize in bytes: a power of two and a multiple of the page
	// size. Used only with Events.
	RingBufferSize int
	// MaxEventsPerSecond caps the records submitted; 0 means no cap.
	MaxEventsPerSecond uint64
	// SkipVMALookup leaves out the lookup, at each call's entry, of the
	// mapping at old_address (Call.VMA stays empty). The lookup takes the
	// mm's mmap lock for reading.
	SkipVMALookup bool
	// SkipIa32Tracepoints leaves out, in tracepoint mode, the raw_syscalls
	// programs that catch 32-bit (ia32) callers: they run on every syscall
	// of the host, so 32-bit mremap calls go unseen in exchange for that
	// cost. Kprobe mode is not affected.
	SkipIa32Tracepoints bool
	Filter              Filter

	// pairing overrides the kernel's choice of where calls in flight are
	// kept (for tests and benchmarks of both on one kernel).
	pairing pairing
}

// Tracer is the loaded and attached eBPF program.
type Tracer struct {
	probe  Probe
	reason string

	maps        bpf.MremapMaps
	programs    []*ebpf.Program
	links       []link.Link
	linksMu     sync.Mutex // guards links, retprobes, retSymbols against Stop
	finalMissed uint64     // probe misses when Stop detached the probes
	// retprobes are the kretprobe links, with their symbols, whose missed
	// returns are reported as Drops.ProbeMissed.
	retprobes  []link.Link
	retSymbols []string
	retEvents  map[string]bool // our tracefs kretprobe events, "group/event"
	tracefs    string
	reader     *ringbuf.Reader
	record     ringbuf.Record
	clock      Clock
	clockAt    time.Time // when clock was measured
	stopped    atomic.Bool
	ia32Raw    bool   // the ia32 raw tracepoints are attached
	ia32Why    string // why they are not, where the user should know
	// malformed counts the ring buffer records Read skipped because they
	// were truncated or corrupt (Drops.MalformedRecord).
	malformed atomic.Uint64
}

// New checks privileges, loads the program and attaches it in the mode that
// opts.Probe selects. Close releases everything.
func New(opts Options) (*Tracer, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	missing, err := missingCapabilities()
	if err != nil {
		return nil, err
	}
	if len(missing) == 0 {
		// Kernels before 5.11 charge eBPF maps to RLIMIT_MEMLOCK, whose
		// default is far below a 4 MiB ring buffer; later kernels charge
		// the memory cgroup, and this does nothing.
		if err := rlimit.RemoveMemlock(); err != nil {
			return nil, fmt.Errorf("raise RLIMIT_MEMLOCK for the eBPF maps (this kernel charges them to it): grant CAP_SYS_RESOURCE or set LimitMEMLOCK=infinity: %w", err)
		}
	}
	tracefs, err := tracefsPath()
	if err != nil {
		if len(missing) > 0 {
			return nil, capabilitiesError(missing)
		}
		return nil, err
	}
	k := probeKernel(tracefs)
	if errors.Is(k.tracepoints, errTracefsDenied) {
		// Only root may enter tracefs, where the tracepoint IDs are.
		missing = append(missing, "CAP_DAC_READ_SEARCH")
	}
	if len(missing) > 0 {
		return nil, capabilitiesError(missing)
	}
	probe, reason, err := k.choose(opts.Probe)
	if err != nil {
		return nil, err
	}
	var pairWhy string
	opts.pairing, pairWhy = k.choosePairing(opts.pairing)
	vmaOff, err := k.require(probe, opts)
	if err != nil {
		return nil, err
	}
	skipVMA := opts.SkipVMALookup
	opts.SkipVMALookup = skipVMA || vmaOff != ""
	// A collector that was killed left its tracefs kretprobes behind,
	// whichever mode this one runs in.
	removeStaleKprobes(tracefs)

	t, err := open(opts, probe, tracefs)
	if err != nil && opts.Probe == ProbeAuto && probe == ProbeKprobe {
		reason = fmt.Sprintf("probe auto chose tracepoint: attaching kprobes failed: %v", err)
		probe = ProbeTracepoint
		opts.SkipVMALookup = skipVMA
		if vmaOff, err = k.require(probe, opts); err != nil {
			return nil, err
		}
		opts.SkipVMALookup = skipVMA || vmaOff != ""
		t, err = open(opts, probe, tracefs)
	}
	if err != nil {
		return nil, err
	}
	reason += "; " + pairWhy
	if vmaOff != "" {
		reason += "; " + vmaOff
	}
	if t.ia32Raw {
		reason += "; 32-bit (ia32) calls, which syscall tracepoints skip, are caught by raw_syscalls:sys_enter/sys_exit raw tracepoints filtered in the kernel to the i386 mremap (163)"
	} else if t.ia32Why != "" {
		reason += "; " + t.ia32Why
	}
	t.reason = reason
	return t, nil
}

func (o Options) validate() error {
	var errs []error
	if _, err := ParseProbe(string(o.Probe)); err != nil {
		errs = append(errs, err)
	}
	if o.Events {
		page := os.Getpagesize()
		if n := o.RingBufferSize; n < page || n&(n-1) != 0 {
			errs = append(errs, fmt.Errorf("ring buffer size %d: must be a power of two and at least one page (%d bytes)", n, page))
		}
	}
	for _, c := range append(append([]string{}, o.Filter.Comms...), o.Filter.ExcludeComms...) {
		if len(c) == 0 || len(c) > MaxCommLen {
			errs = append(errs, fmt.Errorf("comm %q: must be 1 to %d bytes long", c, MaxCommLen))
		}
	}
	return errors.Join(errs...)
}

type tracepointPrograms struct {
	Enter *ebpf.Program `ebpf:"tracepoint_enter"`
	Exit  *ebpf.Program `ebpf:"tracepoint_exit"`
}

// ia32Programs catch 32-bit mremap calls in tracepoint mode on x86-64.
type ia32Programs struct {
	Enter *ebpf.Program `ebpf:"ia32_sys_enter"`
	Exit  *ebpf.Program `ebpf:"ia32_sys_exit"`
}

type kprobePrograms struct {
	Enter     *ebpf.Program `ebpf:"kprobe_enter"`
	EnterIa32 *ebpf.Program `ebpf:"kprobe_enter_ia32"`
	Exit      *ebpf.Program `ebpf:"kprobe_exit"`
}

func open(opts Options, probe Probe, tracefs string) (_ *Tracer, err error) {
	spec, err := bpf.LoadMremap()
	if err != nil {
		return nil, fmt.Errorf("load eBPF object: %w", err)
	}
	if err := configure(spec, opts); err != nil {
		return nil, err
	}

	t := &Tracer{probe: probe, tracefs: tracefs, clock: NewClock(), clockAt: time.Now(), retEvents: map[string]bool{}}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()

	switch probe {
	case ProbeTracepoint:
		// On x86-64 kernels that run 32-bit programs, the ia32 programs
		// catch what the syscall tracepoints skip.
		withIa32, why := ia32Tracepoints()
		if withIa32 && opts.SkipIa32Tracepoints {
			withIa32 = false
			why = "32-bit (ia32) calls are not seen: ia32_raw_tracepoints is off, so the raw_syscalls programs that would catch them (and run on every syscall) are not attached"
		}
		t.ia32Why = why
		var objs struct {
			bpf.MremapMaps
			tracepointPrograms
			ia32 ia32Programs
		}
		if withIa32 {
			var all struct {
				bpf.MremapMaps
				tracepointPrograms
				ia32Programs
			}
			err = spec.LoadAndAssign(&all, nil)
			objs.MremapMaps, objs.tracepointPrograms, objs.ia32 = all.MremapMaps, all.tracepointPrograms, all.ia32Programs
		} else {
			var native struct {
				bpf.MremapMaps
				tracepointPrograms
			}
			err = spec.LoadAndAssign(&native, nil)
			objs.MremapMaps, objs.tracepointPrograms = native.MremapMaps, native.tracepointPrograms
		}
		if err != nil {
			return nil, fmt.Errorf("load eBPF programs into the kernel: %w", verifierError(err))
		}
		t.maps = objs.MremapMaps
		t.programs = []*ebpf.Program{objs.Enter, objs.Exit, objs.ia32.Enter, objs.ia32.Exit}
		if err := t.fillFilters(opts.Filter); err != nil {
			return nil, err
		}
		// Exit first: an entry recorded before its exit probe exists would
		// never be paired.
		if err := t.attachTracepoint("sys_exit_mremap", objs.Exit); err != nil {
			return nil, err
		}
		if withIa32 {
			if err := t.attachRawTracepoint("sys_exit", objs.ia32.Exit); err != nil {
				return nil, err
			}
		}
		if err := t.attachTracepoint("sys_enter_mremap", objs.Enter); err != nil {
			return nil, err
		}
		if withIa32 {
			if err := t.attachRawTracepoint("sys_enter", objs.ia32.Enter); err != nil {
				return nil, err
			}
			t.ia32Raw = true
		}
	case ProbeKprobe:
		var objs struct {
			bpf.MremapMaps
			kprobePrograms
		}
		if err := spec.LoadAndAssign(&objs, nil); err != nil {
			return nil, fmt.Errorf("load eBPF programs into the kernel: %w", verifierError(err))
		}
		t.maps = objs.MremapMaps
		t.programs = []*ebpf.Program{objs.Enter, objs.EnterIa32, objs.Exit}
		if err := t.fillFilters(opts.Filter); err != nil {
			return nil, err
		}
		native, compat := syscallSymbols()
		present, err := kallsymsHas(compat...)
		if err != nil {
			return nil, fmt.Errorf("read /proc/kallsyms: %w", err)
		}
		symbols := []string{native}
		enters := []*ebpf.Program{objs.Enter}
		for _, sym := range compat {
			if present[sym] {
				symbols = append(symbols, sym)
				enters = append(enters, objs.EnterIa32)
			}
		}
		for _, sym := range symbols {
			if err := t.attachKretprobe(sym, objs.Exit); err != nil {
				return nil, err
			}
		}
		for i, sym := range symbols {
			l, err := link.Kprobe(sym, enters[i], nil)
			if err != nil {
				return nil, fmt.Errorf("attach kprobe %s: %w", sym, err)
			}
			t.links = append(t.links, l)
		}
	default:
		return nil, fmt.Errorf("unknown probe %q", probe)
	}

	if opts.Events {
		t.reader, err = ringbuf.NewReader(t.maps.Events)
		if err != nil {
			return nil, fmt.Errorf("open ring buffer reader: %w", err)
		}
		t.reader.SetDeadline(time.Now().Add(pollInterval))
	}
	return t, nil
}

// configure sets the load-time constants and map sizes.
func configure(spec *ebpf.CollectionSpec, opts Options) error {
	f := opts.Filter
	vars := []struct {
		name  string
		value any
	}{
		{"emit_events", opts.Events},
		{"errors_only", f.ErrorsOnly},
		{"filter_pids", len(f.PIDs) > 0},
		{"filter_comms", len(f.Comms) > 0},
		{"filter_exclude_comms", len(f.ExcludeComms) > 0},
		{"filter_cgroups", len(f.CgroupIDs) > 0},
		{"min_size_delta", f.MinSizeDelta},
		{"max_events_per_second", opts.MaxEventsPerSecond},
		{"wakeup_bytes", uint64(opts.RingBufferSize / wakeupFraction)},
		// The mapping goes only into records: without them, no lookup.
		{"vma_lookup", opts.Events && !opts.SkipVMALookup},
		{"lru_pairing", opts.pairing == pairingLRU},
	}
	for _, v := range vars {
		vs, ok := spec.Variables[v.name]
		if !ok {
			return fmt.Errorf("eBPF object has no variable %s", v.name)
		}
		if err := vs.Set(v.value); err != nil {
			return fmt.Errorf("set %s: %w", v.name, err)
		}
	}
	sizes := map[string]int{
		bpf.MremapMapPidFilter:    len(f.PIDs),
		bpf.MremapMapCommFilter:   len(f.Comms),
		bpf.MremapMapCommExclude:  len(f.ExcludeComms),
		bpf.MremapMapCgroupFilter: len(f.CgroupIDs),
		// Without events, the smallest ring buffer the kernel accepts.
		bpf.MremapMapEvents: os.Getpagesize(),
	}
	if opts.Events {
		sizes[bpf.MremapMapEvents] = opts.RingBufferSize
	}
	if opts.pairing == pairingLRU {
		// The programs never reach the task storage map (the verifier
		// skips the code behind lru_pairing): an array of one stands in,
		// so that kernels without task storage load them too.
		ts := spec.Maps[bpf.MremapMapInflight]
		ts.Type, ts.Flags, ts.MaxEntries = ebpf.Array, 0, 1
	} else {
		// Preallocated: one entry is the least the kernel creates.
		sizes[bpf.MremapMapInflightLru] = 1
	}
	for name, n := range sizes {
		spec.Maps[name].MaxEntries = uint32(max(n, 1))
	}
	return nil
}

func (t *Tracer) fillFilters(f Filter) error {
	one := uint8(1)
	for _, pid := range f.PIDs {
		if err := t.maps.PidFilter.Put(pid, one); err != nil {
			return fmt.Errorf("fill pid filter: %w", err)
		}
	}
	for _, id := range f.CgroupIDs {
		if err := t.maps.CgroupFilter.Put(id, one); err != nil {
			return fmt.Errorf("fill cgroup filter: %w", err)
		}
	}
	for _, set := range []struct {
		m     *ebpf.Map
		comms []string
	}{{t.maps.CommFilter, f.Comms}, {t.maps.CommExclude, f.ExcludeComms}} {
		for _, c := range set.comms {
			if err := set.m.Put(commKey(c), one); err != nil {
				return fmt.Errorf("fill comm filter: %w", err)
			}
		}
	}
	return nil
}

func commKey(s string) bpf.MremapComm {
	var c bpf.MremapComm
	for i := 0; i < len(s) && i < len(c.Name)-1; i++ {
		c.Name[i] = int8(s[i])
	}
	return c
}

// commString is a comm up to its NUL.
func commString(name [16]int8) string {
	b := bytesOf(name[:])
	for i, c := range b {
		if c == 0 {
			b = b[:i]
			break
		}
	}
	return interned.get("", b, "")
}

func (t *Tracer) attachTracepoint(name string, prog *ebpf.Program) error {
	l, err := link.Tracepoint("syscalls", name, prog, nil)
	if err != nil {
		return fmt.Errorf("attach tracepoint syscalls:%s: %w", name, err)
	}
	t.links = append(t.links, l)
	return nil
}

func (t *Tracer) attachRawTracepoint(name string, prog *ebpf.Program) error {
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: name, Program: prog})
	if err != nil {
		return fmt.Errorf("attach raw tracepoint raw_syscalls:%s: %w", name, err)
	}
	t.links = append(t.links, l)
	return nil
}

// ia32Tracepoints tells whether tracepoint mode attaches the ia32 raw
// tracepoints on this kernel, and if not, why (empty where there is nothing
// to say: not x86-64, or no ia32 emulation built in).
func ia32Tracepoints() (bool, string) {
	_, compat := syscallSymbols()
	if len(compat) == 0 {
		return false, ""
	}
	return readIa32Facts(compat[0]).ia32Raw()
}

func (t *Tracer) attachKretprobe(sym string, prog *ebpf.Program) error {
	// With maxactive the kretprobe is made through tracefs; note which
	// event is ours, to read its misses from kprobe_profile.
	before, _ := kprobeEvents(t.tracefs)
	opts := &link.KprobeOptions{RetprobeMaxActive: kretprobeMaxActive, TraceFSPrefix: tracefsGroupPrefix}
	l, err := link.Kretprobe(sym, prog, opts)
	if errors.Is(err, link.ErrNotSupported) {
		// Kernels before 4.12 cannot set maxactive; take the default.
		l, err = link.Kretprobe(sym, prog, &link.KprobeOptions{TraceFSPrefix: tracefsGroupPrefix})
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("attach kretprobe %s: %w (creating it writes %s/kprobe_events, which needs CAP_DAC_OVERRIDE or root)", sym, err, t.tracefs)
	}
	if err != nil {
		return fmt.Errorf("attach kretprobe %s: %w", sym, err)
	}
	t.links = append(t.links, l)
	t.retprobes = append(t.retprobes, l)
	t.retSymbols = append(t.retSymbols, sym)
	if after, err := kprobeEvents(t.tracefs); err == nil {
		for _, ev := range newEvents(before, after, sym) {
			t.retEvents[ev] = true
		}
	}
	return nil
}

// verifierError keeps the verifier's log short enough for a log line.
func verifierError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return fmt.Errorf("%+3v", ve)
	}
	return err
}

// Probe is the mode the tracer attached in: kprobe or tracepoint.
func (t *Tracer) Probe() Probe { return t.probe }

// Reason says why the tracer attached in its mode.
func (t *Tracer) Reason() string { return t.reason }

// Read blocks until the next call arrives and returns it. A record that is
// truncated or corrupt is skipped and counted as Drops.MalformedRecord. It
// returns ErrClosed once Close was called, or at once if the tracer was
// opened without Events. One goroutine at a time may call it.
func (t *Tracer) Read() (mremap.Call, error) {
	if t.reader == nil {
		return mremap.Call{}, ErrClosed
	}
	for {
		err := t.reader.ReadInto(&t.record)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The kernel does not wake the reader for every record (see
			// wakeup_bytes): poll again. The reader waits only once the
			// ring is empty, so the deadline is renewed here alone.
			t.reader.SetDeadline(time.Now().Add(pollInterval))
			continue
		}
		if errors.Is(err, ringbuf.ErrClosed) || errors.Is(err, os.ErrClosed) {
			return mremap.Call{}, ErrClosed
		}
		if errors.Is(err, ringbuf.ErrFlushed) && t.stopped.Load() {
			// Stop detached the probes and every record is read.
			return mremap.Call{}, ErrClosed
		}
		if err != nil {
			return mremap.Call{}, fmt.Errorf("read ring buffer: %w", err)
		}
		// The real-time clock is stepped and slewed (NTP) while the
		// monotonic one is not: measure the offset between them again now
		// and then.
		if time.Since(t.clockAt) > clockRefresh {
			t.clock, t.clockAt = NewClock(), time.Now()
		}
		c, err := decodeEvent(t.record.RawSample, t.clock)
		if err != nil {
			t.malformed.Add(1)
			continue
		}
		return c, nil
	}
}

// Pending says whether the ring buffer holds records that Read returns
// without waiting. Like Read, it must not be called once Close began.
func (t *Tracer) Pending() bool {
	return t.reader != nil && t.reader.AvailableBytes() > 0
}

// errMalformed marks a ring buffer record that decodeEvent rejects.
var errMalformed = errors.New("malformed ring buffer record")

// eventSizeNoPath is the size of a record whose mapping has no path: the
// kernel leaves the path out (EVENT_SIZE_NO_PATH).
const eventSizeNoPath = int(unsafe.Offsetof(bpf.MremapEvent{}.Vma) + unsafe.Offsetof(bpf.MremapVma{}.Path))

// decodeEvent turns a ring buffer record into a Call. A record shorter than
// the struct (truncated; a record whose mapping has no path may end where
// the path would start), or a corrupt one (its exit precedes its entry on
// the kernel's monotonic clock, or its comm lacks the NUL the kernel always
// writes), is an errMalformed.
func decodeEvent(raw []byte, clock Clock) (mremap.Call, error) {
	var e bpf.MremapEvent
	if len(raw) < eventSizeNoPath {
		return mremap.Call{}, fmt.Errorf("%w: %d bytes, want %d (%d without a path)", errMalformed, len(raw), unsafe.Sizeof(e), eventSizeNoPath)
	}
	// The record is the C struct event in host byte order and layout.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&e)), unsafe.Sizeof(e)), raw)
	if e.Vma.PathLen > 0 && len(raw) < int(unsafe.Sizeof(e)) {
		return mremap.Call{}, fmt.Errorf("%w: %d bytes with a path of %d, want %d", errMalformed, len(raw), e.Vma.PathLen, unsafe.Sizeof(e))
	}
	if e.ExitNs < e.EnterNs {
		return mremap.Call{}, fmt.Errorf("%w: exit at %d ns before entry at %d ns", errMalformed, e.ExitNs, e.EnterNs)
	}
	if e.Comm[len(e.Comm)-1] != 0 {
		return mremap.Call{}, fmt.Errorf("%w: comm %q is not NUL-terminated", errMalformed, commString(e.Comm))
	}
	return mremap.Call{
		Enter:    clock.Wall(e.EnterNs),
		Exit:     clock.Wall(e.ExitNs),
		Duration: durationNs(e.EnterNs, e.ExitNs),
		Process: mremap.Process{
			PID:       e.Tgid,
			PPID:      e.Ppid,
			UID:       e.Uid,
			Comm:      commString(e.Comm),
			StartTime: e.StartTime,
		},
		TID:        e.Tid,
		OldAddress: e.OldAddress,
		OldSize:    e.OldSize,
		NewSize:    e.NewSize,
		Flags:      e.Flags,
		NewAddress: e.NewAddress,
		Return:     e.Ret,
		VMA:        decodeVMA(&e.Vma),
	}, nil
}

// decodeVMA turns the kernel's view of the mapping at old_address into a
// VMA. The path is shown as /proc/PID/maps would show it.
func decodeVMA(v *bpf.MremapVma) mremap.VMA {
	if v.Flags&uint8(bpf.MremapVmaFlagVMA_FOUND) == 0 {
		return mremap.VMA{}
	}
	n := min(int(v.PathLen), len(v.Path))
	path := bytesOf(v.Path[:n])
	prefix, suffix := "", ""
	if v.Flags&uint8(bpf.MremapVmaFlagVMA_PATH_TRUNCATED) != 0 {
		prefix = "..."
	}
	if v.Flags&uint8(bpf.MremapVmaFlagVMA_PATH_DELETED) != 0 {
		suffix = " (deleted)"
	}
	return mremap.VMA{
		Found:       true,
		Permissions: interned.get("", bytesOf(v.Perms[:]), ""),
		Path:        interned.get(prefix, path, suffix),
	}
}

// bytesOf views C chars as bytes.
func bytesOf(c []int8) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c))), len(c))
}

// ReadAggregates reads the kernel's cumulative aggregates.
func (t *Tracer) ReadAggregates() (*Aggregates, error) {
	a := &Aggregates{}
	var (
		ck    bpf.MremapCallKey
		count uint64
	)
	it := t.maps.Calls.Iterate()
	for it.Next(&ck, &count) {
		a.Calls = append(a.Calls, CallCount{
			Comm:   commString(ck.Comm.Name),
			Resize: mremap.Resize(ck.Resize),
			Move:   mremap.Move(ck.Move),
			Errno:  ck.Err,
			Count:  count,
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read calls map: %w", err)
	}

	var (
		sk bpf.MremapSizeKey
		h  bpf.MremapHist
	)
	it = t.maps.SizeHist.Iterate()
	for it.Next(&sk, &h) {
		a.SizeDeltas = append(a.SizeDeltas, SizeDeltas{
			Comm:      commString(sk.Comm.Name),
			Resize:    mremap.Resize(sk.Resize),
			Histogram: Histogram{Counts: h.Slots, Sum: h.Sum},
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read size histogram map: %w", err)
	}

	var dk bpf.MremapDurationKey
	it = t.maps.DurationHist.Iterate()
	for it.Next(&dk, &h) {
		a.Durations = append(a.Durations, Durations{
			Move:      mremap.Move(dk.Move),
			Errno:     dk.Err,
			Histogram: Histogram{Counts: h.Slots, Sum: h.Sum},
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read duration histogram map: %w", err)
	}

	drops := map[bpf.MremapDropReason]*uint64{
		bpf.MremapDropReasonDROP_RING_BUFFER_FULL:  &a.Drops.RingBufferFull,
		bpf.MremapDropReasonDROP_RATE_LIMITED:      &a.Drops.RateLimited,
		bpf.MremapDropReasonDROP_UNPAIRED:          &a.Drops.Unpaired,
		bpf.MremapDropReasonDROP_CARDINALITY_LIMIT: &a.Drops.CardinalityLimit,
	}
	for reason, dst := range drops {
		var perCPU []uint64
		if err := t.maps.Drops.Lookup(uint32(reason), &perCPU); err != nil {
			return nil, fmt.Errorf("read drops map: %w", err)
		}
		for _, n := range perCPU {
			*dst += n
		}
	}
	missed, err := t.probeMissed()
	if err != nil {
		return nil, err
	}
	a.Drops.ProbeMissed = missed
	a.Drops.MalformedRecord = t.malformed.Load()
	return a, nil
}

// probeMissed sums the returns the kernel missed on our kretprobes. Since
// Linux 6.6 the link reports them; before, a kretprobe made through tracefs
// shows them in kprobe_profile, under its event name.
func (t *Tracer) probeMissed() (uint64, error) {
	t.linksMu.Lock()
	defer t.linksMu.Unlock()
	if t.stopped.Load() {
		return t.finalMissed, nil
	}
	return t.probeMissedLocked()
}

func (t *Tracer) probeMissedLocked() (uint64, error) {
	var total uint64
	var fromProfile []string
	for i, l := range t.retprobes {
		info, err := l.Info()
		if err == nil {
			if pe := info.PerfEvent(); pe != nil {
				if kp := pe.Kprobe(); kp != nil {
					total += kp.Missed
					continue
				}
			}
		}
		fromProfile = append(fromProfile, t.retSymbols[i])
	}
	if len(fromProfile) == 0 {
		return total, nil
	}
	if len(t.retEvents) > 0 {
		missed, err := tracefsMissed(t.tracefs, t.retEvents)
		if err != nil {
			return 0, err
		}
		return total + missed, nil
	}
	// Our events could not be identified: count every event of the name.
	missed, err := kprobeProfileMissed(t.tracefs+"/kprobe_profile", fromProfile)
	if err != nil {
		return 0, err
	}
	return total + missed, nil
}

// kprobeProfileMissed sums the "missed" column of kprobe_profile for the
// events named after symbols. Its lines are "  <event> <hits> <missed>",
// where <event> is the event's name without its group.
func kprobeProfileMissed(path string, symbols []string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read kretprobe misses: %w", err)
	}
	defer f.Close()
	want := make(map[string]bool, 2*len(symbols))
	for _, s := range symbols {
		want[s] = true
		want[tracefsEventName(s)] = true
	}
	var total uint64
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) != 3 || !want[fields[0]] {
			continue
		}
		n, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %q: %w", path, s.Text(), err)
		}
		total += n
	}
	return total, s.Err()
}

// tracefsEventName is the name cilium/ebpf gives the tracefs kprobe event
// it creates for symbol: every run of characters other than [a-zA-Z0-9]
// becomes one underscore, so __x64_sys_mremap is _x64_sys_mremap.
func tracefsEventName(symbol string) string {
	var b strings.Builder
	skip := false
	for _, c := range symbol {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
			skip = false
		} else if !skip {
			b.WriteByte('_')
			skip = true
		}
	}
	return b.String()
}

// Stop detaches the probes, so no new call is observed, and makes Read
// return the records still in the ring buffer, then ErrClosed. The maps stay
// readable until Close.
func (t *Tracer) Stop() error {
	t.linksMu.Lock()
	defer t.linksMu.Unlock()
	if t.stopped.Load() {
		return nil
	}
	var errs []error
	// The kretprobes' misses are read from them, so take the last count
	// before they go; ReadAggregates reports it from then on.
	missed, err := t.probeMissedLocked()
	errs = append(errs, err)
	t.finalMissed = missed
	errs = append(errs, t.detachLocked())
	t.stopped.Store(true)
	// A program that was running on another CPU when its link closed may
	// still submit a record: wait for every CPU to pass an RCU grace
	// period (membarrier's global command runs synchronize_rcu) before the
	// reader takes the end of the ring buffer as the end.
	_, _, _ = unix.Syscall(unix.SYS_MEMBARRIER, membarrierCmdGlobal, 0, 0)
	if t.reader != nil {
		errs = append(errs, t.reader.Flush())
	}
	return errors.Join(errs...)
}

// detachLocked closes the links, entry probes before exit probes (the
// reverse of attaching).
func (t *Tracer) detachLocked() error {
	var errs []error
	for i := len(t.links) - 1; i >= 0; i-- {
		errs = append(errs, t.links[i].Close())
	}
	t.links, t.retprobes, t.retSymbols = nil, nil, nil
	return errors.Join(errs...)
}

// Close detaches and unloads everything, in reverse order of creation, and
// makes a blocked Read return ErrClosed.
func (t *Tracer) Close() error {
	var errs []error
	if t.reader != nil {
		errs = append(errs, t.reader.Close())
	}
	t.linksMu.Lock()
	errs = append(errs, t.detachLocked())
	t.linksMu.Unlock()
	for _, p := range t.programs {
		if p != nil {
			errs = append(errs, p.Close())
		}
	}
	t.programs = nil
	errs = append(errs, closeMaps(&t.maps))
	return errors.Join(errs...)
}

// closeMaps closes every map of m (each field bpf2go generated), going on
// past errors.
func closeMaps(m *bpf.MremapMaps) error {
	var errs []error
	v := reflect.ValueOf(m).Elem()
	for i := 0; i < v.NumField(); i++ {
		if mp, ok := v.Field(i).Interface().(*ebpf.Map); ok && mp != nil {
			errs = append(errs, mp.Close())
		}
	}
	*m = bpf.MremapMaps{}
	return errors.Join(errs...)
}

func durationNs(enter, exit uint64) time.Duration {
	if exit < enter {
		return 0
	}
	return time.Duration(exit - enter)
}
