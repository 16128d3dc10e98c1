package mremapreceiver

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// helperConfig is the default configuration, filtered to the helper's comm.
func helperConfig(mutate ...func(*Config)) *Config {
	cfg := NewFactory().CreateDefaultConfig().(*Config)
	cfg.Filter.Comms = []string{mremaptest.Comm}
	for _, m := range mutate {
		m(cfg)
	}
	return cfg
}

// pipelines are the consumers a test receiver serves; nil leaves a pipeline
// out.
type pipelines struct {
	logs    consumer.Logs
	metrics consumer.Metrics
	set     *receiver.Settings // nil: receivertest's
}

// testReceiver is the receiver of one configuration for its pipelines, as
// the Collector creates it: a logs receiver and a metrics receiver sharing
// one set of probes.
type testReceiver struct {
	t    testing.TB
	lr   receiver.Logs
	mr   receiver.Metrics
	core *mremapReceiver
	down bool
}

// newTestReceiver creates the receivers of p, not started; the test's
// cleanup shuts them down if the test did not.
func newTestReceiver(t testing.TB, cfg *Config, p pipelines) *testReceiver {
	t.Helper()
	set := receivertest.NewNopSettings(metadata.Type)
	if p.set != nil {
		set = *p.set
	}
	f := NewFactory()
	r := &testReceiver{t: t}
	if p.logs != nil {
		lr, err := f.CreateLogs(context.Background(), set, cfg, p.logs)
		require.NoError(t, err)
		r.lr, r.core = lr, lr.(logsReceiver).r
	}
	if p.metrics != nil {
		mr, err := f.CreateMetrics(context.Background(), set, cfg, p.metrics)
		require.NoError(t, err)
		r.mr = mr
		if r.core == nil {
			r.core = mr.(*metricsReceiver).r
		} else {
			require.Same(t, r.core, mr.(*metricsReceiver).r, "the logs and metrics pipelines got two sets of probes; want one shared")
		}
	}
	t.Cleanup(func() {
		if !r.down {
			r.shutdown()
		}
	})
	return r
}

// startReceiver creates and starts the receivers of p.
func startReceiver(t testing.TB, cfg *Config, p pipelines) *testReceiver {
	t.Helper()
	r := newTestReceiver(t, cfg, p)
	require.NoError(t, r.start())
	return r
}

// start starts the receivers as the Collector does, logs first.
func (r *testReceiver) start() error {
	host := componenttest.NewNopHost()
	if r.lr != nil {
		if err := r.lr.Start(context.Background(), host); err != nil {
			return err
		}
	}
	if r.mr != nil {
		return r.mr.Start(context.Background(), host)
	}
	return nil
}

// shutdown shuts both receivers down, failing the test on an error.
func (r *testReceiver) shutdown() {
	r.t.Helper()
	r.down = true
	if r.lr != nil {
		assert.NoError(r.t, r.lr.Shutdown(context.Background()), "logs receiver shutdown")
	}
	if r.mr != nil {
		assert.NoError(r.t, r.mr.Shutdown(context.Background()), "metrics receiver shutdown")
	}
}

// probe is the mode the probes were attached in.
func (r *testReceiver) probe() string { return string(r.core.tracer.Probe()) }

// eventually waits for check to find no problem, failing the test with the
// problems of its last call: output arrives over several batches and
// collection intervals.
func eventually(t *testing.T, check func() []string) {
	t.Helper()
	assert.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, p := range check() {
			c.Errorf("%s", p)
		}
	}, 20*time.Second, 100*time.Millisecond)
}

// lastMetricsProblems checks the last emission the sink received.
func lastMetricsProblems(sink *consumertest.MetricsSink, probe string) []string {
	all := sink.AllMetrics()
	if len(all) == 0 {
		return []string{"no metrics"}
	}
	return mremapcheck.Metrics(all[len(all)-1], probe)
}

func mergeLogs(all []plog.Logs) plog.Logs {
	out := plog.NewLogs()
	for _, ld := range all {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			ld.ResourceLogs().At(i).CopyTo(out.ResourceLogs().AppendEmpty())
		}
	}
	return out
}
