//go:build linux

package mremapcheck

import (
	"fmt"
	"math"
	"os"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// Metrics checks the metrics of the last complete emission in mds: the
// helper's counts in mremap.calls, mremap.moves and mremap.size.delta, the
// mremap.duration histogram (which has no process attribute, so the
// receiver must filter on the helper's comm), and every reason of
// mremap.events.dropped at zero.
func Metrics(md pmetric.Metrics, probe string) []string {
	var p problems
	if md.ResourceMetrics().Len() != 1 {
		p.add("%d resources, want 1", md.ResourceMetrics().Len())
		return p
	}
	rm := md.ResourceMetrics().At(0)
	host, _ := os.Hostname()
	checkAttributes(&p, "metrics resource", rm.Resource().Attributes(), map[string]any{"host.name": host})
	metrics := map[string]pmetric.Metric{}
	for i := 0; i < rm.ScopeMetrics().Len(); i++ {
		sm := rm.ScopeMetrics().At(i)
		expect(&p, "scope name", sm.Scope().Name(), "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver")
		for j := 0; j < sm.Metrics().Len(); j++ {
			metrics[sm.Metrics().At(j).Name()] = sm.Metrics().At(j)
		}
	}
	for _, name := range []string{"mremap.calls", "mremap.moves", "mremap.size.delta", "mremap.duration", "mremap.events.dropped", "mremap.signals",
		"mremap.process.map_count", "mremap.map_count.limit"} {
		if _, ok := metrics[name]; !ok {
			p.add("metric %s missing", name)
		}
	}
	if len(p) > 0 {
		return p
	}

	wantCalls := map[string]int64{}
	wantMoves := map[string]int64{}
	wantDur := map[string]uint64{}
	type sizeWant struct{ count, sum uint64 }
	wantSize := map[string]sizeWant{}
	wantSignals := map[string]int64{}
	for _, e := range mremaptest.Expected {
		if signals := mremaptest.RaisedHere(probe, e.Signals); signals != "" {
			for _, s := range strings.Split(signals, "|") {
				wantSignals[s]++
			}
		}
		wantCalls[e.Resize+"/"+e.Move+"/"+e.Result]++
		wantDur[e.Move+"/"+e.Result]++
		if e.Result == "ok" && e.Move != "none" {
			wantMoves[e.Move]++
		}
		if e.Result == "ok" && e.Resize != "none" {
			w := wantSize[e.Resize]
			wantSize[e.Resize] = sizeWant{w.count + 1, w.sum + uint64(abs(e.SizeDelta))}
		}
	}

	checkSum(&p, metrics["mremap.calls"], "{call}", wantCalls, func(a pcommon.Map) (string, bool) {
		if str(a, "process.executable.name") != mremaptest.Comm {
			return "", false
		}
		return str(a, "mremap.resize") + "/" + str(a, "mremap.move") + "/" + str(a, "mremap.result"), true
	}, 4)
	checkSum(&p, metrics["mremap.moves"], "{move}", wantMoves, func(a pcommon.Map) (string, bool) {
		if str(a, "process.executable.name") != mremaptest.Comm {
			return "", false
		}
		return str(a, "mremap.move"), true
	}, 2)
	checkSum(&p, metrics["mremap.signals"], "{call}", wantSignals, func(a pcommon.Map) (string, bool) {
		if str(a, "process.executable.name") != mremaptest.Comm {
			return "", false
		}
		return str(a, "mremap.signal"), true
	}, 2)
	checkSum(&p, metrics["mremap.events.dropped"], "{event}", map[string]int64{
		"ring_buffer_full": 0, "rate_limited": 0, "unpaired": 0, "probe_missed": 0, "cardinality_limit": 0, "malformed_record": 0,
	}, func(a pcommon.Map) (string, bool) { return str(a, "reason"), true }, 1)

	checkMapCounts(&p, metrics["mremap.process.map_count"], metrics["mremap.map_count.limit"])

	size := metrics["mremap.size.delta"]
	expect(&p, "mremap.size.delta unit", size.Unit(), "By")
	gotSize := map[string]sizeWant{}
	checkHistogram(&p, size, 40, 1, func(dp pmetric.HistogramDataPoint) {
		a := dp.Attributes()
		if str(a, "process.executable.name") != mremaptest.Comm {
			return
		}
		expect(&p, "mremap.size.delta attributes", a.Len(), 2)
		// Every resize is one page: 4096 = 2^12 is in the bucket (2^11, 2^12].
		if dp.BucketCounts().At(12) != dp.Count() {
			p.add("mremap.size.delta %s: buckets %v, want all %d in bucket 12", str(a, "mremap.resize"), dp.BucketCounts().AsRaw(), dp.Count())
		}
		gotSize[str(a, "mremap.resize")] = sizeWant{dp.Count(), uint64(dp.Sum())}
	})
	if fmt.Sprint(sorted(gotSize)) != fmt.Sprint(sorted(wantSize)) {
		p.add("mremap.size.delta (count, sum) by resize = %v, want %v", sorted(gotSize), sorted(wantSize))
	}

	dur := metrics["mremap.duration"]
	expect(&p, "mremap.duration unit", dur.Unit(), "s")
	gotDur := map[string]uint64{}
	checkHistogram(&p, dur, 34, 1e-9, func(dp pmetric.HistogramDataPoint) {
		a := dp.Attributes()
		expect(&p, "mremap.duration attributes", a.Len(), 2)
		if dp.Sum() <= 0 || dp.Sum() > 10 {
			p.add("mremap.duration %s/%s sum %v s", str(a, "mremap.move"), str(a, "mremap.result"), dp.Sum())
		}
		gotDur[str(a, "mremap.move")+"/"+str(a, "mremap.result")] += dp.Count()
	})
	if fmt.Sprint(sorted(gotDur)) != fmt.Sprint(sorted(wantDur)) {
		p.add("mremap.duration counts = %v, want %v", sorted(gotDur), sorted(wantDur))
	}
	return p
}

func checkSum(p *problems, m pmetric.Metric, unit string, want map[string]int64, key func(pcommon.Map) (string, bool), nattrs int) {
	expect(p, m.Name()+" unit", m.Unit(), unit)
	if m.Type() != pmetric.MetricTypeSum {
		p.add("%s is a %v, want Sum", m.Name(), m.Type())
		return
	}
	s := m.Sum()
	expect(p, m.Name()+" monotonic", s.IsMonotonic(), true)
	expect(p, m.Name()+" temporality", s.AggregationTemporality(), pmetric.AggregationTemporalityCumulative)
	got := map[string]int64{}
	for i := 0; i < s.DataPoints().Len(); i++ {
		dp := s.DataPoints().At(i)
		k, ok := key(dp.Attributes())
		if !ok {
			continue
		}
		expect(p, m.Name()+" attribute count", dp.Attributes().Len(), nattrs)
		if dp.StartTimestamp() == 0 || dp.StartTimestamp() > dp.Timestamp() {
			p.add("%s: start %v, time %v", m.Name(), dp.StartTimestamp(), dp.Timestamp())
		}
		got[k] += dp.IntValue()
	}
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) {
		p.add("%s = %v, want %v", m.Name(), sorted(got), sorted(want))
	}
}

