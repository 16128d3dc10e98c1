package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// kernel is what the running kernel offers the tracer, found by probing it
// before anything is loaded, so that a missing feature gets a message that
// says what is missing rather than a verifier or loader error.
type kernel struct {
	// ringBuf is nil if the kernel has BPF ring buffers (Linux 5.8+),
	// which carry the per-call records.
	ringBuf error
	// btf is nil if the kernel describes its own types in BTF
	// (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): CO-RE relocates
	// the program's reads of kernel structs against it.
	btf error
	// kprobes and kprobesWhy: can kprobes be attached, and why (not).
	kprobes    bool
	kprobesWhy string
	// tracepoints is nil if syscalls:sys_{enter,exit}_mremap exist
	// (CONFIG_FTRACE_SYSCALLS).
	tracepoints error
	// taskStorage is nil if the kernel has task storage maps, which hold
	// each call in flight between entry and exit (pairingTaskStorage).
	taskStorage error
	// realtime: the kernel is PREEMPT_RT, where calls in flight are kept
	// in a preallocated hash instead (pairingLRU).
	realtime bool
	// helpers holds, per program type, the helpers the programs of that
	// type cannot call (ebpf.ErrNotSupported); a helper not in it can be
	// called, or its probe was inconclusive and loading will tell.
	helpers map[ebpf.ProgramType]map[asm.BuiltinFunc]error
}

// helper is a BPF helper the programs call, and the first Linux release
// whose kprobe and tracepoint programs may call it.
type helper struct {
	fn      asm.BuiltinFunc
	name    string
	version string
	why     string
}

var (
	// Every call: the task at entry and exit.
	helperTaskBTF = helper{asm.FnGetCurrentTaskBtf, "bpf_get_current_task_btf", "5.11", "which finds the calling task"}
	// pairingTaskStorage: the call in flight.
	helperTaskStorage = helper{asm.FnTaskStorageGet, "bpf_task_storage_get", "5.13", "which keeps each call in flight between entry and exit"}
	// vma_lookup: the mapping at old_address and its path.
	helperFindVMA = helper{asm.FnFindVma, "bpf_find_vma", "5.17", "which finds the mapping at old_address"}
	helperLoop    = helper{asm.FnLoop, "bpf_loop", "5.17", "which walks the mapping's path"}
	// filter::cgroups: the task's cgroup ancestors.
	helperAncestorCgroup = helper{asm.FnGetCurrentAncestorCgroupId, "bpf_get_current_ancestor_cgroup_id", "5.14", "which filter::cgroups needs to match a cgroup's descendants"}

	requiredHelpers  = []helper{helperTaskBTF}
	vmaLookupHelpers = []helper{helperFindVMA, helperLoop}
	allHelpers       = []helper{helperTaskBTF, helperTaskStorage, helperFindVMA, helperLoop, helperAncestorCgroup}
)

// programType is the BPF program type of each probe mode's programs. The
// ia32 raw tracepoint programs of tracepoint mode call the same helpers,
// which the kernel offers to every tracing program type alike.
func (p Probe) programType() ebpf.ProgramType {
	if p == ProbeKprobe {
		return ebpf.Kprobe
	}
	return ebpf.TracePoint
}

// errTracefsDenied: tracefs exists but this process may not read it.
var errTracefsDenied = errors.New("tracefs is not readable")

// probeKernel asks the running kernel.
func probeKernel(tracefs string) kernel {
	k := kernel{ringBuf: features.HaveMapType(ebpf.RingBuf)}
	if _, err := btf.LoadKernelSpec(); err != nil {
		k.btf = err
	}
	k.kprobes, k.kprobesWhy = kprobeSupport(tracefs)
	k.tracepoints = syscallTracepoints(tracefs)
	if err := features.HaveMapType(ebpf.TaskStorage); errors.Is(err, ebpf.ErrNotSupported) {
		k.taskStorage = err
	}
	k.realtime = preemptRT("/sys/kernel/realtime")
	k.helpers = map[ebpf.ProgramType]map[asm.BuiltinFunc]error{}
	for _, pt := range []ebpf.ProgramType{ebpf.Kprobe, ebpf.TracePoint} {
		for _, h := range allHelpers {
			// Only ErrNotSupported is conclusive: on any other probe
			// error, loading the programs says what is wrong.
			if err := features.HaveProgramHelper(pt, h.fn); errors.Is(err, ebpf.ErrNotSupported) {
				if k.helpers[pt] == nil {
					k.helpers[pt] = map[asm.BuiltinFunc]error{}
				}
				k.helpers[pt][h.fn] = err
			}
		}
	}
	return k
}

// lacksHelper says why programs of the probe mode cannot call h, or "".
func (k kernel) lacksHelper(probe Probe, h helper) string {
	err := k.helpers[probe.programType()][h.fn]
	if err == nil {
		return ""
	}
	return fmt.Sprintf("%s programs cannot call %s (Linux %s or later), %s: %v", probe, h.name, h.version, h.why, err)
}

// pairing is where the programs keep each call between its entry and its
// exit.
type pairing string

const (
	// pairingAuto: pairingLRU on PREEMPT_RT kernels, else
	// pairingTaskStorage.
	pairingAuto pairing = ""
	// pairingTaskStorage: in the thread's BPF task storage. The cheapest,
	// but unsafe on PREEMPT_RT (see inflight in bpf/mremap.bpf.c).
	pairingTaskStorage pairing = "task storage"
	// pairingLRU: in a preallocated LRU hash keyed by pid_tgid, which
	// allocates nothing and takes only raw spinlocks in the probes.
	pairingLRU pairing = "LRU hash"
)

