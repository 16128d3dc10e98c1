// Package dashboards holds the dashboard of the receiver's metrics in one
// place. Panels lists its graphs; Grafana builds config/grafana/mremap.json
// from them with the Grafana Foundation SDK (dashboards as code), and VMUI
// turns that file into config/vmui/mremap.json, the same panels for the web
// UI built into VictoriaMetrics. cmd/mremap-dashboards writes both files
// (make dashboards); a test fails when either is not what they generate.
//
// Adding a panel to both dashboards is one entry in Panels.
package dashboards

// Kind is how Grafana draws a panel.
type Kind string

const (
	// Timeseries draws each series as a line.
	Timeseries Kind = "timeseries"
	// Heatmap draws histogram buckets (series by le, format heatmap) as
	// cells, one row per bucket.
	Heatmap Kind = "heatmap"
)

// Panel is one graph of the dashboard.
type Panel struct {
	// Row is the title of the row the panel sits in; a panel whose Row
	// differs from the one before it starts a new row.
	Row         string
	Title       string
	Description string
	Kind        Kind
	// Unit is Grafana's unit of the values (of a heatmap, of its buckets'
	// bounds): ops, Bps, s, bytes, ...
	Unit string
	// Width in Grafana's 24 columns; 12 is half the dashboard.
	Width   uint32
	Queries []Query
}

// Query is one PromQL query of a panel and the legend of its series.
// Queries may use the dashboard's variables $host and $process and
// Grafana's $__rate_interval.
type Query struct {
	Expr   string
	Legend string
}

// hostProcess selects the series of the hosts and processes picked in the
// dashboard's variables.
const hostProcess = `host_name=~"$host", process_executable_name=~"$process"`

