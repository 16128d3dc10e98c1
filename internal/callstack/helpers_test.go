//go:build linux

package callstack

import (
	"bufio"
	"encoding/binary"
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
)

// The helper programs are built once per test run, on first use.
var (
	buildDir  string
	buildMu   sync.Mutex
	buildDone = map[string]error{}
)

func TestMain(m *testing.M) {
	var err error
	if buildDir, err = os.MkdirTemp("", "callstack-test-"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(buildDir)
	os.Exit(code)
}

// helperBinaries: how each helper is built. The C ones keep frame
// pointers and make no tail calls, so the nested functions stay frames.
var helperBinaries = map[string][]string{
	"c-dynamic":         {"gcc", "-O2", "-fno-omit-frame-pointer", "-fno-optimize-sibling-calls", "-o", "OUT", "testdata/helper.c"},
	"c-static":          {"gcc", "-static", "-O2", "-fno-omit-frame-pointer", "-fno-optimize-sibling-calls", "-o", "OUT", "testdata/helper.c"},
	"c-static-stripped": {"strip", "-o", "OUT", "IN:c-static"},
	"go":                {"go", "build", "-o", "OUT", "./testdata/gohelper"},
	"go-pie":            {"go", "build", "-buildmode=pie", "-o", "OUT", "./testdata/gohelper"},
	"go-stripped":       {"strip", "-o", "OUT", "IN:go"},
}

// helper returns the path of a built helper, skipping the test when the
// tool that builds it is missing.
func helper(t testing.TB, name string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	out := filepath.Join(buildDir, name)
	err, done := buildDone[name]
	if !done {
		args := append([]string(nil), helperBinaries[name]...)
		for i, a := range args {
			if a == "OUT" {
				args[i] = out
			} else if in, ok := strings.CutPrefix(a, "IN:"); ok {
				buildMu.Unlock()
				args[i] = helper(t, in)
				buildMu.Lock()
			}
		}
		if _, lerr := exec.LookPath(args[0]); lerr != nil {
			t.Skipf("%s not found (Debian package %s): helper %s not built", args[0], map[string]string{"gcc": "gcc", "strip": "binutils", "go": "golang"}[args[0]], name)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, cerr := cmd.CombinedOutput(); cerr != nil {
			err = &buildError{name, cerr, string(b)}
		}
		buildDone[name] = err
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type buildError struct {
	name   string
	err    error
	output string
}

func (e *buildError) Error() string {
	return "build " + e.name + ": " + e.err.Error() + "\n" + e.output
}

// running is a helper in print (or map) mode: it has printed its
// addresses and waits for its stdin to close.
type running struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	addrs []uint64
	names []string // the Go runtime's names (Go helper only)
}

func (r *running) pid() uint32 { return uint32(r.cmd.Process.Pid) }

// stop closes the helper's stdin and waits for it to exit.
func (r *running) stop() {
	r.stdin.Close()
	r.cmd.Wait()
}

// start runs argv and reads the addresses it prints up to "ready".
func start(t testing.TB, argv ...string) *running {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &running{cmd: cmd, stdin: stdin}
	t.Cleanup(r.stop)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if line == "ready" {
			return r
		}
		hex, name, _ := strings.Cut(line, " ")
		a, err := strconv.ParseUint(strings.TrimPrefix(hex, "0x"), 16, 64)
		if err != nil {
			t.Fatalf("%s printed %q", argv[0], line)
		}
		r.addrs = append(r.addrs, a)
		r.names = append(r.names, name)
	}
	t.Fatalf("%v exited before it was ready: %v", argv, cmd.Wait())
	return nil
}

// atSyscall runs argv under ptrace up to its first entry into syscall nr
// and returns what the kernel's frame-pointer walk (bpf_get_stack with
// BPF_F_USER_STACK) captures there: the user instruction pointer, then
// the return addresses read through the saved frame pointers, with the
// same loop as the kernel's perf_callchain_user; and the word on top of
// the user stack. The process stays stopped at the syscall until stop.
func atSyscall(t *testing.T, nr uint64, argv ...string) (req Request, stop func()) {
	t.Helper()
	runtime.LockOSThread() // ptrace requests come from the tracer thread
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	if err := cmd.Start(); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	stop = func() {
		syscall.Kill(pid, syscall.SIGKILL)
		cmd.Wait()
		runtime.UnlockOSThread()
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		stop()
		t.Fatal(err)
	}
	regs, err := runToSyscall(pid, nr)
	if err != nil {
		stop()
		t.Fatalf("%v: %v", argv, err)
	}
	req = Request{PID: uint32(pid), Addresses: walkFrames(t, pid, regs.Rip, regs.Rbp)}
	for i := uint64(0); i < MaxStackWords; i++ {
		req.StackWords = append(req.StackWords, word(pid, regs.Rsp+8*i))
	}
	return req, stop
}

func runToSyscall(pid int, nr uint64) (*syscall.PtraceRegs, error) {
	const exitKill = 0x100000 // PTRACE_O_EXITKILL
	if err := syscall.PtraceSetOptions(pid, syscall.PTRACE_O_TRACESYSGOOD|exitKill); err != nil {
		return nil, err
	}
	sig := 0
	for {
		if err := syscall.PtraceSyscall(pid, sig); err != nil {
			return nil, err
		}
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
			return nil, err
		}
		if ws.Exited() || ws.Signaled() {
			return nil, io.ErrUnexpectedEOF
		}
		sig = 0
		if ws.StopSignal() != syscall.SIGTRAP|0x80 {
			sig = int(ws.StopSignal())
			continue
		}
		var regs syscall.PtraceRegs
		if err := syscall.PtraceGetRegs(pid, &regs); err != nil {
			return nil, err
		}
		if regs.Orig_rax == nr && int64(regs.Rax) == -int64(syscall.ENOSYS) {
			return &regs, nil
		}
	}
}

func word(pid int, addr uint64) uint64 {
	w, _ := readWord(pid, addr)
	return w
}

func readWord(pid int, addr uint64) (uint64, bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mem")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var b [8]byte
	if _, err := f.ReadAt(b[:], int64(addr)); err != nil {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[:]), true
}

// walkFrames is the kernel's user frame-pointer walk.
func walkFrames(t *testing.T, pid int, ip, fp uint64) []uint64 {
	out := []uint64{ip}
	for len(out) < MaxFrames {
		if fp+16 > 0x7ffffffff000 {
			break
		}
		next, ok1 := readWord(pid, fp)
		ret, ok2 := readWord(pid, fp+8)
		if !ok1 || !ok2 {
			break
		}
		out = append(out, ret)
		fp = next
	}
	return out
}

// functions lists the frames' function names.
func functions(st Stack) []string {
	var out []string
	for _, f := range st.Frames {
		out = append(out, f.Function)
	}
	return out
}

// inOrder reports whether want appears in got as consecutive elements.
func inOrder(got []string, want ...string) bool {
	for i := 0; i+len(want) <= len(got); i++ {
		ok := true
		for j := range want {
			ok = ok && got[i+j] == want[j]
		}
		if ok {
			return true
		}
	}
	return false
}
