package backends

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// ScreenshotsEnv names the directory where the browser test writes its
// screenshots (make screenshots: docs/); without it they go to the test's
// temporary directory.
const ScreenshotsEnv = "MREMAP_SCREENSHOTS"

// stack is config/victoria.yaml running against the servers, and what the
// helper did meanwhile.
type stack struct {
	vm, vl, prom *Server
	probe        string
	// runs are the helper's runs: runs[0] makes every series exist, the
	// others are the workload.
	runs []mremapcheck.Run
	// The helper's first run ended at warmedUp; the workload ran from
	// workStart to workEnd; every emission after settled holds all of it.
	warmedUp, workStart, workEnd, settled time.Time
	// begin is when the collector started.
	begin time.Time
}

// TestBackends runs config/victoria.yaml as it ships, but for free loopback
// ports, a 1 s collection interval and the helper's comm only, against a
// VictoriaLogs and a VictoriaMetrics started for the test, and with a
// prometheus exporter (send_timestamps) added to its metrics pipeline that a
// Prometheus (config/prometheus.yml) scrapes every 250 ms: so VictoriaMetrics
// (over OTLP) and Prometheus hold the same samples. The helper runs once,
// then its workload. Then the subtests check each backend.
func TestBackends(t *testing.T) {
	mremaptest.RequireBPF(t)
	st := startStack(t)
	st.work(t)
	t.Run("VictoriaLogs", func(t *testing.T) { checkLogs(t, st) })
	t.Run("DocumentedLogsQL", func(t *testing.T) { checkDocumentedQueries(t, st) })
	t.Run("DashboardQueries", func(t *testing.T) { checkDashboardQueries(t, st) })
	t.Run("Browser", func(t *testing.T) { checkBrowser(t, st) })
}

func startStack(t *testing.T) *stack {
	st := &stack{probe: "tracepoint"}
	if mremaptest.HasKprobes() {
		st.probe = "kprobe" // what probe: auto chooses
	}
	root := mremaptest.ModuleRoot()
	// Tests ask for the freshest samples: no latency offset, no cache.
	st.vm = StartVictoriaMetrics(t, "-search.latencyOffset=0s", "-search.disableCache",
		"-vmui.customDashboardsPath="+filepath.Join(root, "config", "vmui"))
	st.vl = StartVictoriaLogs(t)
	exporterPort := mremaptest.FreePort(t)
	st.prom = StartPrometheus(t, prometheusConfig(t, exporterPort))

	st.begin = time.Now()
	startCollector(t, []string{"VICTORIALOGS_ENDPOINT=" + st.vl.URL, "VICTORIAMETRICS_ENDPOINT=" + st.vm.URL},
		"--config", filepath.Join(root, "config", "victoria.yaml"),
		"--set=receivers::mremap::collection_interval=1s",
		"--set=receivers::mremap::filter::comms=["+mremaptest.Comm+"]",
		fmt.Sprintf("--set=exporters::prometheus::endpoint=127.0.0.1:%d", exporterPort),
		"--set=exporters::prometheus::send_timestamps=true",
		"--set=exporters::prometheus::resource_constant_labels::included=[host.name]",
		"--set=service::pipelines::metrics::exporters=[otlp_http/victoriametrics,prometheus]",
		"--set=service::telemetry::metrics::level=none")
	// Prometheus takes its targets in a few seconds after its start.
	problems := mremapcheck.Eventually(30*time.Second, 250*time.Millisecond, func() []string {
		var p []string
		for _, s := range []*Server{st.vm, st.prom} {
			if got, err := Query(s.URL, always, time.Now()); err != nil || len(got) == 0 {
				p = append(p, fmt.Sprintf("%s at %s: %v %v", always, s.URL, got, err))
			}
		}
		return p
	})
	if len(problems) > 0 {
		t.Fatalf("the collector's metrics did not reach both backends: %v", problems)
	}
	return st
}

// prometheusConfig is config/prometheus.yml scraping the collector's
// exporter on port every 250 ms, its rules loaded from config/prometheus.
func prometheusConfig(t *testing.T, port int) string {
	root := mremaptest.ModuleRoot()
	data, err := os.ReadFile(filepath.Join(root, "config", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["global"] = map[string]any{"scrape_interval": "250ms", "evaluation_interval": "1s"}
	var rules []any
	for _, r := range cfg["rule_files"].([]any) {
		rules = append(rules, filepath.Join(root, "config", r.(string)))
	}
	cfg["rule_files"] = rules
	cfg["scrape_configs"] = []any{map[string]any{
		"job_name":       "otelcol-mremap",
		"static_configs": []any{map[string]any{"targets": []string{fmt.Sprintf("127.0.0.1:%d", port)}}},
	}}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// startCollector starts the built collector with env and args and waits
// for its health_check, on a free port; SIGTERM stops it when the test ends.
func startCollector(t *testing.T, env []string, args ...string) {
	health := mremaptest.FreePort(t)
	args = append(args, fmt.Sprintf("--set=extensions::health_check::endpoint=127.0.0.1:%d", health))
	cmd := exec.Command(mremaptest.CollectorPath(t), args...)
	cmd.Env = append(os.Environ(), env...)
	out := &output{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", out.String())
		}
	})
	problems := mremapcheck.Eventually(60*time.Second, 100*time.Millisecond, func() []string {
		select {
		case <-exited:
			return nil
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", health))
		if err != nil {
			return []string{err.Error()}
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return []string{resp.Status}
		}
		return nil
	})
	select {
	case <-exited:
		t.Fatalf("the collector exited:\n%s", out.String())
	default:
	}
	if len(problems) > 0 {
		t.Fatalf("the collector's health_check did not answer: %v\n%s", problems, out.String())
	}
	if !strings.Contains(out.String(), "Everything is ready") {
		t.Fatalf("the collector answers but did not say it is ready:\n%s", out.String())
	}
}

// work runs the helper once, so that every series exists, waits for two
// emissions, then runs the workload: the helper again and again, each run
// staying alive a moment so that its /proc entries can be read. A longer one
// for the screenshots.
func (st *stack) work(t *testing.T) {
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	runs := 10
	if os.Getenv(ScreenshotsEnv) != "" {
		runs = 60
	}
	run := func() {
		r := mremapcheck.Run{Probe: st.probe, PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
		r.Made = mremaptest.RunHelperLinger(t, helper, 600*time.Millisecond)
		r.End = time.Now()
		st.runs = append(st.runs, r)
	}
	run()
	st.warmedUp = time.Now()
	time.Sleep(3 * time.Second)
	st.workStart = time.Now()
	for i := 0; i < runs; i++ {
		run()
	}
	st.workEnd = time.Now()
	time.Sleep(3 * time.Second)
	st.settled = time.Now()
}
