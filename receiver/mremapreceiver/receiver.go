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
	tracer              *tracer.Tracer
	cancel              context.CancelFunc
	wg                  sync.WaitGroup
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
	var err error
	r.startOnce.Do(func() { err = r.start() })
	return err
}

func (r *mremapReceiver) start() error {
	t, err := tracer.New(r.cfg.tracerOptions(r.logs != nil))
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
		calls := make(chan observedCall, maxBatch)
		r.wg.Add(2)
		go r.readCalls(calls)
		go r.sendLogs(calls)
	}
	if r.metrics != nil {
		r.wg.Add(1)
		go r.sendMetrics(ctx, pcommon.NewTimestampFromTime(time.Now()))
	}
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
func (r *mremapReceiver) readCalls(out chan<- observedCall) {
	defer r.wg.Done()
	defer close(out)
	procs := newProcessCache("/proc")
	for {
		c, err := r.tracer.Read()
		if errors.Is(err, tracer.ErrClosed) {
			return
		}
		if err != nil {
			r.set.Logger.Error("reading mremap calls", zap.Error(err))
			continue
		}
		out <- observedCall{Call: c, proc: procs.lookup(c.Process.PID, c.Process.Comm), observed: time.Now()}
	}
}

// sendLogs batches calls into plog.Logs and sends them down the pipeline.
func (r *mremapReceiver) sendLogs(in <-chan observedCall) {
	defer r.wg.Done()
	conv := newLogConverter(r.cfg, r.hostName, string(r.tracer.Probe()))
	batch := make([]observedCall, 0, maxBatch)
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
		case c, ok := <-in:
			if !ok {
				flush()
				return
			}
			if len(batch) == 0 {
				timer.Reset(batchWait)
			}
			batch = append(batch, c)
			if len(batch) >= maxBatch {
				timer.Stop()
				flush()
			}
		case <-timer.C:
			flush()
		}
	}
}

// sendMetrics reads the kernel aggregates every collection_interval.
func (r *mremapReceiver) sendMetrics(ctx context.Context, start pcommon.Timestamp) {
	defer r.wg.Done()
	conv := newMetricConverter(r.cfg, r.set, r.hostName, start)
	ticker := time.NewTicker(r.cfg.CollectionInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		a, err := r.tracer.ReadAggregates()
		if err != nil {
			r.set.Logger.Error("reading mremap aggregates", zap.Error(err))
			continue
		}
		md := conv.toMetrics(a, pcommon.NewTimestampFromTime(time.Now()))
		if md.DataPointCount() == 0 {
			continue // every metric is disabled
		}
		octx := r.obs.StartMetricsOp(ctx)
		err = r.metrics.ConsumeMetrics(octx, md)
		r.obs.EndMetricsOp(octx, metadata.Type.String(), md.DataPointCount(), err)
		if err != nil {
			r.set.Logger.Warn("the next consumer refused mremap metrics", zap.Error(err))
		}
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
		r.cancel()
		// Detach first: Read then returns what is left and ErrClosed.
		err = r.tracer.Stop()
		r.wg.Wait()
		err = errors.Join(err, r.tracer.Close())
	})
	return err
}
