package backends

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"github.com/otelcol-mremap/otelcol-mremap/dashboards"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// always is a series the receiver emits every collection interval from its
// start: its samples' times are the emissions'.
const always = `mremap_events_dropped_total{reason="unpaired"}`

// checkDashboardQueries runs every query of config/grafana/mremap.json on
// VictoriaMetrics and on Prometheus, at the same time and over the same
// window, with the dashboard's variables resolved on each as Grafana does,
// and wants the same series with the same values from both.
//
// MetricsQL computes rate() and increase() from the last sample before the
// window and does not extrapolate, PromQL from the samples inside it,
// extrapolated to the window's ends. The window is chosen so that both mean
// the same: it ends at an emission after the workload and starts at one
// before it, after the first run; the samples at both ends are in both
// backends, and nothing changed between the first emission of the window
// and the one before it.
func checkDashboardQueries(t *testing.T, st *stack) {
	d, err := dashboards.Decode(readFile(t, dashboards.GrafanaFile))
	if err != nil {
		t.Fatal(err)
	}
	start, end := st.window(t)
	window := end.Sub(start)
	t.Logf("queries at %s over %v, from the emission at %s", end.Format(time.RFC3339Nano), window, start.Format(time.RFC3339Nano))
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]string{"host": host, "process": mremaptest.Comm}
	resolve := func(expr string) string {
		r := []string{"$__rate_interval", fmt.Sprintf("%dms", window.Milliseconds())}
		for name, v := range values {
			r = append(r, "$"+name, regexpEscape(v))
		}
		return strings.NewReplacer(r...).Replace(expr)
	}
	for _, v := range d.Templating.List {
		if string(v.Type) == "query" {
			checkVariable(t, st, v.Name, deref(v.Definition), values[v.Name], resolve)
		}
	}
	for _, p := range d.Panels {
		if p.Panel == nil {
			continue
		}
		for _, q := range queries(t, p.Panel) {
			expr := resolve(q)
			if strings.Contains(expr, "$") {
				t.Errorf("%s: a variable is left in %s", deref(p.Panel.Title), expr)
				continue
			}
			compareQuery(t, st, deref(p.Panel.Title), expr, end)
		}
	}
	// The call rate is exactly the workload's calls over the window.
	calls := float64((len(st.runs) - 1) * len(mremaptest.Expected))
	expr := resolve(dashboards.Panels[0].Queries[0].Expr)
	got, err := Query(st.vm.URL, expr, end)
	if err != nil || len(got) != 1 || math.Abs(got[0].Value-calls/window.Seconds()) > 1e-9*got[0].Value {
		t.Errorf("%s = %v (%v), want the workload's %v calls over %v: %v/s", expr, got, err, calls, window, calls/window.Seconds())
	}
}

var labelValuesDef = regexp.MustCompile(`^label_values\((.+), *([a-z_]+)\)$`)

// checkVariable: both backends offer the same values for a variable, among
// them the one the helper's series carry.
func checkVariable(t *testing.T, st *stack, name, definition, want string, resolve func(string) string) {
	m := labelValuesDef.FindStringSubmatch(definition)
	if m == nil {
		t.Errorf("variable %s: %q is not label_values(selector, label)", name, definition)
		return
	}
	selector := resolve(m[1])
	vm, err1 := LabelValues(st.vm.URL, m[2], selector)
	prom, err2 := LabelValues(st.prom.URL, m[2], selector)
	sort.Strings(vm)
	sort.Strings(prom)
	if err1 != nil || err2 != nil || fmt.Sprint(vm) != fmt.Sprint(prom) || !contains(vm, want) {
		t.Errorf("variable %s (%s): VictoriaMetrics offers %v (%v), Prometheus %v (%v); want the same, with %q",
			name, definition, vm, err1, prom, err2, want)
	}
}

// compareQuery runs expr on both backends at end.
func compareQuery(t *testing.T, st *stack, panel, expr string, end time.Time) {
	vm, err := Query(st.vm.URL, expr, end)
	if err != nil {
		t.Errorf("%s: VictoriaMetrics: %v", panel, err)
		return
	}
	prom, err := Query(st.prom.URL, expr, end)
	if err != nil {
		t.Errorf("%s: Prometheus: %v", panel, err)
		return
	}
	got, want := bySeries(vm), bySeries(prom)
	if len(want) == 0 {
		t.Errorf("%s: no data from Prometheus for %s", panel, expr)
	}
	positive := false
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: VictoriaMetrics has no series %s (Prometheus: %v) for %s", panel, k, w, expr)
		case !same(g, w):
			t.Errorf("%s: series %s = %v from VictoriaMetrics, %v from Prometheus, for %s", panel, k, g, w, expr)
		}
		positive = positive || w > 0
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: VictoriaMetrics has series %s = %v, which Prometheus has not, for %s", panel, k, g, expr)
		}
	}
	// Nothing is dropped in this test: only the drop panel may be all zero.
	if !positive && !strings.Contains(expr, "mremap_events_dropped_total") {
		t.Errorf("%s: every series is zero in both for %s: %v", panel, expr, want)
	}
	t.Logf("%s: %d series agree for %s", panel, len(want), expr)
}

