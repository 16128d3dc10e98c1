package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
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
	transport = "ebpf"
)

type mremapReceiver struct {
	cfg     *Config
	set     receiver.Settings
	logs    consumer.Logs    // nil without a logs pipeline
	metrics consumer.Metrics // nil without a metrics pipeline
	forget  func()           // leaves the shared map

	obs      *receiverhelper.ObsReport
	hostName string

	startOnce, stopOnce sync.Once
	startErr            error
	tracer              *tracer.Tracer
	cancel              context.CancelFunc
	logsWG, metricsWG   sync.WaitGroup
	metricsConv         *metricConverter
	lastDrops           tracer.Drops // for logs-only pipelines: the drops last warned about
	chunks              chunkPool    // chunks of calls, from the reader to the batcher and back
}

func newReceiver(cfg *Config, set receiver.Settings) (*mremapReceiver, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{
		ReceiverID:             set.ID,
		Transport:              transport,
		ReceiverCreateSettings: set,
	})
	if err != nil {
		return nil, err
	}
	host, err := os.Hostname()
	if err != nil {
		set.Logger.Warn("cannot read the host name; host.name is left out", zap.Error(err))
	}
	return &mremapReceiver{cfg: cfg, set: set, obs: obs, hostName: host}, nil
}

// Start loads and attaches the probes once, for every pipeline the receiver
// serves, and starts reading.
func (r *mremapReceiver) Start(_ context.Context, _ component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start() })
	return r.startErr
}

func (r *mremapReceiver) start() error {
	opts := r.cfg.tracerOptions(r.logs != nil)
	ids, err := r.cfg.cgroupIDs()
	if err != nil {
		return fmt.Errorf("mremap receiver: %w", err)
	}
	opts.Filter.CgroupIDs = ids
	t, err := tracer.New(opts)
	if err != nil {
		return fmt.Errorf("mremap receiver: %w", err)
	}
	r.tracer = t
	r.set.Logger.Info("mremap probes attached",
		zap.String("probe", string(t.Probe())),
		zap.String("reason", t.Reason()),
		zap.Bool("logs", r.logs != nil),
		zap.Bool("metrics", r.metrics != nil))

	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if r.logs != nil {
		calls := make(chan []observedCall, maxBatch/readChunk)
		r.chunks.free = make(chan []observedCall, maxBatch/readChunk+2)
		r.logsWG.Add(2)
		go r.readCalls(calls)
		go r.sendLogs(calls)
	}
	if r.metrics != nil {
		r.metricsConv = newMetricConverter(r.cfg, r.set, r.hostName, pcommon.NewTimestampFromTime(time.Now()))
	}
	// Without a metrics pipeline the aggregates are still read, so that
	// drops are not lost silently: they are logged.
	r.metricsWG.Add(1)
	go r.collect(ctx)
	return nil
}

// observedCall is a call with when the receiver read it (the record's
// ObservedTimestamp) and what /proc said of its process then: looked up at
// once, while short-lived processes still exist.
type observedCall struct {
	mremap.Call
	proc     processInfo
	observed time.Time
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
	)
	chunk := r.chunks.get()
	var observed time.Time
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
		// its first one was read.
		if len(chunk) == 0 {
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
func (r *mremapReceiver) sendLogs(in <-chan []observedCall) {
	defer r.logsWG.Done()
	conv := newLogConverter(r.cfg, r.hostName, string(r.tracer.Probe()))
	batch := make([]observedCall, 0, maxBatch+readChunk)
	timer := time.NewTimer(batchWait)
	timer.Stop()
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ld := conv.toLogs(batch)
		ctx := r.obs.StartLogsOp(context.Background())
		err := r.logs.ConsumeLogs(ctx, ld)
		r.obs.EndLogsOp(ctx, metadata.Type.String(), len(batch), err)
		if err != nil {
			r.set.Logger.Warn("the next consumer refused mremap log records", zap.Int("records", len(batch)), zap.Error(err))
		}
		batch = batch[:0]
	}
	for {
		select {
		case chunk, ok := <-in:
			if !ok {
				flush()
				return
			}
			if len(batch) == 0 {
				timer.Reset(batchWait)
			}
			batch = append(batch, chunk...)
			r.chunks.put(chunk)
			if len(batch) >= maxBatch {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// collect reads the kernel aggregates every collection_interval.
func (r *mremapReceiver) collect(ctx context.Context) {
	defer r.metricsWG.Done()
	ticker := time.NewTicker(r.cfg.CollectionInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		r.collectOnce(ctx)
	}
}

// collectOnce reads the aggregates and sends them as metrics, or, without a
// metrics pipeline, logs the drops that grew.
func (r *mremapReceiver) collectOnce(ctx context.Context) {
	a, err := r.tracer.ReadAggregates()
	if err != nil {
		r.set.Logger.Error("reading mremap aggregates", zap.Error(err))
		return
	}
	if r.metrics == nil {
		r.warnDrops(a.Drops)
		return
	}
	md := r.metricsConv.toMetrics(a, pcommon.NewTimestampFromTime(time.Now()))
	if md.DataPointCount() == 0 {
		return // every metric is disabled
	}
	octx := r.obs.StartMetricsOp(ctx)
	err = r.metrics.ConsumeMetrics(octx, md)
	r.obs.EndMetricsOp(octx, metadata.Type.String(), md.DataPointCount(), err)
	if err != nil {
		r.set.Logger.Warn("the next consumer refused mremap metrics", zap.Error(err))
	}
}

// warnDrops logs the calls that were not delivered since the last warning,
// for pipelines that do not carry mremap.events.dropped.
func (r *mremapReceiver) warnDrops(d tracer.Drops) {
	last := r.lastDrops.ByReason()
	r.lastDrops = d
	var fields []zap.Field
	for i, c := range d.ByReason() {
		if c.Count > last[i].Count {
			fields = append(fields, zap.Uint64(c.Reason, c.Count-last[i].Count))
		}
	}
	if len(fields) > 0 {
		r.set.Logger.Warn("mremap calls not delivered in full since the last report (add a metrics pipeline for mremap.events.dropped)", fields...)
	}
}

// Shutdown detaches the probes, delivers the calls still in the ring
// buffer, and unloads everything.
func (r *mremapReceiver) Shutdown(context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		if r.forget != nil {
			r.forget()
		}
		if r.tracer == nil {
			return
		}
		// Stop collecting, detach (Read then returns what is left in the
		// ring buffer, then ErrClosed), deliver the rest, report the
		// aggregates one last time, and unload.
		r.cancel()
		r.metricsWG.Wait()
		err = r.tracer.Stop()
		r.logsWG.Wait()
		r.collectOnce(context.Background())
		err = errors.Join(err, r.tracer.Close())
	})
	return err
}
