//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
)

// transport names the receiver's source in its own telemetry.
const transport = "ebpf"

// mremapReceiver owns the probes that one configuration's pipelines share:
// the logs receiver (logs.go) and the metrics receiver (metrics.go) each
// start it and shut it down; the first start loads and attaches the probes
// once, the first shutdown detaches them and delivers what the ring buffer
// still holds, the last unloads everything.
type mremapReceiver struct {
	cfg      *Config
	set      receiver.Settings
	obs      *receiverhelper.ObsReport
	hostName string

	logs    consumer.Logs    // nil without a logs pipeline
	metrics consumer.Metrics // nil without a metrics pipeline
	// leave counts a receiver's shutdown and tells whether it was the
	// last user, which takes the receiver out of the shared map.
	leave func() bool
	users int // receivers created on it and not yet shut down (under the map's lock)

	mu               sync.Mutex
	started, stopped bool
	startErr         error

	tracer *tracer.Tracer
	logsWG sync.WaitGroup
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

// start loads and attaches the probes, once, for every pipeline, and starts
// reading the calls when a logs pipeline is served.
func (r *mremapReceiver) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		return r.startErr
	}
	r.started = true
	r.startErr = r.open()
	return r.startErr
}

func (r *mremapReceiver) open() error {
	opts := r.cfg.tracerOptions(r.logs != nil)
	ids, err := r.cfg.cgroupIDs()
	if err != nil {
		return fmt.Errorf("mremap receiver: %w", err)
	}
	opts.Filter.CgroupIDs = ids
	opts.OnIa32Start = func(s tracer.Ia32Start) {
		r.set.Logger.Info("a 32-bit program started while none ran: the raw_syscalls programs that catch its mremap calls were attached after its exec; calls it made before are not seen",
			zap.Uint32("process.pid", s.TGID), zap.Duration("after", s.Latency))
	}
	t, err := tracer.New(opts)
	if err != nil {
		return startError(err)
	}
	r.tracer = t
	r.set.Logger.Info("mremap probes attached",
		zap.String("probe", string(t.Probe())),
		zap.String("reason", startupReason(t.Plan())),
		zap.Bool("logs", r.logs != nil),
		zap.Bool("metrics", r.metrics != nil))
	if r.logs != nil {
		r.startLogs()
	}
	return nil
}

// stop detaches the probes, so that no call is observed any more, and
// delivers the calls still in the ring buffer. The maps stay readable, for
// the last report of the aggregates, until release.
func (r *mremapReceiver) stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.tracer == nil {
		return nil
	}
	r.stopped = true
	// Read then returns what is left in the ring buffer, then ErrClosed.
	err := r.tracer.Stop()
	r.logsWG.Wait()
	return err
}

// release is a receiver's shutdown: the last one unloads everything and
// leaves the shared map.
func (r *mremapReceiver) release() error {
	if r.leave != nil && !r.leave() {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tracer == nil {
		return nil
	}
	return r.tracer.Close()
}

// shutdown stops the probes and releases the receiver: the logs receiver's
// Shutdown, and the metrics receiver's after its last report.
func (r *mremapReceiver) shutdown() error {
	return errors.Join(r.stop(), r.release())
}

// logsReceiver is the receiver of a logs pipeline.
type logsReceiver struct{ r *mremapReceiver }

func (l logsReceiver) Start(context.Context, component.Host) error { return l.r.start() }

func (l logsReceiver) Shutdown(context.Context) error { return l.r.shutdown() }
