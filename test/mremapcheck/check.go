//go:build linux

// Package mremapcheck compares the OTLP logs and metrics that the receiver
// (or the built collector) emitted for cmd/mremap-helper's calls with what
// the receiver's README (receiver/mremapreceiver/README.md) says they must
// be, field by field. It returns the differences, so that callers can poll
// output until it is complete.
package mremapcheck

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// Run describes one run of the helper.
type Run struct {
	Made  []mremaptest.Made
	Probe string // kprobe or tracepoint
	// PPID is the helper's parent (the test process).
	PPID int
	// ExePath is the helper's executable, or "" not to check it.
	ExePath string
	// CommandLine is the helper's process.command_line when the receiver
	// is to report it; "" when it must be absent (the default).
	CommandLine string
	// ContainerID is the helper's container.id, or "" not to check it
	// (the tests may themselves run in a container).
	ContainerID string
	// Start and End bound the helper's run in wall-clock time.
	Start, End time.Time
	// Comm is the helper's process.executable.name; "" for mremaptest.Comm.
	Comm string
	// Stack checks each record's call-stack attributes (StackAttributes),
	// with call_stack on; nil: the records must have none.
	Stack func(what string, attrs pcommon.Map) []string
}

// StackAttributes are the attributes call_stack adds to a record.
var StackAttributes = []string{"code.stacktrace", "code.function.name", "mremap.call_stack.end", "mremap.call_stack.unresolved"}

// errnoText is the C library's message for the errors the helper causes,
// written out by hand rather than asked of a library.
var errnoText = map[string]string{
	"EINVAL": "Invalid argument",
	"EFAULT": "Bad address",
	"ENOMEM": "Cannot allocate memory",
	"EPERM":  "Operation not permitted",
}

// Body is the strace-style body the call must have, built by hand.
func Body(m mremaptest.Made, e mremaptest.Expectation) string {
	flags := e.FlagNames
	if flags == "" {
		flags = "0"
	}
	args := fmt.Sprintf("0x%x, %d, %d, %s", m.OldAddress, m.OldSize, m.NewSize, flags)
	if m.Flags&3 == 3 {
		args += fmt.Sprintf(", 0x%x", m.NewAddress)
	}
	if e.Result == "ok" {
		return fmt.Sprintf("mremap(%s) = 0x%x", args, uint64(m.Return))
	}
	return fmt.Sprintf("mremap(%s) = -1 %s (%s)", args, e.Result, errnoText[e.Result])
}

type problems []string

func (p *problems) add(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func expect[T comparable](p *problems, what string, got, want T) {
	if got != want {
		p.add("%s = %v, want %v", what, got, want)
	}
}

// Logs checks the log records of the helper's process in ld: one per call,
// in order, each with every field SPEC lists. Records of other processes are
// ignored.
func Logs(ld plog.Logs, run Run) []string {
	var p problems
	var records []plog.LogRecord
	var resources []pcommon.Resource
	pid := int64(run.Made[0].PID)
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		v, ok := rl.Resource().Attributes().Get("process.pid")
		if !ok || v.Int() != pid {
			continue
		}
		resources = append(resources, rl.Resource())
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			expect(&p, "scope name", sl.Scope().Name(), "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver")
			for k := 0; k < sl.LogRecords().Len(); k++ {
				records = append(records, sl.LogRecords().At(k))
			}
		}
	}
	if len(records) != len(run.Made) {
		p.add("%d log records for pid %d, want %d", len(records), pid, len(run.Made))
		return p
	}
	host, _ := os.Hostname()
	for _, res := range resources {
		checkResource(&p, res.Attributes(), run, host)
	}
	for i, m := range run.Made {
		checkRecord(&p, records[i], m, run)
	}
	return p
}

func checkResource(p *problems, a pcommon.Map, run Run, host string) {
	want, optional := ResourceAttributes(run, host)
	checkAttributes(p, "resource", a, want, optional...)
}

// ResourceAttributes returns the resource attributes the helper's records
// must have on host, and those that may be there or not.
func ResourceAttributes(run Run, host string) (want map[string]any, optional []string) {
	m := run.Made[0]
	comm := run.Comm
	if comm == "" {
		comm = mremaptest.Comm
	}
	want = map[string]any{
		"host.name":               host,
		"process.pid":             int64(m.PID),
		"process.executable.name": comm,
		"process.parent_pid":      int64(run.PPID),
		"process.user.id":         int64(os.Getuid()),
	}
	if run.ExePath != "" {
		want["process.executable.path"] = run.ExePath
	}
	if run.CommandLine != "" {
		want["process.command_line"] = run.CommandLine
	}
	if run.ContainerID != "" {
		want["container.id"] = run.ContainerID
		return want, nil
	}
	return want, []string{"container.id"}
}

// checkAttributes compares a map with want exactly; optional keys may be
// present or not.
func checkAttributes(p *problems, what string, a pcommon.Map, want map[string]any, optional ...string) {
	got := a.AsRaw()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			p.add("%s: attribute %s missing, want %v", what, k, w)
			continue
		}
		if g != w {
			p.add("%s: attribute %s = %v (%T), want %v (%T)", what, k, g, g, w, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; ok {
			continue
		}
		isOptional := false
		for _, o := range optional {
			isOptional = isOptional || o == k
		}
		if !isOptional {
			p.add("%s: unexpected attribute %s = %v", what, k, got[k])
		}
	}
}

