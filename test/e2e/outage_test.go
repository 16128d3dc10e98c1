//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// outage is how long the gateway is down while the helper runs.
const outage = 30 * time.Second

// TestAgentQueueOutage runs the shipped agent and gateway (fleet) and takes
// the gateway away twice.
//
// First it is stopped for 30 s while the helper's loop makes calls and the
// helper makes its known calls: once the gateway is started again, every
// call made during the outage arrives, none twice, and the known calls
// with every field.
//
// Then the gateway is stopped again, the helper makes calls, and once the
// agent's on-disk queue holds them all the agent is killed with SIGKILL.
// The gateway and then the agent are started again, on the same queue
// directory: every queued call arrives. The queue delivers at least once:
// a batch the gateway took just before the kill would be sent again, and
// such duplicates are counted (here the gateway was down, so none is
// expected, but one is not a failure); a call without a record is.
func TestAgentQueueOutage(t *testing.T) {
	mremaptest.RequireBPF(t)
	// Parallel with the other test that mostly waits (the outage, the
	// silent connections' deadline): each runs its own agent and gateway
	// in its own network namespace and counts only its own helper
	// processes' records (by pid), so the other's calls do not disturb it.
	t.Parallel()
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	f := newFleet(t)
	gateway := f.startGateway(t)
	agent := f.startAgent(t)
	probe := "tracepoint"
	if mremaptest.HasKprobes() {
		probe = "kprobe"
	}

	// 1. The gateway down for 30 s.
	gateway.stop(t)
	down := time.Now()
	run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
	run.Made = mremaptest.RunHelperLinger(t, helper, time.Second)
	run.End = time.Now()
	loop := runLoopAt(t, helper, outage-time.Since(down)-time.Second, 200)
	time.Sleep(time.Until(down.Add(outage)))
	gateway = f.startGateway(t)
	t.Logf("gateway down for %v; %d loop calls and %d known calls made meanwhile", time.Since(down).Round(time.Second), loop.Calls, len(run.Made))
	f.checkKnownCalls(t, run, 60*time.Second)
	d := f.waitDelivered(t, loop, 60*time.Second)
	t.Logf("after the outage: %v, of %d calls", d, loop.Calls)
	if d.calls != loop.Calls || d.duplicates != 0 {
		t.Errorf("after the outage: %v, want each of the %d calls once", d, loop.Calls)
	}

	// 2. SIGKILL with a full queue.
	gateway.stop(t)
	queued := runLoopAt(t, helper, 2*time.Second, 500)
	size := f.waitQueued(t, queued.Calls)
	agent.kill(t)
	files, _ := filepath.Glob(filepath.Join(f.queueDir, "*"))
	t.Logf("agent killed with %.0f log records queued (%d calls) in %v", size, queued.Calls, files)

	gateway = f.startGateway(t)
	defer gateway.stop(t)
	agent = f.startAgent(t)
	defer agent.stop(t)
	d = f.waitDelivered(t, queued, 60*time.Second)
	t.Logf("after the SIGKILL and restart: %v, of %d calls (at-least-once: duplicates allowed, counted)", d, queued.Calls)
	if d.calls != queued.Calls {
		t.Errorf("after the SIGKILL and restart: %v, want all %d calls", d, queued.Calls)
	}
	// Nothing of the first part was sent again.
	if again := f.waitDelivered(t, loop, 0); again.duplicates != 0 {
		t.Errorf("the outage's calls: %v after the restart, want no duplicates", again)
	}
}

// waitQueued waits until the agent's logs queue holds n records, and
// returns how many it holds.
func (f *fleet) waitQueued(t *testing.T, n int) float64 {
	t.Helper()
	client := f.ns.httpClient()
	var size float64
	deadline := time.Now().Add(15 * time.Second)
	for size < float64(n) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		size = sumSeries(scrapeWith(client, agentTelemetry), `data_type="logs"`, "otelcol_exporter_queue_size")
	}
	if size < float64(n) {
		t.Fatalf("the agent's queue holds %.0f log records, want the %d calls made while the gateway was down", size, n)
	}
	return size
}
