package mremapreceiver

import (
	"os"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.uber.org/goleak"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// startShutdownCycles is how many times TestStartShutdownCycles starts and
// stops the receiver in one process: 50, or $MREMAP_START_SHUTDOWN_CYCLES.
// The kernel VM suite runs 10: under QEMU's TCG a cycle takes 2 to 6 s
// (loading and verifying the programs; attaching and detaching probes,
// which rewrites kernel text), and a leak shows in the cycles after the
// first.
func startShutdownCycles(t *testing.T) int {
	s := os.Getenv("MREMAP_START_SHUTDOWN_CYCLES")
	if s == "" {
		return 50
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 2 {
		t.Fatalf("MREMAP_START_SHUTDOWN_CYCLES=%q: want a number of cycles, at least 2", s)
	}
	return n
}

// Starting and stopping the receiver startShutdownCycles times in one
// process leaves no goroutine, no file descriptor, and no BPF program, map
// or link behind, and each cycle delivers every call made while it ran.
func TestStartShutdownCycles(t *testing.T) {
	mremaptest.RequireBPF(t)
	cycles := startShutdownCycles(t)
	helper := mremaptest.HelperPath(t)
	ignore := goleak.IgnoreCurrent()
	since := mremaptest.LastIDs()

	// cycle starts the receiver for both pipelines, makes the helper's
	// calls, calls running, and shuts the receiver down.
	cycle := func(t *testing.T, running func()) {
		t.Helper()
		cfg := helperConfig(func(cfg *Config) {
			cfg.CollectionInterval = 10 * time.Millisecond
			cfg.RingBufferSize = 1 << 16
		})
		logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
		r := startReceiver(t, cfg, pipelines{logs: logs, metrics: metrics})
		made := mremaptest.RunHelper(t, helper)
		running()
		r.shutdown()
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

	for i := 2; i <= cycles; i++ {
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
