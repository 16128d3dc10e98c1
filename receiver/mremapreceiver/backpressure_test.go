package mremapreceiver

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// telemetrySum sums a counter of the receiver's own telemetry.
func telemetrySum(tt *componenttest.Telemetry, name string) int64 {
	m, err := tt.GetMetric(name)
	if err != nil {
		return 0
	}
	var n int64
	if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
		for _, dp := range sum.DataPoints {
			n += dp.Value
		}
	}
	return n
}

// When the next consumer refuses every log record, the receiver keeps
// reading, reports each refused record through obsreport
// (otelcol_receiver_refused_log_records), and the metrics pipeline keeps
// getting the aggregates: every call is refused or counted as dropped.
func TestLogsRefusedDownstream(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	tt := componenttest.NewTelemetry()
	defer tt.Shutdown(context.Background())

	cfg := helperConfig(func(cfg *Config) { cfg.CollectionInterval = 100 * time.Millisecond })
	set := receivertest.NewNopSettings(metadata.Type)
	set.TelemetrySettings = tt.NewTelemetrySettings()
	metrics := new(consumertest.MetricsSink)
	rcv := startReceiver(t, cfg, pipelines{logs: consumertest.NewErr(errors.New("the pipeline is full")), metrics: metrics, set: &set}).core

	// A sustained load, then the known calls: the receiver is still
	// reading and the metrics still flow after a second of refusals.
	load := mremaptest.RunLoop(t, helper, 0, time.Second)
	mremaptest.RunHelper(t, helper)
	calls := int64(load.Calls) + int64(len(mremaptest.Expected))

	var refused, dropped int64
	problems := mremapcheck.Eventually(20*time.Second, 100*time.Millisecond, func() []string {
		a, err := rcv.tracer.ReadAggregates()
		if err != nil {
			return []string{err.Error()}
		}
		dropped = int64(a.Drops.RingBufferFull)
		refused = telemetrySum(tt, "otelcol_receiver_refused_log_records") + telemetrySum(tt, "otelcol_receiver_failed_log_records")
		var p []string
		if refused+dropped != calls {
			p = append(p, "refused + ring_buffer_full != calls")
		}
		all := metrics.AllMetrics()
		if len(all) == 0 {
			return append(p, "no metrics")
		}
		var counted int64
		last := all[len(all)-1].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
		for i := 0; i < last.Len(); i++ {
			if m := last.At(i); m.Name() == "mremap.calls" {
				for j := 0; j < m.Sum().DataPoints().Len(); j++ {
					counted += m.Sum().DataPoints().At(j).IntValue()
				}
			}
		}
		if counted != calls {
			p = append(p, "the last mremap.calls does not count every call")
		}
		return p
	})
	t.Logf("%d calls: %d log records refused downstream, %d ring_buffer_full", calls, refused, dropped)
	for _, p := range problems {
		t.Errorf("%s: refused %d, ring_buffer_full %d, calls %d", p, refused, dropped, calls)
	}
	if refused == 0 {
		t.Error("no refused log records reported")
	}
	if accepted := telemetrySum(tt, "otelcol_receiver_accepted_log_records"); accepted != 0 {
		t.Errorf("%d log records reported accepted by a consumer that refuses all", accepted)
	}
}
