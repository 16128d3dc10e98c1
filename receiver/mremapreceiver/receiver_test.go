package mremapreceiver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReceiverLogsAndMetrics(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	require.NoError(t, err)
	for _, probe := range mremaptest.Probes(t) {
		t.Run(probe, func(t *testing.T) {
			require.Empty(t, mremaptest.OurPrograms(), "programs loaded before the test")
			cfg := helperConfig(func(cfg *Config) {
				cfg.Probe = probe
				cfg.CollectionInterval = 100 * time.Millisecond
				cfg.ResourceAttributes.ProcessCommandLine.Enabled = true
			})
			logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
			r := startReceiver(t, cfg, pipelines{logs: logs, metrics: metrics})
			// 3 with the ia32 kprobe; 7 with the raw_syscalls programs for
			// 32-bit callers and the three that tell when to attach them.
			if n := len(mremaptest.OurPrograms()); n < 2 || n > 7 {
				t.Errorf("%d programs loaded for both pipelines, want one set (2 to 7)", n)
			}

			// The process attributes as /proc shows them: the parent is this
			// test, the command line is the one it starts the helper with.
			run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, CommandLine: helper + " -linger 2s", Start: time.Now()}
			run.Made = mremaptest.RunHelperLinger(t, helper, 2*time.Second)
			run.End = time.Now()
			eventually(t, func() []string {
				p := mremapcheck.Logs(mergeLogs(logs.AllLogs()), run)
				return append(p, lastMetricsProblems(metrics, probe)...)
			})

			r.shutdown()
			assert.Empty(t, mremaptest.ProgramsLeft(), "programs still loaded after shutdown")
		})
	}
}

