//go:build linux

// Command bench measures what observing mremap(2) costs: the time each call
// of a tight loop gains with nothing attached (the baseline), with the
// smallest possible programs on the two syscall tracepoints (the floor),
// with bpftrace aggregating or printing, and with the otelcol-mremap
// collector in a metrics pipeline or in logs and metrics pipelines. It also
// ramps the loop's rate to find the highest one the collector follows
// without losing a call, and reads the collector's CPU time per log record
// and its peak RSS. The getppid rows time a syscall no probe watches, to
// show what each tracer adds to every other syscall of the host. It prints
// the tables and the targets and writes BENCHMARKS.md and a PNG chart.
// `make bench` builds what it needs and runs it, as root.
//
// The load generator is bin/mremap-helper -loop: shrink/grow pairs of
// mremap(2) calls in place on one thread pinned to one CPU. The
// configurations run round-robin, several rounds, each round starting one
// configuration later, so that drift (other load, CPU frequency, caches)
// falls on all of them alike; the added cost of a configuration is the
// median, over rounds, of its ns per call minus the baseline's of the same
// round.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

type options struct {
	collector, helper, bpftrace string
	rounds, runs, pairs         int
	getppidCalls                int
	cpu                         int
	tracerCPUs                  string
	out, chart, goBench         string
	ramp                        bool
	only                        string
}

func main() {
	var o options
	flag.StringVar(&o.collector, "collector", "bin/otelcol-mremap", "the collector distribution")
	flag.StringVar(&o.helper, "helper", "bin/mremap-helper", "the load generator (mremap-helper)")
	flag.StringVar(&o.bpftrace, "bpftrace", "bpftrace", "bpftrace; its configurations are left out when it cannot be found")
	flag.IntVar(&o.rounds, "rounds", 7, "rounds over every configuration")
	flag.IntVar(&o.runs, "runs", 3, "loops per configuration and round (the round keeps their median)")
	flag.IntVar(&o.pairs, "pairs", 50000, "shrink/grow pairs per loop (2 calls each)")
	flag.IntVar(&o.getppidCalls, "getppid-calls", 1000000, "getppid(2) calls per loop of the getppid rows")
	flag.IntVar(&o.cpu, "cpu", runtime.NumCPU()-1, "the CPU the load generator is pinned to")
	flag.StringVar(&o.tracerCPUs, "tracer-cpus", "others", "pin bpftrace and the collector to these CPUs (taskset -c list); others: every CPU but the load generator's; empty: not pinned")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "the report to write (empty: none)")
	flag.StringVar(&o.chart, "chart", "test/bench/added-cost.png", "the chart to write (empty: none)")
	flag.StringVar(&o.goBench, "go-bench", "", "output of the Go benchmarks (go test -bench) to include in the report")
	flag.BoolVar(&o.ramp, "ramp", true, "ramp the loop's rate to find the highest one without loss")
	flag.StringVar(&o.only, "only", "", "comma-separated configuration keys to run (with the baseline of their load)")
	flag.Parse()
	if o.tracerCPUs == "others" {
		o.tracerCPUs = otherCPUs(o.cpu)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// otherCPUs is every CPU but cpu, as a taskset list; empty on one CPU.
func otherCPUs(cpu int) string {
	var list []string
	for c := 0; c < runtime.NumCPU(); c++ {
		if c != cpu {
			list = append(list, strconv.Itoa(c))
		}
	}
	return strings.Join(list, ",")
}

func run(o options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: it loads eBPF programs")
	}
	for _, f := range []*string{&o.collector, &o.helper} {
		abs, err := filepath.Abs(*f)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%s: %w (run make build)", *f, err)
		}
		*f = abs
	}
	tmp, err := os.MkdirTemp("", "mremap-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	env := &bench{opts: o, tmp: tmp, started: time.Now(), loadStart: loadAverage()}
	cfgs, notes, err := env.configurations()
	if err != nil {
		return err
	}
	if o.only != "" {
		// The configurations asked for, and the baseline of each one's load.
		keep := strings.Split(o.only, ",")
		for _, c := range cfgs {
			if slices.Contains(keep, c.key) {
				keep = append(keep, c.load.baselineKey())
			}
		}
		cfgs = slices.DeleteFunc(cfgs, func(c *configuration) bool { return !slices.Contains(keep, c.key) })
	}
	for _, n := range notes {
		logf("note: %s", n)
	}
	env.notes = notes

	logf("load generator: %s -loop %d -cpu %d; %d rounds x %d configurations x %d loops (%d calls each)",
		o.helper, o.pairs, o.cpu, o.rounds, len(cfgs), o.runs, 2*o.pairs)
	// Warm up: page cache, CPU frequency, the helper's first start.
	if _, err := env.loop(o.pairs, 0); err != nil {
		return err
	}
	if _, err := env.getppidLoop(o.getppidCalls); err != nil {
		return err
	}
	for r := 0; r < o.rounds; r++ {
		for i := range cfgs {
			c := cfgs[(i+r)%len(cfgs)]
			s, err := env.session(c)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, c.key, err)
			}
			s.round = r
			c.sessions = append(c.sessions, s)
			logf("round %d %-16s %s", r+1, c.key, s.summary())
		}
	}
	var rp *rampResult
	if o.ramp {
		rp, err = env.ramp()
		if err != nil {
			return fmt.Errorf("rate ramp: %w", err)
		}
	}

	rep := env.report(cfgs, rp)
	fmt.Println()
	fmt.Print(rep.table())
	fmt.Println()
	fmt.Print(rep.getppidTable())
	fmt.Println()
	fmt.Print(rep.targets())
	if o.chart != "" {
		if err := writeChart(o.chart, rep); err != nil {
			return fmt.Errorf("chart: %w", err)
		}
		logf("wrote %s", o.chart)
	}
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep.markdown()), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// loadAverage is /proc/loadavg's 1-minute figure: how busy the machine was.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}
