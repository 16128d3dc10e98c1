package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/scraper/scraperhelper"

	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

// Config is the mremap receiver's configuration.
type Config struct {
	// Probe is how to attach: auto, kprobe or tracepoint.
	Probe string `mapstructure:"probe"`
	// ControllerConfig is the scraper controller's: collection_interval
	// (how often the kernel aggregates are read and emitted as metrics),
	// initial_delay and timeout.
	scraperhelper.ControllerConfig `mapstructure:",squash"`
	// RingBufferSize is the size in bytes of the ring buffer that carries
	// one record per call to user space: a power of two, at least one page.
	RingBufferSize int `mapstructure:"ring_buffer_size"`
	// MaxEventsPerSecond caps the log records; 0 means no cap. The excess
	// is counted as mremap.events.dropped{reason=rate_limited}.
	MaxEventsPerSecond int `mapstructure:"max_events_per_second"`
	// VMALookup looks up, in the kernel at each call's entry, the mapping
	// at old_address, for the mremap.vma.* log attributes. false leaves
	// them out and saves the lookup's cost.
	VMALookup bool `mapstructure:"vma_lookup"`
	// Ia32RawTracepoints catches 32-bit (ia32) callers in tracepoint mode
	// on x86-64, which the syscall tracepoints skip, with raw_syscalls
	// programs. Those run on every syscall of the host; false saves that
	// cost and leaves 32-bit mremap calls unseen in tracepoint mode.
	Ia32RawTracepoints bool `mapstructure:"ia32_raw_tracepoints"`
	// CallStack puts the calling thread's user stack, symbolized, on each
	// log record (code.stacktrace, code.function.name; docs/call-stacks.md).
	// It changes only log records: with a metrics pipeline alone it does
	// nothing.
	CallStack bool `mapstructure:"call_stack"`
	// Filter selects calls in the kernel.
	Filter FilterConfig `mapstructure:"filter"`
	// RedactAddresses leaves the address attributes (mremap.old_address,
	// mremap.new_address, mremap.result_address) out of the log records
	// and writes 0x? for every address in the body.
	RedactAddresses bool `mapstructure:"redact_addresses"`

	// Metrics enables or disables each metric.
	Metrics MetricsConfig `mapstructure:"metrics"`
	// ResourceAttributes enables or disables each resource attribute.
	ResourceAttributes metadata.ResourceAttributesConfig `mapstructure:"resource_attributes"`
}

// MetricsConfig holds the per-metric settings: mdatagen's for the sums, and
// an enabled flag for each histogram, which mdatagen cannot generate.
type MetricsConfig struct {
	metadata.MetricsConfig `mapstructure:",squash"`
	MremapSizeDelta        HistogramConfig `mapstructure:"mremap.size.delta"`
	MremapDuration         HistogramConfig `mapstructure:"mremap.duration"`
}

// HistogramConfig enables or disables a histogram metric.
type HistogramConfig struct {
	Enabled bool `mapstructure:"enabled"`
}

func (cfg *Config) metricsBuilderConfig() metadata.MetricsBuilderConfig {
	return metadata.MetricsBuilderConfig{Metrics: cfg.Metrics.MetricsConfig, ResourceAttributes: cfg.ResourceAttributes}
}

// FilterConfig selects calls in the kernel; the empty filter selects all.
type FilterConfig struct {
	// PIDs are the process ids (tgid) to observe.
	PIDs []int `mapstructure:"pids"`
	// Comms are the process names (comm, at most 15 characters) to observe.
	Comms []string `mapstructure:"comms"`
	// ExcludeComms are process names not to observe.
	ExcludeComms []string `mapstructure:"exclude_comms"`
	// Cgroups are cgroup v2 paths: the calls of tasks in one of them, or
	// in a cgroup below one, are observed. A path is the absolute path of
	// a cgroup v2 directory (/sys/fs/cgroup/system.slice/ssh.service) or,
	// if it is not one, a path from the cgroup v2 root as
	// /proc/PID/cgroup shows it (/system.slice/ssh.service). They are
	// resolved to cgroup ids at start.
	Cgroups []string `mapstructure:"cgroups"`
	// MinSizeDelta drops calls with abs(new_size - old_size) below it, in
	// bytes, from logs and metrics alike.
	MinSizeDelta int64 `mapstructure:"min_size_delta"`
	// ErrorsOnly logs only failed calls; metrics still count every call
	// that passes the other filters.
	ErrorsOnly bool `mapstructure:"errors_only"`
}

