//go:build linux

package mremaptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
		if is32Bit(p) {
			Hold32Bit(t, p)
		}
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
// 32-bit caller that enters mremap through the kernel's ia32 entry with
// int $0x80: $MREMAP_HELPER_386 if set (the kernel VM suite ships one), else
// one built for the test in its temporary directory, removed after it. It
// skips the test where the kernel runs no 32-bit x86 programs: not x86-64,
// no ia32 emulation, or emulation turned off (exec fails with ENOEXEC).
func Helper386Path(t testing.TB) string {
	t.Helper()
	requireIa32(t)
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
	require32BitExec(t, path)
	Hold32Bit(t, path)
	return path
}

// Hold32Bit keeps a 32-bit process (the Go helper built for 386, at
// helper386, sleeping) running for the rest of the test: in tracepoint
// mode the tracer attaches the raw_syscalls programs that catch 32-bit
// callers only while a 32-bit program runs, and a tracer started now finds
// this one at once. Calls the test's 32-bit helpers make are then all
// seen, whenever they start.
func Hold32Bit(t testing.TB, helper386 string) {
	t.Helper()
	cmd := exec.Command(helper386, "-sleep", "1h")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start a 32-bit process: %v", err)
	}
	held.Lock()
	held.m[t.Name()] = append(held.m[t.Name()], cmd)
	held.Unlock()
	t.Cleanup(func() { Stop32Bit(t) })
}

// held are the 32-bit processes Hold32Bit started, by test.
var held = struct {
	sync.Mutex
	m map[string][]*exec.Cmd
}{m: map[string][]*exec.Cmd{}}

// Stop32Bit ends the 32-bit processes Hold32Bit started for the test.
func Stop32Bit(t testing.TB) {
	held.Lock()
	cmds := held.m[t.Name()]
	delete(held.m, t.Name())
	held.Unlock()
	for _, cmd := range cmds {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// is32Bit tells whether the program at path is a 32-bit ELF file.
func is32Bit(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var ident [5]byte
	_, err = io.ReadFull(f, ident[:])
	return err == nil && string(ident[:4]) == "\x7fELF" && ident[4] == 1 // ELFCLASS32
}

// CommGlibc32 is the comm cmd/mremap-helper32 gives itself.
const CommGlibc32 = "mremap-c32"

// ExpectedGlibc32 names the calls cmd/mremap-helper32 makes, in order; their
// expectations are those of Expected.
var ExpectedGlibc32 = []string{"shrink", "grow_in_place", "maymove", "fixed", "einval_unaligned", "efault_unmapped"}

// HelperGlibc32Path returns cmd/mremap-helper32, a 32-bit C program built
// with gcc -m32 -static, whose mremap() calls go through glibc and the
// vDSO's __kernel_vsyscall (the fast compat entry, sysenter or syscall):
// $MREMAP_HELPER_GCC32 if set (make test-kernel passes bin/mremap-helper32,
// the kernel VM suite its own copy), else one built for the test in its
// temporary directory. It skips the test where the kernel runs no 32-bit
// programs, or where gcc cannot build static 32-bit programs (no
// gcc-multilib).
func HelperGlibc32Path(t testing.TB) string {
	t.Helper()
	requireIa32(t)
	path := os.Getenv("MREMAP_HELPER_GCC32")
	if path == "" {
		dir := t.TempDir()
		probe := exec.Command("gcc", "-m32", "-static", "-x", "c", "-o", filepath.Join(dir, "probe"), "-")
		probe.Stdin = strings.NewReader("int main(void) { return 0; }\n")
		if out, err := probe.CombinedOutput(); err != nil {
			t.Skipf("gcc -m32 -static cannot build a 32-bit program here (install the Debian package gcc-multilib, as .ci/run does): %v\n%s", err, out)
		}
		path = filepath.Join(dir, "mremap-helper32")
		cmd := exec.Command("gcc", "-m32", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", path, "cmd/mremap-helper32/main.c")
		cmd.Dir = ModuleRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build cmd/mremap-helper32: %v\n%s", err, out)
		}
	}
	require32BitExec(t, path)
	Helper386Path(t) // holds a 32-bit process for the test
	return path
}

// RunHelperGlibc32 runs cmd/mremap-helper32 with arguments and returns its
// calls, after checking that each is the call ExpectedGlibc32 names and
// ended as Expected says (the errno it printed, the mapping it saw).
func RunHelperGlibc32(t testing.TB, path string, args ...string) []Made {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s%s", path, err, stdout.String(), stderr.String())
	}
	var made []Made
	for _, line := range bytes.Split(bytes.TrimSpace(stdout.Bytes()), []byte("\n")) {
		var m struct {
			Made
			Errno string `json:"errno"`
		}
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("parse %s output %q: %v", path, line, err)
		}
		i := len(made)
		if i >= len(ExpectedGlibc32) || m.Name != ExpectedGlibc32[i] {
			t.Fatalf("%s: call %d is %q, want the calls %v", path, i, m.Name, ExpectedGlibc32)
		}
		e := ExpectationOf(t, m.Name)
		if want := strings.TrimPrefix(e.Result, "ok"); m.Errno != want || (want == "") != (m.Return >= 0) {
			t.Fatalf("%s: call %s returned %d, errno %q; want %s", path, m.Name, m.Return, m.Errno, e.Result)
		}
		if want := expectedMapping(e, "", ""); !sameMapping(m.Maps, want) {
			t.Fatalf("%s: call %s: /proc/self/maps showed %v at 0x%x, want %v", path, m.Name, m.Maps, m.OldAddress, want)
		}
		made = append(made, m.Made)
	}
	if len(made) != len(ExpectedGlibc32) {
		t.Fatalf("%s made %d calls, want %d (%v)", path, len(made), len(ExpectedGlibc32), ExpectedGlibc32)
	}
	return made
}

// requireIa32 skips the test unless the kernel is x86-64 with ia32 emulation.
func requireIa32(t testing.TB) {
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
}

// require32BitExec skips the test if the kernel refuses to run the 32-bit
// program at path: ia32_emulation=0 (or CONFIG_IA32_EMULATION_DEFAULT_DISABLED)
// keeps __ia32_sys_mremap but makes exec fail with ENOEXEC.
func require32BitExec(t testing.TB, path string) {
	t.Helper()
	if err := exec.Command(path, "-h").Run(); errors.Is(err, syscall.ENOEXEC) {
		t.Skipf("this kernel does not run 32-bit programs (exec %s: %v): ia32 emulation is off (ia32_emulation=0 or CONFIG_IA32_EMULATION_DEFAULT_DISABLED)", path, err)
	}
}
