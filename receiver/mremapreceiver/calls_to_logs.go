//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"slices"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/xpdata"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

// logConverter turns calls into log records, one ResourceLogs per process.
// It is used by one goroutine at a time: it keeps scratch space between
// batches.
type logConverter struct {
	hostName    string // empty when host.name is disabled or unknown
	probe       string
	redact      bool // redact_addresses
	commandLine bool // process.command_line is enabled

	// Scratch space of toLogs, kept between batches.
	groupOf map[processKey]int // a process's index in groups
	groups  []callGroup
	group   []int32 // the group of each call
	attrs   attributeWriter
}

// callGroup is the calls of one process in a batch.
type callGroup struct {
	first int // the index of its first call
	n     int // how many calls it has
	sl    plog.ScopeLogs
}

func newLogConverter(cfg *Config, hostName, probe string) *logConverter {
	c := &logConverter{
		probe:       probe,
		redact:      cfg.RedactAddresses,
		commandLine: cfg.ResourceAttributes.ProcessCommandLine.Enabled,
	}
	if cfg.ResourceAttributes.HostName.Enabled {
		c.hostName = hostName
	}
	return c
}

// bodySizeHint is about how long a body is: mremap(0x7f3a2c000000, 4096,
// 8192, MREMAP_MAYMOVE) = 0x7f3a2c100000 is 65 bytes.
const bodySizeHint = 72

// toLogs converts a batch of calls.
func (c *logConverter) toLogs(calls []observedCall) plog.Logs {
	// First the calls are grouped by process, so that every slice is
	// allocated once at its final size.
	if c.groupOf == nil {
		c.groupOf = map[processKey]int{}
	}
	clear(c.groupOf)
	c.groups = c.groups[:0]
	c.group = slices.Grow(c.group[:0], len(calls))
	var lastKey processKey
	last := -1
	for i := range calls {
		// Runs of calls from one process skip the map.
		if k := keyOf(calls[i].Process); last < 0 || k != lastKey {
			g, ok := c.groupOf[k]
			if !ok {
				g = len(c.groups)
				c.groupOf[k] = g
				c.groups = append(c.groups, callGroup{first: i})
			}
			lastKey, last = k, g
		}
		c.groups[last].n++
		c.group = append(c.group, int32(last))
	}

	ld := plog.NewLogs()
	rls := ld.ResourceLogs()
	rls.EnsureCapacity(len(c.groups))
	for g := range c.groups {
		first := &calls[c.groups[g].first]
		rl := rls.AppendEmpty()
		c.setResource(rl.Resource().Attributes(), first.Process, first.proc)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		sl.LogRecords().EnsureCapacity(c.groups[g].n)
		c.groups[g].sl = sl
	}

	// The bodies of the batch are written into one buffer, and each is a
	// string over its part of it: one allocation per batch, not one per
	// record. The buffer is never written again where a body points.
	bodies := make([]byte, 0, len(calls)*bodySizeHint)
	for i := range calls {
		call := &calls[i].Call
		start := len(bodies)
		bodies = call.AppendText(bodies, c.redact)
		body := unsafe.String(&bodies[start], len(bodies)-start)
		lr := c.groups[c.group[i]].sl.LogRecords().AppendEmpty()
		c.setLogRecord(lr, call, body, pcommon.NewTimestampFromTime(calls[i].observed))
	}
	clear(c.groups) // drop the references to ld
	return ld
}

func (c *logConverter) setResource(attrs pcommon.Map, p mremap.Process, info processInfo) {
	attrs.EnsureCapacity(8)
	if c.hostName != "" {
		attrs.PutStr("host.name", c.hostName)
	}
	attrs.PutInt("process.pid", int64(p.PID))
	attrs.PutStr("process.executable.name", p.Comm)
	attrs.PutInt("process.parent_pid", int64(p.PPID))
	attrs.PutInt("process.user.id", int64(p.UID))
	if info.exePath != "" {
		attrs.PutStr("process.executable.path", info.exePath)
	}
	if c.commandLine && info.commandLine != "" {
		attrs.PutStr("process.command_line", info.commandLine)
	}
	if info.containerID != "" {
		attrs.PutStr("container.id", info.containerID)
	}
}

// setLogRecord writes one call as a log record, with body (the call as
// strace prints it, redacted or not). With redact, the address attributes
// are left out.
func (c *logConverter) setLogRecord(lr plog.LogRecord, call *mremap.Call, body string, observed pcommon.Timestamp) {
	lr.SetEventName("mremap")
	lr.SetTimestamp(pcommon.NewTimestampFromTime(call.Enter))
	lr.SetObservedTimestamp(observed)
	if call.OK() {
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
	} else {
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	}
	lr.Body().SetStr(body)
	c.setAttributes(lr.Attributes(), call)
}

// setAttributes writes the call's attributes, in the order the receiver's
// README lists them. Addresses and sizes are unsigned in the kernel; OTLP
// ints are signed 64-bit, which holds every user-space address and size.
func (c *logConverter) setAttributes(attrs pcommon.Map, call *mremap.Call) {
	a := &c.attrs
	a.start(maxLogAttributes)
	a.putInt("thread.id", int64(call.TID))
	if !c.redact {
		a.putInt("mremap.old_address", int64(call.OldAddress))
	}
	a.putInt("mremap.old_size", int64(call.OldSize))
	a.putInt("mremap.new_size", int64(call.NewSize))
	a.putInt("mremap.flags", int64(call.Flags))
	a.putStr("mremap.flags.names", mremap.FlagNames(call.Flags))
	if !c.redact {
		a.putInt("mremap.new_address", int64(call.NewAddress))
	}
	a.putStr("mremap.result", call.Result())
	if call.OK() && !c.redact {
		a.putInt("mremap.result_address", int64(call.ResultAddress()))
	}
	a.putInt("mremap.size_delta", call.SizeDelta())
	a.putStr("mremap.resize", call.Resize.String())
	a.putStr("mremap.move", call.Move.String())
	a.putInt("mremap.duration_ns", call.Duration.Nanoseconds())
	a.putStr("mremap.probe", c.probe)
	if call.VMA.Found {
		a.putStr("mremap.vma.permissions", call.VMA.Permissions)
		a.putStr("mremap.vma.path", call.VMA.Path)
		if call.VMA.Count > 0 {
			a.putInt("mremap.vma.count", int64(call.VMA.Count))
		}
	}
	if call.Signals != 0 {
		a.putStr("mremap.signals", call.Signals.String())
	}
	a.putInt("mremap.map_count", int64(call.MapCount))
	a.into(attrs)
}

// maxLogAttributes is how many attributes setAttributes writes at most.
const maxLogAttributes = 19

// attributeWriter appends a record's attributes and moves them into its
// map at once. pcommon.Map's Put looks for the key among those already
// there first (a linear scan, on every Put); setAttributes writes each key
// once, so the writer appends without looking (xpdata.MapBuilder), which
// makes writing 16 attributes about twice as fast (BenchmarkToLogs).
type attributeWriter struct{ b xpdata.MapBuilder }

// start makes room for n attributes: one allocation.
func (w *attributeWriter) start(n int) { w.b.EnsureCapacity(n) }

func (w *attributeWriter) putInt(k string, v int64) { w.b.AppendEmpty(k).SetInt(v) }

func (w *attributeWriter) putStr(k, v string) { w.b.AppendEmpty(k).SetStr(v) }

// into moves the attributes into m, which must be empty, and leaves the
// writer empty.
func (w *attributeWriter) into(m pcommon.Map) { w.b.UnsafeIntoMap(m) }
