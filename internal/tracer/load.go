//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
)

// The kernel wakes the reader each time the records pending in the ring
// buffer reach a multiple of 1/wakeupFraction of its size; between
// wake-ups Read polls, so records of a quiet host are read soon anyway.
const wakeupFraction = 8

// objects are the loaded programs and maps.
type objects struct {
	maps     bpf.MremapMaps
	programs map[string]*ebpf.Program
}

// programsOf names the programs a plan attaches; load leaves the others out.
func programsOf(p Plan) []string {
	switch p.Probe {
	case ProbeKprobe:
		progs := []string{bpf.MremapProgKprobeEnter, bpf.MremapProgKprobeExit}
		if p.Ia32 == Ia32Kprobe {
			progs = append(progs, bpf.MremapProgKprobeEnterIa32)
		}
		return progs
	case ProbeTracepoint:
		progs := []string{bpf.MremapProgTracepointEnter, bpf.MremapProgTracepointExit}
		switch p.Ia32 {
		case Ia32RawTracepoints:
			progs = append(progs, bpf.MremapProgIa32SysEnter, bpf.MremapProgIa32SysExit,
				bpf.MremapProgIa32Exec, bpf.MremapProgIa32Exit, bpf.MremapProgIa32Scan)
		case Ia32RawTracepointsAlways:
			progs = append(progs, bpf.MremapProgIa32SysEnter, bpf.MremapProgIa32SysExit)
		}
		return progs
	}
	return nil
}

// load loads the programs the plan attaches, with the constants and map
// sizes set from opts, and fills the filter maps.
func load(opts Options, p Plan) (_ *objects, err error) {
	spec, err := bpf.LoadMremap()
	if err != nil {
		return nil, fmt.Errorf("load eBPF object: %w", err)
	}
	if err := configure(spec, opts, p); err != nil {
		return nil, err
	}
	o, err := loadObjects(spec, programsOf(p))
	if err != nil {
		return nil, err
	}
	if err := fillFilters(&o.maps, opts.Filter); err != nil {
		o.Close()
		return nil, err
	}
	if _, err := writeLimits(o.maps.LimitsMap); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

// loadObjects loads every map and the programs named, and no other
// program: LoadAndAssign loads what its struct names, so the struct is
// made for the names, a field a program. (A Collection would load every
// program, and map the global variables' sections into memory, which only
// a garbage collection unmaps.)
func loadObjects(spec *ebpf.CollectionSpec, programs []string) (*objects, error) {
	o := &objects{programs: map[string]*ebpf.Program{}}
	fields := []reflect.StructField{{Name: "Maps", Type: reflect.TypeFor[*bpf.MremapMaps]()}}
	for i, name := range programs {
		fields = append(fields, reflect.StructField{
			Name: fmt.Sprintf("Program%d", i),
			Type: reflect.TypeFor[*ebpf.Program](),
			Tag:  reflect.StructTag(fmt.Sprintf("ebpf:%q", name)),
		})
	}
	to := reflect.New(reflect.StructOf(fields))
	to.Elem().Field(0).Set(reflect.ValueOf(&o.maps))
	if err := spec.LoadAndAssign(to.Interface(), nil); err != nil {
		return nil, fmt.Errorf("load eBPF programs into the kernel: %w", verifierError(err))
	}
	for i, name := range programs {
		o.programs[name] = to.Elem().Field(i + 1).Interface().(*ebpf.Program)
	}
	return o, nil
}

// program is the loaded program of that name.
func (o *objects) program(name string) *ebpf.Program { return o.programs[name] }

// Close unloads the programs, then the maps. A second Close does nothing.
func (o *objects) Close() error {
	var errs []error
	for name, p := range o.programs {
		errs = append(errs, p.Close())
		delete(o.programs, name)
	}
	errs = append(errs, o.maps.Close())
	o.maps = bpf.MremapMaps{}
	return errors.Join(errs...)
}

// configure sets the load-time constants and map sizes.
func configure(spec *ebpf.CollectionSpec, opts Options, p Plan) error {
	f := opts.Filter
	vars := map[string]any{
		"emit_events":         opts.Events,
		"failures_only":       f.ErrorsOnly,
		"filter_pids":         len(f.PIDs) > 0,
		"filter_comms":        len(f.Comms) > 0,
		"filter_excluded":     len(f.ExcludeComms) > 0,
		"filter_cgroups":      len(f.CgroupIDs) > 0,
		"min_delta":           f.MinSizeDelta,
		"max_records_per_sec": opts.MaxEventsPerSecond,
		"wakeup_bytes":        uint64(opts.RingBufferSize / wakeupFraction),
		"find_mapping":        p.VMALookup == VMALookupOn,
		"mapping_paths":       opts.Events && p.VMALookup == VMALookupOn,
		"find_caller":         p.VMALookup == VMALookupOn && p.raises(callerSignals),
		"find_target":         p.VMALookup == VMALookupOn && p.raises(targetSignals),
		"lru_pairing":         p.Pairing == PairingLRU,
		"capture_stack":       p.CallStack.Captured(),
		"stack_registers":     p.CallStack == CallStackOn,
	}
	for name, value := range vars {
		vs, ok := spec.Variables[name]
		if !ok {
			return fmt.Errorf("eBPF object has no variable %s", name)
		}
		if err := vs.Set(value); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
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
	if p.Pairing == PairingLRU {
		// The programs never reach the task storage map (the verifier
		// skips the code behind lru_pairing): an array of one stands in,
		// so that kernels without task storage load them too.
		ts := spec.Maps[bpf.MremapMapInflight]
		ts.Type, ts.Flags, ts.MaxEntries = ebpf.Array, 0, 1
	} else {
		// Preallocated: one entry is the least the kernel creates.
		sizes[bpf.MremapMapInflightLru] = 1
	}
	if p.PreallocatedAggregates {
		for _, name := range []string{bpf.MremapMapCallsByKey, bpf.MremapMapSignalCounts} {
			spec.Maps[name].Flags &^= unix.BPF_F_NO_PREALLOC
		}
	}
	for name, n := range sizes {
		spec.Maps[name].MaxEntries = uint32(max(n, 1))
	}
	return nil
}

func fillFilters(m *bpf.MremapMaps, f Filter) error {
	one := uint8(1)
	for _, pid := range f.PIDs {
		if err := m.PidFilter.Put(pid, one); err != nil {
			return fmt.Errorf("fill pid filter: %w", err)
		}
	}
	for _, id := range f.CgroupIDs {
		if err := m.CgroupFilter.Put(id, one); err != nil {
			return fmt.Errorf("fill cgroup filter: %w", err)
		}
	}
	for _, set := range []struct {
		m     *ebpf.Map
		comms []string
	}{{m.CommFilter, f.Comms}, {m.CommExclude, f.ExcludeComms}} {
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

// verifierError keeps the verifier's log short enough for a log line.
func verifierError(err error) error {
	var ve *ebpf.VerifierError
	if errors.As(err, &ve) {
		return shortVerifierError{ve}
	}
	return err
}

// shortVerifierError is a verifier error with the first and last three
// lines of its log.
type shortVerifierError struct{ ve *ebpf.VerifierError }

func (e shortVerifierError) Error() string { return fmt.Sprintf("%+3v", e.ve) }
func (e shortVerifierError) Unwrap() error { return e.ve }
