// Package dashboards checks the Grafana dashboard (config/grafana/mremap.json),
// its provisioning files and config/prometheus.yml: every panel the
// dashboard promises is there, every query names only metrics and labels the
// prometheus exporter produces, the provisioning files point where the
// dashboard expects, and, with a real Prometheus (config/prometheus.yml)
// scraping the built collector (config/collector.yaml) while the helper
// makes its calls, every query of every panel returns data with the
// dashboard's variables substituted as Grafana would.
package dashboards

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
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
	"mremap_signals_total":           true,
	"mremap_process_map_count":       true,
}

// exportedLabels are the labels of those metrics: their attributes,
// host_name (the resource attribute host.name, resource_constant_labels) and le (histogram buckets).
var exportedLabels = map[string]bool{
	"process_executable_name": true, "mremap_resize": true, "mremap_move": true,
	"mremap_result": true, "mremap_signal": true, "reason": true, "host_name": true, "le": true,
}

// Dashboard is the part of Grafana's dashboard model the tests read.
type Dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
	Panels []Panel `json:"panels"`
}

type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Datasource *Datasource     `json:"datasource"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

type Datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type Panel struct {
	Title      string      `json:"title"`
	Type       string      `json:"type"`
	Datasource *Datasource `json:"datasource"`
	Targets    []struct {
		Expr       string      `json:"expr"`
		Format     string      `json:"format"`
		Datasource *Datasource `json:"datasource"`
	} `json:"targets"`
}

// wantSeries is what a panel must show for the helper's calls: the label of
// its series and the values that must be among them ("" for a query whose
// series has no label, such as a quantile over everything). Every value is
// a finite number, never negative; the series named in values are above
// zero (the helper's calls make them), unless zeroOK (a drop reason that
// did not happen); a panel without values has at least one series above
// zero, and with quantile every series is above zero (a latency).
type wantSeries struct {
	label    string
	values   []string
	zeroOK   bool
	quantile bool
}

// check says what is wrong with the values of a query's series, by label.
func (w wantSeries) check(what string, series map[string]float64) []string {
	var p []string
	if len(series) == 0 {
		return []string{what + ": no data"}
	}
	positive := 0
	for l, v := range series {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			p = append(p, fmt.Sprintf("%s: series %s=%q is %v, want a finite number", what, w.label, l, v))
		case v < 0:
			p = append(p, fmt.Sprintf("%s: series %s=%q is %v, want no negative value", what, w.label, l, v))
		case v == 0 && w.quantile:
			p = append(p, fmt.Sprintf("%s: quantile %s=%q is 0, want a positive latency", what, w.label, l))
		case v > 0:
			positive++
		}
	}
	for _, want := range w.values {
		v, ok := series[want]
		switch {
		case !ok:
			p = append(p, fmt.Sprintf("%s: no series with %s=%q in %v", what, w.label, want, keys(series)))
		case v <= 0 && !w.zeroOK:
			p = append(p, fmt.Sprintf("%s: series %s=%q is %v, want it above zero (the helper's calls)", what, w.label, want, v))
		}
	}
	if len(w.values) == 0 && positive == 0 {
		p = append(p, fmt.Sprintf("%s: every series is zero: %v", what, series))
	}
	return p
}

// panel is what the dashboard must have under a title: its type, its
// number of queries, text its queries must contain, and the series it must
// show for the helper's calls.
type panel struct {
	kind     string
	queries  int
	contains []string
	want     wantSeries
}

// panels are the panels issue 6 and docs/deployment.md promise, by title.
func panels() map[string]panel {
	var errnos, moves []string
	seen := map[string]bool{}
	for _, e := range mremaptest.Expected {
		if e.Result != "ok" && !seen[e.Result] {
			errnos = append(errnos, e.Result)
		}
		if e.Result == "ok" && e.Move != "none" && !seen[e.Move] {
			moves = append(moves, e.Move)
		}
		seen[e.Result], seen[e.Move] = true, true
	}
	return map[string]panel{
		"Call rate by process": {"timeseries", 1, []string{"rate(mremap_calls_total{", "by (process_executable_name)"},
			wantSeries{label: "process_executable_name", values: []string{mremaptest.Comm}}},
		"Error rate by errno": {"timeseries", 1, []string{"rate(mremap_calls_total{", `mremap_result!="ok"`, "by (mremap_result)"},
			wantSeries{label: "mremap_result", values: errnos}},
		"Moves by type": {"timeseries", 1, []string{"rate(mremap_moves_total{", "by (mremap_move)"},
			wantSeries{label: "mremap_move", values: moves}},
		"Fixed-address moves": {"timeseries", 1, []string{"rate(mremap_moves_total{", `mremap_move="fixed"`},
			wantSeries{label: "process_executable_name", values: []string{mremaptest.Comm}}},
		"Bytes grown and shrunk per second": {"timeseries", 1, []string{"rate(mremap_size_delta_bytes_sum{", "by (mremap_resize)"},
			wantSeries{label: "mremap_resize", values: []string{"grow", "shrink"}}},
		// Every resize the helper makes is one page: le="4096" must hold it.
		"Size delta heatmap": {"heatmap", 1, []string{"(mremap_size_delta_bytes_bucket{", "by (le)"},
			wantSeries{label: "le", values: []string{"4096"}}},
		"Latency p50 and p99": {"timeseries", 2, []string{"histogram_quantile(0.5, sum by (le) (rate(mremap_duration_seconds_bucket{",
			"histogram_quantile(0.99, sum by (le) (rate(mremap_duration_seconds_bucket{"},
			wantSeries{label: "", quantile: true}},
		"Latency heatmap": {"heatmap", 1, []string{"(mremap_duration_seconds_bucket{", "by (le)"},
			wantSeries{label: "le"}},
		"Signals by process": {"timeseries", 1, []string{"rate(mremap_signals_total{", "by (process_executable_name, mremap_signal)"},
			wantSeries{label: "mremap_signal", values: []string{"dontunmap"}}},
		"Map-count headroom": {"timeseries", 1, []string{"mremap_map_count_limit{", "mremap_process_map_count{"},
			wantSeries{label: "process_executable_name", values: []string{mremaptest.Comm}}},
		"Dropped events by reason": {"timeseries", 1, []string{"rate(mremap_events_dropped_total{", "by (reason)"},
			wantSeries{label: "reason", values: []string{"ring_buffer_full", "rate_limited", "unpaired", "probe_missed", "cardinality_limit", "malformed_record"}, zeroOK: true}},
	}
}

func configPath(parts ...string) string {
	return filepath.Join(append([]string{mremaptest.ModuleRoot(), "config"}, parts...)...)
}

func loadDashboard(t *testing.T) Dashboard {
	t.Helper()
	data, err := os.ReadFile(configPath("grafana", "mremap.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("config/grafana/mremap.json: %v", err)
	}
	return d
}

func loadYAML(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func variable(d Dashboard, name string) (Variable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return Variable{}, false
}

var labelValues = regexp.MustCompile(`^label_values\((.+), *([a-z_]+)\)$`)

func TestDashboardModel(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Errorf("dashboard needs a title and a uid: %q %q", d.Title, d.UID)
	}
	if d.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d, want the current schema (39 or later)", d.SchemaVersion)
	}
	ds, ok := variable(d, "datasource")
	if !ok || ds.Type != "datasource" || string(ds.Query) != `"prometheus"` {
		t.Errorf("want a datasource variable for Prometheus datasources, got %+v", ds)
	}
	for name, label := range map[string]string{"host": "host_name", "process": "process_executable_name"} {
		v, ok := variable(d, name)
		if !ok {
			t.Errorf("no variable %q", name)
			continue
		}
		m := labelValues.FindStringSubmatch(v.Definition)
		if v.Type != "query" || m == nil || m[2] != label {
			t.Errorf("variable %s: want a query label_values(..., %s), got type %s, %q", name, label, v.Type, v.Definition)
		}
		if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
			t.Errorf("variable %s does not use the datasource variable: %+v", name, v.Datasource)
		}
	}

	byTitle := map[string]Panel{}
	for _, p := range d.Panels {
		if _, dup := byTitle[p.Title]; dup {
			t.Errorf("two panels titled %q", p.Title)
		}
		byTitle[p.Title] = p
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable: %+v", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: a query does not use the datasource variable", p.Title)
			}
			if p.Type == "heatmap" && tg.Format != "heatmap" {
				t.Errorf("heatmap %q: query format %q, want heatmap (buckets by le)", p.Title, tg.Format)
			}
		}
	}
	for title, want := range panels() {
		p, ok := byTitle[title]
		if !ok {
			t.Errorf("no panel titled %q", title)
			continue
		}
		if p.Type != want.kind || len(p.Targets) != want.queries {
			t.Errorf("panel %q: type %s with %d queries, want %s with %d", title, p.Type, len(p.Targets), want.kind, want.queries)
		}
		var exprs []string
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
		all := strings.Join(exprs, "\n")
		for _, c := range want.contains {
			if !strings.Contains(all, c) {
				t.Errorf("panel %q: no query contains %s: %s", title, c, all)
			}
		}
	}
}

var (
	metricName = regexp.MustCompile(`\bmremap_[a-z_]+_(?:total|bucket|sum|count)\b`)
	// by (...) clauses and label matchers
	labelName = regexp.MustCompile(`(?:by \(([a-z_, ]+)\))|(?:[{,]\s*([a-z_]+)\s*[=!]~?)`)
)

func TestQueriesNameExportedMetrics(t *testing.T) {
	d := loadDashboard(t)
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkNames(t, p.Title, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			checkNames(t, "variable "+v.Name, v.Definition)
		}
	}
}

func checkNames(t *testing.T, what, expr string) {
	names := metricName.FindAllString(expr, -1)
	if len(names) == 0 {
		t.Errorf("%s: query names no mremap metric: %s", what, expr)
	}
	for _, n := range names {
		if !exported[n] {
			t.Errorf("%s: %s is not a metric the prometheus exporter produces", what, n)
		}
	}
	for _, m := range labelName.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1]+","+m[2], ",") {
			if l = strings.TrimSpace(l); l != "" && !exportedLabels[l] {
				t.Errorf("%s: label %s is not one the prometheus exporter produces", what, l)
			}
		}
	}
}

// TestProvisioning checks that the Grafana provisioning files and
// config/prometheus.yml fit together with the dashboard and with
// config/collector.yaml.
func TestProvisioning(t *testing.T) {
	d := loadDashboard(t)

	var dsFile struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name     string         `yaml:"name"`
			UID      string         `yaml:"uid"`
			Type     string         `yaml:"type"`
			URL      string         `yaml:"url"`
			JSONData map[string]any `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	loadYAML(t, configPath("grafana", "provisioning", "datasources", "prometheus.yaml"), &dsFile)
	if dsFile.APIVersion != 1 || len(dsFile.Datasources) != 1 {
		t.Fatalf("datasources/prometheus.yaml: want apiVersion 1 and one datasource, got %+v", dsFile)
	}
	pds := dsFile.Datasources[0]
	v, _ := variable(d, "datasource")
	if pds.Type != "prometheus" || pds.UID == "" || v.Current.Value != pds.UID {
		t.Errorf("the dashboard's datasource variable defaults to %v; the provisioned datasource is %s uid %q", v.Current.Value, pds.Type, pds.UID)
	}
	if pds.URL != "http://localhost:9090" {
		t.Errorf("datasource url %q, want Prometheus's default http://localhost:9090", pds.URL)
	}

	var provider struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string `yaml:"name"`
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	providerPath := configPath("grafana", "provisioning", "dashboards", "mremap.yaml")
	loadYAML(t, providerPath, &provider)
	if provider.APIVersion != 1 || len(provider.Providers) != 1 || provider.Providers[0].Type != "file" {
		t.Fatalf("dashboards/mremap.yaml: want apiVersion 1 and one file provider, got %+v", provider)
	}
	dir := provider.Providers[0].Options.Path
	if !filepath.IsAbs(dir) {
		t.Errorf("dashboard provider path %q is not absolute", dir)
	}
	// The provider file and docs/deployment.md tell users to copy the
	// dashboard into the directory the provider reads.
	install := "cp config/grafana/mremap.json " + dir + "/"
	for _, f := range []string{providerPath, filepath.Join(mremaptest.ModuleRoot(), "docs", "deployment.md")} {
		if data, err := os.ReadFile(f); err != nil || !strings.Contains(string(data), install) {
			t.Errorf("%s does not say %q (the provider's path): %v", filepath.Base(f), install, err)
		}
	}

	var prom promConfig
	loadYAML(t, configPath("prometheus.yml"), &prom)
	if got := dsFile.Datasources[0].JSONData["timeInterval"]; got != prom.Global["scrape_interval"] {
		t.Errorf("datasource timeInterval %v differs from prometheus.yml's scrape_interval %v ($__rate_interval depends on it)", got, prom.Global["scrape_interval"])
	}
	var collector struct {
		Exporters struct {
			Prometheus struct {
				Endpoint string `yaml:"endpoint"`
			} `yaml:"prometheus"`
		} `yaml:"exporters"`
	}
	loadYAML(t, configPath("collector.yaml"), &collector)
	_, port, _ := strings.Cut(collector.Exporters.Prometheus.Endpoint, ":")
	if targets := prom.targets("otelcol-mremap"); len(targets) != 1 || !strings.HasSuffix(targets[0], ":"+port) {
		t.Errorf("prometheus.yml job otelcol-mremap scrapes %v, want the collector's exporter on port %s", targets, port)
	}

	if promtool, err := exec.LookPath("promtool"); err == nil {
		if out, err := exec.Command(promtool, "check", "config", configPath("prometheus.yml")).CombinedOutput(); err != nil {
			t.Errorf("promtool check config: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed: prometheus.yml is checked only by the Prometheus run in TestQueriesReturnData")
	}
}

// promConfig is the part of prometheus.yml the tests read and rewrite.
type promConfig struct {
	Global        map[string]any   `yaml:"global"`
	ScrapeConfigs []map[string]any `yaml:"scrape_configs"`
}

func (c promConfig) targets(job string) []string {
	var out []string
	for _, sc := range c.ScrapeConfigs {
		if sc["job_name"] != job {
			continue
		}
		statics, _ := sc["static_configs"].([]any)
		for _, s := range statics {
			m, _ := s.(map[string]any)
			ts, _ := m["targets"].([]any)
			for _, t := range ts {
				out = append(out, fmt.Sprint(t))
			}
		}
	}
	return out
}

// TestQueriesReturnData runs config/collector.yaml (ports moved to free ones,
// a short collection_interval) and Prometheus with config/prometheus.yml
// (the target moved likewise, a short scrape_interval) while the helper
// makes its calls, resolves the dashboard's variables through Prometheus's
// API as Grafana does, and runs every query of every panel.
func TestQueriesReturnData(t *testing.T) {
	mremaptest.RequireBPF(t)
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed (apt-get install prometheus; .ci/run installs it)")
	}
	bin := mremaptest.CollectorPath(t)
	helper := mremaptest.HelperPath(t)
	d := loadDashboard(t)
	dir := t.TempDir()
	exporterPort, promPort := mremaptest.FreePort(t), mremaptest.FreePort(t)

	var promCfg promConfig
	loadYAML(t, configPath("prometheus.yml"), &promCfg)
	promCfg.Global["scrape_interval"], promCfg.Global["evaluation_interval"] = "1s", "1s"
	for _, sc := range promCfg.ScrapeConfigs {
		if sc["job_name"] == "otelcol-mremap" {
			sc["static_configs"] = []any{map[string]any{"targets": []string{fmt.Sprintf("127.0.0.1:%d", exporterPort)}}}
		}
	}
	out, err := yaml.Marshal(promCfg)
	if err != nil {
		t.Fatal(err)
	}
	promPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promPath, out, 0o600); err != nil {
		t.Fatal(err)
	}

	start(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", exporterPort), bin, "--config", configPath("collector.yaml"),
		fmt.Sprintf("--set=exporters::prometheus::endpoint=127.0.0.1:%d", exporterPort),
		fmt.Sprintf("--set=extensions::health_check::endpoint=127.0.0.1:%d", mremaptest.FreePort(t)),
		"--set=receivers::mremap::collection_interval=1s",
		// One summary line per batch instead of one line per call of
		// every process on the host.
		"--set=exporters::debug::verbosity=basic",
		"--set=service::telemetry::metrics::level=none")
	start(t, fmt.Sprintf("http://127.0.0.1:%d/-/ready", promPort), prom, "--config.file="+promPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort))

	// Calls spread over several scrapes, so that rates are not zero.
	for i := 0; i < 6; i++ {
		mremaptest.RunHelper(t, helper)
		time.Sleep(time.Second)
	}

	// The variables, resolved in order through the label values API (what
	// Grafana's label_values() does); each must offer the value the helper's
	// calls carry, which is then selected.
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	selected := map[string]string{"host": host, "process": mremaptest.Comm}
	replace := func(expr string) string {
		// $__rate_interval: Grafana makes it at least four scrape intervals;
		// five minutes cover the whole workload and the queries after it,
		// so the helper's rates stay above zero while they run.
		r := []string{"$__rate_interval", "5m"}
		for name, value := range selected {
			r = append(r, "$"+name, regexpEscape(value))
		}
		return strings.NewReplacer(r...).Replace(expr)
	}
	for _, name := range []string{"host", "process"} {
		v, _ := variable(d, name)
		m := labelValues.FindStringSubmatch(v.Definition)
		if m == nil {
			t.Fatalf("variable %s: %q is not label_values(selector, label)", name, v.Definition)
		}
		var values []string
		problems := mremapcheck.Eventually(30*time.Second, time.Second, func() []string {
			values = labelValuesOf(t, promPort, m[2], replace(m[1]))
			for _, val := range values {
				if val == selected[name] {
					return nil
				}
			}
			return []string{fmt.Sprintf("variable %s offers %v, not %q", name, values, selected[name])}
		})
		for _, p := range problems {
			t.Error(p)
		}
	}

	want := panels()
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			expr := replace(tg.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("%s: a variable is left in %s", p.Title, expr)
				continue
			}
			w := want[p.Title].want
			problems := mremapcheck.Eventually(30*time.Second, time.Second, func() []string {
				res, series := instantQuery(t, promPort, expr, w.label)
				what := fmt.Sprintf("%s (query %d: %s)", p.Title, i+1, expr)
				if len(series) == 0 {
					return []string{fmt.Sprintf("%s: no data: %s", what, res)}
				}
				return w.check(what, series)
			})
			for _, pr := range problems {
				t.Error(pr)
			}
		}
	}
}

