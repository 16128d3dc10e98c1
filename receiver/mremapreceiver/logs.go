//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"context"
	"errors"
	"os"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

const (
	// A batch of log records is sent when it holds maxBatch records, or
	// batchWait after its first record was read.
	maxBatch  = 512
	batchWait = 200 * time.Millisecond
	// Calls read one after the other share the time the first of them
	// was read (their ObservedTimestamp), up to observedRun of them.
	observedRun = 64
)

// startLogs starts the reader, which builds the batches of log records,
// and the sender, which sends them down the pipeline.
func (r *mremapReceiver) startLogs() {
	batches := make(chan plog.Logs)
	r.logsWG.Add(2)
	go r.readLogs(batches)
	go r.sendLogs(batches)
}

// readLogs reads the calls from the ring buffer and turns each into a log
// record at once, in the batch it hands to the sender when full or
// batchWait old. While the sender is busy with the batch before, the
// reader goes on filling the next; when that one is full too, reading
// stops, and the kernel counts what no longer fits the ring buffer as
// ring_buffer_full. Without a metrics pipeline it also warns, every
// collection_interval, of the calls not delivered in full, so that they
// are not lost silently.
func (r *mremapReceiver) readLogs(out chan<- plog.Logs) {
	defer r.logsWG.Done()
	defer close(out)
	b := logBatcher{
		conv:  newLogConverter(r.cfg, r.hostName, string(r.tracer.Probe())),
		procs: newProcessCache("/proc", r.cfg.ResourceAttributes.ProcessCommandLine.Enabled),
		out:   out,
	}
	if r.metrics == nil {
		b.drops.every = r.cfg.CollectionInterval
		b.drops.next = time.Now().Add(b.drops.every)
		defer b.drops.warn(r)
	}
	// With call_stack, the calls wait in the stack stage for their
	// stacks' symbols, in the order read, and go into the batch from it.
	var stacks *stackStage
	if r.cfg.CallStack {
		stacks = newStackStage(r.set.Logger)
	}
	for {
		// The next read waits for the kernel when the ring is empty.
		waits := !r.tracer.Pending()
		var due time.Time // the zero time: no batch to send
		if b.conv.len() > 0 {
			due = b.due
		}
		c, err := r.tracer.ReadUntil(earliest(earliest(due, b.drops.next), stacks.next()))
		switch {
		case err == nil && stacks != nil:
			stacks.hold(b.observe(&c, waits))
		case err == nil:
			b.add(&c, waits)
		case errors.Is(err, os.ErrDeadlineExceeded):
			if b.conv.len() > 0 && !time.Now().Before(b.due) {
				b.send()
			}
		case errors.Is(err, tracer.ErrClosed):
			stacks.drain(b.addObserved)
			b.send()
			return
		default:
			r.set.Logger.Error("reading mremap calls", zap.Error(err))
		}
		stacks.release(b.addObserved, false)
		// Between reads that waited, and after each batch sent.
		if err != nil || b.conv.len() == 0 {
			b.drops.due(r)
		}
	}
}

// logBatcher is the reader's state: the batch being built and what it
// knows of the calls read last.
type logBatcher struct {
	conv  *logConverter
	procs *processCache
	out   chan<- plog.Logs
	due   time.Time // when the batch being built is sent
	drops dropWarner

	// Consecutive calls mostly come from the same process: its /proc
	// context is looked up once for the run.
	last     mremap.Process
	lastInfo processInfo
	haveLast bool
	now      time.Time // when the current run of calls began to be read
	observed pcommon.Timestamp
	run      int // calls the run may still take
}

// add turns a call into a log record of the batch, and sends the batch
// when full or due; waited says the ring buffer was empty before it.
func (b *logBatcher) add(c *mremap.Call, waited bool) {
	b.observeRun(c, waited)
	b.append(c, &b.lastInfo, b.observed, b.now)
}

// observe is the call as read now, with what /proc says of its process,
// for a log record made later (addObserved).
func (b *logBatcher) observe(c *mremap.Call, waited bool) *observedCall {
	b.observeRun(c, waited)
	return &observedCall{Call: *c, proc: b.lastInfo, observed: b.now}
}

// addObserved turns a call observed earlier into a log record of the
// batch, and sends the batch when full or due.
func (b *logBatcher) addObserved(oc *observedCall) {
	b.append(&oc.Call, &oc.proc, pcommon.NewTimestampFromTime(oc.observed), time.Now())
}

// observeRun looks up the call's process, unless the call before was the
// same process's, and when it was read.
func (b *logBatcher) observeRun(c *mremap.Call, waited bool) {
	if !b.haveLast || c.Process != b.last {
		b.last, b.lastInfo, b.haveLast = c.Process, b.procs.lookup(c.Process), true
	}
	// Calls read one after the other share the time the first was read,
	// unless a call returned after that time (on a slow machine the
	// helper's next calls end while the run is still being read), whose
	// record cannot have been read before it was written.
	if waited || b.run == 0 || c.Exit.After(b.now) {
		b.now, b.run = time.Now(), observedRun
		b.observed = pcommon.NewTimestampFromTime(b.now)
	}
	b.run--
}

// append adds the call's log record to the batch at now, and sends the
// batch when full or due.
func (b *logBatcher) append(c *mremap.Call, info *processInfo, observed pcommon.Timestamp, now time.Time) {
	if b.conv.len() == 0 {
		b.due = now.Add(batchWait)
	}
	b.conv.add(c, info, observed)
	if b.conv.len() >= maxBatch || !now.Before(b.due) {
		b.send()
	}
}

// send hands the batch being built, if any, to the sender.
func (b *logBatcher) send() {
	if b.conv.len() > 0 {
		b.out <- b.conv.take()
	}
}

// earliest is the earlier of two times, the zero time standing for never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || !b.IsZero() && b.Before(a) {
		return b
	}
	return a
}

// sendLogs sends the batches down the pipeline.
func (r *mremapReceiver) sendLogs(in <-chan plog.Logs) {
	defer r.logsWG.Done()
	for ld := range in {
		n := ld.LogRecordCount()
		ctx := r.obs.StartLogsOp(context.Background())
		err := r.logs.ConsumeLogs(ctx, ld)
		r.obs.EndLogsOp(ctx, metadata.Type.String(), n, err)
		if err != nil {
			r.set.Logger.Warn("the next consumer refused mremap log records", zap.Int("records", n), zap.Error(err))
		}
	}
}

// dropWarner logs the calls not delivered in full since its last warning,
// every collection_interval, for pipelines that do not carry
// mremap.events.dropped. Its zero value never warns.
type dropWarner struct {
	last  tracer.Drops
	every time.Duration
	next  time.Time // the zero time: never
}

// due warns if the time has come.
func (w *dropWarner) due(r *mremapReceiver) {
	if w.next.IsZero() || time.Now().Before(w.next) {
		return
	}
	w.next = time.Now().Add(w.every)
	w.warn(r)
}

func (w *dropWarner) warn(r *mremapReceiver) {
	a, err := r.tracer.ReadAggregates()
	if err != nil {
		r.set.Logger.Error("reading mremap aggregates", zap.Error(err))
		return
	}
	last := dropsByReason(w.last)
	w.last = a.Drops
	var fields []zap.Field
	for i, d := range dropsByReason(a.Drops) {
		if d.count > last[i].count {
			fields = append(fields, zap.Uint64(d.reason.String(), d.count-last[i].count))
		}
	}
	if len(fields) > 0 {
		r.set.Logger.Warn("mremap calls not delivered in full since the last report (add a metrics pipeline for mremap.events.dropped)", fields...)
	}
}
