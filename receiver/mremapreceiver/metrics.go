//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/scraper"
	"go.opentelemetry.io/collector/scraper/scraperhelper"
	"go.uber.org/zap"

	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

// metricsReceiver is the receiver of a metrics pipeline: the Collector's
// scraper controller reads the kernel's aggregates every
// collection_interval, as hostmetrics does. At shutdown, once the probes
// are detached, it reports the aggregates one last time, so that the calls
// of the last interval are not lost (the controller does not scrape at
// shutdown).
type metricsReceiver struct {
	r          *mremapReceiver
	controller receiver.Metrics
	next       consumer.Metrics
	conv       *metricConverter
}

func newMetricsReceiver(r *mremapReceiver, set receiver.Settings, next consumer.Metrics) (*metricsReceiver, error) {
	m := &metricsReceiver{r: r, next: next}
	s, err := scraper.NewMetrics(m.scrape, scraper.WithStart(m.start))
	if err != nil {
		return nil, err
	}
	m.controller, err = scraperhelper.NewMetricsController(&r.cfg.ControllerConfig, set, next,
		scraperhelper.AddMetricsScraper(metadata.Type, s))
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *metricsReceiver) Start(ctx context.Context, host component.Host) error {
	return m.controller.Start(ctx, host)
}

// start is the scraper's: the probes are attached before the first scrape.
func (m *metricsReceiver) start(context.Context, component.Host) error {
	if err := m.r.start(); err != nil {
		return err
	}
	m.conv = newMetricConverter(m.r.cfg, m.r.set, m.r.hostName, pcommon.NewTimestampFromTime(time.Now()))
	return nil
}

// scrape reads the kernel's cumulative aggregates.
func (m *metricsReceiver) scrape(context.Context) (pmetric.Metrics, error) {
	a, err := m.r.tracer.ReadAggregates()
	if err != nil {
		return pmetric.NewMetrics(), fmt.Errorf("reading mremap aggregates: %w", err)
	}
	return m.conv.toMetrics(a, pcommon.NewTimestampFromTime(time.Now())), nil
}

func (m *metricsReceiver) Shutdown(ctx context.Context) error {
	err := m.controller.Shutdown(ctx)
	if m.conv == nil {
		// Never started.
		return errors.Join(err, m.r.release())
	}
	return errors.Join(err, m.r.stop(), m.report(ctx), m.r.release())
}

// report sends the aggregates once, as the controller would.
func (m *metricsReceiver) report(ctx context.Context) error {
	md, err := m.scrape(ctx)
	if err != nil {
		return err
	}
	if md.DataPointCount() == 0 {
		return nil // every metric is disabled
	}
	octx := m.r.obs.StartMetricsOp(ctx)
	err = m.next.ConsumeMetrics(octx, md)
	m.r.obs.EndMetricsOp(octx, metadata.Type.String(), md.DataPointCount(), err)
	if err != nil {
		m.r.set.Logger.Warn("the next consumer refused the last mremap metrics", zap.Error(err))
	}
	return nil
}
