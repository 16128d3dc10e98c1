package dashboards

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

func read(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestGeneratedFilesCurrent: the committed dashboards are what Panels
// generates, so an edit by hand, or to Panels without make dashboards, fails.
func TestGeneratedFilesCurrent(t *testing.T) {
	grafana, err := Grafana(Panels)
	if err != nil {
		t.Fatal(err)
	}
	if string(grafana) != string(read(t, GrafanaFile)) {
		t.Errorf("%s is not what the package dashboards generates: edit dashboards/panels.go and run make dashboards", GrafanaFile)
	}
	vmui, err := VMUI(read(t, GrafanaFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(vmui) != string(read(t, VMUIFile)) {
		t.Errorf("%s is not what the package dashboards generates from %s: run make dashboards", VMUIFile, GrafanaFile)
	}
}

// TestDecodeKeepsEveryPanel: the committed dashboard decodes strictly, and
// the decoded value holds every row, panel, query and option (the SDK's
// strict decoder alone would keep none).
func TestDecodeKeepsEveryPanel(t *testing.T) {
	d, err := Decode(read(t, GrafanaFile))
	if err != nil {
		t.Fatalf("%s: %v", GrafanaFile, err)
	}
	var panels, rows int
	for _, p := range d.Panels {
		switch {
		case p.RowPanel != nil:
			rows++
		case p.Panel != nil:
			want := Panels[panels]
			panels++
			if deref(p.Panel.Title) != want.Title || len(p.Panel.Targets) != len(want.Queries) || p.Panel.Options == nil {
				t.Errorf("panel %q decoded as %q with %d queries and options %v, want %d queries and options",
					want.Title, deref(p.Panel.Title), len(p.Panel.Targets), p.Panel.Options, len(want.Queries))
			}
		default:
			t.Error("a panel decoded as neither a panel nor a row")
		}
	}
	wantRows := 0
	for i, p := range Panels {
		if i == 0 || p.Row != Panels[i-1].Row {
			wantRows++
		}
	}
	if panels != len(Panels) || rows != wantRows {
		t.Errorf("decoded %d panels and %d rows, want %d and %d", panels, rows, len(Panels), wantRows)
	}
}

// TestDecodeRejects: what Grafana's schema rejects fails Decode, naming the
// field.
func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name   string
		change func(d map[string]any)
		want   string
	}{
		{"an export-only field", func(d map[string]any) { d["__inputs"] = []any{} }, "unexpected field '__inputs'"},
		{"an unknown panel field", func(d map[string]any) { panel(d, 1)["shade"] = "red" }, "unexpected field 'shade'"},
		{"an unknown query field", func(d map[string]any) { firstQuery(d, 1)["exprs"] = "up" }, "unexpected field 'exprs'"},
		{"a query field of the wrong type", func(d map[string]any) { firstQuery(d, 1)["expr"] = 42 }, "targets[0]"},
		{"a heatmap without showValue", func(d map[string]any) {
			delete(panel(d, 8)["options"].(map[string]any), "showValue")
		}, "showValue: required field is missing"},
		{"an unknown legend option", func(d map[string]any) {
			panel(d, 1)["options"].(map[string]any)["legend"].(map[string]any)["shape"] = "round"
		}, "unexpected field 'shape'"},
		{"a title that is not a string", func(d map[string]any) { d["title"] = 3 }, "title"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d map[string]any
			if err := json.Unmarshal(read(t, GrafanaFile), &d); err != nil {
				t.Fatal(err)
			}
			tt.change(d)
			data, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Decode(data)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Decode: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// panel is the entry at position i of the JSON's panels (rows included).
func panel(d map[string]any, i int) map[string]any {
	return d["panels"].([]any)[i].(map[string]any)
}

func firstQuery(d map[string]any, i int) map[string]any {
	return panel(d, i)["targets"].([]any)[0].(map[string]any)
}

func TestMetricsQL(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{`sum by (process_executable_name) (rate(mremap_calls_total{host_name=~"$host", process_executable_name=~"$process"}[$__rate_interval]))`,
			`sum by (process_executable_name) (rate(mremap_calls_total))`, ""},
		{`rate(mremap_calls_total{host_name=~"$host", process_executable_name=~"$process", mremap_result!="ok"}[$__rate_interval])`,
			`rate(mremap_calls_total{mremap_result!="ok"})`, ""},
		{`rate(m{mremap_move="fixed", host_name=~"$host"}[5m])`, `rate(m{mremap_move="fixed"}[5m])`, ""},
		{`rate(m{reason=~"a,b", host_name=~"$host"}[5m])`, `rate(m{reason=~"a,b"}[5m])`, ""},
		{`rate(m{host_name="$host"}[5m])`, "", "a variable vmui cannot resolve"},
		{`rate(m[$__interval])`, "", "a variable vmui cannot resolve"},
		{`rate(m{reason="a}[5m])`, "", "unterminated string"},
	}
	for _, tt := range tests {
		got, err := metricsQL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("metricsQL(%s) = %q, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("metricsQL(%s) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestVMUIHasEveryPanel: every Grafana panel is in the vmui dashboard, in its
// row, with the same title and its queries without the variables; a heatmap's
// as quantiles of its buckets.
func TestVMUIHasEveryPanel(t *testing.T) {
	var v vmuiDashboard
	if err := json.Unmarshal(read(t, VMUIFile), &v); err != nil {
		t.Fatal(err)
	}
	var got []vmuiPanel
	var rows []string
	for _, r := range v.Rows {
		for _, p := range r.Panels {
			got = append(got, p)
			rows = append(rows, r.Title)
		}
	}
	if len(got) != len(Panels) {
		t.Fatalf("%d vmui panels, want %d", len(got), len(Panels))
	}
	for i, want := range Panels {
		p := got[i]
		if p.Title != want.Title || rows[i] != want.Row || p.Width != want.Width/2 || len(p.Expr) != len(want.Queries) {
			t.Errorf("vmui panel %d: %q in row %q, width %d, %d queries; want %q in %q, width %d, %d queries",
				i, p.Title, rows[i], p.Width, len(p.Expr), want.Title, want.Row, want.Width/2, len(want.Queries))
			continue
		}
		for j, q := range want.Queries {
			expr, err := metricsQL(q.Expr)
			if err != nil {
				t.Fatal(err)
			}
			if want.Kind == Heatmap {
				expr = `histogram_quantiles("quantile", ` + heatmapQuantiles + ", " + expr + ")"
			}
			if p.Expr[j] != expr {
				t.Errorf("vmui panel %q query %d = %s, want %s", p.Title, j, p.Expr[j], expr)
			}
		}
	}
}

func TestVMUIRejectsUnknownUnit(t *testing.T) {
	panels := []Panel{{Row: "r", Title: "t", Kind: Timeseries, Unit: "furlongs", Width: 12, Queries: []Query{{Expr: "up", Legend: "x"}}}}
	g, err := Grafana(panels)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VMUI(g); err == nil || !strings.Contains(err.Error(), `unit "furlongs"`) {
		t.Errorf("VMUI: %v, want an error naming the unit", err)
	}
}

func TestGrafanaRejectsUnknownKind(t *testing.T) {
	_, err := Grafana([]Panel{{Row: "r", Title: "t", Kind: "pie", Width: 12}})
	if err == nil || !strings.Contains(err.Error(), `kind "pie"`) {
		t.Errorf("Grafana: %v, want an error naming the kind", err)
	}
}
