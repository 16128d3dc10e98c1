//go:build linux

package tracer

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// ReadAggregates reads the kernel's cumulative aggregates.
func (t *Tracer) ReadAggregates() (*Aggregates, error) {
	m := &t.objs.maps
	a := &Aggregates{}
	var err error
	if a.Calls, err = readCallCounts(m.Calls); err != nil {
		return nil, err
	}
	if a.SizeDeltas, err = readSizeDeltas(m.SizeHist); err != nil {
		return nil, err
	}
	if a.Durations, err = readDurations(m.DurationHist); err != nil {
		return nil, err
	}
	if err := readDrops(m.Drops, &a.Drops); err != nil {
		return nil, err
	}
	if a.Drops.ProbeMissed, err = t.probeMissed(); err != nil {
		return nil, err
	}
	a.Drops.MalformedRecord = t.malformed.Load()
	return a, nil
}

func readCallCounts(m *ebpf.Map) ([]CallCount, error) {
	var (
		out   []CallCount
		k     bpf.MremapCallKey
		count uint64
	)
	it := m.Iterate()
	for it.Next(&k, &count) {
		out = append(out, CallCount{
			Comm:   commString(k.Comm.Name),
			Resize: mremap.Resize(k.Resize),
			Move:   mremap.Move(k.Move),
			Errno:  k.Err,
			Count:  count,
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read calls map: %w", err)
	}
	return out, nil
}

func readSizeDeltas(m *ebpf.Map) ([]SizeDeltas, error) {
	var (
		out []SizeDeltas
		k   bpf.MremapSizeKey
		h   bpf.MremapHist
	)
	it := m.Iterate()
	for it.Next(&k, &h) {
		out = append(out, SizeDeltas{
			Comm:      commString(k.Comm.Name),
			Resize:    mremap.Resize(k.Resize),
			Histogram: Histogram{Counts: h.Slots, Sum: h.Sum},
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read size histogram map: %w", err)
	}
	return out, nil
}

func readDurations(m *ebpf.Map) ([]Durations, error) {
	var (
		out []Durations
		k   bpf.MremapDurationKey
		h   bpf.MremapHist
	)
	it := m.Iterate()
	for it.Next(&k, &h) {
		out = append(out, Durations{
			Move:      mremap.Move(k.Move),
			Errno:     k.Err,
			Histogram: Histogram{Counts: h.Slots, Sum: h.Sum},
		})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read duration histogram map: %w", err)
	}
	return out, nil
}

// readDrops sums the per-CPU drop counters the kernel keeps.
func readDrops(m *ebpf.Map, d *Drops) error {
	for reason, dst := range map[bpf.MremapDropReason]*uint64{
		bpf.MremapDropReasonDROP_RING_BUFFER_FULL:  &d.RingBufferFull,
		bpf.MremapDropReasonDROP_RATE_LIMITED:      &d.RateLimited,
		bpf.MremapDropReasonDROP_UNPAIRED:          &d.Unpaired,
		bpf.MremapDropReasonDROP_CARDINALITY_LIMIT: &d.CardinalityLimit,
	} {
		var perCPU []uint64
		if err := m.Lookup(uint32(reason), &perCPU); err != nil {
			return fmt.Errorf("read drops map: %w", err)
		}
		for _, n := range perCPU {
			*dst += n
		}
	}
	return nil
}