// Panels are the dashboard's graphs, in order.
var Panels = []Panel{
	{
		Row: "Calls", Title: "Call rate by process", Kind: Timeseries, Unit: "ops", Width: 12,
		Description: "mremap(2) calls per second by process name (the process's comm), from mremap_calls_total.",
		Queries: []Query{{
			Expr:   `sum by (process_executable_name) (rate(mremap_calls_total{` + hostProcess + `}[$__rate_interval]))`,
			Legend: "{{process_executable_name}}",
		}},
	},
	{
		Row: "Calls", Title: "Error rate by errno", Kind: Timeseries, Unit: "ops", Width: 12,
		Description: "Failed calls per second by errno (mremap.result other than ok).",
		Queries: []Query{{
			Expr:   `sum by (mremap_result) (rate(mremap_calls_total{` + hostProcess + `, mremap_result!="ok"}[$__rate_interval]))`,
			Legend: "{{mremap_result}}",
		}},
	},
	{
		Row: "Moves", Title: "Moves by type", Kind: Timeseries, Unit: "ops", Width: 12,
		Description: "Successful calls that moved the mapping, per second, by mremap.move: maymove (the kernel chose the new address), fixed (MREMAP_FIXED), dontunmap (MREMAP_DONTUNMAP).",
		Queries: []Query{{
			Expr:   `sum by (mremap_move) (rate(mremap_moves_total{` + hostProcess + `}[$__rate_interval]))`,
			Legend: "{{mremap_move}}",
		}},
	},
	{
		Row: "Moves", Title: "Fixed-address moves", Kind: Timeseries, Unit: "ops", Width: 12,
		Description: "Moves to an address the caller chose (MREMAP_FIXED), per second, by process. Rare in ordinary programs (allocators use MREMAP_MAYMOVE); worth a look when one appears.",
		Queries: []Query{{
			Expr:   `sum by (process_executable_name) (rate(mremap_moves_total{` + hostProcess + `, mremap_move="fixed"}[$__rate_interval]))`,
			Legend: "{{process_executable_name}}",
		}},
	},
	{
		Row: "Sizes", Title: "Bytes grown and shrunk per second", Kind: Timeseries, Unit: "Bps", Width: 12,
		Description: "Bytes per second by which successful calls grew and shrank mappings: the rate of the size-delta histogram's sum (abs(new_size - old_size)).",
		Queries: []Query{{
			Expr:   `sum by (mremap_resize) (rate(mremap_size_delta_bytes_sum{` + hostProcess + `}[$__rate_interval]))`,
			Legend: "{{mremap_resize}}",
		}},
	},
	{
		Row: "Sizes", Title: "Size delta heatmap", Kind: Heatmap, Unit: "bytes", Width: 12,
		Description: "How many successful grows and shrinks fell in each power-of-two size bucket (abs(new_size - old_size)) per interval.",
		Queries: []Query{{
			Expr:   `sum by (le) (increase(mremap_size_delta_bytes_bucket{` + hostProcess + `}[$__rate_interval]))`,
			Legend: "{{le}}",
		}},
	},
	{
		Row: "Latency", Title: "Latency p50 and p99", Kind: Timeseries, Unit: "s", Width: 12,
		Description: "Time from syscall entry to exit, p50 and p99, over all processes of the selected hosts (mremap.duration has no process attribute, so the process variable does not apply).",
		Queries: []Query{
			{Expr: `histogram_quantile(0.5, sum by (le) (rate(mremap_duration_seconds_bucket{host_name=~"$host"}[$__rate_interval])))`, Legend: "p50"},
			{Expr: `histogram_quantile(0.99, sum by (le) (rate(mremap_duration_seconds_bucket{host_name=~"$host"}[$__rate_interval])))`, Legend: "p99"},
		},
	},
	{
		Row: "Latency", Title: "Latency heatmap", Kind: Heatmap, Unit: "s", Width: 12,
		Description: "Calls per power-of-two latency bucket per interval, over all processes of the selected hosts.",
		Queries: []Query{{
			Expr:   `sum by (le) (increase(mremap_duration_seconds_bucket{host_name=~"$host"}[$__rate_interval]))`,
			Legend: "{{le}}",
		}},
	},
	{
		Row: "Signals", Title: "Signals by process", Kind: Timeseries, Unit: "ops", Width: 12,
		Description: "Calls per second that raised each signal, by process: exec_move, write_exec, fixed_replace, shared_alias, dontunmap, sealed, special_move, unbacked_caller, map_count_limit (decided in the kernel; see the receiver's README).",
		Queries: []Query{{
			Expr:   `sum by (process_executable_name, mremap_signal) (rate(mremap_signals_total{` + hostProcess + `}[$__rate_interval]))`,
			Legend: "{{process_executable_name}} {{mremap_signal}}",
		}},
	},
	{
		Row: "Signals", Title: "Map-count headroom", Kind: Timeseries, Unit: "short", Width: 12,
		Description: "How many more mappings each process name may have before vm.max_map_count (mremap.map_count.limit minus mremap.process.map_count, the largest count at its latest calls). At 3 or less, moves fail with ENOMEM (map_count_limit).",
		Queries: []Query{{
			Expr:   `min by (process_executable_name) (mremap_map_count_limit{host_name=~"$host"} - on (host_name) group_right mremap_process_map_count{` + hostProcess + `})`,
			Legend: "{{process_executable_name}}",
		}},
	},
	{
		Row: "Receiver health", Title: "Dropped events by reason", Kind: Timeseries, Unit: "ops", Width: 24,
		Description: "Events the receiver could not deliver, per second, by reason: ring_buffer_full (the reader fell behind), rate_limited (over max_events_per_second), unpaired (exit without entry), probe_missed (kretprobe missed), cardinality_limit (a kernel aggregate map was full), malformed_record (a truncated or corrupt ring buffer record the receiver skipped). Should stay at zero.",
		Queries: []Query{{
			Expr:   `sum by (reason) (rate(mremap_events_dropped_total{host_name=~"$host"}[$__rate_interval]))`,
			Legend: "{{reason}}",
		}},
	},
}

// The files generated from Panels, relative to the repository's root.
const (
	GrafanaFile = "config/grafana/mremap.json"
	VMUIFile    = "config/vmui/mremap.json"
)