func checkRecord(p *problems, lr plog.LogRecord, m mremaptest.Made, run Run) {
	e := expectation(m.Name)
	what := "log record " + m.Name
	expect(p, what+" EventName", lr.EventName(), "mremap")
	ts := lr.Timestamp().AsTime()
	slack := 100 * time.Millisecond
	if ts.Before(run.Start.Add(-slack)) || ts.After(run.End.Add(slack)) {
		p.add("%s Timestamp %v outside the helper's run %v .. %v", what, ts, run.Start, run.End)
	}
	if obs := lr.ObservedTimestamp().AsTime(); obs.Before(ts) {
		p.add("%s ObservedTimestamp %v before Timestamp %v", what, obs, ts)
	}
	if e.Result == "ok" {
		expect(p, what+" SeverityNumber", lr.SeverityNumber(), plog.SeverityNumberInfo)
		expect(p, what+" SeverityText", lr.SeverityText(), "INFO")
	} else {
		expect(p, what+" SeverityNumber", lr.SeverityNumber(), plog.SeverityNumberWarn)
		expect(p, what+" SeverityText", lr.SeverityText(), "WARN")
	}
	expect(p, what+" Body", lr.Body().AsString(), Body(m, e))

	want := RecordAttributes(m, run)
	if m.Maps == nil && e.VMAPermissions != "" {
		p.add("%s: the helper saw no mapping at 0x%x, want %s", what, m.OldAddress, e.VMAPermissions)
	}
	if e.Result == "ok" {
		moved := uint64(m.Return) != m.OldAddress
		if moved != e.Moved {
			p.add("%s: result address 0x%x vs old 0x%x: moved %v, want %v", what, m.Return, m.OldAddress, moved, e.Moved)
		}
	}
	d, ok := lr.Attributes().Get("mremap.duration_ns")
	if !ok || d.Type() != pcommon.ValueTypeInt || d.Int() <= 0 || d.Int() > int64(run.End.Sub(run.Start)+slack) {
		p.add("%s: mremap.duration_ns = %v, want a positive int within the helper's run", what, d.AsRaw())
	} else {
		want["mremap.duration_ns"] = d.Int()
	}
	if n, ok := lr.Attributes().Get("mremap.map_count"); !ok || n.Type() != pcommon.ValueTypeInt || !PlausibleMapCount(n.Int()) {
		p.add("%s: mremap.map_count = %v, want the helper's mappings", what, n.AsRaw())
	} else {
		want["mremap.map_count"] = n.Int()
	}
	var optional []string
	if run.Stack != nil {
		*p = append(*p, run.Stack(what, lr.Attributes())...)
		optional = StackAttributes
	}
	checkAttributes(p, what, lr.Attributes(), want, optional...)
}

// RecordAttributes returns the attributes the log record of the helper's
// call m must have. mremap.duration_ns and mremap.map_count, which only the
// kernel knows, are there with the value nil.
func RecordAttributes(m mremaptest.Made, run Run) map[string]any {
	e := expectation(m.Name)
	want := map[string]any{
		"thread.id":          int64(m.TID),
		"mremap.old_address": int64(m.OldAddress),
		"mremap.old_size":    int64(m.OldSize),
		"mremap.new_size":    int64(m.NewSize),
		"mremap.flags":       int64(m.Flags),
		"mremap.flags.names": e.FlagNames,
		"mremap.new_address": int64(m.NewAddress),
		"mremap.result":      e.Result,
		"mremap.size_delta":  e.SizeDelta,
		"mremap.resize":      e.Resize,
		"mremap.move":        e.Move,
		"mremap.probe":       run.Probe,
		"mremap.duration_ns": nil,
		"mremap.map_count":   nil,
	}
	// The mapping as /proc/self/maps showed it to the helper before the
	// call (the helper checked that against the hand-written expectation).
	if m.Maps != nil {
		want["mremap.vma.permissions"] = m.Maps.Permissions
		want["mremap.vma.path"] = m.Maps.Path
		if n := mremaptest.MappingsSpannedHere(run.Probe, m.Maps.Count); n > 0 {
			want["mremap.vma.count"] = int64(n)
		}
	}
	if e.Result == "ok" {
		want["mremap.result_address"] = m.Return
	}
	if signals := mremaptest.RaisedHere(run.Probe, e.Signals); signals != "" {
		want["mremap.signals"] = signals
	}
	return want
}

// PlausibleMapCount tells whether n can be the helper's number of
// mappings: a few dozen, or up to vm.max_map_count with -map-count-limit.
func PlausibleMapCount(n int64) bool { return n >= 10 && n <= 1<<20 }

func expectation(name string) mremaptest.Expectation {
	for _, list := range [][]struct {
		Name string
		mremaptest.Expectation
	}{mremaptest.Expected, mremaptest.ExpectedSignals, mremaptest.ExpectedMapCountLimit, mremaptest.ExpectedStack} {
		for _, e := range list {
			if e.Name == name {
				return e.Expectation
			}
		}
	}
	panic("no expectation for " + name)
}

func str(a pcommon.Map, k string) string {
	v, ok := a.Get(k)
	if !ok {
		return "<missing>"
	}
	return v.AsString()
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func sorted[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v ", k, m[k])
	}
	return b.String()
}

// Eventually calls check every interval until it finds no problem or
// timeout passes, and returns the problems of its last call: output arrives
// over several batches and collection intervals.
func Eventually(timeout, interval time.Duration, check func() []string) []string {
	deadline := time.Now().Add(timeout)
	for {
		p := check()
		if len(p) == 0 || time.Now().After(deadline) {
			return p
		}
		time.Sleep(interval)
	}
}
