//go:build linux

package tracer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
)

// One decoder reuses the strings of the record before: each record still
// gets its own comm, permissions and path, whether they repeat, alternate,
// or are bytes whose escaped form is what the record before had raw.
func TestDecoderReusesStrings(t *testing.T) {
	found := uint8(bpf.MremapVmaFlagVMA_FOUND)
	records := []struct {
		comm, perms, path string
		flags             uint8
		wantComm          string
		wantPerms         string
		wantPath          string
	}{
		{"a\\", "rw-p", "/lib/a.so", found, `a\\`, "rw-p", "/lib/a.so"},
		// Raw, the escaped comm of the record before: escaped again.
		{`a\\`, "rw-p", "/lib/a.so", found, `a\\\\`, "rw-p", "/lib/a.so"},
		{`a\\`, "r-xp", "/lib/a.so", found, `a\\\\`, "r-xp", "/lib/a.so"},
		{"b", "r-xp", "/lib/b.so", found, "b", "r-xp", "/lib/b.so"},
		{"a\\", "rw-p", "/lib/a.so", found, `a\\`, "rw-p", "/lib/a.so"},
		// No mapping: neither permissions nor a path.
		{"a\\", "rw-p", "/lib/a.so", 0, `a\\`, "", ""},
		{"b", "rw-p", "", found, "b", "rw-p", ""},
		// A deleted file's path is built anew; the next one is not it.
		{"b", "rw-p", "/memfd:x", found | uint8(bpf.MremapVmaFlagVMA_PATH_DELETED), "b", "rw-p", "/memfd:x (deleted)"},
		{"b", "rw-p", "/memfd:x", found, "b", "rw-p", "/memfd:x"},
		{"b\x01", "rw-p", "/tmp/\xff", found, `b\x01`, "rw-p", `/tmp/\xff`},
	}
	d := decoder{clock: ClockWithOffset(0)}
	for i, r := range records {
		raw := rawEvent(eventFields{enterNs: 1, exitNs: 2, comm: comm16(r.comm), vmaFlags: r.flags, vmaPerms: r.perms, vmaPath: r.path})
		c, err := d.decode(raw)
		require.NoError(t, err, "record %d", i)
		assert.Equal(t, r.wantComm, c.Process.Comm, "record %d: comm", i)
		assert.Equal(t, r.wantPerms, c.VMA.Permissions, "record %d: permissions", i)
		assert.Equal(t, r.wantPath, c.VMA.Path, "record %d: path", i)
		// The decoder of a single record says the same.
		alone, err := decodeEvent(raw, ClockWithOffset(0))
		require.NoError(t, err)
		assert.Equal(t, alone, c, "record %d: as decoded alone", i)
	}
}
