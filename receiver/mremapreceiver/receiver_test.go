package mremapreceiver

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// probes are the modes to test on this kernel; see tracer's tests.
func probes(t *testing.T) []string {
	out := []string{"tracepoint"}
	if hasKprobes() {
		out = append(out, "kprobe")
	} else if os.Getenv("MREMAP_REQUIRE_PROBES") != "" {
		t.Errorf("kprobe mode required by MREMAP_REQUIRE_PROBES but this kernel has no kprobes")
	} else {
		t.Log("kprobe mode not tested: this kernel has no kprobes")
	}
	return out
}

func hasKprobes() bool {
	for _, p := range []string{"/sys/bus/event_source/devices/kprobe", "/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// ourPrograms lists the loaded BPF programs that carry our programs' names
// (the kernel keeps the first 15 characters).
func ourPrograms(t *testing.T) []string {
	t.Helper()
	names := map[string]bool{}
	for _, n := range []string{"tracepoint_enter", "tracepoint_exit", "kprobe_enter", "kprobe_enter_ia32", "kprobe_exit"} {
		// The kernel keeps 15 characters; cilium/ebpf may report the
		// full name from BTF.
		names[n] = true
		names[n[:min(len(n), 15)]] = true
	}
	var found []string
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return found
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		p.Close()
		if err == nil && names[info.Name] {
			found = append(found, info.Name)
		}
	}
}

func TestReceiverLogsAndMetrics(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	for _, probe := range probes(t) {
		t.Run(probe, func(t *testing.T) {
			if left := ourPrograms(t); len(left) > 0 {
				t.Fatalf("programs loaded before the test: %v", left)
			}
			f := NewFactory()
			cfg := f.CreateDefaultConfig().(*Config)
			cfg.Probe = probe
			cfg.CollectionInterval = 100 * time.Millisecond
			cfg.Filter.Comms = []string{mremaptest.Comm}
			set := receivertest.NewNopSettings(metadata.Type)
			logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
			lr, err := f.CreateLogs(context.Background(), set, cfg, logs)
			if err != nil {
				t.Fatal(err)
			}
			mr, err := f.CreateMetrics(context.Background(), set, cfg, metrics)
			if err != nil {
				t.Fatal(err)
			}
			if lr != mr {
				t.Fatal("the logs and metrics pipelines got two receivers; want one shared")
			}
			if err := lr.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				t.Fatal(err)
			}
			if err := mr.Start(context.Background(), componenttest.NewNopHost()); err != nil {
				t.Fatal(err)
			}
			if n := len(ourPrograms(t)); n != 2 && n != 3 {
				t.Errorf("%d programs loaded for both pipelines, want one set (2, or 3 with the ia32 kprobe)", n)
			}

			run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
			run.Made = mremaptest.RunHelperLinger(t, helper, 2*time.Second)
			run.End = time.Now()

			var logProblems, metricProblems []string
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				logProblems = mremapcheck.Logs(mergeLogs(logs.AllLogs()), run)
				all := metrics.AllMetrics()
				metricProblems = []string{"no metrics"}
				if len(all) > 0 {
					metricProblems = mremapcheck.Metrics(all[len(all)-1], probe)
				}
				if len(logProblems) == 0 && len(metricProblems) == 0 {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			for _, p := range append(logProblems, metricProblems...) {
				t.Error(p)
			}

			if err := lr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := mr.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if left := ourPrograms(t); len(left) > 0 {
				// Freed after an RCU grace period; give it a moment.
				time.Sleep(500 * time.Millisecond)
				if left = ourPrograms(t); len(left) > 0 {
					t.Errorf("programs still loaded after shutdown: %v", left)
				}
			}
		})
	}
}

// A metrics-only pipeline makes the kernel submit no records at all.
func TestMetricsOnlySubmitsNoRecords(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.CollectionInterval = 100 * time.Millisecond
	cfg.Filter.Comms = []string{mremaptest.Comm}
	metrics := new(consumertest.MetricsSink)
	r, err := f.CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, metrics)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background(), componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	defer r.Shutdown(context.Background())
	rcv := r.(*mremapReceiver)
	if opts := cfg.tracerOptions(rcv.logs != nil); opts.Events {
		t.Fatal("a metrics-only receiver asks for events")
	}
	mremaptest.RunHelper(t, helper)
	var problems []string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		all := metrics.AllMetrics()
		problems = []string{"no metrics"}
		if len(all) > 0 {
			problems = mremapcheck.Metrics(all[len(all)-1], string(rcv.tracer.Probe()))
		}
		if len(problems) == 0 {
			break
		}
	}
	for _, p := range problems {
		t.Error(p)
	}
	if _, err := rcv.tracer.Read(); err != tracer.ErrClosed {
		t.Errorf("records readable without a logs pipeline: %v", err)
	}
}

func TestStartFailsWithAClearError(t *testing.T) {
	mremaptest.RequireBPF(t)
	if hasKprobes() {
		t.Skip("this kernel has kprobes, so probe: kprobe does not fail here")
	}
	f := NewFactory()
	cfg := f.CreateDefaultConfig().(*Config)
	cfg.Probe = "kprobe"
	r, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start(context.Background(), componenttest.NewNopHost())
	if err == nil || !strings.Contains(err.Error(), "kprobe") {
		t.Errorf("Start with probe kprobe on a kernel without kprobes: %v", err)
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

func mergeLogs(all []plog.Logs) plog.Logs {
	out := plog.NewLogs()
	for _, ld := range all {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			ld.ResourceLogs().At(i).CopyTo(out.ResourceLogs().AppendEmpty())
		}
	}
	return out
}
