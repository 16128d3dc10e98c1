//go:build linux

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
// ship, as two collector processes in a network namespace of the test's
// own, over mutual TLS with the fleet's certificates (make-certs.sh): the
// agent observes the helper's calls and sends them over OTLP to the
// gateway, whose file exporter must then hold exactly the log records and
// metric values the receiver produces for them, and whose prometheus
// exporter must serve them. Only the variables the configs read are set,
// and the collection interval and file flush intervals shortened; the
// agent is limited to the helper's comm, so that mremap.duration, which
// has no process attribute, counts only the helper's calls.
func TestAgentGateway(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	f := newFleet(t)
	gateway := f.startGateway(t)
	defer gateway.stop(t)
	agent := f.startAgent(t)
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

	client := f.ns.httpClient()
	problems := mremapcheck.Eventually(30*time.Second, 200*time.Millisecond, func() []string {
		p := readOutput(t, run, filepath.Join(f.gwDir, "logs.json"), filepath.Join(f.gwDir, "metrics.json"))
		got := scrapeWith(client, gatewayMetrics)
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
