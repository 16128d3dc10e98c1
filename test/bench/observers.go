//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// helperComm is the load generator's process name, as the kernel keeps it.
const helperComm = "mremap-helper"

// bench holds what every configuration shares.
type bench struct {
	opts    options
	tmp     string
	started time.Time
	// loadStart is the 1-minute load average when the run started.
	loadStart string
	notes     []string
	probe     string // the collector's startup log line on its probe choice
}

// An observer is what is attached during a session: a process (bpftrace,
// the collector) or programs in this process (the floor).
type observer struct {
	cmd      *exec.Cmd
	done     chan error
	lines    atomic.Int64 // bpftrace: lines printed for the helper
	records  atomic.Int64 // collector: log records the debug exporter reported
	lost     atomic.Int64 // bpftrace: "Lost N events"
	tail     *tailBuffer
	promPort int
	closeFn  func() error
}

func (o *observer) pid() int {
	if o == nil || o.cmd == nil {
		return 0
	}
	return o.cmd.Process.Pid
}

// errKilled: an observer did not stop when asked and was killed.
var errKilled = errors.New("killed")

// stop ends the observer: SIGINT, as a user would (the collector shuts down
// gracefully); SIGINT again after 15 s, then SIGKILL after 15 s more.
func (o *observer) stop() error {
	if o == nil {
		return nil
	}
	if o.closeFn != nil {
		return o.closeFn()
	}
	name := filepath.Base(o.cmd.Path)
	for _, sig := range []os.Signal{os.Interrupt, os.Interrupt, os.Kill} {
		_ = o.cmd.Process.Signal(sig)
		select {
		case err := <-o.done:
			var ee *exec.ExitError
			if sig == os.Kill {
				return fmt.Errorf("%s did not stop within 30 s of SIGINT: %w", name, errKilled)
			}
			if errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%s: %w\n%s", name, err, o.tail)
			}
			return nil
		case <-time.After(15 * time.Second):
		}
	}
	return fmt.Errorf("%s did not exit after SIGKILL", name)
}

// startFloor attaches two programs that do nothing to the mremap syscall
// tracepoints: what any tracer pays before doing any work.
func startFloor() (*observer, error) {
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	for _, tp := range []string{"sys_exit_mremap", "sys_enter_mremap"} {
		prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         "floor",
			Type:         ebpf.TracePoint,
			License:      "GPL",
			Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		})
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("load the empty program: %w", err)
		}
		closers = append(closers, prog.Close)
		l, err := link.Tracepoint("syscalls", tp, prog, nil)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("attach the empty program to syscalls:%s: %w", tp, err)
		}
		closers = append(closers, l.Close)
	}
	return &observer{closeFn: closeAll}, nil
}

// bpftraceAggregate keeps what the receiver's metrics hold. Integers stand
// for the attribute values: resize 0 none, 1 grow, 2 shrink; move 0 none,
// 1 maymove, 2 fixed, 3 dontunmap; err the errno, 0 for success.
const bpftraceAggregate = `
BEGIN { printf("ready\n"); }

tracepoint:syscalls:sys_enter_mremap
{
	@in[tid] = (nsecs, args->addr, args->old_len, args->new_len, args->flags);
}

tracepoint:syscalls:sys_exit_mremap
/@in[tid].0/
{
	$in = @in[tid];
	delete(@in[tid]);
	$old = $in.2; $new = $in.3; $flags = $in.4;
	$ok = args->ret >= 0 || args->ret < -4095;
	$resize = $new > $old ? 1 : ($new < $old ? 2 : 0);
	$move = ($flags & 2) ? 2 : (($flags & 4) ? 3 : (($ok && args->ret != (int64)$in.1) ? 1 : 0));
	$err = $ok ? 0 : -args->ret;
	@calls[comm, $resize, $move, $err] = count();
	if ($ok && $resize != 0) {
		@size[comm, $resize] = hist($new > $old ? $new - $old : $old - $new);
	}
	@duration[$move, $err] = hist(nsecs - $in.0);
}
`

