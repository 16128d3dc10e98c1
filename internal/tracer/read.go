//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// Between the kernel's wake-ups (wakeup_bytes) Read polls every
// pollInterval, so records of a quiet host are read within that time.
const pollInterval = 100 * time.Millisecond

// clockRefresh is how often Read measures the clock offset again. It looks
// at the time when the ring buffer is empty, and every clockCheckRecords
// records while it is not.
const (
	clockRefresh      = time.Minute
	clockCheckRecords = 4096
)

// Read blocks until the next call arrives and returns it. A record that is
// truncated or corrupt is skipped and counted as Drops.MalformedRecord. It
// returns ErrClosed once Close was called, or at once if the tracer was
// opened without Events. One goroutine at a time may call it.
func (t *Tracer) Read() (mremap.Call, error) { return t.ReadUntil(time.Time{}) }

// ReadUntil is Read that gives up at deadline (the zero time: never), with
// os.ErrDeadlineExceeded, when no call arrived by then.
func (t *Tracer) ReadUntil(deadline time.Time) (mremap.Call, error) {
	if t.reader == nil {
		return mremap.Call{}, ErrClosed
	}
	// The reader waits only once the ring is empty, and until its own
	// deadline: the next poll, or the caller's when that comes first.
	if !deadline.IsZero() && deadline.Before(t.pollAt) {
		t.setPoll(deadline)
	}
	for {
		err := t.reader.ReadInto(&t.record)
		if err == nil {
			if t.sinceClock++; t.sinceClock >= clockCheckRecords {
				t.checkClock()
			}
			c, err := t.decoder.decode(t.record.RawSample)
			if err != nil {
				t.malformed.Add(1)
				continue
			}
			return c, nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// The kernel does not wake the reader for every record:
			// the ring is empty, poll again, unless the caller's time
			// is up.
			now := time.Now()
			t.checkClock()
			if !deadline.IsZero() && !now.Before(deadline) {
				t.setPoll(now.Add(pollInterval))
				return mremap.Call{}, os.ErrDeadlineExceeded
			}
			next := now.Add(pollInterval)
			if !deadline.IsZero() && deadline.Before(next) {
				next = deadline
			}
			t.setPoll(next)
			continue
		}
		if closed(err) || errFlushed(err) && t.stopped.Load() {
			// Closed; or Stop detached the probes and every record is read.
			return mremap.Call{}, ErrClosed
		}
		return mremap.Call{}, fmt.Errorf("read ring buffer: %w", err)
	}
}

// setPoll sets when the reader stops waiting for the ring buffer.
func (t *Tracer) setPoll(at time.Time) {
	t.pollAt = at
	t.reader.SetDeadline(at)
}

// checkClock measures the clock offset again when it is clockRefresh old:
// the real-time clock is stepped and slewed (NTP) while the monotonic one
// is not.
func (t *Tracer) checkClock() {
	t.sinceClock = 0
	if time.Since(t.clockAt) > clockRefresh {
		t.decoder.clock, t.clockAt = NewClock(), time.Now()
	}
}

// Pending says whether the ring buffer holds records that Read returns
// without waiting. Like Read, it must not be called once Close began.
func (t *Tracer) Pending() bool {
	return t.reader != nil && t.reader.AvailableBytes() > 0
}
