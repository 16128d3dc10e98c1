//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"fmt"

	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
)

// cgroupIDs resolves filter::cgroups to cgroup ids, naming the path that
// does not resolve: the cgroups must exist when the receiver starts.
func (cfg *Config) cgroupIDs() ([]uint64, error) {
	var ids []uint64
	for i, p := range cfg.Filter.Cgroups {
		id, err := tracer.CgroupID(p)
		if err != nil {
			return nil, fmt.Errorf("filter::cgroups[%d]: %w", i, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// tracerOptions turns the configuration into what the tracer needs, but
// for the cgroups (cgroupIDs). events is whether a logs pipeline is served.
func (cfg *Config) tracerOptions(events bool) tracer.Options {
	f := tracer.Filter{
		Comms:        cfg.Filter.Comms,
		ExcludeComms: cfg.Filter.ExcludeComms,
		MinSizeDelta: uint64(cfg.Filter.MinSizeDelta),
		ErrorsOnly:   cfg.Filter.ErrorsOnly,
	}
	for _, pid := range cfg.Filter.PIDs {
		f.PIDs = append(f.PIDs, uint32(pid))
	}
	return tracer.Options{
		Probe:               tracer.Probe(cfg.Probe),
		Events:              events,
		RingBufferSize:      cfg.RingBufferSize,
		MaxEventsPerSecond:  uint64(cfg.MaxEventsPerSecond),
		SkipVMALookup:       !cfg.VMALookup,
		SkipIa32Tracepoints: !cfg.Ia32RawTracepoints,
		CallStack:           cfg.CallStack,
		Filter:              f,
	}
}
