package backends

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

const scopeName = "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

// streamFields are the log stream fields config/victoria.yaml asks
// VictoriaLogs for (VL-Stream-Fields).
var streamFields = []string{"host.name", "process.executable.name"}

// checkLogs: every call of every run is in VictoriaLogs, found by a LogsQL
// query that names its body and every attribute and resource attribute
// with its exact value; the entry has no other field but VictoriaLogs' own
// and the record's time, severity, event name and scope; and the helper's
// process has no other entry.
func checkLogs(t *testing.T, st *stack) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	for i, run := range st.runs {
		var last []string
		problems := mremapcheck.Eventually(30*time.Second, 500*time.Millisecond, func() []string {
			last = runInLogs(st.vl.URL, run, host)
			return last
		})
		for _, p := range problems {
			t.Errorf("run %d (pid %d): %s", i, run.Made[0].PID, p)
		}
	}
}

// runInLogs says what is missing or wrong in VictoriaLogs for one run.
func runInLogs(base string, run mremapcheck.Run, host string) []string {
	from, to := run.Start.Add(-time.Minute), run.End.Add(time.Minute)
	pid := fmt.Sprintf("process.pid:=%d", run.Made[0].PID)
	all, err := LogsQL(base, pid, from, to)
	if err != nil {
		return []string{err.Error()}
	}
	if len(all) != len(run.Made) {
		return []string{fmt.Sprintf("%s finds %d entries, want %d (one per call)", pid, len(all), len(run.Made))}
	}
	resource, optional := mremapcheck.ResourceAttributes(run, host)
	var problems []string
	for _, m := range run.Made {
		want := expectedFields(m, run, resource)
		query := exactQuery(want)
		got, err := LogsQL(base, query, from, to)
		switch {
		case err != nil:
			problems = append(problems, err.Error())
		case len(got) != 1:
			problems = append(problems, fmt.Sprintf("call %s: %d entries match every field, want 1: %s", m.Name, len(got), query))
		default:
			problems = append(problems, checkEntry(m, run, got[0], want, optional)...)
		}
	}
	return problems
}

// expectedFields are the fields of the entry of call m, as VictoriaLogs
// stores them: every value a string, the body in _msg; "" for a field that
// must be empty, which VictoriaLogs does not store.
func expectedFields(m mremaptest.Made, run mremapcheck.Run, resource map[string]any) map[string]string {
	e := expectation(m.Name)
	severity := map[bool][2]string{true: {"INFO", "9"}, false: {"WARN", "13"}}[e.Result == "ok"]
	want := map[string]string{
		"_msg":            mremapcheck.Body(m, e),
		"event_name":      "mremap",
		"severity_text":   severity[0],
		"severity_number": severity[1],
		"scope.name":      scopeName,
	}
	for k, v := range resource {
		want[k] = fmt.Sprint(v)
	}
	for k, v := range mremapcheck.RecordAttributes(m, run) {
		if v != nil { // mremap.duration_ns, mremap.map_count: checked in checkEntry
			want[k] = fmt.Sprint(v)
		}
	}
	return want
}

// exactQuery is a LogsQL query with an exact filter on every field.
func exactQuery(fields map[string]string) string {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	filters := make([]string, 0, len(names))
	for _, k := range names {
		filters = append(filters, strconv.Quote(k)+":="+strconv.Quote(fields[k]))
	}
	return strings.Join(filters, " ")
}

// checkEntry compares every field of a found entry.
func checkEntry(m mremaptest.Made, run mremapcheck.Run, got, want map[string]string, optional []string) []string {
	var p []string
	what := "call " + m.Name
	for k, w := range want {
		g, ok := got[k]
		switch {
		case w == "" && ok:
			p = append(p, fmt.Sprintf("%s: field %s = %q, want it empty (VictoriaLogs stores no empty field)", what, k, g))
		case w != "" && g != w:
			p = append(p, fmt.Sprintf("%s: field %s = %q, want %q", what, k, g, w))
		}
	}
	d, err := strconv.ParseInt(got["mremap.duration_ns"], 10, 64)
	if err != nil || d <= 0 || d > int64(run.End.Sub(run.Start)) {
		p = append(p, fmt.Sprintf("%s: mremap.duration_ns = %q, want a positive number within the run", what, got["mremap.duration_ns"]))
	}
	if n, err := strconv.ParseInt(got["mremap.map_count"], 10, 64); err != nil || !mremapcheck.PlausibleMapCount(n) {
		p = append(p, fmt.Sprintf("%s: mremap.map_count = %q, want the helper's mappings", what, got["mremap.map_count"]))
	}
	ts, err := time.Parse(time.RFC3339Nano, got["_time"])
	if err != nil || ts.Before(run.Start.Add(-100*time.Millisecond)) || ts.After(run.End.Add(100*time.Millisecond)) {
		p = append(p, fmt.Sprintf("%s: _time %q is not within the run %v .. %v", what, got["_time"], run.Start, run.End))
	}
	var stream []string
	for _, f := range streamFields {
		stream = append(stream, fmt.Sprintf("%s=%q", f, got[f]))
	}
	if s := "{" + strings.Join(stream, ",") + "}"; got["_stream"] != s {
		p = append(p, fmt.Sprintf("%s: _stream %s, want %s (VL-Stream-Fields)", what, got["_stream"], s))
	}
	known := map[string]bool{"_time": true, "_stream": true, "_stream_id": true, "scope.version": true, "mremap.duration_ns": true, "mremap.map_count": true}
	for _, o := range optional {
		known[o] = true
	}
	for k, v := range got {
		if _, ok := want[k]; !ok && !known[k] {
			p = append(p, fmt.Sprintf("%s: unexpected field %s = %q", what, k, v))
		}
	}
	return p
}

