//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// facts are what the running kernel offers the tracer, found by probing it
// once, before anything is loaded, so that a missing feature gets a message
// that says what is missing rather than a verifier or loader error. The plan
// (plan.go) is chosen from them alone, so that each case can be tested.
type facts struct {
	tracefs string
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
	// each call in flight between entry and exit (PairingTaskStorage).
	taskStorage error
	// realtime: the kernel is PREEMPT_RT, where calls in flight are kept
	// in a preallocated hash instead (PairingLRU).
	realtime bool
	// helpers holds, per program type, the helpers the programs of that
	// type cannot call (ebpf.ErrNotSupported); a helper not in it can be
	// called, or its probe was inconclusive and loading will tell.
	helpers map[ebpf.ProgramType]map[asm.BuiltinFunc]error
	// compat are the compat syscall wrappers (__ia32_sys_mremap) in
	// /proc/kallsyms, which kprobe mode attaches too.
	compat []string
	// ia32 is what the kernel shows of its ia32 emulation, which decides
	// whether tracepoint mode attaches the raw_syscalls programs.
	ia32 ia32Facts
	// vmaIter is nil if the kernel has the task vma iterator kfuncs
	// (bpf_iter_task_vma_new, Linux 6.7+), which find the mappings in a
	// range.
	vmaIter error
	// memAlloc is nil if the kernel has the BPF memory allocator (struct
	// bpf_mem_alloc, Linux 6.1+), with which tracing programs insert into
	// hashes that are not preallocated without a verifier warning, on
	// PREEMPT_RT too.
	memAlloc error
	// kprobesMaskIRQs: kprobe programs run with interrupts masked (arm64,
	// whose kprobes are breakpoint exceptions), so they can look up one
	// mapping per call (oneLookupPerCall).
	kprobesMaskIRQs bool
}

// probeFacts asks the running kernel.
func probeFacts(tracefs string) facts {
	f := facts{tracefs: tracefs, ringBuf: features.HaveMapType(ebpf.RingBuf), kprobesMaskIRQs: runtime.GOARCH == "arm64"}
	if spec, err := btf.LoadKernelSpec(); err != nil {
		f.btf, f.vmaIter, f.memAlloc = err, err, err
	} else {
		f.vmaIter = kernelFunc(spec, "bpf_iter_task_vma_new")
		f.memAlloc = kernelStruct(spec, "bpf_mem_alloc")
	}
	native, compat := syscallSymbols()
	syms, symsErr := kallsymsHas(append([]string{native}, compat...)...)
	f.kprobes, f.kprobesWhy = kprobeSupport(tracefs, native, syms, symsErr)
	for _, c := range compat {
		if syms[c] {
			f.compat = append(f.compat, c)
		}
	}
	if len(compat) > 0 {
		f.ia32 = readIa32Facts(syms[compat[0]], symsErr)
	}
	f.tracepoints = syscallTracepoints(tracefs)
	if err := features.HaveMapType(ebpf.TaskStorage); errors.Is(err, ebpf.ErrNotSupported) {
		f.taskStorage = err
	}
	f.realtime = preemptRT("/sys/kernel/realtime")
	f.helpers = probeHelpers()
	return f
}

func probeHelpers() map[ebpf.ProgramType]map[asm.BuiltinFunc]error {
	lacks := map[ebpf.ProgramType]map[asm.BuiltinFunc]error{}
	for _, pt := range []ebpf.ProgramType{ebpf.Kprobe, ebpf.TracePoint} {
		for _, h := range allHelpers {
			// Only ErrNotSupported is conclusive: on any other probe
			// error, loading the programs says what is wrong.
			if err := features.HaveProgramHelper(pt, h.fn); errors.Is(err, ebpf.ErrNotSupported) {
				if lacks[pt] == nil {
					lacks[pt] = map[asm.BuiltinFunc]error{}
				}
				lacks[pt][h.fn] = err
			}
		}
	}
	return lacks
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
	// PairingTaskStorage: the call in flight.
	helperTaskStorage = helper{asm.FnTaskStorageGet, "bpf_task_storage_get", "5.13", "which keeps each call in flight between entry and exit"}
	// The mapping at old_address and its path.
	helperFindVMA = helper{asm.FnFindVma, "bpf_find_vma", "5.17", "which finds the mapping at old_address"}
	helperLoop    = helper{asm.FnLoop, "bpf_loop", "5.17", "which walks the mapping's path"}
	// Filter.CgroupIDs: the task's cgroup ancestors.
	helperAncestorCgroup = helper{asm.FnGetCurrentAncestorCgroupId, "bpf_get_current_ancestor_cgroup_id", "5.14", "which matching a cgroup's descendants needs"}
	// The caller's instruction pointer, whose mapping is looked up too.
	helperTaskPtRegs = helper{asm.FnTaskPtRegs, "bpf_task_pt_regs", "5.15", "which finds the caller's instruction pointer"}

	vmaLookupHelpers = []helper{helperFindVMA, helperLoop}
	allHelpers       = []helper{helperTaskBTF, helperTaskStorage, helperFindVMA, helperLoop, helperAncestorCgroup, helperTaskPtRegs, helperGetStack}
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

// lacksHelper says why programs of the probe mode cannot call h, or "".
func (f facts) lacksHelper(probe Probe, h helper) string {
	err := f.helpers[probe.programType()][h.fn]
	if err == nil {
		return ""
	}
	return probe.String() + " programs cannot call " + h.name + " (Linux " + h.version + " or later), " + h.why + ": " + err.Error()
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

// kernelStruct is nil if the kernel's BTF describes the struct name.
func kernelStruct(spec *btf.Spec, name string) error {
	var s *btf.Struct
	if err := spec.TypeByName(name, &s); err != nil {
		return fmt.Errorf("no struct %s in the kernel's BTF: %w", name, err)
	}
	return nil
}

// kernelFunc is nil if the kernel's BTF describes the function name (a kfunc
// the programs may call).
func kernelFunc(spec *btf.Spec, name string) error {
	var fn *btf.Func
	if err := spec.TypeByName(name, &fn); err != nil {
		return fmt.Errorf("no %s in the kernel's BTF: %w", name, err)
	}
	return nil
}
