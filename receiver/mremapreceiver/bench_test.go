package mremapreceiver

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/xpdata"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

// benchCalls is n calls spread round-robin over procs processes, a mix of
// grows, shrinks, moves and failures.
func benchCalls(n, procs int) []observedCall {
	const page = 4096
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	calls := make([]observedCall, n)
	for i := range calls {
		p := i % procs
		c := mremap.Call{
			Enter:    base.Add(time.Duration(i) * time.Microsecond),
			Exit:     base.Add(time.Duration(i)*time.Microsecond + 2*time.Microsecond),
			Duration: 2 * time.Microsecond,
			Process: mremap.Process{
				PID:  uint32(1000 + p),
				PPID: 1,
				UID:  1000,
				Comm: fmt.Sprintf("proc-%d", p),
			},
			TID:        uint32(1000 + p),
			OldAddress: 0x7f3a2c000000 + uint64(i)*16*page,
			OldSize:    page,
			NewSize:    2 * page,
		}
		switch i % 4 {
		case 0: // grow in place
			c.Return = int64(c.OldAddress)
		case 1: // maymove
			c.Flags = mremap.FlagMayMove
			c.Return = int64(c.OldAddress + 0x100000)
			c.Move = mremap.MoveMayMove
		case 2: // fixed
			c.Flags = mremap.FlagMayMove | mremap.FlagFixed
			c.NewAddress = c.OldAddress + 0x200000
			c.Return = int64(c.NewAddress)
			c.Move = mremap.MoveFixed
		case 3: // EINVAL
			c.OldAddress++
			c.Flags = mremap.FlagMayMove
			c.Return, c.Errno = -22, 22
		}
		c.Resize = mremap.ResizeGrow
		calls[i] = observedCall{Call: c, proc: processInfo{
			exePath:     fmt.Sprintf("/usr/bin/proc-%d", p),
			containerID: fmt.Sprintf("%064x", p),
		}, observed: time.Now()}
	}
	return calls
}

// BenchmarkToLogs converts a batch of maxBatch calls of 8 processes into one
// plog.Logs, as the receiver does, and reports the cost per record.
func BenchmarkToLogs(b *testing.B) {
	calls := benchCalls(maxBatch, 8)
	benchToLogs(b, calls)
}

// BenchmarkToLogsLoadGenerator converts a batch of maxBatch calls shaped as
// make bench's load generator makes them with the default configuration:
// one process shrinking and growing an anonymous mapping in place (flags
// 0, success), the mapping looked up (vma_lookup), 16 attributes a record.
func BenchmarkToLogsLoadGenerator(b *testing.B) {
	const page = 4096
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	calls := make([]observedCall, maxBatch)
	for i := range calls {
		c := mremap.Call{
			Enter:      base.Add(time.Duration(i) * time.Microsecond),
			Exit:       base.Add(time.Duration(i)*time.Microsecond + time.Microsecond),
			Duration:   time.Microsecond,
			Process:    mremap.Process{PID: 4242, PPID: 1, UID: 0, Comm: "mremap-helper", StartTime: 123456789},
			TID:        4242,
			OldAddress: 0x7f3a2c000000,
			OldSize:    2 * page,
			NewSize:    page,
			Return:     0x7f3a2c000000,
			Resize:     mremap.ResizeShrink,
			VMA:        mremap.VMA{Found: true, Permissions: "rw-p"},
		}
		if i%2 == 1 {
			c.OldSize, c.NewSize, c.Resize = page, 2*page, mremap.ResizeGrow
		}
		calls[i] = observedCall{Call: c, proc: processInfo{exePath: "/usr/local/bin/mremap-helper"}, observed: time.Now()}
	}
	benchToLogs(b, calls)
}

// BenchmarkPdataFloor builds what BenchmarkToLogsLoadGenerator's batch
// becomes, with constants and nothing else: one resource, maxBatch log records
// with a body and 16 attributes each (9 ints, 7 strings). pdata allocates a
// record, its attribute slice and every value apart, whoever fills them:
// this is the least a producer of these records pays, to compare the
// receiver's cost per record with.
func BenchmarkPdataFloor(b *testing.B) {
	body := "mremap(0x7f3a2c000000, 8192, 4096, 0) = 0x7f3a2c000000"
	var mb xpdata.MapBuilder
	benchRecords(b, maxBatch, func() plog.Logs {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("host.name", "bench-host")
		lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
		lrs.EnsureCapacity(maxBatch)
		for i := range maxBatch {
			lr := lrs.AppendEmpty()
			lr.SetTimestamp(pcommon.Timestamp(i))
			lr.Body().SetStr(body)
			mb.EnsureCapacity(16)
			for _, k := range []string{"a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"} {
				mb.AppendEmpty(k).SetInt(int64(i))
			}
			for _, k := range []string{"s0", "s1", "s2", "s3", "s4", "s5", "s6"} {
				mb.AppendEmpty(k).SetStr(k)
			}
			mb.UnsafeIntoMap(lr.Attributes())
		}
		return ld
	})
}