// bpftracePrint prints every call.
const bpftracePrint = `
BEGIN { printf("ready\n"); }

tracepoint:syscalls:sys_enter_mremap
{
	@in[tid] = (nsecs, args->addr, args->old_len, args->new_len, args->flags, args->new_addr);
}

tracepoint:syscalls:sys_exit_mremap
/@in[tid].0/
{
	$in = @in[tid];
	delete(@in[tid]);
	printf("%s pid=%d tid=%d mremap(0x%lx, %lu, %lu, %lu, 0x%lx) = %ld duration_ns=%lu\n",
		comm, pid, tid, $in.1, $in.2, $in.3, $in.4, $in.5, args->ret, nsecs - $in.0);
}
`

var lostEvents = regexp.MustCompile(`Lost (\d+) events`)

func (b *bench) startBpftrace(name, script string) (*observer, error) {
	path := filepath.Join(b.tmp, name+".bt")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		return nil, err
	}
	o := &observer{tail: &tailBuffer{}, done: make(chan error, 1)}
	o.cmd = b.tracerCommand(b.opts.bpftrace, path)
	stdout, err := o.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	o.cmd.Stderr = o.tail
	if err := o.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bpftrace: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		r := bufio.NewReaderSize(stdout, 1<<20)
		var once sync.Once
		for {
			line, err := r.ReadSlice('\n')
			if len(line) > 0 {
				switch {
				case strings.HasPrefix(string(line), helperComm+" "):
					o.lines.Add(1)
				case string(line) == "ready\n":
					once.Do(func() { close(ready) })
				default:
					if m := lostEvents.FindSubmatch(line); m != nil {
						n, _ := strconv.ParseInt(string(m[1]), 10, 64)
						o.lost.Add(n)
					}
					o.tail.Write(line)
				}
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil {
				break
			}
		}
		o.done <- o.cmd.Wait()
	}()
	return o.await(ready, "bpftrace exited before attaching", "bpftrace did not attach within 60 s")
}

// tracerCommand runs a tracer (bpftrace, the collector), under taskset when
// -tracer-cpus is set.
func (b *bench) tracerCommand(name string, args ...string) *exec.Cmd {
	if b.opts.tracerCPUs == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", b.opts.tracerCPUs, name}, args...)...)
}

// collectorConfig is the collector's configuration; receiverExtra is
// appended to the mremap receiver's keys.
func collectorConfig(logs bool, receiverExtra string, promPort int) string {
	var s strings.Builder
	s.WriteString("receivers:\n  mremap:\n    collection_interval: 1s\n")
	s.WriteString(receiverExtra)
	fmt.Fprintf(&s, "exporters:\n  debug:\n    verbosity: basic\n  prometheus:\n    endpoint: 127.0.0.1:%d\n", promPort)
	s.WriteString("service:\n  pipelines:\n")
	if logs {
		s.WriteString("    logs:\n      receivers: [mremap]\n      exporters: [debug]\n")
	}
	s.WriteString("    metrics:\n      receivers: [mremap]\n      exporters: [prometheus]\n")
	// The collector's own metrics off (no port 8888, no extra work); its
	// log not sampled, so that the debug exporter's line for every batch
	// is there to count the records.
	s.WriteString("  telemetry:\n    metrics:\n      level: none\n    logs:\n      sampling:\n        enabled: false\n")
	return s.String()
}

// validate says whether the collector accepts receiverExtra.
func (b *bench) validate(receiverExtra string) error {
	path := filepath.Join(b.tmp, "validate.yaml")
	if err := os.WriteFile(path, []byte(collectorConfig(true, receiverExtra, 8889)), 0o644); err != nil {
		return err
	}
	out, err := exec.Command(b.opts.collector, "validate", "--config", path).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if i := strings.LastIndex(msg, "\n"); i >= 0 {
			msg = msg[i+1:]
		}
		return errors.New(msg)
	}
	return nil
}

// debugLogs matches the debug exporter's line for a batch of log records.
// startupReason matches the reason in the receiver's "mremap probes attached" line.
var startupReason = regexp.MustCompile(`"reason": "([^"]*)"`)

var debugLogs = regexp.MustCompile(`"otelcol.signal": "logs".*"log records": (\d+)`)

