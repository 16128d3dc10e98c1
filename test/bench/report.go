//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// row is one configuration's result.
type row struct {
	key, name, what string
	baseline        bool
	load            load
	nsPerCall       float64 // median over rounds
	added           float64 // median over rounds of ns/call minus the round's baseline
	addedMin        float64
	addedMax        float64
	addedCPU        float64 // median over rounds of the loop's own CPU per call minus the baseline's
	observerCPU     float64 // ns of the observer's CPU per call (median), -1 if none
	perRecord       float64 // ns of collector CPU per log record (median), -1 if none
	calls, records  int64
	hasRecords      bool
	drops           map[string]int64
	hasDrops        bool
	counted         int64
	lost            int64
	hwm             int64
	roundsAdded     []float64
}

type report struct {
	b     *bench
	rows  []row
	ramp  *rampResult
	goOut string
	end   time.Time
}

func (b *bench) report(cfgs []*configuration, rp *rampResult) *report {
	rep := &report{b: b, ramp: rp, end: time.Now()}
	// Each load's baseline, round by round.
	type roundKey struct {
		load  load
		round int
	}
	baseByRound, baseCPUByRound := map[roundKey]float64{}, map[roundKey]float64{}
	for _, c := range cfgs {
		if c.key != c.load.baselineKey() {
			continue
		}
		for _, s := range c.sessions {
			baseByRound[roundKey{c.load, s.round}] = s.nsPerCall()
			baseCPUByRound[roundKey{c.load, s.round}] = s.cpuPerCall()
		}
	}
	for _, c := range cfgs {
		r := row{key: c.key, name: c.name, what: c.what, baseline: c.key == c.load.baselineKey(), load: c.load,
			observerCPU: -1, perRecord: -1, hasRecords: c.logs || strings.HasPrefix(c.key, "bpftrace-print"), hasDrops: c.collector}
		var ns, cpu, perRec, addedCPU []float64
		r.drops = map[string]int64{}
		for _, s := range c.sessions {
			ns = append(ns, s.nsPerCall())
			k := roundKey{c.load, s.round}
			r.roundsAdded = append(r.roundsAdded, s.nsPerCall()-baseByRound[k])
			addedCPU = append(addedCPU, s.cpuPerCall()-baseCPUByRound[k])
			if s.hasCPU {
				cpu = append(cpu, float64(s.cpu.Nanoseconds())/float64(s.calls))
				if c.logs && s.records > 0 {
					perRec = append(perRec, float64(s.cpu.Nanoseconds())/float64(s.records))
				}
			}
			r.calls += s.calls
			r.records += s.records
			r.counted += s.counted
			r.lost += s.lost
			for k, v := range s.drops {
				// Cumulative per session: the last scrape holds the session's drops.
				r.drops[k] += v
			}
			r.hwm = max(r.hwm, s.hwm)
		}
		r.nsPerCall = median(ns)
		r.added = median(r.roundsAdded)
		r.addedMin, r.addedMax = minMax(r.roundsAdded)
		r.addedCPU = median(addedCPU)
		if len(cpu) > 0 {
			r.observerCPU = median(cpu)
		}
		if len(perRec) > 0 {
			r.perRecord = median(perRec)
		}
		rep.rows = append(rep.rows, r)
	}
	if b.opts.goBench != "" {
		if out, err := os.ReadFile(b.opts.goBench); err == nil {
			rep.goOut = string(out)
		} else {
			b.notes = append(b.notes, fmt.Sprintf("Go benchmarks: %v", err))
		}
	}
	return rep
}

