package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// TestStartWithoutCapabilities runs the collector as an unprivileged user:
// it must fail at start and name the capabilities it lacks.
func TestStartWithoutCapabilities(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to start the collector as another user")
	}
	dir := t.TempDir()
	// The unprivileged user must be able to run the binary and read the
	// config: the checkout itself may sit in a directory only root can
	// enter, so both go in a directory that everyone can.
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(mremaptest.CollectorPath(t))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "otelcol-mremap")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, []byte(`
receivers:
  mremap: {}
exporters:
  debug: {}
service:
  pipelines:
    logs: {receivers: [mremap], exporters: [debug]}
  telemetry:
    metrics: {level: none}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", cfg)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the collector started without privileges:\n%s", out)
	}
	for _, want := range []string{"CAP_BPF", "CAP_PERFMON"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the start error does not name %s:\n%s", want, out)
		}
	}
}
