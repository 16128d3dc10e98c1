//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/xpdata"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver/internal/metadata"
)

// logConverter turns calls into log records, one ResourceLogs per process
// in the order processes first appear: add appends a call's record to the
// batch being built, take hands the batch over and starts the next. It is
// used by one goroutine at a time.
type logConverter struct {
	hostName    string // empty when host.name is disabled or unknown
	probe       string
	redact      bool // redact_addresses
	commandLine bool // process.command_line is enabled

	// The batch being built.
	ld      plog.Logs
	n       int                                // its records
	scopes  map[processKey]plog.LogRecordSlice // each process's records
	lastKey processKey                         // the process of the last record
	last    plog.LogRecordSlice
	// bodies holds the bodies of the batch, each a string over its part:
	// a buffer is never written again where a body points, and a full one
	// is left to the bodies in it.
	bodies []byte
	attrs  attributeWriter
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

// A body buffer holds bodiesPerBuffer bodies of about bodySizeHint bytes:
// mremap(0x7f3a2c000000, 4096, 8192, MREMAP_MAYMOVE) = 0x7f3a2c100000 is
// 65. A new one is started when less than maxBodySize is left.
const (
	bodySizeHint    = 72
	bodiesPerBuffer = 512
	maxBodySize     = 256
)

// observedCall is a call with when the receiver read it (the record's
// ObservedTimestamp) and what /proc said of its process then.
type observedCall struct {
	mremap.Call
	proc     processInfo
	observed time.Time
}

// toLogs converts calls into one batch.
func (c *logConverter) toLogs(calls []observedCall) plog.Logs {
	for i := range calls {
		c.add(&calls[i].Call, &calls[i].proc, pcommon.NewTimestampFromTime(calls[i].observed))
	}
	return c.take()
}

// len is how many records the batch being built holds.
func (c *logConverter) len() int { return c.n }

// take returns the batch built so far and starts a new one.
func (c *logConverter) take() plog.Logs {
	ld := c.ld
	if c.n == 0 {
		ld = plog.NewLogs()
	}
	c.ld, c.n, c.bodies = plog.Logs{}, 0, nil
	clear(c.scopes) // drop the references to ld
	c.last = plog.LogRecordSlice{}
	return ld
}

// add appends the log record of call, read at observed, to its process's
// records; proc is what /proc said of the process when the call was read.
func (c *logConverter) add(call *mremap.Call, proc *processInfo, observed pcommon.Timestamp) {
	if c.n == 0 {
		c.ld = plog.NewLogs()
		if c.scopes == nil {
			c.scopes = map[processKey]plog.LogRecordSlice{}
		}
	}
	// Runs of calls from one process skip the map.
	if k := keyOf(call.Process); c.n == 0 || k != c.lastKey {
		lrs, ok := c.scopes[k]
		if !ok {
			rl := c.ld.ResourceLogs().AppendEmpty()
			c.setResource(rl.Resource().Attributes(), call.Process, *proc)
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(metadata.ScopeName)
			lrs = sl.LogRecords()
			if c.n == 0 {
				// Most batches are mostly one process's: the first.
				lrs.EnsureCapacity(maxBatch)
			}
			c.scopes[k] = lrs
		}
		c.lastKey, c.last = k, lrs
	}
	c.n++
	if cap(c.bodies)-len(c.bodies) < maxBodySize {
		c.bodies = make([]byte, 0, bodiesPerBuffer*bodySizeHint)
	}
	start := len(c.bodies)
	c.bodies = call.AppendText(c.bodies, c.redact)
	body := unsafe.String(&c.bodies[start], len(c.bodies)-start)
	c.setLogRecord(c.last.AppendEmpty(), call, body, observed)
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
	a.start(c.attributeCount(call))
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
	putStack(a, &call.Stack.Symbolized, c.redact)
	a.into(attrs)
}

// attributeCount is how many attributes setAttributes writes for call, so
// that their slice is allocated at its size.
func (c *logConverter) attributeCount(call *mremap.Call) int {
	n := 12 // those of every call
	if !c.redact {
		n += 2 // the old and new addresses
		if call.OK() {
			n++ // the result's
		}
	}
	if call.VMA.Found {
		n += 2
		if call.VMA.Count > 0 {
			n++
		}
	}
	if call.Signals != 0 {
		n++
	}
	return n + stackAttributeCount(&call.Stack.Symbolized)
}

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
