package mremapreceiver

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"

	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

// loadConfig unmarshals the configuration of id from testdata/config.yaml
// over the factory's defaults, as the Collector does.
func loadConfig(t *testing.T, id component.ID) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	sub, err := cm.Sub(id.String())
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	err = sub.Unmarshal(&cfg)
	return cfg.(*Config), err
}

// ignoreSetByUser ignores mdatagen's record of which keys the user set.
var ignoreSetByUser = cmpopts.IgnoreUnexported(
	metadata.MremapCallsMetricConfig{},
	metadata.MremapEventsDroppedMetricConfig{},
	metadata.MremapMovesMetricConfig{},
	metadata.MremapSignalsMetricConfig{},
	metadata.MremapMapCountLimitMetricConfig{},
	metadata.MremapProcessMapCountMetricConfig{},
	metadata.ResourceAttributeConfig{},
)

func TestLoadConfig(t *testing.T) {
	custom := createDefaultConfig()
	custom.Probe = "tracepoint"
	custom.CollectionInterval = 30 * time.Second
	custom.RingBufferSize = 1 << 20
	custom.MaxEventsPerSecond = 500
	custom.VMALookup = false
	custom.Ia32RawTracepoints = false
	custom.Filter = FilterConfig{
		PIDs:         []int{1, 4242},
		Comms:        []string{"postgres", "java"},
		ExcludeComms: []string{"systemd-journal"},
		Cgroups:      []string{"/system.slice/postgresql.service", "/sys/fs/cgroup/kubepods.slice"},
		MinSizeDelta: 65536,
		ErrorsOnly:   true,
	}
	custom.RedactAddresses = true
	custom.CallStack = true
	custom.Metrics.MremapMoves.Enabled = false
	custom.Metrics.MremapSizeDelta.Enabled = false
	custom.ResourceAttributes.HostName.Enabled = false
	custom.ResourceAttributes.ProcessCommandLine.Enabled = true

	tests := []struct {
		id   component.ID
		want *Config
	}{
		{component.NewID(metadata.Type), createDefaultConfig()},
		{component.NewIDWithName(metadata.Type, "custom"), custom},
	}
	for _, tt := range tests {
		t.Run(tt.id.String(), func(t *testing.T) {
			cfg, err := loadConfig(t, tt.id)
			require.NoError(t, err)
			if diff := cmp.Diff(tt.want, cfg, ignoreSetByUser); diff != "" {
				t.Errorf("config of %s (-want +got):\n%s", tt.id, diff)
			}
			assert.NoError(t, cfg.Validate())
		})
	}
}

func TestDefaultConfig(t *testing.T) {
	cfg := createDefaultConfig()
	assert.Equal(t, "auto", cfg.Probe)
	assert.Equal(t, 10*time.Second, cfg.CollectionInterval)
	assert.Equal(t, 4194304, cfg.RingBufferSize)
	assert.Equal(t, 0, cfg.MaxEventsPerSecond)
	assert.True(t, cfg.VMALookup)
	assert.True(t, cfg.Ia32RawTracepoints)
	assert.Equal(t, FilterConfig{}, cfg.Filter)
	assert.True(t, cfg.Metrics.MremapCalls.Enabled)
	assert.True(t, cfg.Metrics.MremapMoves.Enabled)
	assert.True(t, cfg.Metrics.MremapEventsDropped.Enabled)
	assert.True(t, cfg.Metrics.MremapSizeDelta.Enabled)
	assert.True(t, cfg.Metrics.MremapDuration.Enabled)
	assert.True(t, cfg.ResourceAttributes.HostName.Enabled)
	assert.False(t, cfg.RedactAddresses)
	assert.False(t, cfg.CallStack)
	assert.NoError(t, cfg.Validate())
}

func TestLoadConfigUnknownKeys(t *testing.T) {
	tests := []struct {
		name string
		keys []string // each must be in the error
	}{
		{"typo", []string{"ring_bufer_size"}},
		{"filter_typo", []string{"filter", "pid"}},
		{"metric_typo", []string{"mremap.size_delta"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, component.NewIDWithName(metadata.Type, tt.name))
			require.Error(t, err)
			for _, k := range tt.keys {
				assert.Contains(t, err.Error(), k)
			}
		})
	}
}