// benchToLogs converts calls into one plog.Logs per op, as the receiver
// does a batch, and reports per record: the wall-clock time, the process's
// CPU time (getrusage: the garbage collector's work on other threads
// included, which is what the collector pays), the allocations and bytes.
func benchToLogs(b *testing.B, calls []observedCall) {
	c := newLogConverter(createDefaultConfig(), "bench-host", string(tracer.ProbeTracepoint))
	benchRecords(b, len(calls), func() plog.Logs { return c.toLogs(calls) })
}

// benchRecords runs build, which makes n log records, once per op.
func benchRecords(b *testing.B, n int, build func() plog.Logs) {
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := processCPU(b)
	for b.Loop() {
		if ld := build(); ld.LogRecordCount() != n {
			b.Fatalf("%d log records, want %d", ld.LogRecordCount(), n)
		}
	}
	cpu := processCPU(b) - cpu0
	runtime.ReadMemStats(&after)
	records := float64(b.N * n)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/records, "ns/record")
	b.ReportMetric(float64(cpu.Nanoseconds())/records, "cpu-ns/record")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/records, "allocs/record")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/records, "B/record")
}

// processCPU is the user and system time of this process so far.
func processCPU(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchAggregates has 25 process names, each with 8 call outcomes (200
// call keys), a grow and a shrink size histogram each, and one duration
// histogram per move kind and result.
func benchAggregates() *tracer.Aggregates {
	const errnoEINVAL, errnoENOMEM = 22, 12
	outcomes := []struct {
		resize mremap.Resize
		move   mremap.Move
		errno  uint16
	}{
		{mremap.ResizeGrow, mremap.MoveNone, 0},
		{mremap.ResizeShrink, mremap.MoveNone, 0},
		{mremap.ResizeGrow, mremap.MoveMayMove, 0},
		{mremap.ResizeNone, mremap.MoveFixed, 0},
		{mremap.ResizeNone, mremap.MoveDontUnmap, 0},
		{mremap.ResizeGrow, mremap.MoveNone, errnoEINVAL},
		{mremap.ResizeNone, mremap.MoveFixed, errnoEINVAL},
		{mremap.ResizeGrow, mremap.MoveNone, errnoENOMEM},
	}
	hist := func(seed int) tracer.Histogram {
		var h tracer.Histogram
		for k := 10; k < 24; k++ {
			h.Counts[k] = uint64(seed*k + 1)
			h.Sum += h.Counts[k] << k
		}
		return h
	}
	a := &tracer.Aggregates{Drops: tracer.Drops{RingBufferFull: 3}}
	for p := 0; p < 25; p++ {
		comm := fmt.Sprintf("proc-%d", p)
		for i, o := range outcomes {
			a.Calls = append(a.Calls, tracer.CallCount{
				Comm: comm, Resize: o.resize, Move: o.move, Errno: o.errno, Count: uint64(100*p + i + 1),
			})
		}
		a.SizeDeltas = append(a.SizeDeltas,
			tracer.SizeDeltas{Comm: comm, Resize: mremap.ResizeGrow, Histogram: hist(p)},
			tracer.SizeDeltas{Comm: comm, Resize: mremap.ResizeShrink, Histogram: hist(p + 1)})
	}
	seen := map[[2]uint16]bool{}
	for i, o := range outcomes {
		k := [2]uint16{uint16(o.move), o.errno}
		if seen[k] {
			continue
		}
		seen[k] = true
		a.Durations = append(a.Durations, tracer.Durations{Move: o.move, Errno: o.errno, Histogram: hist(i)})
	}
	return a
}

func BenchmarkToMetrics(b *testing.B) {
	a := benchAggregates()
	start := pcommon.NewTimestampFromTime(time.Now())
	c := newMetricConverter(createDefaultConfig(), receivertest.NewNopSettings(metadata.Type), "bench-host", start)
	now := pcommon.NewTimestampFromTime(time.Now())
	b.ReportAllocs()
	for b.Loop() {
		md := c.toMetrics(a, now)
		if md.DataPointCount() == 0 {
			b.Fatal("no data points")
		}
	}
	b.Logf("%d call keys, %d data points", len(a.Calls), c.toMetrics(a, now).DataPointCount())
}
