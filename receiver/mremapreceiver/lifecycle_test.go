package mremapreceiver

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/goleak"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

// startShutdownCycles is how many times TestStartShutdownCycles starts and
// stops the receiver in one process.
const startShutdownCycles = 50

// Starting and stopping the receiver 50 times in one process leaves no
// goroutine, no file descriptor, and no BPF program, map or link behind,
// and each cycle delivers every call made while it ran.
func TestStartShutdownCycles(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	ignore := goleak.IgnoreCurrent()
	since := mremaptest.LastIDs()

	// cycle starts the receiver for both pipelines, makes the helper's
	// calls, calls running, and shuts the receiver down.
	cycle := func(t *testing.T, running func()) {
		t.Helper()
		f := NewFactory()
		cfg := f.CreateDefaultConfig().(*Config)
		cfg.CollectionInterval = 10 * time.Millisecond
		cfg.RingBufferSize = 1 << 16
		cfg.Filter.Comms = []string{mremaptest.Comm}
		set := receivertest.NewNopSettings(metadata.Type)
		logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
		lr, err := f.CreateLogs(context.Background(), set, cfg, logs)
		if err != nil {
			t.Fatal(err)
		}
		mr, err := f.CreateMetrics(context.Background(), set, cfg, metrics)
		if err != nil {
			t.Fatal(err)
		}
		if err := lr.Start(context.Background(), componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		if err := mr.Start(context.Background(), componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		made := mremaptest.RunHelper(t, helper)
		running()
		if err := lr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := mr.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Shutdown delivers what was left in the ring buffer and reports
		// the aggregates once more.
		if n := logs.LogRecordCount(); n != len(made) {
			t.Errorf("%d log records, want %d", n, len(made))
		}
		if len(metrics.AllMetrics()) == 0 {
			t.Error("no metrics emitted")
		}
	}

	// The first cycle shows which objects are ours, and opens what stays
	// open for the life of the process (cilium/ebpf's feature probes, the
	// kernel's BTF).
	var ours mremaptest.Objects
	cycle(t, func() { ours = mremaptest.ObjectsSince(since, mremaptest.OurNames()) })
	t.Logf("the objects of one receiver: %+v", ours)
	if len(ours.Programs) < 2 || len(ours.Maps) < 2 {
		t.Fatalf("the receiver's programs and maps were not found: %+v", ours)
	}
	names := ours.Names()
	if left := mremaptest.ObjectsLeft(since, names); !left.Empty() {
		t.Fatalf("BPF objects left after the first cycle: %+v", left)
	}
	fds := mremaptest.OpenFDs(t)

	for i := 2; i <= startShutdownCycles; i++ {
		since := mremaptest.LastIDs()
		cycle(t, func() {})
		// Checked at once, before a garbage collection could close what
		// was leaked.
		if n := mremaptest.OpenFDs(t); n != fds {
			t.Fatalf("cycle %d: %d file descriptors open, %d after the first cycle", i, n, fds)
		}
		if left := mremaptest.ObjectsLeft(since, names); !left.Empty() {
			t.Fatalf("cycle %d: BPF objects left after shutdown: %+v", i, left)
		}
		if t.Failed() {
			t.Fatalf("cycle %d failed", i)
		}
	}
	goleak.VerifyNone(t, ignore)
}