// Every key of SPEC.md (and redact_addresses) with a value of the wrong
// type: the error names the key.
func TestLoadConfigBadTypes(t *testing.T) {
	tests := []struct {
		name string
		keys []string // each must be in the error
	}{
		{"bad_errors_only", []string{"errors_only"}},
		{"bad_redact_addresses", []string{"redact_addresses"}},
		{"bad_call_stack", []string{"call_stack"}},
		{"bad_vma_lookup", []string{"vma_lookup"}},
		{"bad_ia32_raw_tracepoints", []string{"ia32_raw_tracepoints"}},
		{"bad_collection_interval", []string{"collection_interval", "invalid duration"}},
		{"bad_ring_buffer_size", []string{"ring_buffer_size"}},
		{"bad_max_events_per_second", []string{"max_events_per_second"}},
		{"bad_probe", []string{"probe"}},
		{"bad_pids", []string{"pids"}},
		{"bad_comms", []string{"comms"}},
		{"bad_exclude_comms", []string{"exclude_comms"}},
		{"bad_cgroups", []string{"cgroups"}},
		{"bad_min_size_delta", []string{"min_size_delta"}},
		{"bad_filter", []string{"filter"}},
		{"bad_metric_enabled", []string{"mremap.calls", "enabled"}},
		{"bad_histogram_enabled", []string{"mremap.duration", "enabled"}},
		{"bad_resource_attribute", []string{"host.nam"}},
		// mapstructure would drop the fraction: 1.5 would become 1.
		{"fraction_ring_buffer_size", []string{"ring_buffer_size: must be a whole number, got 4096.5"}},
		{"fraction_max_events_per_second", []string{"max_events_per_second: must be a whole number, got 1.5"}},
		{"fraction_min_size_delta", []string{"filter::min_size_delta: must be a whole number, got 0.5"}},
		{"fraction_pids", []string{"filter::pids[1]: must be a whole number, got 2.5"}},
		{"fraction_everywhere", []string{
			"ring_buffer_size: must be a whole number, got 1e+300",
			"max_events_per_second: must be a whole number, got NaN",
			"filter::min_size_delta: must be a whole number, got 1.5",
			"filter::pids[0]: must be a whole number, got 1.25",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadConfig(t, component.NewIDWithName(metadata.Type, tt.name))
			require.Error(t, err)
			for _, k := range tt.keys {
				assert.Contains(t, err.Error(), k)
			}
		})
	}
}

// A float that is a whole number is that number.
func TestLoadConfigWholeFloats(t *testing.T) {
	cfg, err := loadConfig(t, component.NewIDWithName(metadata.Type, "whole_floats"))
	require.NoError(t, err)
	assert.Equal(t, 8192, cfg.RingBufferSize)
	assert.Equal(t, 1000, cfg.MaxEventsPerSecond)
	assert.Equal(t, int64(64), cfg.Filter.MinSizeDelta)
	assert.Equal(t, []int{7}, cfg.Filter.PIDs)
	assert.NoError(t, cfg.Validate())
}

