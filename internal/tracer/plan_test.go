//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// The real probes on this host: it has ring buffers, BTF and syscall
// tracepoints, so every mode it supports is chosen without complaint.
func TestProbeFactsHere(t *testing.T) {
	mremaptest.RequireBPF(t)
	tracefs, err := tracefsPath()
	require.NoError(t, err)
	f := probeFacts(tracefs)
	assert.NoError(t, f.ringBuf, "BPF ring buffer")
	assert.NoError(t, f.btf, "kernel BTF")
	assert.NoError(t, f.tracepoints, "syscall tracepoints")
	assert.Equal(t, mremaptest.HasKprobes(), f.kprobes, f.kprobesWhy)
	// Linux 5.17 or later: every helper the programs call, and task storage.
	assert.NoError(t, f.taskStorage, "task storage maps")
	assert.Empty(t, f.helpers, "helpers the programs cannot call")
	// Linux 6.1 or later, every kernel this host and the VM suite run.
	assert.NoError(t, f.memAlloc, "BPF memory allocator")
	for _, probe := range []Probe{ProbeKprobe, ProbeTracepoint} {
		p, err := f.complete(Plan{Probe: probe}, Options{Events: true, Filter: Filter{CgroupIDs: []uint64{1}}})
		assert.NoError(t, err)
		assert.Equal(t, VMALookupOn, p.VMALookup)
	}

	p, err := f.plan(Options{Probe: ProbeAuto})
	require.NoError(t, err)
	want := ProbeTracepoint
	if f.kprobes {
		want = ProbeKprobe
	}
	assert.Equal(t, want, p.Probe)
	assert.Equal(t, ChoiceAuto, p.ProbeChoice)
	assert.Equal(t, f.kprobesWhy, p.KprobesWhy)
	p, err = f.plan(Options{Probe: ProbeTracepoint})
	require.NoError(t, err)
	assert.Equal(t, ProbeTracepoint, p.Probe)
	assert.Equal(t, ChoiceConfigured, p.ProbeChoice)
}

