//go:build linux

package callstack

import "sync/atomic"

// Stats counts what the symbolizer did since it was made.
type Stats struct {
	Stacks         int64 // stacks symbolized (Cached and Symbolize calls)
	Pending        int64 // Cached calls that needed I/O
	QueueFull      int64 // stacks a Queue could not take: sent on with ReasonPending
	MapsReads      int64 // /proc/PID/maps reads
	FileParses     int64 // ELF files parsed
	ParseFailures  int64 // files that were not valid ELF or were past the limits
	TableEvictions int64 // symbol tables evicted from the cache
	TableBytes     int64 // memory the cached symbol tables hold now
	Processes      int64 // processes whose mappings are kept now
}

type counters struct {
	stacks, pending, queueFull, mapsReads, parses, parseFailures atomic.Int64
}

// Stats returns the counters.
func (s *Symbolizer) Stats() Stats {
	s.mu.Lock()
	procs := len(s.procs)
	s.mu.Unlock()
	return Stats{
		Stacks: s.stats.stacks.Load(), Pending: s.stats.pending.Load(),
		QueueFull: s.stats.queueFull.Load(), MapsReads: s.stats.mapsReads.Load(),
		FileParses: s.stats.parses.Load(), ParseFailures: s.stats.parseFailures.Load(),
		TableEvictions: s.files.evictions.Load(), TableBytes: s.files.usedBytes(),
		Processes: int64(procs),
	}
}
