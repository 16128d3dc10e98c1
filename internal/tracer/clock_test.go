//go:build linux

package tracer

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestClockWithOffsetWall(t *testing.T) {
	tests := []struct {
		offset      int64
		monotonicNs uint64
		want        time.Time
	}{
		{0, 0, time.Unix(0, 0)},
		{0, 1, time.Unix(0, 1)},
		// A wall clock at 2023-11-14T22:13:20.123456789Z, 5 s after boot.
		{1_700_000_000_123_456_789 - 5_000_000_000, 5_000_000_000, time.Unix(1_700_000_000, 123_456_789)},
		// Nanoseconds survive: one ns later on the monotonic clock is one
		// ns later on the wall.
		{1_700_000_000_123_456_789 - 5_000_000_000, 5_000_000_001, time.Unix(1_700_000_000, 123_456_790)},
		// A long uptime (100 days).
		{1_000_000_000_000_000_000, 8_640_000_000_000_000, time.Unix(0, 1_008_640_000_000_000_000)},
		// A real-time clock behind the monotonic clock.
		{-3_000_000_000, 10_000_000_000, time.Unix(7, 0)},
	}
	for _, tt := range tests {
		got := ClockWithOffset(tt.offset).Wall(tt.monotonicNs)
		if !got.Equal(tt.want) || got.UnixNano() != tt.want.UnixNano() {
			t.Errorf("ClockWithOffset(%d).Wall(%d) = %v (%d ns), want %v (%d ns)",
				tt.offset, tt.monotonicNs, got, got.UnixNano(), tt.want, tt.want.UnixNano())
		}
	}
}

func TestNewClockAgreesWithTimeNow(t *testing.T) {
	c := NewClock()
	for i := 0; i < 3; i++ {
		var mono unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		got := c.Wall(uint64(mono.Nano()))
		if d := got.Sub(now).Abs(); d > time.Millisecond {
			t.Errorf("Wall(CLOCK_MONOTONIC now) = %v, time.Now() = %v: %v apart, want at most 1ms", got, now, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