// The probe mode each kernel gets, and what the error says for each gap.
func TestChooseProbe(t *testing.T) {
	ok := facts{kprobes: true, kprobesWhy: "the kernel supports kprobes (kprobe PMU present) and has __x64_sys_mremap"}
	noKprobes := "the kernel has no kprobe support (neither /sys/bus/event_source/devices/kprobe/type nor /sys/kernel/tracing/kprobe_events exists; CONFIG_KPROBES is off)"
	noTracepoints := errors.New("the kernel has no syscall tracepoints for mremap (no /sys/kernel/tracing/events/syscalls/sys_enter_mremap/id; CONFIG_FTRACE_SYSCALLS is off)")
	tests := []struct {
		name       string
		f          func(f *facts)
		want       Probe
		wantProbe  Probe
		wantChoice ProbeChoice
		wantErr    []string // each in the error
	}{
		{"everything, auto", func(f *facts) {}, ProbeAuto, ProbeKprobe, ChoiceAuto, nil},
		{"everything, tracepoint", func(f *facts) {}, ProbeTracepoint, ProbeTracepoint, ChoiceConfigured, nil},
		{"everything, kprobe", func(f *facts) {}, ProbeKprobe, ProbeKprobe, ChoiceConfigured, nil},
		{"no kprobes, auto: tracepoint, and why", func(f *facts) { f.kprobes, f.kprobesWhy = false, noKprobes }, ProbeAuto, ProbeTracepoint, ChoiceAuto, nil},
		{"no kprobes, kprobe", func(f *facts) { f.kprobes, f.kprobesWhy = false, noKprobes }, ProbeKprobe, "", 0,
			[]string{"kprobe mode: ", "CONFIG_KPROBES is off"}},
		{"no tracepoints, auto: kprobe", func(f *facts) { f.tracepoints = noTracepoints }, ProbeAuto, ProbeKprobe, ChoiceAuto, nil},
		{"no tracepoints, tracepoint", func(f *facts) { f.tracepoints = noTracepoints }, ProbeTracepoint, "", 0,
			[]string{"tracepoint mode: ", "CONFIG_FTRACE_SYSCALLS is off"}},
		{"neither kprobes nor tracepoints", func(f *facts) { f.kprobes, f.kprobesWhy, f.tracepoints = false, noKprobes, noTracepoints }, ProbeAuto, "", 0,
			[]string{"cannot run the mremap probes", "neither kprobes", "CONFIG_KPROBES is off", "nor syscall tracepoints", "CONFIG_FTRACE_SYSCALLS is off"}},
		{"no ring buffer", func(f *facts) { f.ringBuf = errors.New("map type ringbuf: not supported") }, ProbeAuto, "", 0,
			[]string{"cannot run the mremap probes", "no BPF ring buffer", "Linux 5.8 or later", "not supported"}},
		{"no BTF", func(f *facts) { f.btf = os.ErrNotExist }, ProbeTracepoint, "", 0,
			[]string{"cannot run the mremap probes", "no BTF", "/sys/kernel/btf/vmlinux", "CONFIG_DEBUG_INFO_BTF", "CO-RE"}},
		{"an old kernel lacks all three", func(f *facts) {
			f.ringBuf, f.btf, f.kprobes, f.kprobesWhy, f.tracepoints = errors.New("not supported"), os.ErrNotExist, false, noKprobes, noTracepoints
		}, ProbeAuto, "", 0, []string{"no BPF ring buffer", "no BTF", "neither kprobes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			tt.f(&f)
			p, err := f.plan(Options{Probe: tt.want})
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				// One line: it is a startup error.
				assert.False(t, strings.Contains(err.Error(), "\n"), "multi-line error %q", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantProbe, p.Probe)
			assert.Equal(t, tt.wantChoice, p.ProbeChoice)
			if tt.wantChoice == ChoiceAuto {
				assert.Equal(t, f.kprobesWhy, p.KprobesWhy)
			}
		})
	}
}

