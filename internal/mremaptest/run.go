package mremaptest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequireBPF skips the test, saying why, unless it runs as root: loading
// eBPF programs and attaching probes needs CAP_BPF and CAP_PERFMON.
func RequireBPF(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped in -short mode: loads eBPF programs into the kernel")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: loading eBPF programs needs root (CAP_BPF and CAP_PERFMON); run the tests as root, as CI does")
	}
}

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// HelperPath returns the mremap-helper binary: $MREMAP_HELPER if set (the
// kernel VM tests ship a prebuilt one), else one built from
// cmd/mremap-helper once per test binary.
func HelperPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MREMAP_HELPER"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mremap-helper")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, Comm)
		cmd := exec.Command("go", "build", "-o", builtPath, "github.com/otelcol-mremap/otelcol-mremap/cmd/mremap-helper")
		cmd.Dir = ModuleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{err: err, out: string(out)}
		}
	})
	if buildErr != nil {
		t.Fatalf("build mremap-helper: %v", buildErr)
	}
	return builtPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

// ModuleRoot is the repository's root directory, found from this file's
// source path (the kernel VM suite puts a copy of the files tests read there).
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// RunHelper runs the helper and returns the calls it made, in order.
func RunHelper(t testing.TB, path string) []Made {
	t.Helper()
	return RunHelperLinger(t, path, 0)
}

// RunHelperLinger runs the helper, which stays alive for linger after its
// calls, so that /proc still shows it while the calls are converted.
func RunHelperLinger(t testing.TB, path string, linger time.Duration) []Made {
	t.Helper()
	return RunHelperArgs(t, path, "-linger", linger.String())
}

// RunHelperArgs runs the helper with arguments and returns its calls.
func RunHelperArgs(t testing.TB, path string, args ...string) []Made {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, stderr.String())
	}
	return parseMade(t, stdout.Bytes())
}

// ExpectationOf returns the expectation for the call named name.
func ExpectationOf(t testing.TB, name string) Expectation {
	t.Helper()
	for _, e := range Expected {
		if e.Name == name {
			return e.Expectation
		}
	}
	t.Fatalf("no expectation for call %q", name)
	return Expectation{}
}

// Probes returns the probe modes to test on this kernel: tracepoint, and
// kprobe where the kernel has kprobes. Where it has none, kprobe is
// logged as untested, or fails the test if MREMAP_REQUIRE_PROBES is set (as
// in the kernel VM suite, whose kernels have kprobes).
func Probes(t testing.TB) []string {
	t.Helper()
	out := []string{"tracepoint"}
	switch {
	case HasKprobes():
		out = append(out, "kprobe")
	case os.Getenv("MREMAP_REQUIRE_PROBES") != "":
		t.Errorf("kprobe mode required by MREMAP_REQUIRE_PROBES, but this kernel has no kprobes")
	default:
		t.Log("kprobe mode not tested: this kernel has no kprobes (the kernel VM suite tests it)")
	}
	return out
}

// Loop is what the helper reports after a load run (-loop N or -for D).
type Loop struct {
	Calls   uint64        // mremap calls made, all successful
	Elapsed time.Duration // from the first call to the last
	PID     uint32
}

// RunLoop runs the helper with -loop pairs (2*pairs calls), or, with pairs
// 0, with -for d, and returns what it reports.
func RunLoop(t testing.TB, path string, pairs int, d time.Duration) Loop {
	t.Helper()
	args := []string{"-loop", strconv.Itoa(pairs)}
	if pairs == 0 {
		args = []string{"-for", d.String()}
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", path, args, err, stderr.String())
	}
	var l Loop
	var elapsed int64
	var nsPerCall float64
	var tid uint32
	line := strings.TrimSpace(stdout.String())
	if _, err := fmt.Sscanf(line, "calls=%d ns_per_call=%f pid=%d tid=%d elapsed_ns=%d",
		&l.Calls, &nsPerCall, &l.PID, &tid, &elapsed); err != nil {
		t.Fatalf("parse helper output %q: %v", line, err)
	}
	l.Elapsed = time.Duration(elapsed)
	return l
}
