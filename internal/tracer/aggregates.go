//go:build linux

package tracer

import (
	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// HistogramSlots is the number of slots a Histogram has room for.
const HistogramSlots = 64

// The kernel's histograms have a slot of their own for each power of two up
// to 2^SizeDeltaMaxExp bytes and 2^DurationMaxExp nanoseconds; the slot
// after it holds everything above.
const (
	SizeDeltaMaxExp = int(bpf.MremapHistSlotsSIZE_SLOTS) - 2
	DurationMaxExp  = int(bpf.MremapHistSlotsDURATION_SLOTS) - 2
)

// Histogram is a log2 histogram aggregated in the kernel: Counts[k] counts
// the values in (2^(k-1), 2^k], Counts[0] the values 0 and 1, and the slot
// after the histogram's MaxExp everything above.
type Histogram struct {
	Counts [HistogramSlots]uint64
	Sum    uint64
}

// Count is the number of values in the histogram.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.Counts {
		n += c
	}
	return n
}

// CallCount counts calls of one process name with one outcome.
type CallCount struct {
	Comm   string
	Resize mremap.Resize
	Move   mremap.Move
	Errno  uint16 // 0 for successful calls
	Count  uint64
}

// Result is "ok" or the errno name.
func (c CallCount) Result() string { return mremap.Result(c.Errno) }

// SizeDeltas is the histogram of abs(new_size - old_size) of the successful
// calls of one process name that grew or shrank a mapping.
type SizeDeltas struct {
	Comm   string
	Resize mremap.Resize // grow or shrink
	Histogram
}

// Durations is the histogram of entry-to-exit times in nanoseconds of the
// calls with one move kind and result.
type Durations struct {
	Move  mremap.Move
	Errno uint16
	Histogram
}

// Result is "ok" or the errno name.
func (d Durations) Result() string { return mremap.Result(d.Errno) }

// Drops counts the calls that were not delivered in full, by reason.
type Drops struct {
	// RingBufferFull: a record did not fit in the ring buffer.
	RingBufferFull uint64
	// RateLimited: a record exceeded Options.MaxEventsPerSecond.
	RateLimited uint64
	// Unpaired: an exit without an entry (a call in flight at attach time,
	// or an entry evicted from the in-flight map).
	Unpaired uint64
	// ProbeMissed: the kernel missed the kretprobe (kprobe mode).
	ProbeMissed uint64
	// CardinalityLimit: an aggregate map was full, so the call is missing
	// from one or more aggregates.
	CardinalityLimit uint64
	// MalformedRecord: a ring buffer record was truncated or corrupt, so
	// the reader skipped it (counted in user space, not by the kernel).
	MalformedRecord uint64
}

// SignalCount counts the calls of one process name that raised a signal.
type SignalCount struct {
	Comm   string
	Signal mremap.Signal
	Count  uint64
}

// MapCount is the largest number of mappings (mm->map_count) a process of
// one name had at its latest calls.
type MapCount struct {
	Comm  string
	Count uint64
}

// Aggregates are the kernel's cumulative counts since the programs were
// loaded.
type Aggregates struct {
	Calls      []CallCount
	SizeDeltas []SizeDeltas
	Durations  []Durations
	Signals    []SignalCount
	MapCounts  []MapCount
	// MaxMapCount is vm.max_map_count, as it was read with them.
	MaxMapCount uint64
	Drops       Drops
}