// What the plan says, or the error, for each helper or map the programs
// need and the kernel lacks.
func TestRequire(t *testing.T) {
	lacks := func(pt ebpf.ProgramType, fns ...asm.BuiltinFunc) map[ebpf.ProgramType]map[asm.BuiltinFunc]error {
		m := map[asm.BuiltinFunc]error{}
		for _, fn := range fns {
			m[fn] = ebpf.ErrNotSupported
		}
		return map[ebpf.ProgramType]map[asm.BuiltinFunc]error{pt: m}
	}
	events := Options{Events: true}
	cgroups := Options{Events: true, Filter: Filter{CgroupIDs: []uint64{42}}}
	tests := []struct {
		name     string
		f        facts
		probe    Probe
		opts     Options
		wantVMA  VMALookup
		wantOff  []string // each in what the kernel lacks for the lookup
		wantErr  []string // each in the error
		wantNeed Need     // what the lack is for, with wantErr
	}{
		{"everything", facts{}, ProbeTracepoint, cgroups, VMALookupOn, nil, nil, 0},
		{"no task storage map (before 5.11)", facts{taskStorage: ebpf.ErrNotSupported}, ProbeKprobe, events, 0, nil,
			[]string{"this kernel cannot run the mremap probes: ", "no task storage maps (BPF_MAP_TYPE_TASK_STORAGE, Linux 5.11 or later; not supported)", "in flight"}, NeedAlways},
		{"no bpf_get_current_task_btf (before 5.11)", facts{helpers: lacks(ebpf.TracePoint, asm.FnGetCurrentTaskBtf)}, ProbeTracepoint, events, 0, nil,
			[]string{"this kernel cannot run the mremap probes: ", "tracepoint programs cannot call bpf_get_current_task_btf (Linux 5.11 or later)"}, NeedAlways},
		{"no task storage in tracing programs (before 5.13)", facts{helpers: lacks(ebpf.Kprobe, asm.FnTaskStorageGet)}, ProbeKprobe, events, 0, nil,
			[]string{"kprobe programs cannot call bpf_task_storage_get (Linux 5.13 or later)", "in flight"}, NeedAlways},
		{"a kprobe gap does not stop tracepoint mode", facts{helpers: lacks(ebpf.Kprobe, asm.FnTaskStorageGet, asm.FnFindVma)}, ProbeTracepoint, events, VMALookupOn, nil, nil, 0},
		{"no ancestor cgroup ids (before 5.14), a cgroup filter", facts{helpers: lacks(ebpf.TracePoint, asm.FnGetCurrentAncestorCgroupId)}, ProbeTracepoint, cgroups, 0, nil,
			[]string{"tracepoint programs cannot call bpf_get_current_ancestor_cgroup_id (Linux 5.14 or later)"}, NeedCgroupFilter},
		{"no ancestor cgroup ids, no cgroup filter", facts{helpers: lacks(ebpf.TracePoint, asm.FnGetCurrentAncestorCgroupId)}, ProbeTracepoint, events, VMALookupOn, nil, nil, 0},
		{"no bpf_find_vma nor bpf_loop (before 5.17): no lookup", facts{helpers: lacks(ebpf.TracePoint, asm.FnFindVma, asm.FnLoop)}, ProbeTracepoint, events, VMALookupKernel,
			[]string{"tracepoint programs cannot call bpf_find_vma (Linux 5.17 or later)", "tracepoint programs cannot call bpf_loop (Linux 5.17 or later)"}, nil, 0},
		{"no bpf_loop: no lookup", facts{helpers: lacks(ebpf.Kprobe, asm.FnLoop)}, ProbeKprobe, events, VMALookupKernel,
			[]string{"kprobe programs cannot call bpf_loop (Linux 5.17 or later)"}, nil, 0},
		{"no bpf_find_vma, lookup skipped", facts{helpers: lacks(ebpf.TracePoint, asm.FnFindVma)}, ProbeTracepoint, Options{Events: true, SkipVMALookup: true}, VMALookupSkipped, nil, nil, 0},
		{"no bpf_find_vma, metrics only: the signals still need it", facts{helpers: lacks(ebpf.TracePoint, asm.FnFindVma)}, ProbeTracepoint, Options{}, VMALookupKernel,
			[]string{"tracepoint programs cannot call bpf_find_vma (Linux 5.17 or later)"}, nil, 0},
		{"LRU pairing: no task storage map", facts{taskStorage: ebpf.ErrNotSupported}, ProbeKprobe, Options{Events: true, pairing: PairingLRU}, VMALookupOn, nil, nil, 0},
		{"LRU pairing: no task storage in tracing programs", facts{helpers: lacks(ebpf.TracePoint, asm.FnTaskStorageGet)}, ProbeTracepoint, Options{pairing: PairingLRU}, VMALookupOn, nil, nil, 0},
		{"task storage pairing: no task storage in tracing programs", facts{helpers: lacks(ebpf.TracePoint, asm.FnTaskStorageGet)}, ProbeTracepoint, Options{pairing: PairingTaskStorage}, 0, nil,
			[]string{"tracepoint programs cannot call bpf_task_storage_get (Linux 5.13 or later)"}, NeedAlways},
		{"an old kernel lacks it all", facts{taskStorage: ebpf.ErrNotSupported, helpers: lacks(ebpf.TracePoint, asm.FnGetCurrentTaskBtf, asm.FnTaskStorageGet, asm.FnFindVma)},
			ProbeTracepoint, events, 0, nil, []string{"no task storage maps", "bpf_get_current_task_btf", "bpf_task_storage_get"}, NeedAlways},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.f.complete(Plan{Probe: tt.probe}, tt.opts)
			if tt.wantErr != nil {
				var ke *KernelError
				require.ErrorAs(t, err, &ke)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				assert.Equal(t, tt.wantNeed, ke.Lacks[len(ke.Lacks)-1].For)
				assert.False(t, strings.Contains(err.Error(), "\n"), "multi-line error %q", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantVMA, p.VMALookup)
			assert.Len(t, p.VMALookupLacks, len(tt.wantOff))
			for i, w := range tt.wantOff {
				assert.Contains(t, p.VMALookupLacks[i], w)
			}
		})
	}
}

