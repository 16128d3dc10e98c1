// Package e2e runs the built collector, bin/otelcol-mremap, as users do:
// with a YAML config, the file exporter, real mremap calls from
// cmd/mremap-helper, and SIGTERM at the end.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

type collector struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	dir    string
	ready  time.Time // when it logged "Everything is ready"
}

// signalGrace is how long after "Everything is ready" stop waits before it
// sends SIGTERM. otelcol logs that line before it installs its SIGTERM
// handler (Collector.Run: service start, then signal.Notify), so a SIGTERM
// at once may find Go's default action and kill the collector without a
// shutdown. The window is tiny on real hardware but long on an emulated
// CPU (the kernel VM suite hit it).
const signalGrace = 500 * time.Millisecond

// startCollector writes config ($DIR replaced with the collector's
// directory) and starts the collector with it.
func startCollector(t *testing.T, bin, config string) *collector {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.yaml")
	config = strings.ReplaceAll(config, "$DIR", dir)
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return runCollector(t, dir, nil, bin, "--config", cfgPath)
}

// runCollector starts the collector with args and the environment plus env,
// and waits until it is ready.
func runCollector(t *testing.T, dir string, env []string, bin string, args ...string) *collector {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	return runCommand(t, dir, cmd)
}

// runCommand starts cmd, a collector whose files are in dir, and waits until
// it is ready; the collector is killed when the test ends.
func runCommand(t *testing.T, dir string, cmd *exec.Cmd) *collector {
	t.Helper()
	c := &collector{cmd: cmd, stderr: &lockedBuffer{}, dir: dir}
	c.cmd.Stderr = c.stderr
	c.cmd.Stdout = c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", c.stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(c.stderr.String(), "Everything is ready") {
		if time.Now().After(deadline) || c.exited() {
			t.Fatalf("collector did not become ready:\n%s", c.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.ready = time.Now()
	return c
}

func (c *collector) exited() bool {
	return c.cmd.ProcessState != nil || c.cmd.Process.Signal(syscall.Signal(0)) != nil
}

// stop sends SIGTERM, as systemd or the kubelet would, and waits.
func (c *collector) stop(t *testing.T) {
	t.Helper()
	time.Sleep(time.Until(c.ready.Add(signalGrace)))
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("collector exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		c.cmd.Process.Kill()
		t.Fatal("collector did not stop within 60s of SIGTERM")
	}
}

const fileConfig = `
receivers:
  mremap:
    probe: %s
    collection_interval: 200ms
    filter:
      comms: [mremap-helper]
exporters:
  file/logs:
    path: $DIR/logs.json
    flush_interval: 100ms
  file/metrics:
    path: $DIR/metrics.json
    flush_interval: 100ms
service:
  pipelines:
    logs:
      receivers: [mremap]
      exporters: [file/logs]
    metrics:
      receivers: [mremap]
      exporters: [file/metrics]
  telemetry:
    metrics:
      level: none
`

func TestCollectorFileExporter(t *testing.T) {
	mremaptest.RequireBPF(t)
	bin := mremaptest.CollectorPath(t)
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	for _, probe := range mremaptest.Probes(t) {
		t.Run(probe, func(t *testing.T) {
			c := startCollector(t, bin, fmt.Sprintf(fileConfig, probe))
			if !strings.Contains(c.stderr.String(), `"probe": "`+probe+`"`) {
				t.Errorf("startup log does not say probe %s", probe)
			}
			run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
			run.Made = mremaptest.RunHelperLinger(t, helper, 2*time.Second)
			run.End = time.Now()

			problems := mremapcheck.Eventually(30*time.Second, 200*time.Millisecond, func() []string {
				return readOutput(t, run, filepath.Join(c.dir, "logs.json"), filepath.Join(c.dir, "metrics.json"))
			})
			for _, p := range problems {
				t.Error(p)
			}
			c.stop(t)
			if left := mremaptest.ProgramsLeft(); len(left) > 0 {
				t.Errorf("BPF programs still loaded after the collector stopped: %v", left)
			}
		})
	}
}

func TestCollectorAutoSaysWhich(t *testing.T) {
	mremaptest.RequireBPF(t)
	bin := mremaptest.CollectorPath(t)
	c := startCollector(t, bin, fmt.Sprintf(fileConfig, "auto"))
	want := "tracepoint"
	if mremaptest.HasKprobes() {
		want = "kprobe"
	}
	out := c.stderr.String()
	if !strings.Contains(out, `"probe": "`+want+`"`) || !strings.Contains(out, "probe auto chose "+want) {
		t.Errorf("startup log does not say auto chose %s and why:\n%s", want, out)
	}
	c.stop(t)
}

func TestValidateNamesBadKeys(t *testing.T) {
	bin := mremaptest.CollectorPath(t)
	tests := []struct {
		name, receiver string
		want           []string
	}{
		{"unknown probe", "probe: fentry", []string{"probe", "fentry"}},
		{"ring buffer not a power of two", "ring_buffer_size: 5000", []string{"ring_buffer_size", "power of two"}},
		{"interval not positive", "collection_interval: 0s", []string{"collection_interval", "positive"}},
		{"negative rate", "max_events_per_second: -1", []string{"max_events_per_second", "negative"}},
		{"long comm", "filter: {comms: [a-process-name-too-long]}", []string{"filter::comms[0]", "15"}},
		{"negative size", "filter: {min_size_delta: -4096}", []string{"filter::min_size_delta", "negative"}},
		{"unknown key", "ring_bufer_size: 4096", []string{"ring_bufer_size"}},
		{"fractional rate", "max_events_per_second: 1.5", []string{"max_events_per_second: must be a whole number, got 1.5"}},
		{"fractional ring buffer", "ring_buffer_size: 4096.5", []string{"ring_buffer_size: must be a whole number, got 4096.5"}},
		{"fractional size", "filter: {min_size_delta: 0.5}", []string{"filter::min_size_delta: must be a whole number, got 0.5"}},
		{"fractional pid", "filter: {pids: [1, 1.5]}", []string{"filter::pids[1]: must be a whole number, got 1.5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := fmt.Sprintf(`
receivers:
  mremap:
    %s
exporters:
  debug: {}
service:
  pipelines:
    logs: {receivers: [mremap], exporters: [debug]}
`, tt.receiver)
			path := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput()
			if err == nil {
				t.Fatalf("validate accepted %q:\n%s", tt.receiver, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("validate's error does not mention %q:\n%s", w, out)
				}
			}
		})
	}
}

// readOutput checks what file exporters wrote so far against the helper's
// calls: the log records and the last emission's metrics.
func readOutput(t *testing.T, run mremapcheck.Run, logsPath, metricsPath string) []string {
	t.Helper()
	logs, err := mremapcheck.ReadFile(logsPath)
	if err != nil {
		t.Fatal(err)
	}
	metrics, err := mremapcheck.ReadFile(metricsPath)
	if err != nil {
		t.Fatal(err)
	}
	p := mremapcheck.Logs(logs.Logs, run)
	if metrics.LastMetrics.ResourceMetrics().Len() == 0 {
		return append(p, "no metrics written")
	}
	return append(p, mremapcheck.Metrics(metrics.LastMetrics, run.Probe)...)
}

// With redact_addresses the collector's log records carry no address:
// no address attribute, and 0x? for each address in the body.
func TestCollectorRedactAddresses(t *testing.T) {
	mremaptest.RequireBPF(t)
	bin := mremaptest.CollectorPath(t)
	helper := mremaptest.HelperPath(t)
	config := strings.Replace(fmt.Sprintf(fileConfig, "auto"), "    collection_interval: 200ms\n",
		"    collection_interval: 200ms\n    redact_addresses: true\n", 1)
	c := startCollector(t, bin, config)
	made := mremaptest.RunHelper(t, helper)

	var records []plog.LogRecord
	problems := mremapcheck.Eventually(30*time.Second, 200*time.Millisecond, func() []string {
		records = records[:0]
		out, err := mremapcheck.ReadFile(filepath.Join(c.dir, "logs.json"))
		if err != nil {
			t.Fatal(err)
		}
		ld := out.Logs
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			lrs := ld.ResourceLogs().At(i).ScopeLogs().At(0).LogRecords()
			for j := 0; j < lrs.Len(); j++ {
				records = append(records, lrs.At(j))
			}
		}
		if len(records) < len(made) {
			return []string{fmt.Sprintf("%d log records, want %d", len(records), len(made))}
		}
		return nil
	})
	for _, p := range problems {
		t.Fatal(p)
	}
	c.stop(t)
	for i, m := range made {
		r := records[i]
		// The helper reports the kernel's raw return: -errno for a failure.
		call := mremap.Call{OldAddress: m.OldAddress, OldSize: m.OldSize, NewSize: m.NewSize, Flags: m.Flags,
			NewAddress: m.NewAddress, Return: m.Return, Errno: uint16(-min(m.Return, 0))}
		if got, want := r.Body().Str(), call.Redacted(); got != want {
			t.Errorf("%s: body %q, want %q", m.Name, got, want)
		}
		for _, k := range []string{"mremap.old_address", "mremap.new_address", "mremap.result_address"} {
			if v, ok := r.Attributes().Get(k); ok {
				t.Errorf("%s: %s=%s despite redact_addresses", m.Name, k, v.AsString())
			}
		}
		if v, _ := r.Attributes().Get("mremap.old_size"); v.Int() != int64(m.OldSize) {
			t.Errorf("%s: mremap.old_size %d, want %d", m.Name, v.Int(), m.OldSize)
		}
		if strings.Contains(r.Body().Str(), fmt.Sprintf("%x", m.OldAddress)) {
			t.Errorf("%s: body %q shows the address %#x", m.Name, r.Body().Str(), m.OldAddress)
		}
	}
}