func TestConfigValidate(t *testing.T) {
	page := os.Getpagesize()
	tests := []struct {
		name   string
		modify func(c *Config)
		// want are substrings of the error: the key, and the rule.
		want []string
	}{
		{"unknown probe", func(c *Config) { c.Probe = "fentry" }, []string{"probe:", `"fentry"`, "auto, kprobe or tracepoint"}},
		{"empty probe", func(c *Config) { c.Probe = "" }, []string{"probe:", "auto, kprobe or tracepoint"}},
		{"probe in capitals", func(c *Config) { c.Probe = "KPROBE" }, []string{"probe:"}},
		{"ring_buffer_size not a power of two", func(c *Config) { c.RingBufferSize = 3 * page }, []string{"ring_buffer_size", "power of two"}},
		{"ring_buffer_size below a page", func(c *Config) { c.RingBufferSize = page / 2 }, []string{"ring_buffer_size", "one page"}},
		{"ring_buffer_size zero", func(c *Config) { c.RingBufferSize = 0 }, []string{"ring_buffer_size"}},
		{"ring_buffer_size negative", func(c *Config) { c.RingBufferSize = -4096 }, []string{"ring_buffer_size"}},
		{"ring_buffer_size above 2 GiB", func(c *Config) { c.RingBufferSize = 1 << 32 }, []string{"ring_buffer_size", "2 GiB"}},
		{"collection_interval zero", func(c *Config) { c.CollectionInterval = 0 }, []string{"collection_interval", "positive"}},
		{"collection_interval negative", func(c *Config) { c.CollectionInterval = -time.Second }, []string{"collection_interval", "positive"}},
		{"max_events_per_second negative", func(c *Config) { c.MaxEventsPerSecond = -1 }, []string{"max_events_per_second", "negative"}},
		{"min_size_delta negative", func(c *Config) { c.Filter.MinSizeDelta = -1 }, []string{"filter::min_size_delta", "negative"}},
		{"pid zero", func(c *Config) { c.Filter.PIDs = []int{0} }, []string{"filter::pids[0]", "positive"}},
		{"pid negative", func(c *Config) { c.Filter.PIDs = []int{1, -5} }, []string{"filter::pids[1]", "positive"}},
		{"pid too large", func(c *Config) { c.Filter.PIDs = []int{math.MaxInt32 + 1} }, []string{"filter::pids[0]"}},
		{"comm too long", func(c *Config) { c.Filter.Comms = []string{"abcdefghijklmnop"} }, []string{"filter::comms[0]", "15"}},
		{"comm empty", func(c *Config) { c.Filter.Comms = []string{"sh", ""} }, []string{"filter::comms[1]"}},
		{"exclude_comms empty", func(c *Config) { c.Filter.ExcludeComms = []string{""} }, []string{"filter::exclude_comms[0]"}},
		{"exclude_comms too long", func(c *Config) { c.Filter.ExcludeComms = []string{"ok", "0123456789abcdefg"} }, []string{"filter::exclude_comms[1]", "15"}},
		{"cgroup relative", func(c *Config) { c.Filter.Cgroups = []string{"/system.slice", "system.slice/ssh.service"} },
			[]string{"filter::cgroups[1]", `"system.slice/ssh.service"`, "absolute path"}},
		{"cgroup empty", func(c *Config) { c.Filter.Cgroups = []string{""} }, []string{"filter::cgroups[0]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			tt.modify(cfg)
			err := cfg.Validate()
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestConfigValidateGoodValues(t *testing.T) {
	page := os.Getpagesize()
	tests := []struct {
		name   string
		modify func(c *Config)
	}{
		{"kprobe", func(c *Config) { c.Probe = "kprobe" }},
		{"tracepoint", func(c *Config) { c.Probe = "tracepoint" }},
		{"one page", func(c *Config) { c.RingBufferSize = page }},
		{"2 GiB", func(c *Config) { c.RingBufferSize = 1 << 31 }},
		{"1ns interval", func(c *Config) { c.CollectionInterval = time.Nanosecond }},
		{"a cap", func(c *Config) { c.MaxEventsPerSecond = 1 }},
		{"comm of 15", func(c *Config) { c.Filter.Comms = []string{"abcdefghijklmno"} }},
		{"max pid", func(c *Config) { c.Filter.PIDs = []int{1, math.MaxInt32} }},
		{"min_size_delta", func(c *Config) { c.Filter.MinSizeDelta = 1 << 40 }},
		// Cgroups are resolved at start, where they must exist.
		{"cgroups", func(c *Config) {
			c.Filter.Cgroups = []string{"/sys/fs/cgroup/system.slice/ssh.service", "/kubepods.slice/kubepods-besteffort.slice"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			tt.modify(cfg)
			assert.NoError(t, cfg.Validate())
		})
	}
}

func TestConfigValidateNamesEveryBadKey(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Probe = "nope"
	cfg.CollectionInterval = 0
	cfg.RingBufferSize = 1000
	cfg.MaxEventsPerSecond = -3
	cfg.Filter = FilterConfig{
		PIDs:         []int{-1},
		Comms:        []string{"a-name-of-sixteen"},
		ExcludeComms: []string{""},
		MinSizeDelta: -1,
		Cgroups:      []string{"x"},
	}
	err := cfg.Validate()
	require.Error(t, err)
	keys := []string{
		"probe:", "collection_interval", "ring_buffer_size", "max_events_per_second",
		"filter::pids[0]", "filter::comms[0]", "filter::exclude_comms[0]", "filter::cgroups[0]", "filter::min_size_delta",
	}
	for _, k := range keys {
		assert.Contains(t, err.Error(), k)
	}
	// One error per key, one per line.
	assert.Len(t, strings.Split(err.Error(), "\n"), len(keys))
}

func TestTracerOptions(t *testing.T) {
	cfg, err := loadConfig(t, component.NewIDWithName(metadata.Type, "custom"))
	require.NoError(t, err)
	want := tracer.Options{
		Probe:               tracer.ProbeTracepoint,
		Events:              true,
		RingBufferSize:      1 << 20,
		MaxEventsPerSecond:  500,
		SkipVMALookup:       true,
		SkipIa32Tracepoints: true,
		CallStack:           true,
		Filter: tracer.Filter{
			PIDs:         []uint32{1, 4242},
			Comms:        []string{"postgres", "java"},
			ExcludeComms: []string{"systemd-journal"},
			MinSizeDelta: 65536,
			ErrorsOnly:   true,
		},
	}
	assert.Equal(t, want, cfg.tracerOptions(true))
	want.Events = false
	assert.Equal(t, want, cfg.tracerOptions(false))

	def := createDefaultConfig().tracerOptions(true)
	assert.Equal(t, tracer.ProbeAuto, def.Probe)
	assert.False(t, def.SkipVMALookup)
	assert.False(t, def.SkipIa32Tracepoints)
	assert.Equal(t, tracer.Filter{}, def.Filter)
}