// A 32-bit helper (GOARCH=386, entering mremap through the ia32 syscall
// entry) is seen in every probe mode: by the __ia32_sys_mremap kprobe, and
// in tracepoint mode by the raw_syscalls raw tracepoints, since the
// syscalls tracepoints skip compat syscalls. Every field is checked, as for
// the 64-bit helper.
func TestIa32Caller(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.Helper386Path(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	for _, probe := range mremaptest.Probes(t) {
		t.Run(probe, func(t *testing.T) {
			logs := new(consumertest.LogsSink)
			startReceiver(t, helperConfig(func(cfg *Config) { cfg.Probe = probe }), pipelines{logs: logs})
			run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
			run.Made = mremaptest.RunHelperLinger(t, helper, 2*time.Second)
			run.End = time.Now()
			eventually(t, func() []string { return mremapcheck.Logs(mergeLogs(logs.AllLogs()), run) })
		})
	}
}

// A 32-bit C program built with gcc -m32 -static (cmd/mremap-helper32),
// whose glibc mremap() enters the kernel through the vDSO's
// __kernel_vsyscall (sysenter/syscall) rather than int $0x80 as the Go 386
// helper does, is seen in every probe mode, every field checked: arguments,
// result and errno, resize, move, probe, the anonymous rw-p mapping with an
// empty path (none for EFAULT), and the process, named by its comm.
func TestIa32GlibcCaller(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperGlibc32Path(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	for _, probe := range mremaptest.Probes(t) {
		t.Run(probe, func(t *testing.T) {
			logs := new(consumertest.LogsSink)
			startReceiver(t, helperConfig(func(cfg *Config) {
				cfg.Probe = probe
				cfg.Filter.Comms = []string{mremaptest.CommGlibc32}
			}), pipelines{logs: logs})
			run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, Comm: mremaptest.CommGlibc32, Start: time.Now()}
			run.Made = mremaptest.RunHelperGlibc32(t, helper, "-linger", "2s")
			run.End = time.Now()
			eventually(t, func() []string { return mremapcheck.Logs(mergeLogs(logs.AllLogs()), run) })
		})
	}
}

// A helper in a cgroup named as docker names a container's gets that
// container's id as container.id.
func TestContainerID(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	const id = "0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
	cgroup := mremaptest.NewCgroup(t, "docker-"+id+".scope")

	logs := new(consumertest.LogsSink)
	r := startReceiver(t, helperConfig(), pipelines{logs: logs})
	run := mremapcheck.Run{Probe: r.probe(), PPID: os.Getpid(), ExePath: exe, ContainerID: id, Start: time.Now()}
	run.Made = mremaptest.RunHelperInCgroup(t, helper, cgroup, "-linger", "2s")
	run.End = time.Now()
	eventually(t, func() []string { return mremapcheck.Logs(mergeLogs(logs.AllLogs()), run) })
}

// filter.cgroups, given as /proc/PID/cgroup shows a cgroup (from the
// cgroup v2 root), keeps the calls of the helper in a cgroup below it and
// not those of the helper outside.
func TestCgroupFilter(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	inside := mremaptest.NewCgroup(t, "filter.slice/helper.scope")
	rel := mremaptest.CgroupPath(t, filepath.Dir(inside))

	logs := new(consumertest.LogsSink)
	r := startReceiver(t, helperConfig(func(cfg *Config) { cfg.Filter.Cgroups = []string{rel} }), pipelines{logs: logs})
	outside := mremaptest.RunHelper(t, helper)
	run := mremapcheck.Run{Probe: r.probe(), PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
	run.Made = mremaptest.RunHelperInCgroup(t, helper, inside, "-linger", "2s")
	run.End = time.Now()
	eventually(t, func() []string { return mremapcheck.Logs(mergeLogs(logs.AllLogs()), run) })
	ld := mergeLogs(logs.AllLogs())
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		pid, _ := ld.ResourceLogs().At(i).Resource().Attributes().Get("process.pid")
		if pid.Int() != int64(run.Made[0].PID) {
			t.Errorf("records of pid %d (the helper outside the cgroup is %d)", pid.Int(), outside[0].PID)
		}
	}
}

// A cgroup that does not exist fails Start, naming the key and the path.
func TestCgroupFilterMissingCgroup(t *testing.T) {
	mremaptest.RequireBPF(t)
	r := newTestReceiver(t, helperConfig(func(cfg *Config) { cfg.Filter.Cgroups = []string{"/no-such.slice/x.service"} }),
		pipelines{logs: consumertest.NewNop()})
	err := r.start()
	if err == nil || !strings.Contains(err.Error(), "filter::cgroups[0]") || !strings.Contains(err.Error(), "/no-such.slice/x.service") {
		t.Errorf("Start with a missing cgroup: %v, want an error naming filter::cgroups[0] and the path", err)
	}
	r.shutdown()
	if left := mremaptest.ProgramsLeft(); len(left) > 0 {
		t.Errorf("programs loaded after the failed start: %v", left)
	}
}

// A metrics-only pipeline makes the kernel submit no records at all.
func TestMetricsOnlySubmitsNoRecords(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	metrics := new(consumertest.MetricsSink)
	r := startReceiver(t, helperConfig(func(cfg *Config) { cfg.CollectionInterval = 100 * time.Millisecond }), pipelines{metrics: metrics})
	assert.Nil(t, r.core.logs, "a metrics-only receiver has a logs pipeline")
	mremaptest.RunHelper(t, helper)
	eventually(t, func() []string { return lastMetricsProblems(metrics, r.probe()) })
	if _, err := r.core.tracer.Read(); !errors.Is(err, tracer.ErrClosed) {
		t.Errorf("records readable without a logs pipeline: %v", err)
	}
}

func TestStartFailsWithAClearError(t *testing.T) {
	mremaptest.RequireBPF(t)
	if mremaptest.HasKprobes() {
		t.Skip("this kernel has kprobes, so probe: kprobe does not fail here")
	}
	r := newTestReceiver(t, helperConfig(func(cfg *Config) { cfg.Probe = "kprobe" }), pipelines{logs: consumertest.NewNop()})
	err := r.start()
	if err == nil || !strings.Contains(err.Error(), "probe kprobe: ") {
		t.Errorf("Start with probe kprobe on a kernel without kprobes: %v", err)
	}
	r.shutdown()
}

// Without a metrics pipeline, drops are not lost silently: they are logged.
func TestLogsOnlyWarnsAboutDrops(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	cfg := helperConfig(func(cfg *Config) {
		cfg.CollectionInterval = 100 * time.Millisecond
		cfg.MaxEventsPerSecond = 3
	})
	core, logged := observer.New(zap.WarnLevel)
	set := receivertest.NewNopSettings(metadata.Type)
	set.Logger = zap.New(core)
	logs := new(consumertest.LogsSink)
	r := startReceiver(t, cfg, pipelines{logs: logs, set: &set})
	mremaptest.RunHelper(t, helper)
	r.shutdown()
	var limited int64
	for _, e := range logged.FilterMessageSnippet("not delivered in full").All() {
		if n, ok := e.ContextMap()["rate_limited"].(uint64); ok {
			limited += int64(n)
		}
	}
	if delivered := int64(logs.LogRecordCount()); limited == 0 || delivered+limited != int64(len(mremaptest.Expected)) {
		t.Errorf("delivered %d, warned about %d rate limited; want some limited and %d in all", delivered, limited, len(mremaptest.Expected))
	}
}

// Each pattern a signal stands for is a record with exactly its signals,
// its look-alikes have none, and mremap.signals counts them, in every
// probe mode.
func TestSignals(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	require.NoError(t, err)
	for _, probe := range mremaptest.Probes(t) {
		t.Run(probe, func(t *testing.T) {
			logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
			startReceiver(t, helperConfig(func(cfg *Config) {
				cfg.Probe = probe
				cfg.CollectionInterval = 100 * time.Millisecond
			}), pipelines{logs: logs, metrics: metrics})
			run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
			run.Made = mremaptest.RunHelperSignals(t, helper, "-linger", "2s")
			run.End = time.Now()
			// At vm.max_map_count mappings, in a process of its own.
			limit := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
			limit.Made = mremaptest.RunHelperArgs(t, helper, "-map-count-limit", "-linger", "2s")
			limit.End = time.Now()
			want := map[string]int64{"map_count_limit": 1}
			for _, m := range run.Made {
				if s := mremaptest.RaisedHere(probe, mremaptest.SignalExpectationOf(t, m.Name).Signals); s != "" {
					for _, name := range strings.Split(s, "|") {
						want[name]++
					}
				}
			}
			eventually(t, func() []string {
				p := mremapcheck.Logs(mergeLogs(logs.AllLogs()), run)
				p = append(p, mremapcheck.Logs(mergeLogs(logs.AllLogs()), limit)...)
				if got := signalCounts(metrics); fmt.Sprint(got) != fmt.Sprint(want) {
					p = append(p, fmt.Sprintf("mremap.signals of %s = %v, want %v", mremaptest.Comm, got, want))
				}
				return p
			})
		})
	}
}

// signalCounts is the last mremap.signals of the helper's comm, by signal.
func signalCounts(sink *consumertest.MetricsSink) map[string]int64 {
	got := map[string]int64{}
	all := sink.AllMetrics()
	if len(all) == 0 {
		return got
	}
	ms := all[len(all)-1].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics()
	for _, m := range ms.All() {
		if m.Name() != "mremap.signals" {
			continue
		}
		for _, dp := range m.Sum().DataPoints().All() {
			if comm, _ := dp.Attributes().Get("process.executable.name"); comm.Str() == mremaptest.Comm {
				s, _ := dp.Attributes().Get("mremap.signal")
				got[s.Str()] += dp.IntValue()
			}
		}
	}
	return got
}
