package mremapreceiver

import (
	"math"
	"math/bits"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

// kernelSlot is the kernel's hist_slot (bpf/mremap.bpf.c): slot k holds
// (2^(k-1), 2^k], slot 0 holds 0 and 1, the last slot everything above.
func kernelSlot(v uint64) int {
	if v <= 1 {
		return 0
	}
	return min(bits.Len64(v-1), tracer.HistogramSlots-1)
}

// otlpBucket is the explicit-bounds bucket of v: bucket i holds
// (bounds[i-1], bounds[i]], the last one everything above.
func otlpBucket(bounds []float64, v float64) int {
	return sort.SearchFloat64s(bounds, v)
}

func TestPowerOfTwoBounds(t *testing.T) {
	b := powerOfTwoBounds(40, 1)
	require.Len(t, b, 41)
	for k, v := range b {
		assert.Equal(t, float64(uint64(1)<<k), v, "bound %d", k)
	}
	assert.Equal(t, []float64{1}, powerOfTwoBounds(0, 1))

	d := powerOfTwoBounds(34, 1e-9)
	require.Len(t, d, 35)
	assert.Equal(t, 1e-9, d[0])
	assert.Equal(t, 1024e-9, d[10])
	assert.InDelta(t, 17.179869184, d[34], 1e-12)
	for k, v := range d {
		// Exact: scaling by a power of two loses nothing.
		assert.Equal(t, float64(uint64(1)<<k)*1e-9, v, "bound %d", k)
	}

	assert.Equal(t, powerOfTwoBounds(sizeDeltaMaxExp, 1), sizeDeltaBounds)
	assert.Equal(t, powerOfTwoBounds(durationMaxExp, 1e-9), durationBounds)
	assert.Equal(t, float64(1<<40), sizeDeltaBounds[len(sizeDeltaBounds)-1], "size bounds end at 1 TiB")
}

func TestBucketCountsSlotsToBuckets(t *testing.T) {
	for _, maxExp := range []int{0, 1, 10, sizeDeltaMaxExp, durationMaxExp, tracer.HistogramSlots - 2, tracer.HistogramSlots - 1, 70} {
		var h tracer.Histogram
		for k := range h.Counts {
			h.Counts[k] = uint64(k + 1)
		}
		got := bucketCounts(&h, maxExp)
		require.Len(t, got, maxExp+2, "one bucket per bound and an overflow bucket")
		var want []uint64
		for k := 0; k <= maxExp; k++ {
			if k < tracer.HistogramSlots {
				want = append(want, uint64(k+1))
			} else {
				want = append(want, 0)
			}
		}
		var overflow uint64
		for k := maxExp + 1; k < tracer.HistogramSlots; k++ {
			overflow += uint64(k + 1)
		}
		want = append(want, overflow)
		assert.Equal(t, want, got, "maxExp %d", maxExp)

		var sum uint64
		for _, n := range got {
			sum += n
		}
		assert.Equal(t, h.Count(), sum, "maxExp %d: counts preserved", maxExp)
	}

	var empty tracer.Histogram
	assert.Equal(t, make([]uint64, 42), bucketCounts(&empty, 40))
}

// TestBucketCountsAgreeWithBounds checks that a value the kernel puts in
// slot k lands, after bucketCounts, in the bucket the explicit bounds give it.
func TestBucketCountsAgreeWithBounds(t *testing.T) {
	values := []uint64{0, 1, 2, 3, 4, 5, 7, 8, 9, 1000, 1023, 1024, 1025, 4095, 4096, 4097, 1 << 20, 1<<20 + 1,
		1 << 34, 1<<34 + 1, 1<<39 + 1, 1 << 40, 1<<40 + 1, 1 << 41, 1 << 62, 1<<62 + 1, 1 << 63, math.MaxUint64}
	for k := 0; k < 64; k++ {
		values = append(values, 1<<k, 1<<k+1, 1<<k-1)
	}
	check := func(name string, bounds []float64, maxExp int, scale float64) {
		for _, v := range values {
			var h tracer.Histogram
			h.Counts[kernelSlot(v)] = 1
			counts := bucketCounts(&h, maxExp)
			got := -1
			for i, n := range counts {
				if n == 1 {
					got = i
				}
			}
			// float64(v) is exact up to 2^53; above that only the
			// overflow bucket matters, which rounding cannot change.
			want := otlpBucket(bounds, float64(v)*scale)
			assert.Equal(t, want, got, "%s: value %d (slot %d)", name, v, kernelSlot(v))
		}
	}
	check("size", sizeDeltaBounds, sizeDeltaMaxExp, 1)
	check("duration", durationBounds, durationMaxExp, 1e-9)
}

var (
	testStart = pcommon.Timestamp(1_700_000_000_000_000_000)
	testNow   = pcommon.Timestamp(1_700_000_060_000_000_000)
)

const errnoEINVAL, errnoENOMEM = 22, 12

// testAggregates are the aggregates of two processes.
func testAggregates() *tracer.Aggregates {
	var pgGrow, javaShrink, okMaymove, failedNone tracer.Histogram
	pgGrow.Counts[12] = 3 // (2 KiB, 4 KiB]
	pgGrow.Counts[13] = 2 // (4 KiB, 8 KiB]
	pgGrow.Sum = 3*4096 + 2*8192
	javaShrink.Counts[0] = 1
	javaShrink.Counts[50] = 1 // above 2^40: overflow
	javaShrink.Sum = 1 + 1<<50
	okMaymove.Counts[10] = 5 // (512, 1024] ns
	okMaymove.Counts[20] = 1
	okMaymove.Sum = 5*1000 + 1_000_000
	failedNone.Counts[5] = 3
	failedNone.Counts[40] = 2 // above 2^34 ns: overflow
	failedNone.Sum = 90 + 2*(1<<40)

	return &tracer.Aggregates{
		Calls: []tracer.CallCount{
			{Comm: "postgres", Resize: mremap.ResizeGrow, Move: mremap.MoveMayMove, Count: 10},
			{Comm: "postgres", Resize: mremap.ResizeGrow, Move: mremap.MoveNone, Count: 5},
			{Comm: "postgres", Resize: mremap.ResizeNone, Move: mremap.MoveFixed, Count: 2},
			{Comm: "postgres", Resize: mremap.ResizeGrow, Move: mremap.MoveNone, Errno: errnoEINVAL, Count: 3},
			// A failed fixed call is a call but not a move.
			{Comm: "postgres", Resize: mremap.ResizeNone, Move: mremap.MoveFixed, Errno: errnoEINVAL, Count: 4},
			{Comm: "java", Resize: mremap.ResizeShrink, Move: mremap.MoveNone, Count: 7},
			{Comm: "java", Resize: mremap.ResizeNone, Move: mremap.MoveDontUnmap, Count: 1},
			{Comm: "java", Resize: mremap.ResizeGrow, Move: mremap.MoveMayMove, Count: 6},
			{Comm: "java", Resize: mremap.ResizeNone, Move: mremap.MoveMayMove, Count: 2},
			{Comm: "java", Resize: mremap.ResizeGrow, Move: mremap.MoveNone, Errno: errnoENOMEM, Count: 1},
		},
		SizeDeltas: []tracer.SizeDeltas{
			{Comm: "postgres", Resize: mremap.ResizeGrow, Histogram: pgGrow},
			{Comm: "java", Resize: mremap.ResizeShrink, Histogram: javaShrink},
		},
		Durations: []tracer.Durations{
			{Move: mremap.MoveMayMove, Histogram: okMaymove},
			{Move: mremap.MoveNone, Errno: errnoEINVAL, Histogram: failedNone},
		},
		Drops: tracer.Drops{RingBufferFull: 1, RateLimited: 2, ProbeMissed: 4, MalformedRecord: 5},
	}
}

func convertAggregates(t *testing.T, cfg *Config, a *tracer.Aggregates) pmetric.Metrics {
	t.Helper()
	c := newMetricConverter(cfg, receivertest.NewNopSettings(metadata.Type), "host-a", testStart)
	return c.toMetrics(a, testNow)
}

// metricsByName returns the metrics of md's single resource and scope.
func metricsByName(t *testing.T, md pmetric.Metrics) map[string]pmetric.Metric {
	t.Helper()
	require.Equal(t, 1, md.ResourceMetrics().Len())
	rm := md.ResourceMetrics().At(0)
	require.Equal(t, 1, rm.ScopeMetrics().Len())
	sm := rm.ScopeMetrics().At(0)
	assert.Equal(t, metadata.ScopeName, sm.Scope().Name())
	out := map[string]pmetric.Metric{}
	for i := 0; i < sm.Metrics().Len(); i++ {
		m := sm.Metrics().At(i)
		_, dup := out[m.Name()]
		require.False(t, dup, "metric %s appears twice", m.Name())
		out[m.Name()] = m
	}
	return out
}

// attrKey writes a data point's attributes in a fixed order.
func attrKey(attrs pcommon.Map, keys ...string) string {
	s := ""
	for _, k := range keys {
		v, ok := attrs.Get(k)
		if !ok {
			s += k + "=<missing>,"
			continue
		}
		s += k + "=" + v.AsString() + ","
	}
	return s
}

// sumPoints checks a cumulative monotonic int sum and returns its values by
// attributes.
func sumPoints(t *testing.T, m pmetric.Metric, unit string, keys ...string) map[string]int64 {
	t.Helper()
	assert.Equal(t, unit, m.Unit(), m.Name())
	assert.NotEmpty(t, m.Description(), m.Name())
	require.Equal(t, pmetric.MetricTypeSum, m.Type(), m.Name())
	assert.True(t, m.Sum().IsMonotonic(), m.Name())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, m.Sum().AggregationTemporality(), m.Name())
	out := map[string]int64{}
	for i := 0; i < m.Sum().DataPoints().Len(); i++ {
		dp := m.Sum().DataPoints().At(i)
		assert.Equal(t, testStart, dp.StartTimestamp(), m.Name())
		assert.Equal(t, testNow, dp.Timestamp(), m.Name())
		assert.Equal(t, pmetric.NumberDataPointValueTypeInt, dp.ValueType(), m.Name())
		assert.Equal(t, len(keys), dp.Attributes().Len(), "%s: attributes %v", m.Name(), dp.Attributes().AsRaw())
		k := attrKey(dp.Attributes(), keys...)
		_, dup := out[k]
		require.False(t, dup, "%s: two points with %s", m.Name(), k)
		out[k] = dp.IntValue()
	}
	return out
}

