//go:build linux

package tracer

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// ReadAggregates reads the kernel's cumulative aggregates. It also tells the
// programs vm.max_map_count again, so that a change of the sysctl is seen.
func (t *Tracer) ReadAggregates() (*Aggregates, error) {
	m := &t.objs.maps
	limit, err := writeLimits(m.LimitsMap)
	if err != nil {
		return nil, err
	}
	a := &Aggregates{MaxMapCount: limit}
	if err := readCallAggregates(m.CallsByKey, a); err != nil {
		return nil, err
	}
	if a.Signals, err = readSignals(m.SignalCounts); err != nil {
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

// readCallAggregates reads the aggregate of each finest key, and sums from them the
// coarser series: the size deltas by comm and resize, the durations by move
// and result.
func readCallAggregates(m *ebpf.Map, a *Aggregates) error {
	type sizeKey struct {
		comm   string
		resize mremap.Resize
	}
	type durationKey struct {
		move  mremap.Move
		errno uint16
	}
	sizes := map[sizeKey]*SizeDeltas{}
	durations := map[durationKey]*Durations{}
	mapCounts := map[string]uint64{}
	var (
		k   bpf.MremapCallKey
		agg bpf.MremapCallAgg
	)
	it := m.Iterate()
	for it.Next(&k, &agg) {
		c := CallCount{Comm: commString(k.Comm.Name), Resize: mremap.Resize(k.Resize), Move: mremap.Move(k.Move), Errno: k.Err, Count: agg.Count}
		a.Calls = append(a.Calls, c)
		mapCounts[c.Comm] = max(mapCounts[c.Comm], agg.MapCount)
		if c.Errno == 0 && c.Resize != mremap.ResizeNone {
			sk := sizeKey{c.Comm, c.Resize}
			if sizes[sk] == nil {
				sizes[sk] = &SizeDeltas{Comm: c.Comm, Resize: c.Resize}
			}
			sizes[sk].add(agg.SizeSlots[:], agg.SizeSum)
		}
		dk := durationKey{c.Move, c.Errno}
		if durations[dk] == nil {
			durations[dk] = &Durations{Move: c.Move, Errno: c.Errno}
		}
		durations[dk].add(agg.DurationSlots[:], agg.DurationSum)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("read calls map: %w", err)
	}
	for _, s := range sizes {
		a.SizeDeltas = append(a.SizeDeltas, *s)
	}
	for _, d := range durations {
		a.Durations = append(a.Durations, *d)
	}
	for comm, n := range mapCounts {
		a.MapCounts = append(a.MapCounts, MapCount{Comm: comm, Count: n})
	}
	return nil
}

// add adds the kernel's slots and sum to h.
func (h *Histogram) add(slots []uint64, sum uint64) {
	for i, n := range slots {
		h.Counts[i] += n
	}
	h.Sum += sum
}

func readSignals(m *ebpf.Map) ([]SignalCount, error) {
	var (
		out   []SignalCount
		k     bpf.MremapSignalKey
		count uint64
	)
	it := m.Iterate()
	for it.Next(&k, &count) {
		out = append(out, SignalCount{Comm: commString(k.Comm.Name), Signal: mremap.Signal(k.Signal), Count: count})
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("read signals map: %w", err)
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
