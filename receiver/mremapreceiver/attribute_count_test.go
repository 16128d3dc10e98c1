//go:build linux

package mremapreceiver

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// attributeCount says how many attributes setAttributes writes, for calls
// that succeed or fail, with a mapping or without, with signals or
// without, with a call stack or without, redacted or not.
func TestAttributeCount(t *testing.T) {
	calls := []mremap.Call{
		{Return: 0x7f3a2c000000},
		{Return: -22, Errno: 22},
		{Return: 0x7f3a2c000000, VMA: mremap.VMA{Found: true, Permissions: "rw-p"}},
		{Return: -14, Errno: 14, VMA: mremap.VMA{Found: true, Permissions: "r--p", Path: "/lib/a.so"}},
		{Return: 0x7f3a2c000000, VMA: mremap.VMA{Found: true, Permissions: "r-xp", Path: "/lib/a.so", Count: 2}, Signals: 1 << mremap.SignalExecMove, MapCount: 40},
		{Return: -12, Errno: 12, Signals: 1 << mremap.SignalMapCountLimit, MapCount: 65530},
		{Return: 0x7f3a2c000000, Stack: mremap.Stack{Symbolized: mremap.SymbolizedStack{Trace: "main+0x1 (/bin/x)", Function: "main", End: "complete"}}},
		{Return: -22, Errno: 22, Stack: mremap.Stack{Symbolized: mremap.SymbolizedStack{Trace: "0x1234", End: "unknown", Unresolved: "pending"}}},
		{Return: 0x7f3a2c000000, Stack: mremap.Stack{Symbolized: mremap.SymbolizedStack{End: "not_captured"}}},
	}
	for _, redact := range []bool{false, true} {
		c := &logConverter{probe: "tracepoint", redact: redact}
		for i := range calls {
			ld := c.toLogs(observe(t.TempDir(), calls[i]))
			attrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes()
			assert.Equal(t, attrs.Len(), c.attributeCount(&calls[i]), "call %d, redact %v", i, redact)
		}
	}
}