// window is the queries' window: from an emission before the workload (after
// the first run's were all read) to one after it, both in both backends.
func (st *stack) window(t *testing.T) (start, end time.Time) {
	var vm, prom []time.Time
	problems := mremapcheck.Eventually(20*time.Second, 500*time.Millisecond, func() []string {
		var err error
		span := st.settled.Sub(st.begin) + time.Minute
		if vm, err = emissions(st.vm.URL, st.settled, span); err != nil {
			return []string{err.Error()}
		}
		if prom, err = emissions(st.prom.URL, st.settled, span); err != nil {
			return []string{err.Error()}
		}
		start, end = pick(vm, prom, st)
		if start.IsZero() || end.IsZero() {
			return []string{fmt.Sprintf("no emission in both before the workload (after %v) and after it (%v .. %v): VictoriaMetrics %v, Prometheus %v",
				st.warmedUp, st.workStart, st.workEnd, vm, prom)}
		}
		return nil
	})
	if len(problems) > 0 {
		t.Fatal(problems[0])
	}
	return start, end
}

// pick chooses the window's ends among the emissions that both backends hold.
// An emission is taken a little after the kernel aggregates were read, so
// the margins keep calls made meanwhile out of the one before the workload.
func pick(vm, prom []time.Time, st *stack) (start, end time.Time) {
	inProm := map[int64]bool{}
	for _, ts := range prom {
		inProm[ts.UnixMilli()] = true
	}
	var both []time.Time
	for _, ts := range vm {
		if inProm[ts.UnixMilli()] {
			both = append(both, ts)
		}
	}
	for i, ts := range both {
		// the one before also follows the first run: nothing changed from it
		if i > 0 && both[i-1].After(st.warmedUp.Add(100*time.Millisecond)) && ts.Before(st.workStart.Add(-100*time.Millisecond)) {
			start = ts
		}
		if ts.After(st.workEnd.Add(1100*time.Millisecond)) && !ts.After(st.settled) {
			end = ts
		}
	}
	return start, end
}

// emissions are the times of the samples of always in the span before at.
func emissions(base string, at time.Time, span time.Duration) ([]time.Time, error) {
	series, err := RawSamples(base, always, span, at)
	if err != nil {
		return nil, err
	}
	if len(series) != 1 {
		return nil, fmt.Errorf("%s at %s: %d series, want 1", always, base, len(series))
	}
	var out []time.Time
	for _, p := range series[0].Points {
		out = append(out, p.Time)
	}
	return out, nil
}

// bySeries keys each sample by its labels; an le bound is keyed by its
// number (Prometheus's exporter writes 1.048576e+06 where VictoriaMetrics
// writes 1048576).
func bySeries(samples []Sample) map[string]float64 {
	out := map[string]float64{}
	for _, s := range samples {
		var labels []string
		for k, v := range s.Metric {
			if k == "le" {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					v = strconv.FormatFloat(f, 'g', -1, 64)
				}
			}
			labels = append(labels, fmt.Sprintf("%s=%q", k, v))
		}
		sort.Strings(labels)
		out["{"+strings.Join(labels, ",")+"}"] = s.Value
	}
	return out
}

// same: equal but for the last bits of a float (the backends sum in other
// orders), NaN and infinities included.
func same(a, b float64) bool {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return math.IsNaN(a) && math.IsNaN(b)
	case math.IsInf(a, 0) || math.IsInf(b, 0):
		return a == b
	}
	return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// queries are a panel's PromQL queries.
func queries(t *testing.T, p *dashboard.Panel) []string {
	var out []string
	for _, tg := range p.Targets {
		q, ok := tg.(*prometheus.Dataquery)
		if !ok {
			t.Errorf("panel %s: a query of type %T, not Prometheus", deref(p.Title), tg)
			continue
		}
		out = append(out, q.Expr)
	}
	return out
}

// regexpEscape escapes a variable's value for a =~ matcher as Grafana's
// Prometheus datasource does.
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

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func readFile(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(mremaptest.ModuleRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