func checkHistogram(p *problems, m pmetric.Metric, maxExp int, scale float64, each func(pmetric.HistogramDataPoint)) {
	if m.Type() != pmetric.MetricTypeHistogram {
		p.add("%s is a %v, want Histogram", m.Name(), m.Type())
		return
	}
	h := m.Histogram()
	expect(p, m.Name()+" temporality", h.AggregationTemporality(), pmetric.AggregationTemporalityCumulative)
	for i := 0; i < h.DataPoints().Len(); i++ {
		dp := h.DataPoints().At(i)
		b := dp.ExplicitBounds()
		if b.Len() != maxExp+1 || dp.BucketCounts().Len() != maxExp+2 {
			p.add("%s: %d bounds and %d buckets, want %d and %d", m.Name(), b.Len(), dp.BucketCounts().Len(), maxExp+1, maxExp+2)
			continue
		}
		for k := 0; k < b.Len(); k++ {
			if want := math.Ldexp(scale, k); math.Abs(b.At(k)-want) > want*1e-12 {
				p.add("%s: bound %d = %v, want %v", m.Name(), k, b.At(k), want)
				break
			}
		}
		var n uint64
		for _, c := range dp.BucketCounts().AsRaw() {
			n += c
		}
		expect(p, m.Name()+" count = sum of buckets", dp.Count(), n)
		if dp.StartTimestamp() == 0 || dp.StartTimestamp() > dp.Timestamp() {
			p.add("%s: start %v, time %v", m.Name(), dp.StartTimestamp(), dp.Timestamp())
		}
		each(dp)
	}
}

// checkMapCounts checks the helper's map count (a few dozen mappings) and
// the limit (vm.max_map_count).
func checkMapCounts(p *problems, count, limit pmetric.Metric) {
	expect(p, "mremap.process.map_count unit", count.Unit(), "{mapping}")
	found := false
	for _, dp := range count.Gauge().DataPoints().All() {
		if str(dp.Attributes(), "process.executable.name") == mremaptest.Comm {
			found = true
			if dp.IntValue() < 10 || dp.IntValue() > 1<<20 {
				p.add("mremap.process.map_count of %s = %d", mremaptest.Comm, dp.IntValue())
			}
		}
	}
	if !found {
		p.add("no mremap.process.map_count of %s", mremaptest.Comm)
	}
	want, err := mremaptest.MaxMapCount()
	if err != nil {
		p.add("read vm.max_map_count: %v", err)
		return
	}
	if dps := limit.Gauge().DataPoints(); dps.Len() != 1 || dps.At(0).IntValue() != int64(want) {
		p.add("mremap.map_count.limit = %v, want %d", dps.At(0).IntValue(), want)
	}
}