func minMax(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	lo, hi := v[0], v[0]
	for _, x := range v[1:] {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

func (r row) dropped() int64 {
	var n int64
	for _, v := range r.drops {
		n += v
	}
	return n
}

func (rep *report) row(key string) (row, bool) {
	for _, r := range rep.rows {
		if r.key == key {
			return r, true
		}
	}
	return row{}, false
}

// table is the results of the mremap rows as a Markdown table.
func (rep *report) table() string {
	var s strings.Builder
	s.WriteString("| configuration | ns/call (median) | added ns/call (median) | added, min..max over rounds | added loop CPU ns/call | tracer CPU ns/call | log records (or lines) / calls | dropped | peak RSS |\n")
	s.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rep.rows {
		if r.load != loadMremap {
			continue
		}
		added, spread, addedCPU := r.addedColumns()
		recs := "—"
		if r.hasRecords {
			recs = fmt.Sprintf("%d / %d", r.records, r.calls)
		}
		drops := "—"
		if r.hasDrops {
			drops = strconv.FormatInt(r.dropped(), 10)
		}
		if r.lost > 0 {
			drops = fmt.Sprintf("%d lost", r.lost)
		}
		hwm := "—"
		if r.hwm > 0 {
			hwm = fmt.Sprintf("%.0f MiB", float64(r.hwm)/(1<<20))
		}
		fmt.Fprintf(&s, "| %s | %.0f | %s | %s | %s | %s | %s | %s | %s |\n", r.name, r.nsPerCall, added, spread, addedCPU, r.tracerCPU(), recs, drops, hwm)
	}
	return s.String()
}

// getppidTable is the results of the getppid rows as a Markdown table.
func (rep *report) getppidTable() string {
	var s strings.Builder
	s.WriteString("| configuration | ns/call (median) | added ns/call (median) | added, min..max over rounds | added thread CPU ns/call | tracer CPU ns/call |\n")
	s.WriteString("| --- | ---: | ---: | ---: | ---: | ---: |\n")
	n := 0
	for _, r := range rep.rows {
		if r.load != loadGetppid {
			continue
		}
		n++
		added, spread, addedCPU := r.addedColumns()
		fmt.Fprintf(&s, "| %s | %.0f | %s | %s | %s | %s |\n", r.name, r.nsPerCall, added, spread, addedCPU, r.tracerCPU())
	}
	if n == 0 {
		return ""
	}
	return s.String()
}

// addedColumns are the added ns per call, their spread over rounds and
// the added CPU of the calling thread; dashes for a baseline.
func (r row) addedColumns() (added, spread, addedCPU string) {
	if r.baseline {
		return "—", "—", "—"
	}
	return fmt.Sprintf("%+.0f", r.added), fmt.Sprintf("%+.0f..%+.0f", r.addedMin, r.addedMax), fmt.Sprintf("%+.0f", r.addedCPU)
}

func (r row) tracerCPU() string {
	if r.observerCPU < 0 {
		return "—"
	}
	return fmt.Sprintf("%.0f", r.observerCPU)
}

func (rep *report) rampTable() string {
	if rep.ramp == nil {
		return ""
	}
	var s strings.Builder
	s.WriteString("| target rate | achieved calls/s | calls | log records | dropped | collector CPU µs/record |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, st := range rep.ramp.steps {
		per := "—"
		if st.records > 0 {
			per = fmt.Sprintf("%.2f", float64(st.cpu.Nanoseconds())/float64(st.records)/1000)
		}
		fmt.Fprintf(&s, "| %s | %.0f | %d | %d | %d | %s |\n", rateName(st.target), st.achieved, st.calls, st.records, st.dropped, per)
	}
	return s.String()
}

func (rep *report) markdown() string {
	b, o := rep.b, rep.b.opts
	var s strings.Builder
	s.WriteString("# Benchmarks\n\n")
	s.WriteString("What observing mremap(2) adds to each call of a tight loop, on one machine, in one run of\n`make bench` (test/bench). Generated; do not edit by hand.\n\n")
	s.WriteString("![added ns per mremap call, by configuration](test/bench/added-cost.png)\n\n")
	s.WriteString("## Results\n\n")
	fmt.Fprintf(&s, "%d rounds; in each, every configuration is attached in turn (each round starts one configuration later), the load generator runs %d loops of %d calls, and the round keeps their median ns per call. *Added* is the median over rounds of a configuration's ns per call minus the baseline's of the same round (wall-clock time: what the loop loses, including CPU time that the tracer's own threads take on the loop's CPU). *Added loop CPU* is the same for the loop thread's own CPU time (CLOCK_THREAD_CPUTIME_ID): the probes' cost in the kernel, without the time other tasks took. *Tracer CPU* is the user + system time of the tracer's process (bpftrace, the collector) from /proc/PID/stat over the loops (and, with logs, until their records were exported), per call. *Dropped* is `mremap.events.dropped`, all reasons, summed over sessions (all processes' calls); *peak RSS* is VmHWM.\n\n",
		o.rounds, o.runs, 2*o.pairs)
	s.WriteString(rep.table())
	s.WriteString("\nHow to read it: *added* is what a program on the node loses per call; *added loop CPU* is what the probes cost in the kernel, on the calling thread. With logs, the collector also spends *tracer CPU* per record in user space (reading, building pdata, garbage collection), and on a machine with few CPUs part of it is taken on the calling thread's CPU, which shows as *added* above *added loop CPU*. bpftrace's aggregation does no per-call work in user space; bpftrace's printing does.\n")
	if g := rep.getppidTable(); g != "" {
		s.WriteString("\n### An unrelated syscall: getppid\n\n")
		fmt.Fprintf(&s, "What a tracer of mremap adds to every other syscall of the host: this harness calls getppid(2) %d times per loop on a thread pinned to CPU %d, %d loops per configuration and round, with no 32-bit program running. *Added thread CPU* is the calling thread's own CPU time (CLOCK_THREAD_CPUTIME_ID) over the baseline's.\n\n", o.getppidCalls, o.cpu, o.runs)
		s.WriteString(g)
	}
	s.WriteString("\n### Targets\n\n")
	s.WriteString(rep.targets())
	if rep.ramp != nil {
		s.WriteString("\n### Highest rate without loss\n\n")
		s.WriteString("The collector with logs and metrics (defaults: 4 MiB ring buffer), the load generator paced at rising rates, about a second per step, until a step loses a call (a drop counted, or a log record missing):\n\n")
		s.WriteString(rep.rampTable())
		fmt.Fprintf(&s, "\nHighest rate without loss: **%.0f calls/s**", rep.ramp.maxZeroLoss)
		if rep.ramp.fullZeroLoss {
			s.WriteString("; the step at the load generator's full rate lost nothing either")
		}
		s.WriteString(".\n")
	}
	s.WriteString("\n### Configurations\n\n")
	for _, r := range rep.rows {
		fmt.Fprintf(&s, "- **%s**: %s.\n", r.name, r.what)
	}
	fmt.Fprintf(&s, "\nThe load generator: `%s -loop %d -cpu %d`: %d shrink/grow pairs of mremap(2) in place (a 2-page anonymous mapping shrunk to 1 page and grown back, flags 0) on one thread pinned to CPU %d with sched_setaffinity; it prints its ns per call. %s\n",
		rel(o.helper), o.pairs, o.cpu, o.pairs, o.cpu, tracerPinning(o.tracerCPUs))
	if len(b.notes) > 0 {
		s.WriteString("\nNotes:\n\n")
		for _, n := range b.notes {
			fmt.Fprintf(&s, "- %s\n", n)
		}
	}
	if rep.goOut != "" {
		s.WriteString("\n## Go benchmarks (hot path)\n\n`make bench-go` (`go test -run '^$' -bench . -benchmem ./...`), same run:\n\n```\n")
		for _, line := range strings.Split(rep.goOut, "\n") {
			if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "pkg:") {
				s.WriteString(line + "\n")
			}
		}
		s.WriteString("```\n")
	}
	s.WriteString("\n## Machine\n\n")
	for _, f := range rep.machine() {
		fmt.Fprintf(&s, "- %s\n", f)
	}
	s.WriteString("\n## Reproduce\n\nAs root, on a machine where nothing else is busy (other programs' mremap calls are observed too):\n\n```sh\n")
	s.WriteString("make bench        # make build, the Go benchmarks (make bench-go), then this harness;\n                  # installs bpftrace with apt-get when it is missing\n")
	fmt.Fprintf(&s, "%s   # this harness alone, after make build\n", strings.Join(commandLine(), " "))
	s.WriteString("go run ./test/bench -h   # its flags\n```\n")
	return s.String()
}

func tracerPinning(cpus string) string {
	if cpus == "" {
		return "The tracers (bpftrace, the collector) are not pinned: the scheduler places them, as it would on a node."
	}
	return fmt.Sprintf("The tracers (bpftrace, the collector) are pinned to CPUs %s (taskset), away from the load generator's, as an agent runs beside a node's workloads on other cores: *added* is then what the calling thread loses, and the collector's own CPU is in *tracer CPU*. (Unpinned, on a machine of two CPUs, the collector's user-space work per record would also take the loop's CPU.)", cpus)
}

func (rep *report) machine() []string {
	var facts []string
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		facts = append(facts, fmt.Sprintf("kernel: %s %s", unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Machine[:])))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		if m := regexp.MustCompile(`(?m)^model name\s*:\s*(.*)$`).FindStringSubmatch(string(b)); m != nil {
			facts = append(facts, fmt.Sprintf("CPU: %s, %d CPUs online", m[1], runtime.NumCPU()))
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if m := regexp.MustCompile(`MemTotal:\s*(\d+) kB`).FindStringSubmatch(string(b)); m != nil {
			kb, _ := strconv.ParseInt(m[1], 10, 64)
			facts = append(facts, fmt.Sprintf("memory: %.1f GiB", float64(kb)/(1<<20)))
		}
	}
	if b, err := os.ReadFile("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"); err == nil {
		facts = append(facts, "cpufreq governor: "+strings.TrimSpace(string(b)))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		if m := regexp.MustCompile(`(?m)^PRETTY_NAME="?([^"\n]*)`).FindStringSubmatch(string(b)); m != nil {
			facts = append(facts, "OS: "+m[1])
		}
	}
	facts = append(facts, "Go: "+runtime.Version())
	if out, err := exec.Command(rep.b.opts.bpftrace, "--version").Output(); err == nil {
		facts = append(facts, "bpftrace: "+strings.TrimSpace(string(out)))
	}
	if out, err := exec.Command(rep.b.opts.collector, "--version").Output(); err == nil {
		facts = append(facts, "collector: "+strings.TrimSpace(string(out)))
	}
	if rep.b.probe != "" {
		facts = append(facts, "receiver probe: "+rep.b.probe)
	}
	if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		facts = append(facts, "commit: "+strings.TrimSpace(string(out)))
	}
	facts = append(facts, fmt.Sprintf("run: %s, %s; 1-minute load average %s at the start, %s at the end (the loop and a tracer alone make about 1-2)",
		rep.b.started.UTC().Format("2006-01-02 15:04 MST"), rep.end.Sub(rep.b.started).Round(time.Second), rep.b.loadStart, loadAverage()))
	return facts
}

// commandLine is how this harness was started, with paths relative to the
// working directory.
func commandLine() []string {
	args := []string{"bin/mremap-bench"}
	for _, a := range os.Args[1:] {
		args = append(args, rel(a))
	}
	return args
}

func rel(p string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, ok := strings.CutPrefix(p, wd+"/"); ok {
			return r
		}
	}
	return p
}
