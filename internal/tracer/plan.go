//go:build linux

package tracer

import (
	"fmt"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// Plan is how the tracer runs on this kernel: each choice, made from the
// kernel's facts and the Options, with its reason. The caller turns it into
// words for its users.
type Plan struct {
	Probe Probe // kprobe or tracepoint
	// How Probe was chosen.
	ProbeChoice ProbeChoice
	// KprobesWhy says, in kernel terms, whether and why the kernel can
	// attach kprobes: what ChoiceAuto decided on.
	KprobesWhy string
	// KprobeErr is why attaching the kprobes failed (ChoiceAutoFallback).
	KprobeErr error

	Pairing       Pairing
	PairingReason PairingReason

	// PreallocatedAggregates: the aggregation hashes are allocated at their
	// full size at load, on kernels that cannot allocate hash elements from
	// tracing programs safely (before Linux 6.1's BPF memory allocator:
	// older verifiers refuse it on PREEMPT_RT and warn elsewhere). Else
	// each key's value is allocated when its first call comes.
	PreallocatedAggregates bool

	// VMALookup says whether the mapping at old_address is looked up, and
	// if not why; VMALookupLacks, with VMALookupKernel, what the kernel
	// lacks for it. The records show it with Options.Events; the signals
	// need it either way.
	VMALookup      VMALookup
	VMALookupLacks []string

	// Unraised are the signals the programs cannot raise, and why.
	Unraised []Unraised

	// CallStack says whether each record carries the caller's user stack,
	// and how; CallStackLacks, with CallStackFramesOnly, what the kernel
	// lacks for the rest.
	CallStack      CallStack
	CallStackLacks []string

	// Ia32 says how 32-bit (ia32) callers are caught, or why not; Ia32Err,
	// with Ia32KallsymsUnreadable, why /proc/kallsyms could not be read.
	Ia32    Ia32
	Ia32Err error

	// kprobeSymbols are the syscall wrappers kprobe mode attaches to, the
	// native one first.
	kprobeSymbols []string
}

// ProbeChoice is how the probe mode was chosen.
type ProbeChoice uint8

const (
	ChoiceConfigured   ProbeChoice = iota // Options.Probe named it
	ChoiceAuto                            // ProbeAuto, from the kernel's kprobe support
	ChoiceAutoFallback                    // ProbeAuto chose kprobe, attaching failed: tracepoint
)

// Pairing is where the programs keep each call between its entry and its
// exit.
type Pairing uint8

const (
	pairingAuto Pairing = iota // by the kernel: LRU on PREEMPT_RT, else task storage
	// PairingTaskStorage: in the thread's BPF task storage. The cheapest,
	// but unsafe on PREEMPT_RT (see bpf/pairing.bpf.h).
	PairingTaskStorage
	// PairingLRU: in a preallocated LRU hash keyed by pid_tgid, which
	// allocates nothing and takes only raw spinlocks in the probes.
	PairingLRU
)

func (p Pairing) String() string {
	switch p {
	case PairingTaskStorage:
		return "task storage"
	case PairingLRU:
		return "LRU hash"
	}
	return "auto"
}

// PairingReason is why the pairing was chosen.
type PairingReason uint8

const (
	PairingDefault  PairingReason = iota // task storage, the cheapest
	PairingRealtime                      // the kernel is PREEMPT_RT
	PairingForced                        // the caller chose it (tests, benchmarks)
)

// VMALookup is whether, and why not, the mapping at old_address is looked up.
type VMALookup uint8

const (
	VMALookupOn      VMALookup = iota
	VMALookupSkipped           // Options.SkipVMALookup
	VMALookupKernel            // the kernel lacks the helpers (VMALookupLacks)
)

// Unraised is signals the programs cannot raise, for one reason.
type Unraised struct {
	Signals mremap.Signals
	// Why: VMALookupSkipped or VMALookupKernel, the lookup they need is
	// off; with VMALookupOn, the kernel lacks what Lacks says.
	Why   VMALookup
	Lacks []string
}

// Ia32 is how 32-bit (ia32) callers on x86-64 are caught, or why not.
type Ia32 uint8

const (
	Ia32None                 Ia32 = iota // nothing to catch: not x86-64, or no ia32 emulation built in
	Ia32Kprobe                           // kprobe mode attaches __ia32_sys_mremap
	Ia32RawTracepoints                   // tracepoint mode attaches the raw_syscalls programs while a 32-bit program runs
	Ia32RawTracepointsAlways             // ... all the time: the kernel cannot tell 32-bit programs (no bpf_task_pt_regs)
	Ia32Skipped                          // Options.SkipIa32Tracepoints
	Ia32KallsymsUnreadable               // /proc/kallsyms could not be read (Ia32Err)
	Ia32EmulationOff                     // ia32_emulation=0 on the kernel command line
	Ia32EmulationDefaultOff              // CONFIG_IA32_EMULATION_DEFAULT_DISABLED, not turned on
)

// plan chooses how to run with opts on this kernel, or says what the kernel
// lacks (a *KernelError or a *ProbeError).
func (f facts) plan(opts Options) (Plan, error) {
	if err := f.canRun(); err != nil {
		return Plan{}, err
	}
	p, err := f.chooseProbe(opts.Probe)
	if err != nil {
		return Plan{}, err
	}
	return f.complete(p, opts)
}

// fallBack is the plan after attaching kprobes failed with err: ProbeAuto
// takes tracepoint mode instead.
func (f facts) fallBack(opts Options, err error) (Plan, error) {
	p := Plan{Probe: ProbeTracepoint, ProbeChoice: ChoiceAutoFallback, KprobesWhy: f.kprobesWhy, KprobeErr: err}
	return f.complete(p, opts)
}

// complete adds to a plan with its probe mode chosen the choices that
// depend on it.
func (f facts) complete(p Plan, opts Options) (Plan, error) {
	p.Pairing, p.PairingReason = f.choosePairing(opts.pairing)
	p.PreallocatedAggregates = f.memAlloc != nil || opts.preallocate
	if err := f.require(p, opts); err != nil {
		return Plan{}, err
	}
	p.VMALookup, p.VMALookupLacks = f.chooseVMALookup(p.Probe, opts)
	p.Unraised = f.unraised(p)
	p.Ia32, p.Ia32Err = f.chooseIa32(p.Probe, opts)
	p.CallStack, p.CallStackLacks = f.chooseCallStack(p.Probe, opts)
	if p.Probe == ProbeKprobe {
		native, _ := syscallSymbols()
		p.kprobeSymbols = append([]string{native}, f.compat...)
	}
	return p, nil
}

// canRun says what the kernel lacks that every mode needs.
func (f facts) canRun() error {
	var lacks []Lack
	if f.ringBuf != nil {
		lacks = append(lacks, Lack{What: fmt.Sprintf("the kernel has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8 or later; %v), which carries the per-call records", f.ringBuf)})
	}
	if f.btf != nil {
		lacks = append(lacks, Lack{What: fmt.Sprintf("the kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF; %v), so CO-RE cannot fit the eBPF program to its structs", f.btf)})
	}
	if !f.kprobes && f.tracepoints != nil {
		lacks = append(lacks, Lack{What: fmt.Sprintf("the kernel has neither kprobes (%s) nor syscall tracepoints (%v)", f.kprobesWhy, f.tracepoints)})
	}
	if len(lacks) > 0 {
		return &KernelError{Lacks: lacks}
	}
	return nil
}

// chooseProbe picks the probe mode for want.
func (f facts) chooseProbe(want Probe) (Plan, error) {
	switch want {
	case ProbeKprobe:
		if !f.kprobes {
			return Plan{}, &ProbeError{Probe: ProbeKprobe, Why: f.kprobesWhy}
		}
		return Plan{Probe: ProbeKprobe, ProbeChoice: ChoiceConfigured}, nil
	case ProbeTracepoint:
		if f.tracepoints != nil {
			return Plan{}, &ProbeError{Probe: ProbeTracepoint, Why: f.tracepoints.Error()}
		}
		return Plan{Probe: ProbeTracepoint, ProbeChoice: ChoiceConfigured}, nil
	case ProbeAuto:
		p := Plan{Probe: ProbeTracepoint, ProbeChoice: ChoiceAuto, KprobesWhy: f.kprobesWhy}
		if f.kprobes {
			p.Probe = ProbeKprobe
		}
		return p, nil
	}
	return Plan{}, fmt.Errorf("unknown probe %q", want)
}

// choosePairing resolves want (pairingAuto: by the kernel).
func (f facts) choosePairing(want Pairing) (Pairing, PairingReason) {
	switch {
	case want != pairingAuto:
		return want, PairingForced
	case f.realtime:
		return PairingLRU, PairingRealtime
	}
	return PairingTaskStorage, PairingDefault
}

// require checks that the programs of the plan can run with opts.
func (f facts) require(p Plan, opts Options) error {
	var lacks []Lack
	required := []helper{helperTaskBTF}
	if p.Pairing != PairingLRU {
		if f.taskStorage != nil {
			lacks = append(lacks, Lack{What: fmt.Sprintf("the kernel has no task storage maps (BPF_MAP_TYPE_TASK_STORAGE, Linux 5.11 or later; %v), which hold each call in flight between entry and exit", f.taskStorage)})
		}
		required = append(required, helperTaskStorage)
	}
	for _, h := range required {
		if why := f.lacksHelper(p.Probe, h); why != "" {
			lacks = append(lacks, Lack{What: why})
		}
	}
	if len(opts.Filter.CgroupIDs) > 0 {
		if why := f.lacksHelper(p.Probe, helperAncestorCgroup); why != "" {
			lacks = append(lacks, Lack{What: why, For: NeedCgroupFilter})
		}
	}
	lacks = append(lacks, f.callStackLacks(p.Probe, opts)...)
	if len(lacks) > 0 {
		return &KernelError{Lacks: lacks}
	}
	return nil
}

// chooseVMALookup turns the lookup off where it is skipped or the kernel
// cannot do it (before Linux 5.17): the programs then run without it (the
// verifier skips the code behind the find_mapping constant, helper calls
// included).
func (f facts) chooseVMALookup(probe Probe, opts Options) (VMALookup, []string) {
	if opts.SkipVMALookup {
		return VMALookupSkipped, nil
	}
	var lacks []string
	for _, h := range vmaLookupHelpers {
		if why := f.lacksHelper(probe, h); why != "" {
			lacks = append(lacks, why)
		}
	}
	if len(lacks) > 0 {
		return VMALookupKernel, lacks
	}
	return VMALookupOn, nil
}

// chooseIa32 decides how 32-bit callers are caught.
func (f facts) chooseIa32(probe Probe, opts Options) (Ia32, error) {
	if probe == ProbeKprobe {
		if len(f.compat) > 0 {
			return Ia32Kprobe, nil
		}
		return Ia32None, nil
	}
	if _, compat := syscallSymbols(); len(compat) == 0 {
		return Ia32None, nil
	}
	why := f.ia32.ia32Raw()
	switch {
	case why == Ia32RawTracepoints && opts.SkipIa32Tracepoints:
		return Ia32Skipped, nil
	case why == Ia32RawTracepoints && f.lacksHelper(probe, helperTaskPtRegs) != "":
		// Telling a 32-bit program from a 64-bit one reads its saved
		// registers.
		return Ia32RawTracepointsAlways, nil
	}
	return why, f.ia32.kallsymsErr
}

// The signals each lookup brings: the mapping at old_address, the
// caller's, and MREMAP_FIXED's target range.
const (
	mappingSignals = mremap.Signals(1<<mremap.SignalExecMove | 1<<mremap.SignalWriteExec | 1<<mremap.SignalSpecialMove)
	callerSignals  = mremap.Signals(1 << mremap.SignalUnbackedCaller)
	targetSignals  = mremap.Signals(1 << mremap.SignalFixedReplace)
)

// unraised lists the signals p cannot raise.
func (f facts) unraised(p Plan) []Unraised {
	if p.VMALookup != VMALookupOn {
		return []Unraised{{Signals: mappingSignals | callerSignals | targetSignals, Why: p.VMALookup}}
	}
	var out []Unraised
	if why := f.lacksHelper(p.Probe, helperTaskPtRegs); why != "" {
		out = append(out, Unraised{Signals: callerSignals, Lacks: []string{why}})
	}
	if f.vmaIter != nil {
		out = append(out, Unraised{Signals: targetSignals, Lacks: []string{
			fmt.Sprintf("the kernel has no task vma iterator (bpf_iter_task_vma_new, Linux 6.7 or later; %v), which finds the mappings in a range", f.vmaIter)}})
	}
	if p.Probe == ProbeKprobe && f.kprobesMaskIRQs {
		out = append(out, Unraised{Signals: (callerSignals | targetSignals) &^ unraisedSignals(out), Lacks: []string{oneLookupPerCall}})
	}
	return out
}

// oneLookupPerCall is why kprobe programs on arm64 look up one mapping per
// call. Its kprobes run from a breakpoint exception with interrupts
// masked; a program there releases a process's mmap lock through an
// irq_work that cannot run until it returns, and until then every other
// lookup (bpf_find_vma, the task vma iterator) fails with -EBUSY. The one
// lookup is the mapping at old_address; the count of the mappings a range
// spans is left out too.
const oneLookupPerCall = "arm64 kprobes run with interrupts masked, where a program can take the process's mmap lock once per call, for the mapping at old_address (tracepoint mode raises them)"

// unraisedSignals are the signals of us.
func unraisedSignals(us []Unraised) mremap.Signals {
	var s mremap.Signals
	for _, u := range us {
		s |= u.Signals
	}
	return s
}

// raises tells whether p raises the signals s.
func (p Plan) raises(s mremap.Signals) bool {
	for _, u := range p.Unraised {
		if u.Signals&s != 0 {
			return false
		}
	}
	return true
}