// Where calls in flight are kept, and why.
// The aggregation hashes are preallocated where the kernel has no BPF
// memory allocator (before 6.1), or where a test asks.
func TestPreallocatedAggregates(t *testing.T) {
	for _, tt := range []struct {
		name string
		f    facts
		opts Options
		want bool
	}{
		{"Linux 6.1 and later: allocated as keys come", facts{}, Options{}, false},
		{"before 6.1: no bpf_mem_alloc", facts{memAlloc: errors.New("no struct bpf_mem_alloc in the kernel's BTF")}, Options{}, true},
		{"asked for", facts{}, Options{preallocate: true}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.f.complete(Plan{Probe: ProbeTracepoint}, tt.opts)
			require.NoError(t, err)
			assert.Equal(t, tt.want, p.PreallocatedAggregates)
		})
	}
}

func TestChoosePairing(t *testing.T) {
	tests := []struct {
		f      facts
		want   Pairing
		got    Pairing
		reason PairingReason
	}{
		{facts{}, pairingAuto, PairingTaskStorage, PairingDefault},
		{facts{realtime: true}, pairingAuto, PairingLRU, PairingRealtime},
		{facts{}, PairingLRU, PairingLRU, PairingForced},
		{facts{realtime: true}, PairingTaskStorage, PairingTaskStorage, PairingForced},
	}
	for _, tt := range tests {
		got, reason := tt.f.choosePairing(tt.want)
		assert.Equal(t, tt.got, got, "%+v", tt)
		assert.Equal(t, tt.reason, reason, "%+v", tt)
	}
	assert.Equal(t, "task storage", PairingTaskStorage.String())
	assert.Equal(t, "LRU hash", PairingLRU.String())
}

func TestPreemptRT(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]bool{"1\n": true, "0\n": false} {
		f := filepath.Join(dir, "realtime")
		require.NoError(t, os.WriteFile(f, []byte(content), 0o644))
		assert.Equal(t, want, preemptRT(f), "realtime %q", content)
	}
	// Without the file, the kernel's version string decides.
	var u unix.Utsname
	require.NoError(t, unix.Uname(&u))
	version := unix.ByteSliceToString(u.Version[:])
	assert.Equal(t, strings.Contains(version, "PREEMPT_RT"), preemptRT(filepath.Join(dir, "none")), "uname -v %q", version)
}

// With LRU pairing the programs reach neither bpf_task_storage_get nor a
// task storage map, so kernels without them load the programs: shown here
// by turning every call of the helper into one no kernel knows.
func TestLRUPairingLoadsWithoutTaskStorage(t *testing.T) {
	mremaptest.RequireBPF(t)
	unknown := asm.BuiltinFunc(100001)
	tracefs, err := tracefsPath()
	require.NoError(t, err)
	f := probeFacts(tracefs)
	for _, pairing := range []Pairing{PairingLRU, PairingTaskStorage} {
		spec, err := bpf.LoadMremap()
		require.NoError(t, err)
		// The rest of the plan as this kernel gets it (the signals it
		// can raise, the lookups it can make).
		opts := Options{Events: true, RingBufferSize: os.Getpagesize(), pairing: pairing}
		p, err := f.complete(Plan{Probe: ProbeTracepoint}, opts)
		require.NoError(t, err)
		require.NoError(t, configure(spec, opts, p))
		if pairing == PairingLRU {
			assert.Equal(t, ebpf.Array, spec.Maps[bpf.MremapMapInflight].Type, "the task storage map is replaced")
		}
		require.NotZero(t, replaceHelper(spec, unknown, asm.FnTaskStorageGet), "no call of bpf_task_storage_get in the programs")
		o, err := loadObjects(spec, programsOf(p))
		if err == nil {
			o.Close()
		}
		if pairing == PairingLRU {
			assert.NoError(t, err, "with LRU pairing, the verifier reaches bpf_task_storage_get")
		} else {
			var verr *ebpf.VerifierError
			if assert.ErrorAs(t, err, &verr, "with task storage pairing, the unknown helper is reached") {
				assert.Contains(t, fmt.Sprintf("%+v", verr), "invalid func unknown#100001")
			}
		}
	}
}

