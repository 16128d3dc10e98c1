package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// rssCeiling bounds the collector's resident memory under load; it idles
// at a few tens of MiB.
const rssCeiling = 256 << 20

// The logs pipeline exports to an OTLP endpoint where nothing listens,
// with no queue and no retries, so every batch is refused. Under a
// sustained load the collector keeps running with bounded memory, its own
// telemetry reports every record refused, and the metrics pipeline keeps
// counting every call.
func TestCollectorExporterDown(t *testing.T) {
	mremaptest.RequireBPF(t)
	bin := mremaptest.CollectorPath(t)
	helper := mremaptest.HelperPath(t)
	closed, metricsPort, telemetryPort := mremaptest.FreePort(t), mremaptest.FreePort(t), mremaptest.FreePort(t)
	c := startCollector(t, bin, fmt.Sprintf(`
receivers:
  mremap:
    collection_interval: 200ms
    filter:
      comms: [mremap-helper]
exporters:
  otlp:
    endpoint: 127.0.0.1:%d
    tls: {insecure: true}
    timeout: 1s
    sending_queue: {enabled: false}
    retry_on_failure: {enabled: false}
  prometheus:
    endpoint: 127.0.0.1:%d
service:
  pipelines:
    logs:
      receivers: [mremap]
      exporters: [otlp]
    metrics:
      receivers: [mremap]
      exporters: [prometheus]
  telemetry:
    metrics:
      level: detailed
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: %d
`, closed, metricsPort, telemetryPort))

	rss := sampleRSS(c.cmd.Process.Pid, 100*time.Millisecond)
	load := mremaptest.RunLoop(t, helper, 0, 5*time.Second)
	mremaptest.RunHelper(t, helper)
	calls := float64(load.Calls) + float64(len(mremaptest.Expected))

	var refused, failed, dropped, counted float64
	problems := mremapcheck.Eventually(30*time.Second, 200*time.Millisecond, func() []string {
		own := scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetryPort))
		// Without the receiverhelper.newReceiverMetrics feature gate every
		// error is "refused"; with it, errors not marked downstream are
		// "failed".
		refused = sumSeries(own, `receiver="mremap"`, "otelcol_receiver_refused_log_records")
		failed = sumSeries(own, `receiver="mremap"`, "otelcol_receiver_failed_log_records")
		got := scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort))
		dropped = sumSeries(got, `reason="ring_buffer_full"`, "mremap_events_dropped_total")
		counted = sumSeries(got, `process_executable_name="mremap-helper"`, "mremap_calls_total")
		var p []string
		if refused+failed+dropped != calls {
			p = append(p, "refused + failed + ring_buffer_full != calls")
		}
		if counted != calls {
			p = append(p, "mremap_calls_total != calls")
		}
		return p
	})
	samples := rss.Stop()
	summary := summarizeRSS(samples)
	t.Logf("%.0f calls in %v: %.0f log records refused, %.0f failed, %.0f ring_buffer_full, %.0f counted; RSS %v over %d samples",
		calls, load.Elapsed, refused, failed, dropped, counted, summary, len(samples))
	for _, p := range problems {
		t.Errorf("%s: refused %.0f, failed %.0f, ring_buffer_full %.0f, mremap_calls_total %.0f, calls %.0f", p, refused, failed, dropped, counted, calls)
	}
	if refused == 0 {
		t.Errorf("otelcol_receiver_refused_log_records reports no refused log records (%.0f failed)", failed)
	}
	if summary.Peak > rssCeiling {
		t.Errorf("RSS %v, above the ceiling of %d MiB", summary, rssCeiling>>20)
	}
	if !strings.Contains(c.stderr.String(), "the next consumer refused mremap log records") {
		t.Error("no warning about refused log records in the collector's log")
	}
	if c.exited() {
		t.Fatal("the collector exited")
	}
	c.stop(t)
}

// sumSeries sums the series of the named metrics (any suffix: _total, ...)
// that carry the label.
func sumSeries(series map[string]float64, label string, names ...string) float64 {
	var n float64
	for k, v := range series {
		name, labels, _ := strings.Cut(k, "{")
		for _, want := range names {
			if (name == want || name == want+"_total") && strings.Contains(labels, label) {
				n += v
			}
		}
	}
	return n
}
