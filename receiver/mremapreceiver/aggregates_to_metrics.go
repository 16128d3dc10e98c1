//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

// Histogram bounds: explicit powers of two, one a slot of the kernel's
// histograms. mremap.size.delta in bytes: 1, 2, 4, ... 2^40 (1 TiB);
// mremap.duration in seconds: 2^k nanoseconds for k = 0 .. 34 (about 17 s).
// Larger values fall in the last bucket.
const (
	sizeDeltaMaxExp = tracer.SizeDeltaMaxExp
	durationMaxExp  = tracer.DurationMaxExp
)

var (
	sizeDeltaBounds = powerOfTwoBounds(sizeDeltaMaxExp, 1)
	durationBounds  = powerOfTwoBounds(durationMaxExp, 1e-9)
)

// powerOfTwoBounds returns scale*2^k for k = 0..maxExp.
func powerOfTwoBounds(maxExp int, scale float64) []float64 {
	b := make([]float64, maxExp+1)
	for k := range b {
		b[k] = math.Ldexp(scale, k)
	}
	return b
}

// bucketCounts maps the kernel's log2 slots, slot k holding (2^(k-1), 2^k],
// onto explicit bounds 2^0..2^maxExp, whose bucket k holds
// (bound[k-1], bound[k]]: slot k is bucket k, and the slots above maxExp go
// to the overflow bucket.
func bucketCounts(h *tracer.Histogram, maxExp int) []uint64 {
	counts := make([]uint64, maxExp+2)
	for k, n := range h.Counts {
		counts[min(k, maxExp+1)] += n
	}
	return counts
}

// metricConverter turns the kernel's cumulative aggregates into metrics.
type metricConverter struct {
	cfg   *Config
	mb    *metadata.MetricsBuilder
	res   pcommon.Resource
	start pcommon.Timestamp
}

func newMetricConverter(cfg *Config, set receiver.Settings, hostName string, start pcommon.Timestamp) *metricConverter {
	rb := metadata.NewResourceBuilder(cfg.ResourceAttributes)
	if hostName != "" {
		rb.SetHostName(hostName)
	}
	return &metricConverter{
		cfg:   cfg,
		mb:    metadata.NewMetricsBuilder(cfg.metricsBuilderConfig(), set, metadata.WithStartTime(start)),
		res:   rb.Emit(),
		start: start,
	}
}

type moveKey struct {
	comm string
	move mremap.Move
}

// recordSumsAndGauges records the metrics mdatagen builds.
func (c *metricConverter) recordSumsAndGauges(a *tracer.Aggregates, now pcommon.Timestamp) {
	moves := map[moveKey]uint64{}
	for _, cc := range a.Calls {
		c.mb.RecordMremapCallsDataPoint(now, int64(cc.Count), cc.Comm,
			metadata.MapAttributeMremapResize[cc.Resize.String()],
			metadata.MapAttributeMremapMove[cc.Move.String()], cc.Result())
		if cc.Errno == 0 && cc.Move != mremap.MoveNone {
			moves[moveKey{cc.Comm, cc.Move}] += cc.Count
		}
	}
	for k, n := range moves {
		c.mb.RecordMremapMovesDataPoint(now, int64(n), k.comm, metadata.MapAttributeMremapMove[k.move.String()])
	}
	for _, m := range a.MapCounts {
		c.mb.RecordMremapProcessMapCountDataPoint(now, int64(m.Count), m.Comm)
	}
	if a.MaxMapCount > 0 {
		c.mb.RecordMremapMapCountLimitDataPoint(now, int64(a.MaxMapCount))
	}
	for _, s := range a.Signals {
		c.mb.RecordMremapSignalsDataPoint(now, int64(s.Count), s.Comm, metadata.MapAttributeMremapSignal[s.Signal.String()])
	}
	for _, d := range dropsByReason(a.Drops) {
		c.mb.RecordMremapEventsDroppedDataPoint(now, int64(d.count), d.reason)
	}
}

func (c *metricConverter) toMetrics(a *tracer.Aggregates, now pcommon.Timestamp) pmetric.Metrics {
	c.recordSumsAndGauges(a, now)
	res := pcommon.NewResource()
	c.res.CopyTo(res)
	md := c.mb.Emit(metadata.WithResource(res))
	// mdatagen builds the sums; the cumulative explicit-bucket histograms
	// are built here.
	var metrics pmetric.MetricSlice
	if md.ResourceMetrics().Len() == 0 {
		rm := md.ResourceMetrics().AppendEmpty()
		c.res.CopyTo(rm.Resource())
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName(metadata.ScopeName)
		metrics = sm.Metrics()
	} else {
		metrics = md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	}
	if c.cfg.Metrics.MremapSizeDelta.Enabled && len(a.SizeDeltas) > 0 {
		hist := newHistogram(metrics, "mremap.size.delta",
			"abs(new_size - old_size) of successful calls that grew or shrank a mapping.", "By")
		for i := range a.SizeDeltas {
			s := &a.SizeDeltas[i]
			dp := c.appendPoint(hist, &s.Histogram, sizeDeltaBounds, sizeDeltaMaxExp, float64(s.Sum), now)
			dp.Attributes().PutStr("process.executable.name", s.Comm)
			dp.Attributes().PutStr("mremap.resize", s.Resize.String())
		}
	}
	if c.cfg.Metrics.MremapDuration.Enabled && len(a.Durations) > 0 {
		hist := newHistogram(metrics, "mremap.duration",
			"Time from syscall entry to exit, measured in the kernel.", "s")
		for i := range a.Durations {
			dd := &a.Durations[i]
			dp := c.appendPoint(hist, &dd.Histogram, durationBounds, durationMaxExp, float64(dd.Sum)/1e9, now)
			dp.Attributes().PutStr("mremap.move", dd.Move.String())
			dp.Attributes().PutStr("mremap.result", dd.Result())
		}
	}
	return md
}

func newHistogram(metrics pmetric.MetricSlice, name, description, unit string) pmetric.Histogram {
	m := metrics.AppendEmpty()
	m.SetName(name)
	m.SetDescription(description)
	m.SetUnit(unit)
	h := m.SetEmptyHistogram()
	h.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	return h
}

func (c *metricConverter) appendPoint(h pmetric.Histogram, kh *tracer.Histogram, bounds []float64, maxExp int, sum float64, now pcommon.Timestamp) pmetric.HistogramDataPoint {
	dp := h.DataPoints().AppendEmpty()
	dp.SetStartTimestamp(c.start)
	dp.SetTimestamp(now)
	dp.SetCount(kh.Count())
	dp.SetSum(sum)
	dp.ExplicitBounds().FromRaw(bounds)
	dp.BucketCounts().FromRaw(bucketCounts(kh, maxExp))
	return dp
}