// startCollector starts the collector with receiverExtra appended to the
// mremap receiver's keys, env added to its environment and args to its
// command line, and waits until it is ready.
func (b *bench) startCollector(name string, logs bool, receiverExtra string, env []string, args ...string) (*observer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(b.tmp, name+".yaml")
	if err := os.WriteFile(path, []byte(collectorConfig(logs, receiverExtra, port)), 0o644); err != nil {
		return nil, err
	}
	o := &observer{tail: &tailBuffer{}, done: make(chan error, 1), promPort: port}
	o.cmd = b.tracerCommand(b.opts.collector, append([]string{"--config", path}, args...)...)
	o.cmd.Env = append(os.Environ(), env...)
	stderr, err := o.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	o.cmd.Stdout = o.tail
	if err := o.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the collector: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		r := bufio.NewReaderSize(stderr, 1<<20)
		var once sync.Once
		for {
			line, err := r.ReadString('\n')
			if m := debugLogs.FindStringSubmatch(line); m != nil {
				n, _ := strconv.ParseInt(m[1], 10, 64)
				o.records.Add(n)
			} else if line != "" {
				o.tail.Write([]byte(line))
				if strings.Contains(line, "mremap probes attached") && b.probe == "" {
					if m := startupReason.FindStringSubmatch(line); m != nil {
						b.probe = m[1]
					}
				}
				if strings.Contains(line, "Everything is ready") {
					once.Do(func() { close(ready) })
				}
			}
			if err != nil {
				break
			}
		}
		o.done <- o.cmd.Wait()
	}()
	return o.await(ready, "the collector exited before it was ready", "the collector was not ready within 60 s")
}

// await waits up to 60 s for ready to close: the observer is attached. If
// its process exits first, or the time runs out (then it is killed), the
// error says which, with the output's tail.
func (o *observer) await(ready <-chan struct{}, exited, timedOut string) (*observer, error) {
	select {
	case <-ready:
		return o, nil
	case err := <-o.done:
		o.done <- err
		return nil, fmt.Errorf("%s: %w\n%s", exited, err, o.tail)
	case <-time.After(60 * time.Second):
		_ = o.cmd.Process.Kill()
		return nil, fmt.Errorf("%s\n%s", timedOut, o.tail)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// promSample matches a sample line of the Prometheus text format.
var promSample = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)`)

// scrape is what the collector's prometheus exporter says of the helper's
// calls and of the drops.
type scrape struct {
	helperCalls int64
	drops       map[string]int64
}

func (s scrape) dropped() int64 {
	var n int64
	for _, v := range s.drops {
		n += v
	}
	return n
}

func (o *observer) scrape() (scrape, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", o.promPort), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return scrape{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return scrape{}, err
	}
	s := scrape{drops: map[string]int64{}}
	reason := regexp.MustCompile(`reason="([^"]*)"`)
	for _, line := range strings.Split(string(body), "\n") {
		m := promSample.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		switch m[1] {
		case "mremap_calls_total":
			if strings.Contains(m[2], `process_executable_name="`+helperComm+`"`) {
				s.helperCalls += int64(v)
			}
		case "mremap_events_dropped_total":
			if r := reason.FindStringSubmatch(m[2]); r != nil {
				s.drops[r[1]] += int64(v)
			}
		}
	}
	return s, nil
}

// waitCounted scrapes until the metrics count at least calls of the
// helper (the aggregates were read after the last loop), for at most 10 s.
func (o *observer) waitCounted(calls int64) (scrape, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, err := o.scrape()
		if err == nil && s.helperCalls >= calls {
			return s, nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return s, err
			}
			return s, fmt.Errorf("after 10 s mremap.calls counts %d calls of %s, the loops made %d", s.helperCalls, helperComm, calls)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRecords waits until the debug exporter reported at least want log
// records, or reported none more for a second.
func (o *observer) waitRecords(want int64) {
	last, since := o.records.Load(), time.Now()
	for o.records.Load() < want && time.Since(since) < time.Second {
		time.Sleep(20 * time.Millisecond)
		if n := o.records.Load(); n != last {
			last, since = n, time.Now()
		}
	}
}

// tailBuffer keeps the last lines written, for error messages.
type tailBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, strings.Split(strings.TrimRight(string(p), "\n"), "\n")...)
	if len(t.lines) > 40 {
		t.lines = t.lines[len(t.lines)-40:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
