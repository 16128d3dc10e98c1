//go:build linux

package tracer

import (
	"time"

	"golang.org/x/sys/unix"
)

// Clock converts the kernel's monotonic timestamps (bpf_ktime_get_ns, i.e.
// CLOCK_MONOTONIC) to wall-clock time.
type Clock struct {
	// offset is CLOCK_REALTIME - CLOCK_MONOTONIC in nanoseconds.
	offset int64
}

// NewClock measures the offset between the two clocks. It reads the
// monotonic clock before and after the real-time clock a few times and keeps
// the tightest pair, so the error is at most half that read's duration.
func NewClock() Clock {
	best := int64(-1)
	var offset int64
	for i := 0; i < 5; i++ {
		var m1, r, m2 unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &m1)
		_ = unix.ClockGettime(unix.CLOCK_REALTIME, &r)
		_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &m2)
		gap := m2.Nano() - m1.Nano()
		if best < 0 || gap < best {
			best = gap
			offset = r.Nano() - (m1.Nano() + gap/2)
		}
	}
	return Clock{offset: offset}
}

// ClockWithOffset is a Clock whose real-time clock is offset ns ahead of the
// monotonic clock.
func ClockWithOffset(offset int64) Clock { return Clock{offset: offset} }

// Wall is the wall-clock time of a CLOCK_MONOTONIC timestamp in nanoseconds.
func (c Clock) Wall(monotonicNs uint64) time.Time {
	return time.Unix(0, int64(monotonicNs)+c.offset)
}