// choosePairing resolves want (pairingAuto: by the kernel) and says which,
// and why, for the startup reason.
func (k kernel) choosePairing(want pairing) (pairing, string) {
	switch {
	case want != pairingAuto:
		return want, fmt.Sprintf("pairing: %s (chosen by the caller)", want)
	case k.realtime:
		return pairingLRU, "pairing: LRU hash (PREEMPT_RT kernel)"
	}
	return pairingTaskStorage, "pairing: task storage"
}

// preemptRT tells whether the running kernel is PREEMPT_RT: realtime (the
// file /sys/kernel/realtime, present and 1 on RT kernels) says so, or, where
// it is missing, the kernel's version string (uname -v: "#1 SMP PREEMPT_RT
// ...") does.
func preemptRT(realtime string) bool {
	if b, err := os.ReadFile(realtime); err == nil {
		return strings.TrimSpace(string(b)) == "1"
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false
	}
	return strings.Contains(unix.ByteSliceToString(u.Version[:]), "PREEMPT_RT")
}

// require checks that the programs of the chosen probe mode can run with
// opts (opts.pairing resolved). If the kernel cannot look up mappings (before Linux 5.17), and
// opts want the lookup, it returns why the lookup is off instead: the
// programs then run without it (the verifier skips the code behind the
// vma_lookup constant, helper calls included).
func (k kernel) require(probe Probe, opts Options) (vmaOff string, err error) {
	var lacks []string
	required := requiredHelpers
	if opts.pairing != pairingLRU {
		if k.taskStorage != nil {
			lacks = append(lacks, fmt.Sprintf("the kernel has no task storage maps (BPF_MAP_TYPE_TASK_STORAGE, Linux 5.11 or later; %v), which hold each call in flight between entry and exit", k.taskStorage))
		}
		required = append(required[:len(required):len(required)], helperTaskStorage)
	}
	for _, h := range required {
		if why := k.lacksHelper(probe, h); why != "" {
			lacks = append(lacks, why)
		}
	}
	if len(opts.Filter.CgroupIDs) > 0 {
		if why := k.lacksHelper(probe, helperAncestorCgroup); why != "" {
			lacks = append(lacks, why+"; remove filter::cgroups to run on this kernel")
		}
	}
	if len(lacks) > 0 {
		return "", fmt.Errorf("this kernel cannot run the mremap probes: %s", strings.Join(lacks, "; "))
	}
	if !opts.Events || opts.SkipVMALookup {
		return "", nil
	}
	var off []string
	for _, h := range vmaLookupHelpers {
		if why := k.lacksHelper(probe, h); why != "" {
			off = append(off, why)
		}
	}
	if len(off) == 0 {
		return "", nil
	}
	return "vma_lookup is off, so log records have no mremap.vma.* attributes: " + strings.Join(off, "; "), nil
}

// syscallTracepoints tells whether mremap's syscall tracepoints exist.
func syscallTracepoints(tracefs string) error {
	var errs []error
	for _, name := range []string{"sys_enter_mremap", "sys_exit_mremap"} {
		path := tracefs + "/events/syscalls/" + name + "/id"
		f, err := os.Open(path)
		switch {
		case err == nil:
			f.Close()
		case errors.Is(err, os.ErrPermission):
			return fmt.Errorf("%w: %v", errTracefsDenied, err)
		case errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("no %s", path))
		default:
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("the kernel has no syscall tracepoints for mremap (%v; CONFIG_FTRACE_SYSCALLS is off)", errors.Join(errs...))
	}
	return nil
}

// choose picks the probe mode for want, and says why; or it says what the
// kernel lacks. It decides from k alone, so that each case can be tested.
func (k kernel) choose(want Probe) (Probe, string, error) {
	var lacks []string
	if k.ringBuf != nil {
		lacks = append(lacks, fmt.Sprintf("the kernel has no BPF ring buffer (BPF_MAP_TYPE_RINGBUF, Linux 5.8 or later; %v), which carries the per-call records", k.ringBuf))
	}
	if k.btf != nil {
		lacks = append(lacks, fmt.Sprintf("the kernel has no BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF; %v), so CO-RE cannot fit the eBPF program to its structs", k.btf))
	}
	if !k.kprobes && k.tracepoints != nil {
		lacks = append(lacks, fmt.Sprintf("the kernel has neither kprobes (%s) nor syscall tracepoints (%v)", k.kprobesWhy, k.tracepoints))
	}
	if len(lacks) > 0 {
		return "", "", fmt.Errorf("this kernel cannot run the mremap probes: %s", strings.Join(lacks, "; "))
	}

	switch want {
	case ProbeKprobe:
		if !k.kprobes {
			return "", "", fmt.Errorf("probe kprobe: %s", k.kprobesWhy)
		}
		return ProbeKprobe, "probe kprobe was configured", nil
	case ProbeTracepoint:
		if k.tracepoints != nil {
			return "", "", fmt.Errorf("probe tracepoint: %v", k.tracepoints)
		}
		return ProbeTracepoint, "probe tracepoint was configured", nil
	case ProbeAuto:
		if k.kprobes {
			return ProbeKprobe, "probe auto chose kprobe: " + k.kprobesWhy, nil
		}
		return ProbeTracepoint, "probe auto chose tracepoint: " + k.kprobesWhy, nil
	}
	return "", "", fmt.Errorf("unknown probe %q", want)
}
