// Package dashboards checks the Grafana dashboards in config/grafana: every
// query names only metrics the receiver exports, and, with a real
// Prometheus scraping the built collector while the helper makes calls,
// every query is valid PromQL that returns data.
package dashboards

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// exported are the Prometheus names of the receiver's metrics.
var exported = map[string]bool{
	"mremap_calls_total":             true,
	"mremap_moves_total":             true,
	"mremap_size_delta_bytes_bucket": true,
	"mremap_size_delta_bytes_sum":    true,
	"mremap_size_delta_bytes_count":  true,
	"mremap_duration_seconds_bucket": true,
	"mremap_duration_seconds_sum":    true,
	"mremap_duration_seconds_count":  true,
	"mremap_events_dropped_total":    true,
}

type query struct{ panel, expr string }

func loadQueries(t *testing.T) []query {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(mremaptest.ModuleRoot(), "config", "grafana", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in config/grafana: %v", err)
	}
	var out []query
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Title  string `json:"title"`
			UID    string `json:"uid"`
			Panels []struct {
				Title   string `json:"title"`
				Type    string `json:"type"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.Title == "" || d.UID == "" {
			t.Errorf("%s: dashboard needs a title and a uid", f)
		}
		for _, p := range d.Panels {
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", f, p.Title)
			}
			for _, tg := range p.Targets {
				out = append(out, query{filepath.Base(f) + ": " + p.Title, tg.Expr})
			}
		}
	}
	return out
}

var (
	metricName = regexp.MustCompile(`\bmremap_[a-z_]+_(?:total|bucket|sum|count)\b`)
	// by (...) and {label...} clauses
	labelName = regexp.MustCompile(`(?:by \(([a-z_, ]+)\))|(?:[{,]\s*([a-z_]+)\s*[=!]~?)`)
	labels    = map[string]bool{
		"process_executable_name": true, "mremap_resize": true, "mremap_move": true,
		"mremap_result": true, "reason": true, "host_name": true, "le": true,
	}
)

func TestQueriesNameExportedMetrics(t *testing.T) {
	for _, q := range loadQueries(t) {
		names := metricName.FindAllString(q.expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: query names no mremap metric: %s", q.panel, q.expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s: %s is not a metric the receiver exports", q.panel, n)
			}
		}
		for _, m := range labelName.FindAllStringSubmatch(q.expr, -1) {
			for _, l := range strings.Split(m[1]+","+m[2], ",") {
				if l = strings.TrimSpace(l); l != "" && !labels[l] {
					t.Errorf("%s: label %s is not one the receiver exports", q.panel, l)
				}
			}
		}
	}
}

// TestQueriesReturnData runs every query against a real Prometheus that
// scrapes the built collector (config/collector.yaml's exporter settings)
// while the helper makes its calls.
func TestQueriesReturnData(t *testing.T) {
	mremaptest.RequireBPF(t)
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed (apt-get install prometheus; .ci/run installs it)")
	}
	bin := mremaptest.CollectorPath(t)
	helper := mremaptest.HelperPath(t)
	dir := t.TempDir()
	exporterPort, promPort := mremaptest.FreePort(t), mremaptest.FreePort(t)

	collectorCfg := filepath.Join(dir, "collector.yaml")
	write(t, collectorCfg, fmt.Sprintf(`
receivers:
  mremap:
    collection_interval: 500ms
    filter: {comms: [mremap-helper]}
exporters:
  prometheus:
    endpoint: 127.0.0.1:%d
    resource_to_telemetry_conversion: {enabled: true}
service:
  pipelines:
    metrics: {receivers: [mremap], exporters: [prometheus]}
  telemetry:
    metrics: {level: none}
`, exporterPort))
	promCfg := filepath.Join(dir, "prometheus.yml")
	write(t, promCfg, fmt.Sprintf(`
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: otelcol-mremap
    static_configs: [{targets: ["127.0.0.1:%d"]}]
`, exporterPort))

	start(t, bin, "--config", collectorCfg)
	start(t, prom, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))

	// Calls spread over several scrapes, so that rates are not zero.
	for i := 0; i < 6; i++ {
		mremaptest.RunHelper(t, helper)
		time.Sleep(time.Second)
	}

	for _, q := range loadQueries(t) {
		expr := strings.NewReplacer("$__rate_interval", "30s", "$host", ".*").Replace(q.expr)
		var res string
		var n int
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
			res, n = instantQuery(t, promPort, expr)
			if n > 0 {
				break
			}
		}
		if n == 0 {
			t.Errorf("%s: no data for %s: %s", q.panel, expr, res)
		}
	}
}

// instantQuery returns the response and the number of series with a value
// that is a number (histogram_quantile gives NaN without data).
func instantQuery(t *testing.T, port int, expr string) (string, int) {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", port, url.QueryEscape(expr)))
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return string(body), 0
	}
	if r.Status != "success" {
		t.Fatalf("query %s failed: %s", expr, r.Error)
	}
	n := 0
	for _, s := range r.Data.Result {
		if len(s.Value) == 2 && s.Value[1] != "NaN" {
			n++
		}
	}
	return string(body), n
}

func start(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(name), out.String())
		}
	})
	time.Sleep(2 * time.Second)
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