const (
	defaultCollectionInterval = 10 * time.Second
	defaultRingBufferSize     = 4 << 20
)

func createDefaultConfig() *Config {
	controller := scraperhelper.NewDefaultControllerConfig()
	controller.CollectionInterval = defaultCollectionInterval
	return &Config{
		ControllerConfig:   controller,
		Probe:              string(tracer.ProbeAuto),
		RingBufferSize:     defaultRingBufferSize,
		VMALookup:          true,
		Ia32RawTracepoints: true,
		Metrics: MetricsConfig{
			MetricsConfig:   metadata.DefaultMetricsConfig(),
			MremapSizeDelta: HistogramConfig{Enabled: true},
			MremapDuration:  HistogramConfig{Enabled: true},
		},
		ResourceAttributes: metadata.DefaultResourceAttributesConfig(),
	}
}

// integerKeys are the keys that hold whole numbers. mapstructure would turn
// a YAML float into an integer by dropping its fraction (1.5 becomes 1), so
// Unmarshal rejects a fraction before decoding.
var integerKeys = []string{"ring_buffer_size", "max_events_per_second", "filter::min_size_delta"}

// integerListKeys are the keys that hold lists of whole numbers.
var integerListKeys = []string{"filter::pids"}

// Unmarshal decodes conf as the Collector does, after rejecting a number
// with a fraction in a key that holds whole numbers, naming the key.
func (cfg *Config) Unmarshal(conf *confmap.Conf) error {
	if conf == nil {
		return nil
	}
	var errs []error
	for _, key := range integerKeys {
		if err := wholeNumber(conf.Get(key)); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	for _, key := range integerListKeys {
		list, ok := conf.Get(key).([]any)
		if !ok {
			continue // not a list: decoding names the key
		}
		for i, v := range list {
			if err := wholeNumber(v); err != nil {
				errs = append(errs, fmt.Errorf("%s[%d]: %w", key, i, err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return conf.Unmarshal(cfg)
}

// wholeNumber rejects a float that is not a whole number an int64 can
// hold. Other types are left to the decoder, which names their key.
func wholeNumber(v any) error {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case float32:
		f = float64(n)
	default:
		return nil
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return fmt.Errorf("must be a whole number, got %v", v)
	}
	return nil
}

// Validate names every bad key and the rule it breaks.
func (cfg *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
	}
	if _, err := tracer.ParseProbe(cfg.Probe); err != nil {
		bad("probe", "unknown probe %q: must be auto, kprobe or tracepoint", cfg.Probe)
	}
	if cfg.CollectionInterval <= 0 {
		bad("collection_interval", "must be positive, got %v", cfg.CollectionInterval)
	}
	if err := tracer.CheckRingBufferSize(cfg.RingBufferSize); err != nil {
		bad("ring_buffer_size", "%v", err)
	}
	if cfg.MaxEventsPerSecond < 0 {
		bad("max_events_per_second", "must not be negative (0 means no cap), got %d", cfg.MaxEventsPerSecond)
	}
	for i, pid := range cfg.Filter.PIDs {
		if pid <= 0 || pid > math.MaxInt32 {
			bad(fmt.Sprintf("filter::pids[%d]", i), "must be a positive process id, got %d", pid)
		}
	}
	checkComms := func(key string, comms []string) {
		for i, c := range comms {
			if err := tracer.CheckComm(c); err != nil {
				bad(fmt.Sprintf("filter::%s[%d]", key, i), "%v", err)
			}
		}
	}
	checkComms("comms", cfg.Filter.Comms)
	checkComms("exclude_comms", cfg.Filter.ExcludeComms)
	for i, c := range cfg.Filter.Cgroups {
		if !strings.HasPrefix(c, "/") {
			bad(fmt.Sprintf("filter::cgroups[%d]", i), "cgroup %q must be an absolute path (/sys/fs/cgroup/...) or a path from the cgroup v2 root as /proc/PID/cgroup shows it (/system.slice/...)", c)
		}
	}
	if cfg.Filter.MinSizeDelta < 0 {
		bad("filter::min_size_delta", "must not be negative, got %d", cfg.Filter.MinSizeDelta)
	}
	return errors.Join(errs...)
}
