package dashboards

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// The Prometheus datasource that config/grafana/provisioning provisions;
// the dashboard's datasource variable selects it by default.
const (
	DatasourceUID  = "otelcol-mremap-prometheus"
	datasourceName = "Prometheus (otelcol-mremap)"
)

// panelHeight is every panel's height in Grafana's grid rows.
const panelHeight = 8

// datasource is the one the dashboard's variable picks.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// Grafana returns the Grafana dashboard of panels, as
// config/grafana/mremap.json holds it.
func Grafana(panels []Panel) ([]byte, error) {
	//nolint:staticcheck // the classic model: see Dashboard
	b := dashboard.NewDashboardBuilder("mremap").
		Uid("otelcol-mremap").
		Description("mremap(2) calls observed by the otelcol-mremap receiver: metrics aggregated in the kernel, exported by the collector's prometheus exporter (config/collector.yaml) and scraped by Prometheus (config/prometheus.yml).").
		Tags([]string{"mremap", "ebpf", "opentelemetry"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Time("now-1h", "now").
		Timezone("browser").
		Refresh("30s").
		Version(1).
		Annotation(dashboard.NewAnnotationQueryBuilder().
			Name("Annotations & Alerts").
			Datasource(common.DataSourceRef{Type: cog.ToPtr("grafana"), Uid: cog.ToPtr("-- Grafana --")}).
			Enable(true).
			Hide(true).
			IconColor("rgba(0, 211, 255, 1)").
			BuiltIn(1).
			Type("dashboard")).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus").
			Current(option(datasourceName, DatasourceUID))).
		WithVariable(labelValues("host", "Host", "mremap_calls_total", "host_name")).
		WithVariable(labelValues("process", "Process", `mremap_calls_total{host_name=~"$host"}`, "process_executable_name"))
	// Ids are positions among rows and panels, rows' plus 100, so that a
	// panel keeps its id (and its links) until the panels before it change.
	row, position := "", uint32(0)
	for _, p := range panels {
		if p.Row != row {
			row = p.Row
			position++
			b.WithRow(dashboard.NewRowBuilder(row).Id(100 + position).Collapsed(false))
		}
		position++
		panel, err := grafanaPanel(p, position)
		if err != nil {
			return nil, err
		}
		b.WithPanel(panel)
	}
	d, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("build the Grafana dashboard: %w", err)
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// labelValues is a variable whose values are those of label on the series
// of selector, all selected by default.
func labelValues(name, label, selector, labelName string) *dashboard.QueryVariableBuilder {
	query := fmt.Sprintf("label_values(%s, %s)", selector, labelName)
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource).
		Query(dashboard.StringOrMap{Map: map[string]any{
			"qryType": 1,
			"query":   query,
			"refId":   "PrometheusVariableQueryEditor-VariableQuery",
		}}).
		Definition(query).
		IncludeAll(true).
		Multi(true).
		AllValue(".*").
		Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
}

func option(text, value string) dashboard.VariableOption {
	return dashboard.VariableOption{
		Selected: cog.ToPtr(false),
		Text:     dashboard.StringOrArrayOfString{String: cog.ToPtr(text)},
		Value:    dashboard.StringOrArrayOfString{String: cog.ToPtr(value)},
	}
}

func grafanaPanel(p Panel, id uint32) (cog.Builder[dashboard.Panel], error) {
	grid := dashboard.GridPos{W: p.Width, H: panelHeight}
	switch p.Kind {
	case Timeseries:
		b := timeseries.NewPanelBuilder().Id(id).Title(p.Title).Description(p.Description).
			Datasource(datasource).GridPos(grid).
			Unit(p.Unit).Min(0).
			DrawStyle(common.GraphDrawStyleLine).FillOpacity(10).ShowPoints(common.VisibilityModeNever).
			Legend(common.NewVizLegendOptionsBuilder().
				DisplayMode(common.LegendDisplayModeTable).
				Placement(common.LegendPlacementRight).
				ShowLegend(true).
				Calcs([]string{"mean", "max"})).
			Tooltip(common.NewVizTooltipOptionsBuilder().
				Mode(common.TooltipDisplayModeMulti).
				Sort(common.SortOrderDescending))
		for i, q := range p.Queries {
			b.WithTarget(target(i, q))
		}
		return b, nil
	case Heatmap:
		b := heatmap.NewPanelBuilder().Id(id).Title(p.Title).Description(p.Description).
			Datasource(datasource).GridPos(grid).
			Unit(p.Unit).
			Calculate(false).
			CellGap(1).
			Color(heatmap.NewHeatmapColorOptionsBuilder().
				Mode(heatmap.HeatmapColorModeScheme).Scheme("Oranges").Steps(64).Exponent(0.5).
				Fill("dark-orange").Reverse(false)).
			YAxis(heatmap.NewYAxisConfigBuilder().AxisPlacement(common.AxisPlacementLeft).Unit(p.Unit)).
			// The series are cumulative buckets by their upper bound.
			RowsFrame(heatmap.NewRowsHeatmapOptionsBuilder().Layout(common.HeatmapCellLayoutLe)).
			CellValues(heatmap.NewCellValuesBuilder().Unit("short")).
			Tooltip(heatmap.NewHeatmapTooltipBuilder().
				Mode(common.TooltipDisplayModeSingle).YHistogram(true).ShowColorScale(false)).
			ShowLegend()
		for i, q := range p.Queries {
			b.WithTarget(target(i, q).Format(prometheus.PromQueryFormatHeatmap))
		}
		return b, nil
	}
	return nil, fmt.Errorf("panel %q: kind %q is neither %s nor %s", p.Title, p.Kind, Timeseries, Heatmap)
}

func target(i int, q Query) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().
		RefId(string(rune('A' + i))).
		Datasource(datasource).
		Expr(q.Expr).
		LegendFormat(q.Legend).
		Range()
}
