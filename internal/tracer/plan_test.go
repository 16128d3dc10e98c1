package tracer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// The real probes on this host: it has ring buffers, BTF and syscall
// tracepoints, so every mode it supports is chosen without complaint.
func TestProbeKernelHere(t *testing.T) {
	mremaptest.RequireBPF(t)
	tracefs, err := tracefsPath()
	require.NoError(t, err)
	k := probeKernel(tracefs)
	assert.NoError(t, k.ringBuf, "BPF ring buffer")
	assert.NoError(t, k.btf, "kernel BTF")
	assert.NoError(t, k.tracepoints, "syscall tracepoints")
	assert.Equal(t, mremaptest.HasKprobes(), k.kprobes, k.kprobesWhy)
	// Linux 5.17 or later: every helper the programs call, and task storage.
	assert.NoError(t, k.taskStorage, "task storage maps")
	assert.Empty(t, k.helpers, "helpers the programs cannot call")
	for _, p := range []Probe{ProbeKprobe, ProbeTracepoint} {
		vmaOff, err := k.require(p, Options{Events: true, Filter: Filter{CgroupIDs: []uint64{1}}})
		assert.NoError(t, err)
		assert.Empty(t, vmaOff)
	}

	probe, reason, err := k.choose(ProbeAuto)
	require.NoError(t, err)
	want := ProbeTracepoint
	if k.kprobes {
		want = ProbeKprobe
	}
	assert.Equal(t, want, probe)
	assert.Contains(t, reason, "probe auto chose "+string(want)+": ")
	probe, _, err = k.choose(ProbeTracepoint)
	require.NoError(t, err)
	assert.Equal(t, ProbeTracepoint, probe)
}

// What the startup error or log says for each kernel gap.
func TestKernelChoose(t *testing.T) {
	ok := kernel{kprobes: true, kprobesWhy: "the kernel supports kprobes (kprobe PMU present) and has __x64_sys_mremap"}
	noKprobes := "the kernel has no kprobe support (neither /sys/bus/event_source/devices/kprobe/type nor /sys/kernel/tracing/kprobe_events exists; CONFIG_KPROBES is off)"
	noTracepoints := errors.New("the kernel has no syscall tracepoints for mremap (no /sys/kernel/tracing/events/syscalls/sys_enter_mremap/id; CONFIG_FTRACE_SYSCALLS is off)")
	tests := []struct {
		name       string
		k          func(k *kernel)
		want       Probe
		wantProbe  Probe
		wantReason string
		wantErr    []string // each in the error
	}{
		{"everything, auto", func(k *kernel) {}, ProbeAuto, ProbeKprobe, "probe auto chose kprobe: the kernel supports kprobes", nil},
		{"everything, tracepoint", func(k *kernel) {}, ProbeTracepoint, ProbeTracepoint, "probe tracepoint was configured", nil},
		{"everything, kprobe", func(k *kernel) {}, ProbeKprobe, ProbeKprobe, "probe kprobe was configured", nil},
		{"no kprobes, auto: tracepoint, and why", func(k *kernel) { k.kprobes, k.kprobesWhy = false, noKprobes }, ProbeAuto, ProbeTracepoint,
			"probe auto chose tracepoint: the kernel has no kprobe support", nil},
		{"no kprobes, kprobe", func(k *kernel) { k.kprobes, k.kprobesWhy = false, noKprobes }, ProbeKprobe, "", "",
			[]string{"probe kprobe:", "CONFIG_KPROBES is off"}},
		{"no tracepoints, auto: kprobe", func(k *kernel) { k.tracepoints = noTracepoints }, ProbeAuto, ProbeKprobe, "probe auto chose kprobe", nil},
		{"no tracepoints, tracepoint", func(k *kernel) { k.tracepoints = noTracepoints }, ProbeTracepoint, "", "",
			[]string{"probe tracepoint:", "CONFIG_FTRACE_SYSCALLS is off"}},
		{"neither kprobes nor tracepoints", func(k *kernel) { k.kprobes, k.kprobesWhy, k.tracepoints = false, noKprobes, noTracepoints }, ProbeAuto, "", "",
			[]string{"cannot run the mremap probes", "neither kprobes", "CONFIG_KPROBES is off", "nor syscall tracepoints", "CONFIG_FTRACE_SYSCALLS is off"}},
		{"no ring buffer", func(k *kernel) { k.ringBuf = errors.New("map type ringbuf: not supported") }, ProbeAuto, "", "",
			[]string{"cannot run the mremap probes", "no BPF ring buffer", "Linux 5.8 or later", "not supported"}},
		{"no BTF", func(k *kernel) { k.btf = os.ErrNotExist }, ProbeTracepoint, "", "",
			[]string{"cannot run the mremap probes", "no BTF", "/sys/kernel/btf/vmlinux", "CONFIG_DEBUG_INFO_BTF", "CO-RE"}},
		{"an old kernel lacks all three", func(k *kernel) {
			k.ringBuf, k.btf, k.kprobes, k.kprobesWhy, k.tracepoints = errors.New("not supported"), os.ErrNotExist, false, noKprobes, noTracepoints
		}, ProbeAuto, "", "", []string{"no BPF ring buffer", "no BTF", "neither kprobes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := ok
			tt.k(&k)
			probe, reason, err := k.choose(tt.want)
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
			assert.Equal(t, tt.wantProbe, probe)
			assert.True(t, strings.HasPrefix(reason, tt.wantReason), "reason %q, want it to start with %q", reason, tt.wantReason)
		})
	}
}