func expectation(name string) mremaptest.Expectation {
	for _, e := range mremaptest.Expected {
		if e.Name == name {
			return e.Expectation
		}
	}
	panic("no expectation for " + name)
}

// A documented query, as docs/backends.md prints it (for the process 4242,
// the program postgres), and what it must return for the helper's calls.
type documentedQuery struct {
	query string
	check func(st *stack, rows []map[string]string) []string
}

var documentedQueries = []documentedQuery{
	{`process.pid:=4242`, func(st *stack, rows []map[string]string) []string {
		return wantRows(rows, len(mremaptest.Expected))
	}},
	{`process.executable.name:=postgres | sort by (_time) | limit 100`, func(st *stack, rows []map[string]string) []string {
		return wantRows(rows, min(100, len(st.runs)*len(mremaptest.Expected)))
	}},
	{`mremap.result:!=ok | stats by (mremap.result) count() calls`, func(st *stack, rows []map[string]string) []string {
		want := map[string]int{}
		for _, e := range mremaptest.Expected {
			if e.Result != "ok" {
				want[e.Result] += len(st.runs)
			}
		}
		got := map[string]int{}
		for _, r := range rows {
			got[r["mremap.result"]], _ = strconv.Atoi(r["calls"])
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			return []string{fmt.Sprintf("failed calls by errno %v, want %v", got, want)}
		}
		return nil
	}},
	{`mremap.move:=fixed | fields _time, process.pid, mremap.result, _msg`, func(st *stack, rows []map[string]string) []string {
		n := 0
		for _, e := range mremaptest.Expected {
			if e.Move == "fixed" {
				n += len(st.runs)
			}
		}
		return wantRows(rows, n)
	}},
	{`mremap.size_delta:>1MiB | stats by (process.executable.name) count() grows`, func(st *stack, rows []map[string]string) []string {
		return wantRows(rows, 0) // the helper's resizes are one page
	}},
	{`mremap.signals:* | stats by (process.executable.name, mremap.signals) count() calls`, func(st *stack, rows []map[string]string) []string {
		var p []string
		for _, r := range rows {
			if r["mremap.signals"] == "" {
				p = append(p, fmt.Sprintf("a row without signals: %v", r))
			}
		}
		return p
	}},
	{`mremap.signals:write_exec | fields _time, host.name, process.pid, process.executable.name, _msg`, func(st *stack, rows []map[string]string) []string {
		return nil // the helper makes no writable and executable mapping; the query must parse
	}},
}

func wantRows(rows []map[string]string, n int) []string {
	if len(rows) != n {
		return []string{fmt.Sprintf("%d rows, want %d", len(rows), n)}
	}
	return nil
}

// checkDocumentedQueries runs the LogsQL queries of docs/backends.md, which
// must print them as the test runs them, for the helper.
func checkDocumentedQueries(t *testing.T, st *stack) {
	doc := string(readFile(t, "docs/backends.md"))
	run := st.runs[len(st.runs)-1]
	for _, q := range documentedQueries {
		if !strings.Contains(doc, q.query) {
			t.Errorf("docs/backends.md does not show the query %s", q.query)
		}
		query := strings.NewReplacer("4242", strconv.Itoa(int(run.Made[0].PID)), "postgres", mremaptest.Comm).Replace(q.query)
		rows, err := LogsQL(st.vl.URL, query, st.begin.Add(-time.Minute), time.Now())
		if err != nil {
			t.Errorf("%s: %v", query, err)
			continue
		}
		for _, p := range q.check(st, rows) {
			t.Errorf("%s: %s", query, p)
		}
	}
}
