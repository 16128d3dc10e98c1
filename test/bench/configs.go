//go:build linux

package main

import (
	"fmt"
	"os/exec"
)

// A configuration is one way of observing the calls (or none), measured in
// a session per round.
type configuration struct {
	key, name, what string
	// start attaches the observer; nil for a baseline.
	start func() (*observer, error)
	// collector: the sessions count log records and read drops.
	collector, logs bool
	// load is what the sessions run: the mremap loop, or getppid.
	load     load
	sessions []*session
}

// load is the program whose calls a configuration times.
type load int

const (
	// loadMremap: the load generator's shrink/grow pairs of mremap(2).
	loadMremap load = iota
	// loadGetppid: getppid(2), a syscall the probes do not watch, made by
	// this harness on a thread pinned to the load generator's CPU.
	loadGetppid
)

// baselineKey is the configuration whose calls the others' of the same
// load are compared with, round by round.
func (l load) baselineKey() string {
	if l == loadGetppid {
		return "getppid-baseline"
	}
	return "baseline"
}

// A receiverRow is a configuration of the collector: one entry each.
// yaml is appended to the mremap receiver's keys (a row whose keys this
// build's receiver does not accept is left out, with a note), env to the
// collector's environment, args to its command line.
type receiverRow struct {
	key, name, what string
	logs            bool
	yaml            string
	env, args       []string
}

// receiverRows: the defaults with a metrics pipeline and with logs and
// metrics, then one knob each.
//
// Rows for later features go at the end of this list, one entry each:
//   - the kernel's signals (mremap.signals) are on by default and have no
//     key, so the default rows carry their cost; a row without them needs
//     whatever turns them off (yaml, env or args);
//   - call stacks have a logs row only: without a logs pipeline
//     call_stack changes nothing.
var receiverRows = []receiverRow{
	{key: "metrics", name: "receiver: metrics pipeline",
		what: "otelcol-mremap with the mremap receiver (defaults, collection_interval 1s) in a metrics pipeline to the prometheus exporter; the kernel keeps the aggregates, no ring-buffer records"},
	{key: "logs", name: "receiver: logs + metrics pipelines", logs: true,
		what: "the same, plus a logs pipeline to the debug exporter (verbosity basic): one ring-buffer record and one log record per call, default 4 MiB ring buffer"},
	// The Go runtime's knob, not the receiver's: most of the collector's
	// CPU per record beyond building pdata is garbage collection.
	{key: "logs-gogc400", name: "receiver: logs + metrics, GOGC=400", logs: true, env: []string{"GOGC=400"},
		what: "logs + metrics as above, with the environment variable GOGC=400 (the Go garbage collector runs a quarter as often, for a larger heap)"},
	// pdata's own knob, process-wide, which the receiver leaves alone.
	{key: "logs-pooling", name: "receiver: logs + metrics, pdata.useProtoPooling", logs: true,
		args: []string{"--feature-gates=pdata.useProtoPooling"},
		what: "logs + metrics as above, with the collector's alpha feature gate pdata.useProtoPooling (pdata reuses the records and values of exported batches instead of allocating them anew)"},
	{key: "metrics-no-ia32", name: "receiver: metrics pipeline, ia32_raw_tracepoints: false", yaml: "    ia32_raw_tracepoints: false\n",
		what: "the metrics pipeline as above, without the raw_syscalls programs that catch 32-bit callers in tracepoint mode (they run on every syscall of the host)"},
	// The signals are decided from the mappings the entry looks up (the
	// one at old_address, the caller's, MREMAP_FIXED's target): without
	// the lookups only dontunmap, sealed, shared_alias and map_count_limit
	// are raised, so this row less the metrics row is what the others cost.
	{key: "metrics-no-vma", name: "receiver: metrics pipeline, vma_lookup: false", yaml: "    vma_lookup: false\n",
		what: "the metrics pipeline as above, without the mapping lookups at entry (bpf_find_vma at old_address and at the caller's instruction pointer), which the mremap.vma.* attributes and the signals exec_move, write_exec, special_move, fixed_replace and unbacked_caller need"},
	{key: "logs-no-vma", name: "receiver: logs + metrics, vma_lookup: false", logs: true, yaml: "    vma_lookup: false\n",
		what: "logs + metrics as above, without the mapping lookup (mremap.vma.*) at entry"},
	{key: "logs-cmdline", name: "receiver: logs + metrics, process.command_line on", logs: true,
		yaml: "    resource_attributes:\n      process.command_line:\n        enabled: true\n",
		what: "logs + metrics as above, with the opt-in process.command_line resource attribute (read from /proc once per process)"},
	{key: "logs-call-stack", name: "receiver: logs + metrics, call_stack: true", logs: true, yaml: "    call_stack: true\n",
		what: "logs + metrics as above, with the caller's user stack captured in the kernel at each logged call's exit and symbolized by the collector (code.stacktrace, code.function.name); the load generator is a Go program, whose stack at the call is a few frames deep"},
}

