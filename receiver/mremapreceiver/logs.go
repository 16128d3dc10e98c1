//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

const (
	// A batch of log records is sent when it holds maxBatch records, or
	// batchWait after its first record arrived.
	maxBatch  = 1024
	batchWait = 200 * time.Millisecond
	// The reader hands calls to the batcher in chunks of up to readChunk,
	// or fewer when the ring buffer holds no more: one channel operation
	// per chunk, not per call.
	readChunk = 64
)

// observedCall is a call with when the receiver read it (the record's
// ObservedTimestamp) and what /proc said of its process then: looked up at
// once, while short-lived processes still exist.
type observedCall struct {
	mremap.Call
	proc     processInfo
	observed time.Time
}

// startLogs starts the reader and the batcher.
func (r *mremapReceiver) startLogs() {
	calls := make(chan []observedCall, maxBatch/readChunk)
	r.chunks.free = make(chan []observedCall, maxBatch/readChunk+2)
	r.logsWG.Add(2)
	go r.readCalls(calls)
	go r.sendLogs(calls)
}

// readCalls moves calls from the ring buffer to the batcher. When the
// batcher falls behind, the channel fills, reading stops, and the kernel
// counts what no longer fits the ring buffer as ring_buffer_full.
func (r *mremapReceiver) readCalls(out chan<- []observedCall) {
	defer r.logsWG.Done()
	defer close(out)
	procs := newProcessCache("/proc", r.cfg.ResourceAttributes.ProcessCommandLine.Enabled)
	// Consecutive calls mostly come from the same process: its /proc
	// context is looked up once for the run.
	var (
		last     mremap.Process
		lastInfo processInfo
		haveLast bool
		observed time.Time
	)
	chunk := r.chunks.get()
	for {
		c, err := r.tracer.Read()
		if errors.Is(err, tracer.ErrClosed) {
			if len(chunk) > 0 {
				out <- chunk
			}
			return
		}
		if err != nil {
			r.set.Logger.Error("reading mremap calls", zap.Error(err))
			continue
		}
		if !haveLast || c.Process != last {
			last, lastInfo, haveLast = c.Process, procs.lookup(c.Process), true
		}
		// A chunk is read within microseconds: its calls share the time
		// its first one was read, unless a call returned after that time
		// (on a slow machine the helper's next calls end while the chunk
		// is still being read), whose record cannot have been read before
		// it was written.
		if len(chunk) == 0 || c.Exit.After(observed) {
			observed = time.Now()
		}
		chunk = append(chunk, observedCall{Call: c, proc: lastInfo, observed: observed})
		if len(chunk) == readChunk || !r.tracer.Pending() {
			out <- chunk
			chunk = r.chunks.get()
		}
	}
}

// chunkPool recycles the reader's chunks once the batcher copied them, so
// that reading allocates nothing per call.
type chunkPool struct{ free chan []observedCall }

func (p *chunkPool) get() []observedCall {
	select {
	case c := <-p.free:
		return c[:0]
	default:
		return make([]observedCall, 0, readChunk)
	}
}

func (p *chunkPool) put(c []observedCall) {
	clear(c) // drop the strings it refers to
	select {
	case p.free <- c:
	default:
	}
}

// sendLogs batches calls into plog.Logs and sends them down the pipeline.
// Without a metrics pipeline it also warns, every collection_interval, of
// the calls not delivered in full, so that they are not lost silently.
func (r *mremapReceiver) sendLogs(in <-chan []observedCall) {
	defer r.logsWG.Done()
	conv := newLogConverter(r.cfg, r.hostName, string(r.tracer.Probe()))
	batch := make([]observedCall, 0, maxBatch+readChunk)
	timer := time.NewTimer(batchWait)
	timer.Stop()
	var warnings <-chan time.Time
	var drops dropWarner
	if r.metrics == nil {
		ticker := time.NewTicker(r.cfg.CollectionInterval)
		defer ticker.Stop()
		warnings = ticker.C
		defer func() { drops.warn(r) }()
	}
	for {
		select {
		case chunk, ok := <-in:
			if !ok {
				r.flush(conv, batch)
				return
			}
			if len(batch) == 0 {
				timer.Reset(batchWait)
			}
			batch = append(batch, chunk...)
			r.chunks.put(chunk)
			if len(batch) >= maxBatch {
				timer.Stop()
				batch = r.flush(conv, batch)
			}
		case <-timer.C:
			batch = r.flush(conv, batch)
		case <-warnings:
			drops.warn(r)
		}
	}
}

// flush sends a batch and returns it emptied.
func (r *mremapReceiver) flush(conv *logConverter, batch []observedCall) []observedCall {
	if len(batch) == 0 {
		return batch
	}
	ld := conv.toLogs(batch)
	ctx := r.obs.StartLogsOp(context.Background())
	err := r.logs.ConsumeLogs(ctx, ld)
	r.obs.EndLogsOp(ctx, metadata.Type.String(), len(batch), err)
	if err != nil {
		r.set.Logger.Warn("the next consumer refused mremap log records", zap.Int("records", len(batch)), zap.Error(err))
	}
	return batch[:0]
}

// dropWarner logs the calls not delivered in full since its last warning,
// for pipelines that do not carry mremap.events.dropped.
type dropWarner struct{ last tracer.Drops }

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