// replaceHelper turns every call of the helpers fns in the programs of spec
// into a call of unknown, and says how many it replaced.
func replaceHelper(spec *ebpf.CollectionSpec, unknown asm.BuiltinFunc, fns ...asm.BuiltinFunc) int {
	replaced := 0
	for _, prog := range spec.Programs {
		for i, ins := range prog.Instructions {
			if ins.IsBuiltinCall() && slices.Contains(fns, asm.BuiltinFunc(ins.Constant)) {
				prog.Instructions[i].Constant = int64(unknown)
				replaced++
			}
		}
	}
	return replaced
}

func TestSyscallTracepoints(t *testing.T) {
	dir := t.TempDir()
	err := syscallTracepoints(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no "+dir+"/events/syscalls/sys_enter_mremap/id")
	assert.Contains(t, err.Error(), "CONFIG_FTRACE_SYSCALLS")
	for _, name := range []string{"sys_enter_mremap", "sys_exit_mremap"} {
		require.NoError(t, os.MkdirAll(dir+"/events/syscalls/"+name, 0o755))
		require.NoError(t, os.WriteFile(dir+"/events/syscalls/"+name+"/id", []byte("42\n"), 0o644))
	}
	assert.NoError(t, syscallTracepoints(dir))
}

func TestMissingCapabilitiesError(t *testing.T) {
	err := error(&MissingCapabilitiesError{Missing: []string{"CAP_BPF", "CAP_DAC_READ_SEARCH"}})
	assert.Equal(t, "missing capabilities CAP_BPF, CAP_DAC_READ_SEARCH", err.Error())
	assert.Equal(t, []string{"CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH"}, MinimalCapabilities)
}

// A kernel before 5.17 does not know bpf_find_vma and bpf_loop. With the
// lookup off the verifier never reaches their calls (the constant prunes the
// branch), so the programs load there: shown here by turning every call of
// theirs into a helper no kernel knows. With the lookup on, the same
// programs fail as a pre-5.17 kernel would fail them.
func TestVMALookupOffLoadsWithoutItsHelpers(t *testing.T) {
	mremaptest.RequireBPF(t)
	unknown := asm.BuiltinFunc(100000)
	for _, lookup := range []VMALookup{VMALookupSkipped, VMALookupOn} {
		plans := []Plan{
			{Probe: ProbeTracepoint, Pairing: PairingTaskStorage, VMALookup: lookup},
			{Probe: ProbeKprobe, Pairing: PairingTaskStorage, VMALookup: lookup, Ia32: Ia32Kprobe},
		}
		// Elsewhere the ia32 raw tracepoint programs are empty (they
		// return 0 at once): with the lookup on they load all the same.
		if runtime.GOARCH == "amd64" {
			plans = append(plans, Plan{Probe: ProbeTracepoint, Pairing: PairingTaskStorage, VMALookup: lookup, Ia32: Ia32RawTracepoints})
		}
		for _, p := range plans {
			spec, err := bpf.LoadMremap()
			require.NoError(t, err)
			require.NoError(t, configure(spec, Options{Events: true, RingBufferSize: os.Getpagesize()}, p))
			require.NotZero(t, replaceHelper(spec, unknown, asm.FnFindVma, asm.FnLoop), "no call of bpf_find_vma or bpf_loop in the programs")
			o, err := loadObjects(spec, programsOf(p))
			if err == nil {
				o.Close()
			}
			if lookup == VMALookupOn {
				var verr *ebpf.VerifierError
				if assert.ErrorAs(t, err, &verr, "with the lookup on, the unknown helper is reached") {
					assert.Contains(t, fmt.Sprintf("%+v", verr), "invalid func unknown#100000")
				}
			} else {
				assert.NoError(t, err, "with the lookup off, the verifier reaches a helper the kernel lacks")
			}
		}
	}
}

// The signals a plan cannot raise, and why.
func TestUnraisedSignals(t *testing.T) {
	lookup := mremap.Signals(1<<mremap.SignalExecMove | 1<<mremap.SignalWriteExec | 1<<mremap.SignalSpecialMove |
		1<<mremap.SignalUnbackedCaller | 1<<mremap.SignalFixedReplace)
	noIter := errors.New("no bpf_iter_task_vma_new")
	caller := mremap.Signals(1 << mremap.SignalUnbackedCaller)
	target := mremap.Signals(1 << mremap.SignalFixedReplace)
	tests := []struct {
		name  string
		f     facts
		probe Probe
		opts  Options
		want  []Unraised
	}{
		{"everything", facts{}, ProbeTracepoint, Options{}, nil},
		{"arm64 tracepoints: everything", facts{kprobesMaskIRQs: true}, ProbeTracepoint, Options{}, nil},
		{"arm64 kprobes: one lookup per call", facts{kprobesMaskIRQs: true}, ProbeKprobe, Options{},
			[]Unraised{{Signals: caller | target, Lacks: []string{oneLookupPerCall}}}},
		{"arm64 kprobes before 6.7", facts{kprobesMaskIRQs: true, vmaIter: noIter}, ProbeKprobe, Options{},
			[]Unraised{{Signals: target, Lacks: []string{"the kernel has no task vma iterator (bpf_iter_task_vma_new, Linux 6.7 or later; no bpf_iter_task_vma_new), which finds the mappings in a range"}},
				{Signals: caller, Lacks: []string{oneLookupPerCall}}}},
		{"lookup skipped", facts{}, ProbeTracepoint, Options{SkipVMALookup: true}, []Unraised{{Signals: lookup, Why: VMALookupSkipped}}},
		{"no bpf_find_vma", facts{helpers: map[ebpf.ProgramType]map[asm.BuiltinFunc]error{ebpf.TracePoint: {asm.FnFindVma: ebpf.ErrNotSupported}}},
			ProbeTracepoint, Options{}, []Unraised{{Signals: lookup, Why: VMALookupKernel}}},
		{"no task vma iterator (before 6.7)", facts{vmaIter: noIter}, ProbeTracepoint, Options{},
			[]Unraised{{Signals: 1 << mremap.SignalFixedReplace, Lacks: []string{"the kernel has no task vma iterator (bpf_iter_task_vma_new, Linux 6.7 or later; no bpf_iter_task_vma_new), which finds the mappings in a range"}}}},
		{"no bpf_task_pt_regs (before 5.15)", facts{helpers: map[ebpf.ProgramType]map[asm.BuiltinFunc]error{ebpf.TracePoint: {asm.FnTaskPtRegs: ebpf.ErrNotSupported}}},
			ProbeTracepoint, Options{}, []Unraised{{Signals: 1 << mremap.SignalUnbackedCaller, Lacks: []string{"tracepoint programs cannot call bpf_task_pt_regs (Linux 5.15 or later), which finds the caller's instruction pointer: not supported"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.f.complete(Plan{Probe: tt.probe}, tt.opts)
			require.NoError(t, err)
			assert.Equal(t, tt.want, p.Unraised)
		})
	}
}
