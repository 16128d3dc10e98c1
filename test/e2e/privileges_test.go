package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/internal/tracer"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// minimalCapabilities is the set docs/privileges.md documents for running
// without root in tracepoint mode, as setpriv names them.
func minimalCapabilities() []string {
	var caps []string
	for _, c := range tracer.MinimalCapabilities {
		caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	return caps
}

// The systemd unit grants the minimal set, and beyond it only capabilities
// docs/privileges.md documents as optional.
func TestServiceUsesMinimalCapabilities(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(mremaptest.ModuleRoot(), "config", "deploy", "otelcol-mremap.service"))
	if err != nil {
		t.Fatal(err)
	}
	optional := map[string]bool{"CAP_SYS_PTRACE": true, "CAP_DAC_OVERRIDE": true}
	for _, key := range []string{"CapabilityBoundingSet=", "AmbientCapabilities="} {
		var caps []string
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, key); ok {
				caps = append(caps, strings.Fields(v)...)
			}
		}
		for _, c := range tracer.MinimalCapabilities {
			if !slices.Contains(caps, c) {
				t.Errorf("%s%v lacks %s", key, caps, c)
			}
		}
		for _, c := range caps {
			if !slices.Contains(tracer.MinimalCapabilities, c) && !optional[c] {
				t.Errorf("%s%v grants %s, neither minimal nor documented", key, caps, c)
			}
		}
	}
}

// unprivilegedDir is a directory that user nobody can enter, holding a copy
// of the collector: the checkout may sit where only root can enter.
func unprivilegedDir(t *testing.T) (dir, bin string) {
	t.Helper()
	dir = t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(mremaptest.CollectorPath(t))
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, "otelcol-mremap")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, bin
}

// setprivCommand runs bin as user nobody with exactly caps (names without
// CAP_, lower case) as its inheritable, ambient and bounding sets.
func setprivCommand(t *testing.T, caps []string, bin string, args ...string) *exec.Cmd {
	t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skipf("skipped: setpriv (util-linux) is not installed: %v", err)
	}
	// BusyBox's setpriv (the kernel VM suite's) cannot change user.
	if out, _ := exec.Command(setpriv, "--version").CombinedOutput(); !strings.Contains(string(out), "util-linux") {
		t.Skipf("skipped: %s is not util-linux's setpriv, which --reuid needs: %.60q", setpriv, out)
	}
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	return exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=" + set, "--ambient-caps=" + set, "--bounding-set=" + set, bin}, args...)...)
}

// With exactly the documented capabilities and no root, the collector runs
// in tracepoint mode and delivers every call. process.executable.path of
// another user's process needs CAP_SYS_PTRACE too; without it, it is left
// out. Without CAP_DAC_READ_SEARCH (tracefs) or CAP_BPF it fails at start,
// naming what is missing.
func TestCollectorMinimalCapabilities(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		caps    []string
		exePath bool     // process.executable.path present
		fails   []string // the start error names these
	}{
		{"minimal", minimalCapabilities(), false, nil},
		{"minimal and sys_ptrace", append([]string{"sys_ptrace"}, minimalCapabilities()...), true, nil},
		{"without dac_read_search", []string{"bpf", "perfmon"}, false, []string{"missing capabilities CAP_DAC_READ_SEARCH"}},
		{"without bpf", []string{"perfmon", "dac_read_search"}, false, []string{"missing capabilities CAP_BPF:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, bin := unprivilegedDir(t)
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
receivers:
  mremap:
    probe: tracepoint
    collection_interval: 200ms
    filter:
      comms: [mremap-helper]
exporters:
  file:
    path: %s/logs.json
    flush_interval: 100ms
service:
  pipelines:
    logs: {receivers: [mremap], exporters: [file]}
  telemetry:
    metrics: {level: none}
`, dir)), 0o644); err != nil {
				t.Fatal(err)
			}
			if tt.fails != nil {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				cmd := setprivCommand(t, tt.caps, bin, "--config", cfg)
				cmd = exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
				out, err := cmd.CombinedOutput()
				if err == nil {
					t.Fatalf("the collector started with %v:\n%s", tt.caps, out)
				}
				for _, w := range tt.fails {
					if !strings.Contains(string(out), w) {
						t.Errorf("the start error does not say %q:\n%s", w, out)
					}
				}
				return
			}

			c := runCommand(t, dir, setprivCommand(t, tt.caps, bin, "--config", cfg))
			if !strings.Contains(c.stderr.String(), `"probe": "tracepoint"`) {
				t.Error("the startup log does not say tracepoint mode")
			}

			made := mremaptest.RunHelperLinger(t, helper, 2*time.Second)
			var records, withPath int
			problems := mremapcheck.Eventually(30*time.Second, 200*time.Millisecond, func() []string {
				out, err := mremapcheck.ReadFile(filepath.Join(dir, "logs.json"))
				if err != nil {
					t.Fatal(err)
				}
				ld := out.Logs
				records, withPath = ld.LogRecordCount(), 0
				for i := 0; i < ld.ResourceLogs().Len(); i++ {
					attrs := ld.ResourceLogs().At(i).Resource().Attributes()
					if v, ok := attrs.Get("process.executable.path"); ok {
						if v.Str() != exe {
							return []string{fmt.Sprintf("process.executable.path %q, want %q", v.Str(), exe)}
						}
						withPath++
					}
				}
				if records != len(made) {
					return []string{fmt.Sprintf("%d log records, want %d", records, len(made))}
				}
				return nil
			})
			for _, p := range problems {
				t.Error(p)
			}
			if tt.exePath && withPath == 0 {
				t.Error("no process.executable.path with CAP_SYS_PTRACE")
			}
			if !tt.exePath && withPath > 0 {
				t.Error("process.executable.path of a root process read without CAP_SYS_PTRACE")
			}
			c.stop(t)
		})
	}
}
