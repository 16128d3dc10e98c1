package dashboards

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// Dashboard is Grafana's classic dashboard JSON model, the one file
// provisioning and every Grafana release import. The SDK marks it
// deprecated in favor of dashboardv2, the resource of Grafana 12's new
// dashboard API, which file provisioning does not read without feature
// flags.
type Dashboard = dashboard.Dashboard //nolint:staticcheck // see above

// Decode decodes a Grafana dashboard strictly, as the Grafana Foundation
// SDK's schema has it: a field Grafana does not know, a required field
// missing or a value of the wrong type is an error that names it.
//
// The SDK's strict decoder (v0.0.22) reports every error but keeps no panel:
// where it decodes a nested value into a new struct it returns the struct
// only when the error list it got back is nil, and its lists are never nil
// (an empty cog.BuildErrors in an error interface). So the strict pass only
// checks, and the values come from the SDK's ordinary decoder.
func Decode(data []byte) (Dashboard, error) {
	plugins.RegisterDefaultPlugins()
	var strict Dashboard
	if err := noErrors(strict.UnmarshalJSONStrict(data)); err != nil {
		return strict, err
	}
	var d Dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		return d, err
	}
	return d, noErrors(d.Validate())
}

// noErrors is err, or nil for an empty list of errors: the SDK returns its
// error list even when the list is empty.
func noErrors(err error) error {
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

// The predefined dashboard format of vmui, VictoriaMetrics' web UI
// (-vmui.customDashboardsPath): rows of panels, each a list of MetricsQL
// queries drawn as lines.
type vmuiDashboard struct {
	Title string    `json:"title"`
	Rows  []vmuiRow `json:"rows"`
}

type vmuiRow struct {
	Title  string      `json:"title"`
	Panels []vmuiPanel `json:"panels"`
}

type vmuiPanel struct {
	Title       string   `json:"title"`
	Description string   `json:"description,omitempty"`
	Unit        string   `json:"unit,omitempty"`
	Expr        []string `json:"expr"`
	Alias       []string `json:"alias,omitempty"`
	Width       uint32   `json:"width"`
}

// vmuiUnits is the y-axis label vmui shows for each Grafana unit the
// dashboard uses.
var vmuiUnits = map[string]string{"ops": "/s", "Bps": "B/s", "bytes": "B", "s": "s", "short": "mappings"}

// heatmapQuantiles are the quantiles vmui draws for a Grafana heatmap.
const heatmapQuantiles = "0.5, 0.9, 0.99"

// VMUI turns a Grafana dashboard (config/grafana/mremap.json) into the
// same panels for vmui (config/vmui/mremap.json). vmui has no variables:
// every host and process is shown, and MetricsQL chooses the rate window
// from the step. Its predefined panels draw lines only, so a heatmap's
// bucket query is drawn as the p50, p90 and p99 of its buckets.
func VMUI(grafanaJSON []byte) ([]byte, error) {
	d, err := Decode(grafanaJSON)
	if err != nil {
		return nil, fmt.Errorf("decode the Grafana dashboard: %w", err)
	}
	out := vmuiDashboard{Title: deref(d.Title)}
	for _, pr := range d.Panels {
		if pr.RowPanel != nil {
			out.Rows = append(out.Rows, vmuiRow{Title: deref(pr.RowPanel.Title)})
			continue
		}
		if pr.Panel == nil {
			continue
		}
		if len(out.Rows) == 0 {
			out.Rows = append(out.Rows, vmuiRow{})
		}
		p, err := vmuiPanelOf(*pr.Panel)
		if err != nil {
			return nil, fmt.Errorf("panel %q: %w", deref(pr.Panel.Title), err)
		}
		row := &out.Rows[len(out.Rows)-1]
		row.Panels = append(row.Panels, p)
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

func vmuiPanelOf(p dashboard.Panel) (vmuiPanel, error) {
	out := vmuiPanel{Title: deref(p.Title), Description: deref(p.Description), Width: 6}
	if p.GridPos != nil && p.GridPos.W >= 2 {
		out.Width = p.GridPos.W / 2 // vmui's grid has 12 columns, Grafana's 24
	}
	if p.FieldConfig != nil && p.FieldConfig.Defaults.Unit != nil {
		unit := *p.FieldConfig.Defaults.Unit
		var ok bool
		if out.Unit, ok = vmuiUnits[unit]; !ok {
			return out, fmt.Errorf("unit %q has no vmui label (add it to vmuiUnits)", unit)
		}
	}
	heatmap := p.Type == string(Heatmap)
	if heatmap {
		out.Description += " vmui draws no heatmaps in its dashboards: here the p50, p90 and p99 of the buckets per interval."
	}
	for _, t := range p.Targets {
		q, ok := t.(*prometheus.Dataquery)
		if !ok {
			return out, fmt.Errorf("a query of type %T, not Prometheus", t)
		}
		expr, err := metricsQL(q.Expr)
		if err != nil {
			return out, err
		}
		alias := deref(q.LegendFormat)
		if heatmap {
			expr = fmt.Sprintf(`histogram_quantiles("quantile", %s, %s)`, heatmapQuantiles, expr)
			alias = "quantile {{quantile}}"
		}
		out.Expr = append(out.Expr, expr)
		out.Alias = append(out.Alias, alias)
	}
	if len(out.Expr) == 0 {
		return out, fmt.Errorf("no query")
	}
	return out, nil
}

var (
	rateInterval = regexp.MustCompile(`\[\$__rate_interval\]`)
	selector     = regexp.MustCompile(`\{[^{}]*\}`)
	// variableMatcher is a label matcher on a dashboard variable.
	variableMatcher = regexp.MustCompile(`^\s*[a-zA-Z_][a-zA-Z0-9_]*\s*=~\s*"\$[a-zA-Z_]+"\s*$`)
)

// metricsQL is a dashboard query without the dashboard's variables: the
// matchers on $host and $process (all of them selected) go, and so does the
// [$__rate_interval] window, which MetricsQL then takes from the step.
func metricsQL(expr string) (string, error) {
	out := rateInterval.ReplaceAllString(expr, "")
	var err error
	out = selector.ReplaceAllStringFunc(out, func(sel string) string {
		items, splitErr := splitMatchers(sel[1 : len(sel)-1])
		if splitErr != nil {
			err = splitErr
			return sel
		}
		var kept []string
		for _, m := range items {
			if !variableMatcher.MatchString(m) {
				kept = append(kept, strings.TrimSpace(m))
			}
		}
		if len(kept) == 0 {
			return ""
		}
		return "{" + strings.Join(kept, ", ") + "}"
	})
	if err != nil {
		return "", fmt.Errorf("%s: %w", expr, err)
	}
	if strings.Contains(out, "$") {
		return "", fmt.Errorf("%s: a variable vmui cannot resolve is left in %s", expr, out)
	}
	return out, nil
}

// splitMatchers splits the inside of a selector at the commas outside quotes.
func splitMatchers(s string) ([]string, error) {
	var items []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == ',' && !quoted:
			items = append(items, s[start:i])
			start = i + 1
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated string in {%s}", s)
	}
	if strings.TrimSpace(s[start:]) != "" {
		items = append(items, s[start:])
	}
	return items, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
