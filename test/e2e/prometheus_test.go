package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// TestPrometheusNames scrapes the prometheus exporter, as config/collector.yaml
// sets it up, and checks the translated names and the helper's values.
func TestPrometheusNames(t *testing.T) {
	mremaptest.RequireBPF(t)
	bin := mremaptest.CollectorPath(t)
	helper := mremaptest.HelperPath(t)
	port := mremaptest.FreePort(t)
	c := startCollector(t, bin, fmt.Sprintf(`
receivers:
  mremap:
    collection_interval: 200ms
    filter:
      comms: [mremap-helper]
exporters:
  prometheus:
    endpoint: 127.0.0.1:%d
service:
  pipelines:
    metrics:
      receivers: [mremap]
      exporters: [prometheus]
  telemetry:
    metrics:
      level: none
`, port))
	defer c.stop(t)
	mremaptest.RunHelper(t, helper)

	// name{labels} -> value, for the helper's series and the drop counters.
	want := map[string]float64{
		`mremap_calls_total{mremap_move="none",mremap_resize="grow",mremap_result="ok",process_executable_name="mremap-helper"}`:     1,
		`mremap_calls_total{mremap_move="none",mremap_resize="shrink",mremap_result="ok",process_executable_name="mremap-helper"}`:   4,
		`mremap_calls_total{mremap_move="none",mremap_resize="grow",mremap_result="EFAULT",process_executable_name="mremap-helper"}`: 2,
		`mremap_moves_total{mremap_move="fixed",process_executable_name="mremap-helper"}`:                                            1,
		`mremap_size_delta_bytes_count{mremap_resize="grow",process_executable_name="mremap-helper"}`:                                2,
		`mremap_size_delta_bytes_sum{mremap_resize="grow",process_executable_name="mremap-helper"}`:                                  8192,
		`mremap_size_delta_bytes_bucket{le="2048",mremap_resize="grow",process_executable_name="mremap-helper"}`:                     0,
		`mremap_size_delta_bytes_bucket{le="4096",mremap_resize="grow",process_executable_name="mremap-helper"}`:                     2,
		`mremap_duration_seconds_count{mremap_move="none",mremap_result="ENOMEM"}`:                                                   1,
		`mremap_events_dropped_total{reason="ring_buffer_full"}`:                                                                     0,
		`mremap_events_dropped_total{reason="probe_missed"}`:                                                                         0,
	}
	missing := mremapcheck.Eventually(30*time.Second, 200*time.Millisecond, func() []string {
		got := scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		var missing []string
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				missing = append(missing, fmt.Sprintf("%s = %v (present %v), want %v", k, g, ok, v))
			}
		}
		return missing
	})
	for _, m := range missing {
		t.Error(m)
	}
}

// scrape reads the exposition format into series -> value, with the labels
// sorted and the otel_scope_* labels left out.
func scrape(t *testing.T, url string) map[string]float64 {
	return scrapeWith(http.DefaultClient, url)
}

// scrapeWith is scrape with client (one that reaches a network namespace).
func scrapeWith(client *http.Client, url string) map[string]float64 {
	resp, err := client.Get(url)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	s := bufio.NewScanner(strings.NewReader(string(body)))
	for s.Scan() {
		line := s.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[normalize(line[:i])] = v
	}
	return out
}

func normalize(series string) string {
	name, labels, ok := strings.Cut(series, "{")
	if !ok {
		return series
	}
	labels = strings.TrimSuffix(labels, "}")
	var keep []string
	for _, l := range splitLabels(labels) {
		if !strings.HasPrefix(l, "otel_scope_") && !strings.HasPrefix(l, "host_name=") &&
			!strings.HasPrefix(l, "job=") && !strings.HasPrefix(l, "instance=") {
			keep = append(keep, l)
		}
	}
	sort.Strings(keep)
	return name + "{" + strings.Join(keep, ",") + "}"
}

// splitLabels splits a="x",b="y" on the commas between labels.
func splitLabels(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			i++
		case s[i] == '"':
			inQuote = !inQuote
		case s[i] == ',' && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