// What the startup error or log says for each helper or map the programs
// need and the kernel lacks.
func TestKernelRequire(t *testing.T) {
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
		name    string
		k       kernel
		probe   Probe
		opts    Options
		wantOff []string // each in the reason vma_lookup is off; none: it is on
		wantErr []string // each in the error
	}{
		{"everything", kernel{}, ProbeTracepoint, cgroups, nil, nil},
		{"no task storage map (before 5.11)", kernel{taskStorage: ebpf.ErrNotSupported}, ProbeKprobe, events, nil,
			[]string{"this kernel cannot run the mremap probes: ", "no task storage maps (BPF_MAP_TYPE_TASK_STORAGE, Linux 5.11 or later; not supported)", "in flight"}},
		{"no bpf_get_current_task_btf (before 5.11)", kernel{helpers: lacks(ebpf.TracePoint, asm.FnGetCurrentTaskBtf)}, ProbeTracepoint, events, nil,
			[]string{"this kernel cannot run the mremap probes: ", "tracepoint programs cannot call bpf_get_current_task_btf (Linux 5.11 or later)"}},
		{"no task storage in tracing programs (before 5.13)", kernel{helpers: lacks(ebpf.Kprobe, asm.FnTaskStorageGet)}, ProbeKprobe, events, nil,
			[]string{"kprobe programs cannot call bpf_task_storage_get (Linux 5.13 or later)", "in flight"}},
		{"a kprobe gap does not stop tracepoint mode", kernel{helpers: lacks(ebpf.Kprobe, asm.FnTaskStorageGet, asm.FnFindVma)}, ProbeTracepoint, events, nil, nil},
		{"no ancestor cgroup ids (before 5.14), filter::cgroups", kernel{helpers: lacks(ebpf.TracePoint, asm.FnGetCurrentAncestorCgroupId)}, ProbeTracepoint, cgroups, nil,
			[]string{"tracepoint programs cannot call bpf_get_current_ancestor_cgroup_id (Linux 5.14 or later)", "filter::cgroups"}},
		{"no ancestor cgroup ids, no filter::cgroups", kernel{helpers: lacks(ebpf.TracePoint, asm.FnGetCurrentAncestorCgroupId)}, ProbeTracepoint, events, nil, nil},
		{"no bpf_find_vma nor bpf_loop (before 5.17): vma_lookup off", kernel{helpers: lacks(ebpf.TracePoint, asm.FnFindVma, asm.FnLoop)}, ProbeTracepoint, events,
			[]string{"vma_lookup is off, so log records have no mremap.vma.* attributes: ", "tracepoint programs cannot call bpf_find_vma (Linux 5.17 or later)", "tracepoint programs cannot call bpf_loop (Linux 5.17 or later)"}, nil},
		{"no bpf_loop: vma_lookup off", kernel{helpers: lacks(ebpf.Kprobe, asm.FnLoop)}, ProbeKprobe, events,
			[]string{"vma_lookup is off", "kprobe programs cannot call bpf_loop (Linux 5.17 or later)"}, nil},
		{"no bpf_find_vma, vma_lookup configured off", kernel{helpers: lacks(ebpf.TracePoint, asm.FnFindVma)}, ProbeTracepoint, Options{Events: true, SkipVMALookup: true}, nil, nil},
		{"no bpf_find_vma, metrics only", kernel{helpers: lacks(ebpf.TracePoint, asm.FnFindVma)}, ProbeTracepoint, Options{}, nil, nil},
		{"LRU pairing: no task storage map", kernel{taskStorage: ebpf.ErrNotSupported}, ProbeKprobe, Options{Events: true, pairing: pairingLRU}, nil, nil},
		{"LRU pairing: no task storage in tracing programs", kernel{helpers: lacks(ebpf.TracePoint, asm.FnTaskStorageGet)}, ProbeTracepoint, Options{pairing: pairingLRU}, nil, nil},
		{"task storage pairing: no task storage in tracing programs", kernel{helpers: lacks(ebpf.TracePoint, asm.FnTaskStorageGet)}, ProbeTracepoint, Options{pairing: pairingTaskStorage}, nil,
			[]string{"tracepoint programs cannot call bpf_task_storage_get (Linux 5.13 or later)"}},
		{"an old kernel lacks it all", kernel{taskStorage: ebpf.ErrNotSupported, helpers: lacks(ebpf.TracePoint, asm.FnGetCurrentTaskBtf, asm.FnTaskStorageGet, asm.FnFindVma)},
			ProbeTracepoint, events, nil, []string{"no task storage maps", "bpf_get_current_task_btf", "bpf_task_storage_get"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			off, err := tt.k.require(tt.probe, tt.opts)
			if tt.wantErr != nil {
				require.Error(t, err)
				for _, w := range tt.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				assert.False(t, strings.Contains(err.Error(), "\n"), "multi-line error %q", err)
				return
			}
			require.NoError(t, err)
			if tt.wantOff == nil {
				assert.Empty(t, off)
			}
			for _, w := range tt.wantOff {
				assert.Contains(t, off, w)
			}
		})
	}
}

