//go:build linux

package tracer

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// ReadUntil gives up at its deadline when no call comes, sooner than the
// poll, then returns the calls that came meanwhile, and ErrClosed once the
// tracer is stopped and drained.
func TestReadUntil(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	tr := newTracer(t, Options{Probe: ProbeAuto, Events: true, RingBufferSize: 1 << 20, Filter: helperOnly()})

	start := time.Now()
	if _, err := tr.ReadUntil(start.Add(pollInterval / 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadUntil with no call: %v, want os.ErrDeadlineExceeded", err)
	}
	if waited := time.Since(start); waited >= pollInterval {
		t.Errorf("ReadUntil waited %v for a deadline %v away: the poll's, not the caller's", waited, pollInterval/4)
	}
	// A deadline already past, and none: the calls are there.
	made := mremaptest.RunHelper(t, helper)
	for i := range made {
		deadline := time.Time{}
		if i == 0 {
			deadline = time.Now().Add(-time.Second)
		}
		c, err := tr.ReadUntil(deadline)
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if c.Return != made[i].Return {
			t.Errorf("call %d returned %#x, want %#x (%s)", i, c.Return, made[i].Return, made[i].Name)
		}
	}
	if _, err := tr.ReadUntil(time.Now().Add(10 * time.Millisecond)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadUntil once every call was read: %v, want os.ErrDeadlineExceeded", err)
	}
	if err := tr.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.ReadUntil(time.Now().Add(time.Second)); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadUntil on a stopped, drained tracer: %v, want ErrClosed", err)
	}
}