type histPoint struct {
	count   uint64
	sum     float64
	bounds  []float64
	buckets []uint64
}

func histPoints(t *testing.T, m pmetric.Metric, unit string, keys ...string) map[string]histPoint {
	t.Helper()
	assert.Equal(t, unit, m.Unit(), m.Name())
	assert.NotEmpty(t, m.Description(), m.Name())
	require.Equal(t, pmetric.MetricTypeHistogram, m.Type(), m.Name())
	assert.Equal(t, pmetric.AggregationTemporalityCumulative, m.Histogram().AggregationTemporality(), m.Name())
	out := map[string]histPoint{}
	for i := 0; i < m.Histogram().DataPoints().Len(); i++ {
		dp := m.Histogram().DataPoints().At(i)
		assert.Equal(t, testStart, dp.StartTimestamp(), m.Name())
		assert.Equal(t, testNow, dp.Timestamp(), m.Name())
		assert.True(t, dp.HasSum(), m.Name())
		assert.Equal(t, len(keys), dp.Attributes().Len(), "%s: attributes %v", m.Name(), dp.Attributes().AsRaw())
		require.Equal(t, dp.ExplicitBounds().Len()+1, dp.BucketCounts().Len(), m.Name())
		var n uint64
		for _, c := range dp.BucketCounts().AsRaw() {
			n += c
		}
		assert.Equal(t, dp.Count(), n, "%s: count is the sum of the buckets", m.Name())
		out[attrKey(dp.Attributes(), keys...)] = histPoint{dp.Count(), dp.Sum(), dp.ExplicitBounds().AsRaw(), dp.BucketCounts().AsRaw()}
	}
	return out
}

