//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// loopResult is one run of the load generator.
type loopResult struct {
	calls       int64
	nsPerCall   float64
	callsPerSec float64
	cpuPerCall  float64 // the loop thread's own CPU time per call
}

var loopLine = regexp.MustCompile(`calls=(\d+) ns_per_call=([0-9.]+) .*calls_per_second=([0-9.]+) cpu_ns_per_call=([0-9.]+)`)

// loop runs the load generator: pairs shrink/grow pairs pinned to the CPU,
// at rate calls per second (0: full speed).
func (b *bench) loop(pairs int, rate float64) (loopResult, error) {
	args := []string{"-loop", strconv.Itoa(pairs), "-cpu", strconv.Itoa(b.opts.cpu)}
	if rate > 0 {
		args = append(args, "-rate", strconv.FormatFloat(rate, 'f', 0, 64))
	}
	out, err := exec.Command(b.opts.helper, args...).CombinedOutput()
	if err != nil {
		return loopResult{}, fmt.Errorf("%s %s: %w\n%s", b.opts.helper, strings.Join(args, " "), err, out)
	}
	m := loopLine.FindStringSubmatch(string(out))
	if m == nil {
		return loopResult{}, fmt.Errorf("%s printed %q", b.opts.helper, out)
	}
	var r loopResult
	r.calls, _ = strconv.ParseInt(m[1], 10, 64)
	r.nsPerCall, _ = strconv.ParseFloat(m[2], 64)
	r.callsPerSec, _ = strconv.ParseFloat(m[3], 64)
	r.cpuPerCall, _ = strconv.ParseFloat(m[4], 64)
	return r, nil
}

// A session is one configuration attached for a few loops.
type session struct {
	round int
	loops []loopResult
	calls int64
	// The observer process's CPU time over the loops (and, for the
	// collector with logs, until their records were exported).
	cpu     time.Duration
	hasCPU  bool
	records int64 // log records exported (collector) or lines printed (bpftrace)
	counted int64 // the helper's calls in mremap.calls (collector)
	drops   map[string]int64
	lost    int64 // bpftrace's lost events
	hwm     int64 // the observer's peak RSS (VmHWM), bytes
}

// nsPerCall is the median of the session's loops.
func (s *session) nsPerCall() float64 {
	v := make([]float64, len(s.loops))
	for i, l := range s.loops {
		v[i] = l.nsPerCall
	}
	return median(v)
}

// cpuPerCall is the median of the session's loops' own CPU per call.
func (s *session) cpuPerCall() float64 {
	v := make([]float64, len(s.loops))
	for i, l := range s.loops {
		v[i] = l.cpuPerCall
	}
	return median(v)
}

func (s *session) dropped() int64 {
	var n int64
	for _, v := range s.drops {
		n += v
	}
	return n
}

func (s *session) summary() string {
	var b strings.Builder
	for i, l := range s.loops {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.0f", l.nsPerCall)
	}
	out := fmt.Sprintf("ns/call %s (own CPU %.0f)", b.String(), s.cpuPerCall())
	if s.hasCPU {
		out += fmt.Sprintf("; tracer CPU %.0f ns/call", float64(s.cpu.Nanoseconds())/float64(s.calls))
	}
	if s.records > 0 {
		out += fmt.Sprintf("; records %d of %d calls", s.records, s.calls)
	}
	if s.drops != nil {
		out += fmt.Sprintf("; dropped %d", s.dropped())
	}
	if s.lost > 0 {
		out += fmt.Sprintf("; lost %d", s.lost)
	}
	if s.hwm > 0 {
		out += fmt.Sprintf("; VmHWM %.1f MiB", float64(s.hwm)/(1<<20))
	}
	return out
}

// session attaches c, runs the loops, and detaches.
func (b *bench) session(c *configuration) (*session, error) {
	var o *observer
	if c.start != nil {
		var err error
		if o, err = c.start(); err != nil {
			return nil, err
		}
	}
	s, err := b.measure(c, o)
	stopErr := o.stop()
	if errors.Is(stopErr, errKilled) && !c.collector && err == nil {
		// bpftrace now and then ignores the first SIGINT: the session's
		// loops are done, so the run goes on. The collector must stop.
		logf("%s: %v", c.key, stopErr)
		b.notes = append(b.notes, fmt.Sprintf("%s: %v", c.name, stopErr))
		stopErr = nil
	}
	if err == nil {
		err = stopErr
	}
	return s, err
}