// regexpEscape escapes a variable's value for a =~ matcher the way
// Grafana's Prometheus datasource does (a regex escape, inside a PromQL
// string, so the backslash is doubled).
func regexpEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\^$*+?.()|{}[]`, r) {
			b.WriteString(`\\`)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func get(t *testing.T, port int, path string, params url.Values, into any) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s?%s", port, path, params.Encode()))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return string(body)
	}
	if r.Status != "success" {
		t.Fatalf("%s %v failed: %s", path, params, r.Error)
	}
	if err := json.Unmarshal(r.Data, into); err != nil {
		t.Fatalf("%s: %v: %s", path, err, body)
	}
	return string(body)
}

func labelValuesOf(t *testing.T, port int, label, selector string) []string {
	var values []string
	get(t, port, "/api/v1/label/"+label+"/values", url.Values{"match[]": {selector}}, &values)
	return values
}

// instantQuery returns the response and the value of each series, by its
// value of label ("" when label is "").
func instantQuery(t *testing.T, port int, expr, label string) (string, map[string]float64) {
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
		} `json:"result"`
	}
	body := get(t, port, "/api/v1/query", url.Values{"query": {expr}}, &data)
	series := map[string]float64{}
	for _, s := range data.Result {
		if len(s.Value) != 2 {
			continue
		}
		text, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(text, 64) // "NaN", "+Inf" included
		if err != nil {
			t.Fatalf("%s: value %v of %v is not a number", expr, s.Value[1], s.Metric)
		}
		series[s.Metric[label]] = v
	}
	return body, series
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// start starts a program, stops it with SIGTERM at the end of the test, and
// waits until ready answers 200.
func start(t *testing.T, ready string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	out := &strings.Builder{} // read only after Wait
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
	problems := mremapcheck.Eventually(60*time.Second, 200*time.Millisecond, func() []string {
		resp, err := http.Get(ready)
		if err != nil {
			return []string{err.Error()}
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return []string{resp.Status}
		}
		return nil
	})
	if len(problems) > 0 {
		t.Fatalf("%s did not answer on %s: %v", filepath.Base(name), ready, problems)
	}
}

// What the value checks catch in a query's result.
func TestWantSeriesCheck(t *testing.T) {
	rate := wantSeries{label: "mremap_resize", values: []string{"grow", "shrink"}}
	quantile := wantSeries{label: "", quantile: true}
	drops := wantSeries{label: "reason", values: []string{"ring_buffer_full"}, zeroOK: true}
	heatmap := wantSeries{label: "le"}
	tests := []struct {
		name   string
		w      wantSeries
		series map[string]float64
		want   []string // each in one of the problems; none: no problem
	}{
		{"rates above zero", rate, map[string]float64{"grow": 1, "shrink": 2.5}, nil},
		{"a rate of zero", rate, map[string]float64{"grow": 1, "shrink": 0}, []string{`mremap_resize="shrink" is 0, want it above zero`}},
		{"a series missing", rate, map[string]float64{"grow": 1}, []string{`no series with mremap_resize="shrink"`}},
		{"a negative rate", rate, map[string]float64{"grow": 1, "shrink": -1}, []string{"want no negative value"}},
		{"no data", rate, map[string]float64{}, []string{"no data"}},
		{"a finite quantile", quantile, map[string]float64{"": 2e-6}, nil},
		{"a NaN quantile", quantile, map[string]float64{"": math.NaN()}, []string{"is NaN, want a finite number"}},
		{"an infinite quantile", quantile, map[string]float64{"": math.Inf(1)}, []string{"is +Inf, want a finite number"}},
		{"a zero quantile", quantile, map[string]float64{"": 0}, []string{"want a positive latency"}},
		{"no drops", drops, map[string]float64{"ring_buffer_full": 0}, nil},
		{"a heatmap with a bucket", heatmap, map[string]float64{"4096": 12, "8192": 0}, nil},
		{"an empty heatmap", heatmap, map[string]float64{"4096": 0}, []string{"every series is zero"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := strings.Join(tt.w.check("panel", tt.series), "\n")
			if tt.want == nil && problems != "" {
				t.Errorf("problems for %v: %s", tt.series, problems)
			}
			for _, w := range tt.want {
				if !strings.Contains(problems, w) {
					t.Errorf("problems for %v: %q, want %q among them", tt.series, problems, w)
				}
			}
		})
	}
}
