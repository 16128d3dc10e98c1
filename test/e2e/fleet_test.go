//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// fleet runs config/agent.yaml and config/gateway.yaml as they ship, as
// collector processes in a network namespace of the test's own, over
// mutual TLS with the certificates config/tls/make-certs.sh makes. Both
// listen on their default addresses; only what the configs read from the
// environment is set (the TLS files, MREMAP_OUTPUT_DIR, MREMAP_STORAGE_DIR,
// the gateway's HEALTH_CHECK_ENDPOINT, since the agent's default takes
// localhost:13133), and a few --set that make the test quicker.
type fleet struct {
	ns       *netns
	pki      *pki
	bin      string
	gwDir    string // the gateway's MREMAP_OUTPUT_DIR
	queueDir string // the agent's MREMAP_STORAGE_DIR
}

// The gateway's addresses inside the namespace.
const (
	gatewayOTLP    = "127.0.0.1:4317"
	gatewayMetrics = "http://127.0.0.1:8889/metrics"
	agentTelemetry = "http://127.0.0.1:8888/metrics"
)

func newFleet(t *testing.T) *fleet {
	t.Helper()
	certs := newPKI(t) // first: it skips the test where it cannot make them
	return &fleet{
		ns:       newNetns(t),
		pki:      certs,
		bin:      mremaptest.CollectorPath(t),
		gwDir:    t.TempDir(),
		queueDir: filepath.Join(t.TempDir(), "queue"), // file_storage creates it
	}
}

func configPath(name string) string { return filepath.Join(mremaptest.ModuleRoot(), "config", name) }

// gatewayCommand is config/gateway.yaml in the namespace. The agent's
// own telemetry takes localhost:8888 there, so the gateway's is off.
func (f *fleet) gatewayCommand(extra ...string) *exec.Cmd {
	args := append([]string{"--config", configPath("gateway.yaml"),
		"--set=exporters::file/logs::flush_interval=100ms",
		"--set=exporters::file/metrics::flush_interval=100ms",
		"--set=service::telemetry::metrics::level=none"}, extra...)
	cmd := f.ns.command(f.bin, args...)
	cmd.Env = append(os.Environ(), f.pki.env("gateway")...)
	cmd.Env = append(cmd.Env, "MREMAP_OUTPUT_DIR="+f.gwDir, "HEALTH_CHECK_ENDPOINT=localhost:13134")
	return cmd
}

func (f *fleet) startGateway(t *testing.T, extra ...string) *collector {
	t.Helper()
	return runCommand(t, f.gwDir, f.gatewayCommand(extra...))
}

// agentCommand is config/agent.yaml in the namespace, observing only the
// helper's calls, with a shorter collection interval.
func (f *fleet) agentCommand(extra ...string) *exec.Cmd {
	args := append([]string{"--config", configPath("agent.yaml"),
		"--set=receivers::mremap::collection_interval=500ms",
		"--set=receivers::mremap::filter::comms=[" + mremaptest.Comm + "]"}, extra...)
	cmd := f.ns.command(f.bin, args...)
	cmd.Env = append(os.Environ(), f.pki.env("agent")...)
	cmd.Env = append(cmd.Env, "MREMAP_STORAGE_DIR="+f.queueDir)
	return cmd
}

func (f *fleet) startAgent(t *testing.T, extra ...string) *collector {
	t.Helper()
	return runCommand(t, t.TempDir(), f.agentCommand(extra...))
}

// kill ends c with SIGKILL, as the OOM killer or a node's crash would.
func (c *collector) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// loopRun is one run of the helper's load loop: every call a successful
// shrink or grow of a mapping, all on the thread PID.
type loopRun struct {
	Calls int
	PID   int
}

// runLoopAt runs the helper's loop for d at rate calls per second.
func runLoopAt(t *testing.T, helper string, d time.Duration, rate int) loopRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(helper, "-for", d.String(), "-rate", strconv.Itoa(rate))
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", helper, err, stderr.String())
	}
	var r loopRun
	for _, kv := range strings.Fields(stdout.String()) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "calls":
			r.Calls, _ = strconv.Atoi(v)
		case "pid":
			r.PID, _ = strconv.Atoi(v)
		}
	}
	if r.Calls == 0 || r.PID == 0 {
		t.Fatalf("%s printed %q: no calls= or pid=", helper, stdout.String())
	}
	return r
}

// callKey names one call: its thread and its entry time in nanoseconds.
type callKey struct {
	tid int64
	ts  uint64
}

// recordsOf counts the log records of process pid in a file exporter's
// output (path and its rotated backups), by call: more than one for a call
// is a duplicate.
func recordsOf(t *testing.T, path string, pid int) map[callKey]int {
	t.Helper()
	got := map[callKey]int{}
	ext := filepath.Ext(path)
	backups, _ := filepath.Glob(strings.TrimSuffix(path, ext) + "-*" + ext)
	for _, p := range append(backups, path) {
		out, err := mremapcheck.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		countRecords(got, out.Logs, pid)
	}
	return got
}

func countRecords(got map[callKey]int, ld plog.Logs, pid int) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		if v, ok := rl.Resource().Attributes().Get("process.pid"); !ok || v.Int() != int64(pid) {
			continue
		}
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				tid, _ := lrs.At(k).Attributes().Get("thread.id")
				got[callKey{tid.Int(), uint64(lrs.At(k).Timestamp())}]++
			}
		}
	}
}

// delivery is what arrived of a loop run: calls with a record, and the
// records beyond one per call.
type delivery struct {
	calls, duplicates int
}

func (d delivery) String() string {
	return fmt.Sprintf("%d calls with a record, %d duplicate records", d.calls, d.duplicates)
}

func deliveredOf(t *testing.T, path string, pid int) delivery {
	t.Helper()
	var d delivery
	for _, n := range recordsOf(t, path, pid) {
		d.calls++
		d.duplicates += n - 1
	}
	return d
}

// waitDelivered waits until every call of run has a record in the
// gateway's logs.json, then a little longer for late duplicates, and
// returns what arrived.
func (f *fleet) waitDelivered(t *testing.T, run loopRun, timeout time.Duration) delivery {
	t.Helper()
	path := filepath.Join(f.gwDir, "logs.json")
	deadline := time.Now().Add(timeout)
	d := deliveredOf(t, path, run.PID)
	for d.calls < run.Calls && time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		d = deliveredOf(t, path, run.PID)
	}
	time.Sleep(2 * time.Second) // anything still in flight, such as a retried batch
	return deliveredOf(t, path, run.PID)
}

// checkKnownCalls checks the records of the helper's known calls in the
// gateway's output, field by field, until they are all there.
func (f *fleet) checkKnownCalls(t *testing.T, run mremapcheck.Run, timeout time.Duration) {
	t.Helper()
	problems := mremapcheck.Eventually(timeout, 200*time.Millisecond, func() []string {
		out, err := mremapcheck.ReadFile(filepath.Join(f.gwDir, "logs.json"))
		if err != nil {
			t.Fatal(err)
		}
		return mremapcheck.Logs(out.Logs, run)
	})
	for _, p := range problems {
		t.Error(p)
	}
}