func (b *bench) measure(c *configuration, o *observer) (*session, error) {
	s := &session{}
	pid := o.pid()
	var before time.Duration
	if pid != 0 {
		var err error
		if before, err = cpuTime(pid); err != nil {
			return nil, err
		}
		s.hasCPU = true
	}
	var records0, lines0 int64
	if o != nil {
		records0, lines0 = o.records.Load(), o.lines.Load()
	}
	for i := 0; i < b.opts.runs; i++ {
		var l loopResult
		var err error
		if c.load == loadGetppid {
			l, err = b.getppidLoop(b.opts.getppidCalls)
		} else {
			l, err = b.loop(b.opts.pairs, 0)
		}
		if err != nil {
			return nil, err
		}
		s.loops = append(s.loops, l)
		s.calls += l.calls
	}
	if c.logs {
		// Until every record of the loops was exported (at most a batch
		// wait and a ring-buffer poll after the last call).
		o.waitRecords(records0 + s.calls)
	}
	if pid != 0 {
		after, err := cpuTime(pid)
		if err != nil {
			return nil, err
		}
		s.cpu = after - before
		s.hwm, _ = peakRSS(pid)
	}
	if o != nil {
		s.records = o.records.Load() - records0 + o.lines.Load() - lines0
		s.lost = o.lost.Load()
	}
	if c.collector {
		sc, err := o.waitCounted(s.calls)
		if err != nil {
			return nil, err
		}
		s.counted, s.drops = sc.helperCalls, sc.drops
	}
	return s, nil
}

// rampStep is one rate of the ramp.
type rampStep struct {
	target, achieved float64 // calls per second; target 0 is full speed
	calls, records   int64
	dropped          int64
	cpu              time.Duration
}

type rampResult struct {
	steps        []rampStep
	maxZeroLoss  float64 // the highest achieved rate of a step without loss
	fullZeroLoss bool    // the full-speed step lost nothing
	hwm          int64
}

// rampRates are the loop's target rates, in calls per second; 0 is as fast
// as it goes.
var rampRates = []float64{25e3, 50e3, 100e3, 150e3, 200e3, 300e3, 400e3, 500e3, 0}

// fullRate is the achieved rate of the ramp's full-speed step; 0 when
// the ramp stopped before it.
func (r *rampResult) fullRate() float64 {
	for _, st := range r.steps {
		if st.target == 0 {
			return st.achieved
		}
	}
	return 0
}

// ramp runs the collector with logs and metrics while the loop's rate goes
// up, one second per step, until a step loses calls (a drop counted, or a
// record missing).
func (b *bench) ramp() (*rampResult, error) {
	o, err := b.startCollector("ramp", true, "", nil)
	if err != nil {
		return nil, err
	}
	defer o.stop()
	res := &rampResult{}
	var calls int64
	prev, err := o.scrape()
	if err != nil {
		return nil, err
	}
	for _, rate := range rampRates {
		pairs := int(rate / 2)
		if rate == 0 {
			pairs = 250000 // about a second at full speed
		}
		cpu0, err := cpuTime(o.pid())
		if err != nil {
			return nil, err
		}
		rec0 := o.records.Load()
		l, err := b.loop(pairs, rate)
		if err != nil {
			return nil, err
		}
		calls += l.calls
		o.waitRecords(rec0 + l.calls)
		cpu1, _ := cpuTime(o.pid())
		sc, err := o.waitCounted(calls)
		if err != nil {
			return nil, err
		}
		st := rampStep{target: rate, achieved: l.callsPerSec, calls: l.calls,
			records: o.records.Load() - rec0, dropped: sc.dropped() - prev.dropped(), cpu: cpu1 - cpu0}
		prev = sc
		res.steps = append(res.steps, st)
		lossless := st.dropped == 0 && st.records >= st.calls
		logf("ramp %-8s achieved %7.0f calls/s: %d records of %d calls, %d dropped", rateName(rate), st.achieved, st.records, st.calls, st.dropped)
		if !lossless {
			break
		}
		res.maxZeroLoss = max(res.maxZeroLoss, st.achieved)
		if rate == 0 {
			res.fullZeroLoss = true
		}
	}
	res.hwm, _ = peakRSS(o.pid())
	return res, nil
}

func rateName(rate float64) string {
	if rate == 0 {
		return "full"
	}
	return fmt.Sprintf("%.0fk/s", rate/1000)
}

// cpuTime is a process's user and system time, from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The fields after the command (which may hold spaces), from field 3.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ (sysconf(_SC_CLK_TCK)), 100 on every Linux ABI.
const clockTicks = 100

// peakRSS is a process's VmHWM, in bytes.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no VmHWM", pid)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}