// buckets builds bucket counts of length n from index: count pairs.
func buckets(n int, set map[int]uint64) []uint64 {
	b := make([]uint64, n)
	for i, c := range set {
		b[i] = c
	}
	return b
}

func TestToMetrics(t *testing.T) {
	md := convertAggregates(t, createDefaultConfig(), testAggregates())

	res := md.ResourceMetrics().At(0).Resource().Attributes()
	assert.Equal(t, map[string]any{"host.name": "host-a"}, res.AsRaw())

	ms := metricsByName(t, md)
	assert.ElementsMatch(t,
		[]string{"mremap.calls", "mremap.moves", "mremap.events.dropped", "mremap.size.delta", "mremap.duration"},
		keysOf(ms))

	calls := sumPoints(t, ms["mremap.calls"], "{call}", "process.executable.name", "mremap.resize", "mremap.move", "mremap.result")
	assert.Equal(t, map[string]int64{
		"process.executable.name=postgres,mremap.resize=grow,mremap.move=maymove,mremap.result=ok,":   10,
		"process.executable.name=postgres,mremap.resize=grow,mremap.move=none,mremap.result=ok,":      5,
		"process.executable.name=postgres,mremap.resize=none,mremap.move=fixed,mremap.result=ok,":     2,
		"process.executable.name=postgres,mremap.resize=grow,mremap.move=none,mremap.result=EINVAL,":  3,
		"process.executable.name=postgres,mremap.resize=none,mremap.move=fixed,mremap.result=EINVAL,": 4,
		"process.executable.name=java,mremap.resize=shrink,mremap.move=none,mremap.result=ok,":        7,
		"process.executable.name=java,mremap.resize=none,mremap.move=dontunmap,mremap.result=ok,":     1,
		"process.executable.name=java,mremap.resize=grow,mremap.move=maymove,mremap.result=ok,":       6,
		"process.executable.name=java,mremap.resize=none,mremap.move=maymove,mremap.result=ok,":       2,
		"process.executable.name=java,mremap.resize=grow,mremap.move=none,mremap.result=ENOMEM,":      1,
	}, calls)

	// Successful calls whose move is not none, by comm and move.
	moves := sumPoints(t, ms["mremap.moves"], "{move}", "process.executable.name", "mremap.move")
	assert.Equal(t, map[string]int64{
		"process.executable.name=postgres,mremap.move=maymove,": 10,
		"process.executable.name=postgres,mremap.move=fixed,":   2,
		"process.executable.name=java,mremap.move=dontunmap,":   1,
		"process.executable.name=java,mremap.move=maymove,":     8,
	}, moves)

	dropped := sumPoints(t, ms["mremap.events.dropped"], "{event}", "reason")
	assert.Equal(t, map[string]int64{
		"reason=ring_buffer_full,":  1,
		"reason=rate_limited,":      2,
		"reason=unpaired,":          0,
		"reason=probe_missed,":      4,
		"reason=cardinality_limit,": 0,
		"reason=malformed_record,":  5,
	}, dropped)

	size := histPoints(t, ms["mremap.size.delta"], "By", "process.executable.name", "mremap.resize")
	nSize := sizeDeltaMaxExp + 2
	assert.Equal(t, map[string]histPoint{
		"process.executable.name=postgres,mremap.resize=grow,": {
			count: 5, sum: 3*4096 + 2*8192, bounds: sizeDeltaBounds,
			buckets: buckets(nSize, map[int]uint64{12: 3, 13: 2}),
		},
		"process.executable.name=java,mremap.resize=shrink,": {
			count: 2, sum: 1 + 1<<50, bounds: sizeDeltaBounds,
			buckets: buckets(nSize, map[int]uint64{0: 1, nSize - 1: 1}),
		},
	}, size)

	dur := histPoints(t, ms["mremap.duration"], "s", "mremap.move", "mremap.result")
	nDur := durationMaxExp + 2
	assert.Equal(t, map[string]histPoint{
		"mremap.move=maymove,mremap.result=ok,": {
			count: 6, sum: float64(5*1000+1_000_000) / 1e9, bounds: durationBounds,
			buckets: buckets(nDur, map[int]uint64{10: 5, 20: 1}),
		},
		"mremap.move=none,mremap.result=EINVAL,": {
			count: 5, sum: float64(90+2*(1<<40)) / 1e9, bounds: durationBounds,
			buckets: buckets(nDur, map[int]uint64{5: 3, nDur - 1: 2}),
		},
	}, dur)
	assert.InDelta(t, 0.001005, dur["mremap.move=maymove,mremap.result=ok,"].sum, 1e-15, "seconds, not nanoseconds")
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestToMetricsNoCallsYet(t *testing.T) {
	// Before any call: the drop counters, all zero, and nothing else.
	ms := metricsByName(t, convertAggregates(t, createDefaultConfig(), &tracer.Aggregates{}))
	assert.ElementsMatch(t, []string{"mremap.events.dropped"}, keysOf(ms))
	dropped := sumPoints(t, ms["mremap.events.dropped"], "{event}", "reason")
	assert.Len(t, dropped, 6)
	for k, v := range dropped {
		assert.Zero(t, v, k)
	}
}

func TestToMetricsFailedCallsAreNoMoves(t *testing.T) {
	a := &tracer.Aggregates{Calls: []tracer.CallCount{
		{Comm: "x", Resize: mremap.ResizeNone, Move: mremap.MoveFixed, Errno: errnoEINVAL, Count: 3},
		{Comm: "x", Resize: mremap.ResizeNone, Move: mremap.MoveDontUnmap, Errno: errnoEINVAL, Count: 1},
		{Comm: "x", Resize: mremap.ResizeGrow, Move: mremap.MoveNone, Count: 9},
	}}
	ms := metricsByName(t, convertAggregates(t, createDefaultConfig(), a))
	assert.Contains(t, ms, "mremap.calls")
	assert.NotContains(t, ms, "mremap.moves", "no successful call moved a mapping")
}

func TestToMetricsDisabled(t *testing.T) {
	all := []string{"mremap.calls", "mremap.moves", "mremap.events.dropped", "mremap.size.delta", "mremap.duration"}
	tests := []struct {
		name    string
		modify  func(c *Config)
		removed []string
	}{
		{"moves", func(c *Config) { c.Metrics.MremapMoves.Enabled = false }, []string{"mremap.moves"}},
		{"calls", func(c *Config) { c.Metrics.MremapCalls.Enabled = false }, []string{"mremap.calls"}},
		{"dropped", func(c *Config) { c.Metrics.MremapEventsDropped.Enabled = false }, []string{"mremap.events.dropped"}},
		{"size.delta", func(c *Config) { c.Metrics.MremapSizeDelta.Enabled = false }, []string{"mremap.size.delta"}},
		{"duration", func(c *Config) { c.Metrics.MremapDuration.Enabled = false }, []string{"mremap.duration"}},
		{"a sum and a histogram", func(c *Config) {
			c.Metrics.MremapCalls.Enabled = false
			c.Metrics.MremapDuration.Enabled = false
		}, []string{"mremap.calls", "mremap.duration"}},
		{"every sum: the histograms still have their resource", func(c *Config) {
			c.Metrics.MremapCalls.Enabled = false
			c.Metrics.MremapMoves.Enabled = false
			c.Metrics.MremapEventsDropped.Enabled = false
		}, []string{"mremap.calls", "mremap.moves", "mremap.events.dropped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			tt.modify(cfg)
			md := convertAggregates(t, cfg, testAggregates())
			ms := metricsByName(t, md)
			var want []string
			for _, n := range all {
				if !contains(tt.removed, n) {
					want = append(want, n)
				}
			}
			assert.ElementsMatch(t, want, keysOf(ms))
			assert.Equal(t, map[string]any{"host.name": "host-a"},
				md.ResourceMetrics().At(0).Resource().Attributes().AsRaw())
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestToMetricsHostName(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.ResourceAttributes.HostName.Enabled = false
	md := convertAggregates(t, cfg, testAggregates())
	require.Equal(t, 1, md.ResourceMetrics().Len())
	_, ok := md.ResourceMetrics().At(0).Resource().Attributes().Get("host.name")
	assert.False(t, ok, "host.name disabled")

	c := newMetricConverter(createDefaultConfig(), receivertest.NewNopSettings(metadata.Type), "", testStart)
	md = c.toMetrics(testAggregates(), testNow)
	_, ok = md.ResourceMetrics().At(0).Resource().Attributes().Get("host.name")
	assert.False(t, ok, "no host name known")
}

// TestToMetricsRepeated checks that the converter starts afresh on each
// collection: cumulative values are the kernel's, not added up again.
func TestToMetricsRepeated(t *testing.T) {
	c := newMetricConverter(createDefaultConfig(), receivertest.NewNopSettings(metadata.Type), "host-a", testStart)
	first := c.toMetrics(testAggregates(), testNow)
	later := testNow + pcommon.Timestamp(10*time.Second)
	second := c.toMetrics(testAggregates(), later)
	assert.Equal(t, first.DataPointCount(), second.DataPointCount())

	ms := metricsByName(t, second)
	calls := ms["mremap.calls"].Sum().DataPoints()
	var total int64
	for i := 0; i < calls.Len(); i++ {
		total += calls.At(i).IntValue()
		assert.Equal(t, testStart, calls.At(i).StartTimestamp())
		assert.Equal(t, later, calls.At(i).Timestamp())
	}
	assert.Equal(t, int64(10+5+2+3+4+7+1+6+2+1), total)
	size := ms["mremap.size.delta"].Histogram().DataPoints()
	for i := 0; i < size.Len(); i++ {
		assert.Equal(t, testStart, size.At(i).StartTimestamp())
		assert.Equal(t, later, size.At(i).Timestamp())
	}
}