// configurations lists what is measured: the mremap rows, then the getppid
// rows. bpftrace's rows need bpftrace; a receiver row needs the receiver
// to accept its keys.
func (b *bench) configurations() ([]*configuration, []string, error) {
	var notes []string
	cfgs := []*configuration{
		{key: "baseline", name: "baseline: nothing attached", what: "no program on the mremap tracepoints"},
		{key: "floor", name: "floor: empty programs on both tracepoints",
			what:  "two eBPF programs that return 0 at once (mov r0, 0; exit), loaded by this harness with cilium/ebpf and attached to syscalls:sys_enter_mremap and sys_exit_mremap: the kernel's dispatch cost",
			start: startFloor},
	}
	path, err := exec.LookPath(b.opts.bpftrace)
	haveBpftrace := err == nil
	if haveBpftrace {
		b.opts.bpftrace = path
		cfgs = append(cfgs,
			&configuration{key: "bpftrace-agg", name: "bpftrace: counts + log2 histograms",
				what:  "bpftrace aggregating what the receiver's metrics hold: calls by comm, resize, move and result; log2 histograms of the size delta (by comm, resize) and of the duration (by move, result); entry and exit paired per thread",
				start: func() (*observer, error) { return b.startBpftrace("agg", bpftraceAggregate) }},
			&configuration{key: "bpftrace-print", name: "bpftrace: printf every call",
				what:  "bpftrace printing one line per call (comm, pid, tid, the five arguments, the result, the duration) to a pipe that this harness reads",
				start: func() (*observer, error) { return b.startBpftrace("print", bpftracePrint) }},
		)
	} else {
		notes = append(notes, fmt.Sprintf("bpftrace (%s) not found: its rows are left out (apt-get install bpftrace)", b.opts.bpftrace))
	}
	for _, v := range receiverRows {
		if v.yaml != "" {
			if err := b.validate(v.yaml); err != nil {
				notes = append(notes, fmt.Sprintf("row %q left out: the receiver does not accept it: %v", v.name, err))
				continue
			}
		}
		cfgs = append(cfgs, &configuration{key: v.key, name: v.name, what: v.what, collector: true, logs: v.logs,
			start: func() (*observer, error) { return b.startCollector(v.key, v.logs, v.yaml, v.env, v.args...) }})
	}
	return append(cfgs, b.getppidConfigurations(haveBpftrace)...), notes, nil
}

// getppidConfigurations time getppid(2), which no probe watches: what a
// tracer adds to every other syscall of the host. No 32-bit program runs
// meanwhile.
func (b *bench) getppidConfigurations(haveBpftrace bool) []*configuration {
	cfgs := []*configuration{
		{key: "getppid-baseline", name: "getppid: baseline, nothing attached", load: loadGetppid,
			what: "getppid(2) with no program attached"},
	}
	if haveBpftrace {
		cfgs = append(cfgs, &configuration{key: "getppid-bpftrace", name: "getppid: bpftrace's two mremap tracepoints", load: loadGetppid,
			what:  "getppid(2) while bpftrace aggregates mremap(2) as above: its programs on syscalls:sys_enter_mremap and sys_exit_mremap switch on the syscall tracepoints of every call",
			start: func() (*observer, error) { return b.startBpftrace("getppid-agg", bpftraceAggregate) }})
	}
	return append(cfgs, &configuration{key: "getppid-receiver", name: "getppid: receiver, logs + metrics (defaults)", load: loadGetppid,
		what:  "getppid(2) while the collector runs the mremap receiver with its defaults in logs and metrics pipelines, as above",
		start: func() (*observer, error) { return b.startCollector("getppid-receiver", true, "", nil) }})
}
