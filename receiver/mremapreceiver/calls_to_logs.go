package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"slices"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

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

	attributeSets [2][2]attributeSet // by call.OK(), call.VMA.Found
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

// An attribute of a log record; attributeKeys names them.
type attribute uint8

const (
	attrThreadID attribute = iota
	attrOldAddress
	attrOldSize
	attrNewSize
	attrFlags
	attrFlagNames
	attrNewAddress
	attrResult
	attrResultAddress
	attrSizeDelta
	attrResize
	attrMove
	attrDurationNs
	attrProbe
	attrVMAPermissions
	attrVMAPath
)

var attributeKeys = [...]string{
	attrThreadID:       "thread.id",
	attrOldAddress:     "mremap.old_address",
	attrOldSize:        "mremap.old_size",
	attrNewSize:        "mremap.new_size",
	attrFlags:          "mremap.flags",
	attrFlagNames:      "mremap.flags.names",
	attrNewAddress:     "mremap.new_address",
	attrResult:         "mremap.result",
	attrResultAddress:  "mremap.result_address",
	attrSizeDelta:      "mremap.size_delta",
	attrResize:         "mremap.resize",
	attrMove:           "mremap.move",
	attrDurationNs:     "mremap.duration_ns",
	attrProbe:          "mremap.probe",
	attrVMAPermissions: "mremap.vma.permissions",
	attrVMAPath:        "mremap.vma.path",
}

// attributeSet is the attributes of one kind of record (succeeded or not,
// with a mapping or not), in order: their keys as a map of empty values,
// copied into each record of the kind and then filled in. Copying the keys
// and filling the values in place skips the search for an existing key
// that each Map.Put does, which costs more than the rest of the record.
type attributeSet struct {
	fields []attribute
	keys   pcommon.Map
}

// attributes is the attributeSet of call's kind, made on first use.
func (c *logConverter) attributes(call *mremap.Call) *attributeSet {
	ok, vma := call.OK(), call.VMA.Found
	set := &c.attributeSets[b2i(ok)][b2i(vma)]
	if set.fields != nil {
		return set
	}
	// In the order of SPEC.md. With redact_addresses, the addresses are
	// left out.
	add := func(a attribute, when bool) {
		if when {
			set.fields = append(set.fields, a)
		}
	}
	add(attrThreadID, true)
	add(attrOldAddress, !c.redact)
	add(attrOldSize, true)
	add(attrNewSize, true)
	add(attrFlags, true)
	add(attrFlagNames, true)
	add(attrNewAddress, !c.redact)
	add(attrResult, true)
	add(attrResultAddress, ok && !c.redact)
	add(attrSizeDelta, true)
	add(attrResize, true)
	add(attrMove, true)
	add(attrDurationNs, true)
	add(attrProbe, true)
	add(attrVMAPermissions, vma)
	add(attrVMAPath, vma)
	set.keys = pcommon.NewMap()
	set.keys.EnsureCapacity(len(set.fields))
	for _, a := range set.fields {
		set.keys.PutEmpty(attributeKeys[a])
	}
	return set
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setLogRecord writes one call as a log record, per SPEC.md, with body (the
// call as strace prints it, redacted or not). With redact, the address
// attributes are left out.
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

	set := c.attributes(call)
	set.keys.CopyTo(lr.Attributes())
	i := 0
	for _, v := range lr.Attributes().All() {
		// Addresses and sizes are unsigned in the kernel; OTLP ints are
		// signed 64-bit, which holds every user-space address and size.
		switch set.fields[i] {
		case attrThreadID:
			v.SetInt(int64(call.TID))
		case attrOldAddress:
			v.SetInt(int64(call.OldAddress))
		case attrOldSize:
			v.SetInt(int64(call.OldSize))
		case attrNewSize:
			v.SetInt(int64(call.NewSize))
		case attrFlags:
			v.SetInt(int64(call.Flags))
		case attrFlagNames:
			v.SetStr(mremap.FlagNames(call.Flags))
		case attrNewAddress:
			v.SetInt(int64(call.NewAddress))
		case attrResult:
			v.SetStr(call.Result())
		case attrResultAddress:
			v.SetInt(int64(call.ResultAddress()))
		case attrSizeDelta:
			v.SetInt(call.SizeDelta())
		case attrResize:
			v.SetStr(call.Resize().String())
		case attrMove:
			v.SetStr(call.Move().String())
		case attrDurationNs:
			v.SetInt(call.Duration.Nanoseconds())
		case attrProbe:
			v.SetStr(c.probe)
		case attrVMAPermissions:
			v.SetStr(call.VMA.Permissions)
		case attrVMAPath:
			v.SetStr(call.VMA.Path)
		}
		i++
	}
}
