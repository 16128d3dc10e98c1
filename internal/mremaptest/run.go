package mremaptest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	return RunHelperEnv(t, path, nil, args...)
}

// RunHelperEnv runs the helper with more environment variables ("K=V")
// and arguments, and returns its calls.
func RunHelperEnv(t testing.TB, path string, env []string, args ...string) []Made {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
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

// Helper386Path returns a 32-bit (GOARCH=386) build of the helper, a real
// 32-bit caller that enters mremap through the kernel's ia32 entry:
// $MREMAP_HELPER_386 if set (the kernel VM suite ships one), else one built
// for the test in its temporary directory, removed after it. It skips the
// test where the kernel runs no 32-bit x86 programs: not x86-64, no ia32
// emulation, or emulation turned off (exec fails with ENOEXEC).
func Helper386Path(t testing.TB) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skipf("32-bit x86 callers exist only on x86-64, not %s", runtime.GOARCH)
	}
	kallsyms, err := os.ReadFile("/proc/kallsyms")
	if err != nil {
		t.Skipf("cannot tell whether this kernel runs 32-bit programs: %v", err)
	}
	if !bytes.Contains(kallsyms, []byte(" __ia32_sys_mremap\n")) {
		t.Skip("this kernel has no ia32 emulation (no __ia32_sys_mremap): it runs no 32-bit programs")
	}
	path := os.Getenv("MREMAP_HELPER_386")
	if path == "" {
		path = filepath.Join(t.TempDir(), Comm)
		cmd := exec.Command("go", "build", "-o", path, "github.com/otelcol-mremap/otelcol-mremap/cmd/mremap-helper")
		cmd.Dir = ModuleRoot()
		cmd.Env = append(os.Environ(), "GOARCH=386", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build the 32-bit mremap-helper: %v\n%s", err, out)
		}
	}
	// ia32_emulation=0 (or CONFIG_IA32_EMULATION_DEFAULT_DISABLED) keeps
	// __ia32_sys_mremap but refuses to exec 32-bit programs.
	if err := exec.Command(path, "-h").Run(); errors.Is(err, syscall.ENOEXEC) {
		t.Skipf("this kernel does not run 32-bit programs (exec %s: %v): ia32 emulation is off (ia32_emulation=0 or CONFIG_IA32_EMULATION_DEFAULT_DISABLED)", path, err)
	}
	return path
}
