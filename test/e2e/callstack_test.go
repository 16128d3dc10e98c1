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

const callStackConfig = `
receivers:
  mremap:
    probe: %s
    vma_lookup: false
    call_stack: true
    filter:
      comms: [mremap-helper, mremap-cstack]
exporters:
  file/logs:
    path: $DIR/logs.json
    flush_interval: 100ms
service:
  pipelines:
    logs:
      receivers: [mremap]
      exporters: [file/logs]
  telemetry:
    metrics:
      level: none
`

// TestCollectorCallStack: the built collector with call_stack: true puts
// the caller's stack on each record: the C helper's nested functions (its
// glibc mremap() a leaf stub the kernel's walk skips) and the Go helper's,
// in order, code.function.name the innermost; the startup log says how.
func TestCollectorCallStack(t *testing.T) {
	mremaptest.RequireBPF(t)
	bin := mremaptest.CollectorPath(t)
	helper, cstack := realPath(t, mremaptest.HelperPath(t)), realPath(t, mremaptest.CStackPath(t))
	for _, probe := range mremaptest.Probes(t) {
		t.Run(probe, func(t *testing.T) {
			c := startCollector(t, bin, fmt.Sprintf(callStackConfig, probe))
			if out := c.stderr.String(); !strings.Contains(out, "call_stack: the kernel walks the caller's user stack") {
				t.Errorf("the startup log does not say how call stacks are captured:\n%s", out)
			}
			start := time.Now()
			runs := []struct {
				run  mremapcheck.Run
				want mremapcheck.StackWant
			}{
				{mremapcheck.Run{Comm: mremaptest.CommCStack, ExePath: cstack, Made: mremaptest.StartHelper(t, 1, cstack, "mremap", "5000")},
					mremapcheck.StackWant{Functions: mremaptest.CStackFunctions, Module: cstack, Function: "stack_inner", End: "complete"}},
				{mremapcheck.Run{ExePath: helper, Made: mremaptest.StartHelper(t, 1, helper, "-stack", "-linger", "5s")},
					mremapcheck.StackWant{Functions: mremaptest.GoStackFunctions, Module: helper, Function: "main.stackInner", End: "complete"}},
			}
			end := time.Now()
			problems := mremapcheck.Eventually(30*time.Second, 200*time.Millisecond, func() []string {
				out, err := mremapcheck.ReadFile(filepath.Join(c.dir, "logs.json"))
				if err != nil {
					t.Fatal(err)
				}
				var p []string
				for _, r := range runs {
					run := r.run
					run.Probe, run.PPID, run.Start, run.End, run.Stack = probe, os.Getpid(), start, end, r.want.Check
					p = append(p, mremapcheck.Logs(out.Logs, run)...)
				}
				return p
			})
			for _, p := range problems {
				t.Error(p)
			}
			c.stop(t)
		})
	}
}

// realPath is path as /proc/PID/maps shows the file: absolute, no links.
func realPath(t *testing.T, path string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(path)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = filepath.Abs(p); err != nil {
		t.Fatal(err)
	}
	return p
}
