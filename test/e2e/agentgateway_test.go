package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// TestAgentGateway runs config/agent.yaml and config/gateway.yaml as they
// ship, as two collector processes on loopback: the agent observes the
// helper's calls and sends them over OTLP to the gateway, whose file
// exporter must then hold exactly the log records and metric values the
// receiver produces for them, and whose prometheus exporter must serve
// them. Only addresses, the file path and the collection interval are
// changed, with --set and the variables the configs read (GATEWAY_ENDPOINT,
// MREMAP_OUTPUT_DIR);
// the agent is limited to the helper's comm, so that mremap.duration, which
// has no process attribute, counts only the helper's calls.
func TestAgentGateway(t *testing.T) {
	mremaptest.RequireBPF(t)
	bin := mremaptest.CollectorPath(t)
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	root := mremaptest.ModuleRoot()
	otlpPort, promPort := mremaptest.FreePort(t), mremaptest.FreePort(t)
	gwDir := t.TempDir()

	gateway := runCollector(t, gwDir, []string{"MREMAP_OUTPUT_DIR=" + gwDir}, bin, "--config", filepath.Join(root, "config", "gateway.yaml"),
		fmt.Sprintf("--set=receivers::otlp::protocols::grpc::endpoint=127.0.0.1:%d", otlpPort),
		fmt.Sprintf("--set=exporters::prometheus::endpoint=127.0.0.1:%d", promPort),
		fmt.Sprintf("--set=extensions::health_check::endpoint=127.0.0.1:%d", mremaptest.FreePort(t)),
		"--set=exporters::file/logs::flush_interval=100ms",
		"--set=exporters::file/metrics::flush_interval=100ms",
		"--set=service::telemetry::metrics::level=none")
	defer gateway.stop(t)

	agent := runCollector(t, t.TempDir(), []string{fmt.Sprintf("GATEWAY_ENDPOINT=127.0.0.1:%d", otlpPort)},
		bin, "--config", filepath.Join(root, "config", "agent.yaml"),
		fmt.Sprintf("--set=extensions::health_check::endpoint=127.0.0.1:%d", mremaptest.FreePort(t)),
		"--set=receivers::mremap::collection_interval=500ms",
		"--set=receivers::mremap::filter::comms=["+mremaptest.Comm+"]",
		"--set=service::telemetry::metrics::level=none")
	probe := "tracepoint"
	if mremaptest.HasKprobes() {
		probe = "kprobe" // the agent's probe: auto
	}
	if !strings.Contains(agent.stderr.String(), `"probe": "`+probe+`"`) {
		t.Errorf("the agent's startup log does not say probe %s", probe)
	}

	run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
	run.Made = mremaptest.RunHelperLinger(t, helper, 2*time.Second)
	run.End = time.Now()

	problems := mremapcheck.Eventually(30*time.Second, 200*time.Millisecond, func() []string {
		p := readOutput(t, run, filepath.Join(gwDir, "logs.json"), filepath.Join(gwDir, "metrics.json"))
		got := scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", promPort))
		series := fmt.Sprintf(`mremap_calls_total{mremap_move="fixed",mremap_resize="none",mremap_result="ok",process_executable_name=%q}`, mremaptest.Comm)
		if got[series] != 1 {
			p = append(p, fmt.Sprintf("the gateway's prometheus exporter serves %s = %v, want 1", series, got[series]))
		}
		return p
	})
	for _, p := range problems {
		t.Error(p)
	}
	agent.stop(t)
}