// Where calls in flight are kept, and what the startup reason says of it.
func TestChoosePairing(t *testing.T) {
	tests := []struct {
		k      kernel
		want   pairing
		got    pairing
		reason string
	}{
		{kernel{}, pairingAuto, pairingTaskStorage, "pairing: task storage"},
		{kernel{realtime: true}, pairingAuto, pairingLRU, "pairing: LRU hash (PREEMPT_RT kernel)"},
		{kernel{}, pairingLRU, pairingLRU, "pairing: LRU hash (chosen by the caller)"},
		{kernel{realtime: true}, pairingTaskStorage, pairingTaskStorage, "pairing: task storage (chosen by the caller)"},
	}
	for _, tt := range tests {
		got, reason := tt.k.choosePairing(tt.want)
		assert.Equal(t, tt.got, got, "%+v", tt)
		assert.Equal(t, tt.reason, reason, "%+v", tt)
	}
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
	for _, p := range []pairing{pairingLRU, pairingTaskStorage} {
		spec, err := bpf.LoadMremap()
		require.NoError(t, err)
		require.NoError(t, configure(spec, Options{Events: true, RingBufferSize: os.Getpagesize(), pairing: p}))
		if p == pairingLRU {
			assert.Equal(t, ebpf.Array, spec.Maps[bpf.MremapMapInflight].Type, "the task storage map is replaced")
		}
		replaced := 0
		for _, prog := range spec.Programs {
			for i, ins := range prog.Instructions {
				if ins.IsBuiltinCall() && asm.BuiltinFunc(ins.Constant) == asm.FnTaskStorageGet {
					prog.Instructions[i].Constant = int64(unknown)
					replaced++
				}
			}
		}
		require.NotZero(t, replaced, "no call of bpf_task_storage_get in the programs")
		objs := &struct {
			bpf.MremapMaps
			tracepointPrograms
		}{}
		err = spec.LoadAndAssign(objs, nil)
		if err == nil {
			closeAll(objs)
		}
		if p == pairingLRU {
			assert.NoError(t, err, "with LRU pairing, the verifier reaches bpf_task_storage_get")
		} else {
			var verr *ebpf.VerifierError
			if assert.ErrorAs(t, err, &verr, "with task storage pairing, the unknown helper is reached") {
				assert.Contains(t, fmt.Sprintf("%+v", verr), "invalid func unknown#100001")
			}
		}
	}
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

func TestCapabilitiesError(t *testing.T) {
	err := capabilitiesError([]string{"CAP_BPF", "CAP_DAC_READ_SEARCH"})
	for _, w := range []string{"missing capabilities CAP_BPF, CAP_DAC_READ_SEARCH:", "CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH", "CAP_DAC_OVERRIDE for kprobe mode", "CAP_SYS_PTRACE"} {
		assert.Contains(t, err.Error(), w)
	}
}

// A kernel before 5.17 does not know bpf_find_vma and bpf_loop. With
// vma_lookup off the verifier never reaches their calls (the constant
// prunes the branch), so the programs load there: shown here by turning
// every call of theirs into a helper no kernel knows. With vma_lookup on,
// the same programs fail as a pre-5.17 kernel would fail them.
func TestVMALookupOffLoadsWithoutItsHelpers(t *testing.T) {
	mremaptest.RequireBPF(t)
	unknown := asm.BuiltinFunc(100000)
	for _, vmaLookup := range []bool{false, true} {
		spec, err := bpf.LoadMremap()
		require.NoError(t, err)
		require.NoError(t, configure(spec, Options{Events: true, RingBufferSize: os.Getpagesize(), SkipVMALookup: !vmaLookup}))
		replaced := 0
		for _, p := range spec.Programs {
			for i, ins := range p.Instructions {
				if ins.IsBuiltinCall() && (asm.BuiltinFunc(ins.Constant) == asm.FnFindVma || asm.BuiltinFunc(ins.Constant) == asm.FnLoop) {
					p.Instructions[i].Constant = int64(unknown)
					replaced++
				}
			}
		}
		require.NotZero(t, replaced, "no call of bpf_find_vma or bpf_loop in the programs")
		for _, objs := range []any{
			&struct {
				bpf.MremapMaps
				tracepointPrograms
			}{},
			&struct {
				bpf.MremapMaps
				kprobePrograms
			}{},
			&struct {
				bpf.MremapMaps
				ia32Programs
			}{},
		} {
			err := spec.LoadAndAssign(objs, nil)
			if err == nil {
				closeAll(objs)
			}
			if vmaLookup {
				var verr *ebpf.VerifierError
				if assert.ErrorAs(t, err, &verr, "with vma_lookup on, the unknown helper is reached") {
					assert.Contains(t, fmt.Sprintf("%+v", verr), "invalid func unknown#100000")
				}
			} else {
				assert.NoError(t, err, "with vma_lookup off, the verifier reaches a helper the kernel lacks")
			}
		}
	}
}

// closeAll closes the maps and programs of a LoadAndAssign result.
func closeAll(objs any) {
	v := reflect.ValueOf(objs).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		for j := 0; j < f.NumField(); j++ {
			if c, ok := f.Field(j).Interface().(io.Closer); ok && !f.Field(j).IsNil() {
				c.Close()
			}
		}
	}
}
