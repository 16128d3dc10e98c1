package mremapreceiver

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

const testContainerID = "3f4e1b2c9d8a7f6e5d4c3b2a19081726354433221100ffeeddccbbaa99887766"

// fakeProc makes a /proc with what processCache reads for pid: an exe
// link (when exe is not empty) and a cgroup file (when cgroup is not empty).
func fakeProc(t *testing.T, root string, pid uint32, exe, cgroup string) {
	t.Helper()
	dir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	if exe != "" {
		require.NoError(t, os.Symlink(exe, filepath.Join(dir, "exe")))
	}
	if cgroup != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "cgroup"), []byte(cgroup), 0o644))
	}
}

// observe pairs calls with what the /proc at procRoot says of their
// processes and the time they were read (observed), as the receiver does
// when it reads them.
func observe(procRoot string, calls ...mremap.Call) []observedCall {
	procs := newProcessCache(procRoot, true)
	out := make([]observedCall, len(calls))
	for i, c := range calls {
		out[i] = observedCall{Call: c, proc: procs.lookup(c.Process), observed: observed}
	}
	return out
}

var (
	enter    = time.Date(2026, 11, 27, 12, 30, 0, 123456789, time.UTC)
	observed = enter.Add(250 * time.Millisecond)
)

var (
	postgres = mremap.Process{PID: 100, PPID: 1, UID: 999, Comm: "postgres"}
	java     = mremap.Process{PID: 200, PPID: 150, UID: 1000, Comm: "java"}
)

// testCalls: two calls of postgres around one of java.
func testCalls() []mremap.Call {
	return []mremap.Call{
		{
			Enter: enter, Exit: enter.Add(1500 * time.Nanosecond), Duration: 1500 * time.Nanosecond,
			Process: postgres, TID: 101,
			OldAddress: 0x7f3a2c000000, OldSize: 4096, NewSize: 8192, Flags: mremap.FlagMayMove,
			Return: 0x7f3a2c100000, Resize: mremap.ResizeGrow, Move: mremap.MoveMayMove, MapCount: 45,
			VMA: mremap.VMA{Found: true, Permissions: "rw-s", Path: "/dev/shm/PostgreSQL.1804289383", Count: 1},
		},
		{
			Enter: enter.Add(time.Millisecond), Exit: enter.Add(time.Millisecond + 800), Duration: 800,
			Process: java, TID: 230,
			OldAddress: 0x7f3a2c000000, OldSize: 4096, NewSize: 4096, Flags: mremap.FlagMayMove | mremap.FlagFixed,
			NewAddress: 0x7f3a2d000000, Return: 0x7f3a2d000000, Move: mremap.MoveFixed,
			Signals: 1<<mremap.SignalFixedReplace | 1<<mremap.SignalDontUnmap, MapCount: 120,
			VMA: mremap.VMA{Found: true, Permissions: "rw-p"},
		},
		{
			Enter: enter.Add(2 * time.Millisecond), Exit: enter.Add(2*time.Millisecond + 300), Duration: 300,
			Process: postgres, TID: 100,
			OldAddress: 0x7f3a2c000001, OldSize: 8192, NewSize: 4096, Flags: mremap.FlagMayMove,
			Return: -22, Errno: 22, Resize: mremap.ResizeShrink, MapCount: 46,
		},
	}
}

func TestToLogs(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, postgres.PID, "/usr/lib/postgresql/16/bin/postgres",
		"0::/system.slice/docker-"+testContainerID+".scope\n")
	// java's binary was replaced since it started; it is in no container.
	fakeProc(t, root, java.PID, "/usr/lib/jvm/bin/java (deleted)", "0::/user.slice/user-1000.slice/session-3.scope\n")

	c := &logConverter{hostName: "host-a", probe: "tracepoint"}
	ld := c.toLogs(observe(root, testCalls()...))

	require.Equal(t, 2, ld.ResourceLogs().Len(), "one ResourceLogs per process")
	assert.Equal(t, 3, ld.LogRecordCount())

	pg := ld.ResourceLogs().At(0)
	assert.Equal(t, map[string]any{
		"host.name":               "host-a",
		"process.pid":             int64(100),
		"process.executable.name": "postgres",
		"process.parent_pid":      int64(1),
		"process.user.id":         int64(999),
		"process.executable.path": "/usr/lib/postgresql/16/bin/postgres",
		"container.id":            testContainerID,
	}, pg.Resource().Attributes().AsRaw())
	jv := ld.ResourceLogs().At(1)
	assert.Equal(t, map[string]any{
		"host.name":               "host-a",
		"process.pid":             int64(200),
		"process.executable.name": "java",
		"process.parent_pid":      int64(150),
		"process.user.id":         int64(1000),
		"process.executable.path": "/usr/lib/jvm/bin/java",
	}, jv.Resource().Attributes().AsRaw())

	for _, rl := range []plog.ResourceLogs{pg, jv} {
		require.Equal(t, 1, rl.ScopeLogs().Len())
		assert.Equal(t, "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver", rl.ScopeLogs().At(0).Scope().Name())
	}
	pgRecords := pg.ScopeLogs().At(0).LogRecords()
	require.Equal(t, 2, pgRecords.Len())
	jvRecords := jv.ScopeLogs().At(0).LogRecords()
	require.Equal(t, 1, jvRecords.Len())

	// A successful maymove that moved the mapping.
	r := pgRecords.At(0)
	assert.Equal(t, "mremap", r.EventName())
	assert.Equal(t, pcommon.NewTimestampFromTime(enter), r.Timestamp())
	assert.Equal(t, pcommon.NewTimestampFromTime(observed), r.ObservedTimestamp())
	assert.Equal(t, plog.SeverityNumberInfo, r.SeverityNumber())
	assert.Equal(t, "INFO", r.SeverityText())
	assert.Equal(t, "mremap(0x7f3a2c000000, 4096, 8192, MREMAP_MAYMOVE) = 0x7f3a2c100000", r.Body().Str())
	assert.Equal(t, map[string]any{
		"thread.id":              int64(101),
		"mremap.old_address":     int64(0x7f3a2c000000),
		"mremap.old_size":        int64(4096),
		"mremap.new_size":        int64(8192),
		"mremap.flags":           int64(1),
		"mremap.flags.names":     "MREMAP_MAYMOVE",
		"mremap.new_address":     int64(0),
		"mremap.result":          "ok",
		"mremap.result_address":  int64(0x7f3a2c100000),
		"mremap.size_delta":      int64(4096),
		"mremap.resize":          "grow",
		"mremap.move":            "maymove",
		"mremap.duration_ns":     int64(1500),
		"mremap.probe":           "tracepoint",
		"mremap.vma.permissions": "rw-s",
		"mremap.vma.path":        "/dev/shm/PostgreSQL.1804289383",
		"mremap.vma.count":       int64(1),
		"mremap.map_count":       int64(45),
	}, r.Attributes().AsRaw())

	// A failed call: WARN, no result_address, a negative size_delta; no
	// mapping was found at its address, so no mremap.vma.* attributes.
	r = pgRecords.At(1)
	assert.Equal(t, "mremap", r.EventName())
	assert.Equal(t, pcommon.NewTimestampFromTime(enter.Add(2*time.Millisecond)), r.Timestamp())
	assert.Equal(t, pcommon.NewTimestampFromTime(observed), r.ObservedTimestamp())
	assert.Equal(t, plog.SeverityNumberWarn, r.SeverityNumber())
	assert.Equal(t, "WARN", r.SeverityText())
	assert.Equal(t, "mremap(0x7f3a2c000001, 8192, 4096, MREMAP_MAYMOVE) = -1 EINVAL (Invalid argument)", r.Body().Str())
	assert.Equal(t, map[string]any{
		"thread.id":          int64(100),
		"mremap.old_address": int64(0x7f3a2c000001),
		"mremap.old_size":    int64(8192),
		"mremap.new_size":    int64(4096),
		"mremap.flags":       int64(1),
		"mremap.flags.names": "MREMAP_MAYMOVE",
		"mremap.new_address": int64(0),
		"mremap.result":      "EINVAL",
		"mremap.size_delta":  int64(-4096),
		"mremap.resize":      "shrink",
		"mremap.move":        "none",
		"mremap.duration_ns": int64(300),
		"mremap.probe":       "tracepoint",
		"mremap.map_count":   int64(46),
	}, r.Attributes().AsRaw())

	// A fixed move.
	r = jvRecords.At(0)
	assert.Equal(t, pcommon.NewTimestampFromTime(enter.Add(time.Millisecond)), r.Timestamp())
	assert.Equal(t, plog.SeverityNumberInfo, r.SeverityNumber())
	assert.Equal(t, "INFO", r.SeverityText())
	assert.Equal(t, "mremap(0x7f3a2c000000, 4096, 4096, MREMAP_MAYMOVE|MREMAP_FIXED, 0x7f3a2d000000) = 0x7f3a2d000000", r.Body().Str())
	assert.Equal(t, map[string]any{
		"thread.id":              int64(230),
		"mremap.old_address":     int64(0x7f3a2c000000),
		"mremap.old_size":        int64(4096),
		"mremap.new_size":        int64(4096),
		"mremap.flags":           int64(3),
		"mremap.flags.names":     "MREMAP_MAYMOVE|MREMAP_FIXED",
		"mremap.new_address":     int64(0x7f3a2d000000),
		"mremap.result":          "ok",
		"mremap.result_address":  int64(0x7f3a2d000000),
		"mremap.size_delta":      int64(0),
		"mremap.resize":          "none",
		"mremap.move":            "fixed",
		"mremap.duration_ns":     int64(800),
		"mremap.probe":           "tracepoint",
		"mremap.vma.permissions": "rw-p",
		"mremap.vma.path":        "",
		"mremap.signals":         "fixed_replace|dontunmap",
		"mremap.map_count":       int64(120),
	}, r.Attributes().AsRaw())
}

// redact_addresses: no address attribute, 0x? for each address in the
// body, everything else as without it.
func TestToLogsRedactAddresses(t *testing.T) {
	root := t.TempDir()
	cfg := createDefaultConfig()
	cfg.RedactAddresses = true
	c := newLogConverter(cfg, "host-a", "tracepoint")
	plain := newLogConverter(createDefaultConfig(), "host-a", "tracepoint")
	calls := observe(root, testCalls()...)
	ld, want := c.toLogs(calls), plain.toLogs(calls)
	require.Equal(t, want.LogRecordCount(), ld.LogRecordCount())

	bodies := []string{
		"mremap(0x?, 4096, 8192, MREMAP_MAYMOVE) = 0x?",
		"mremap(0x?, 8192, 4096, MREMAP_MAYMOVE) = -1 EINVAL (Invalid argument)",
		"mremap(0x?, 4096, 4096, MREMAP_MAYMOVE|MREMAP_FIXED, 0x?) = 0x?",
	}
	n := 0
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		assert.Equal(t, want.ResourceLogs().At(i).Resource().Attributes().AsRaw(), ld.ResourceLogs().At(i).Resource().Attributes().AsRaw())
		records, wantRecords := ld.ResourceLogs().At(i).ScopeLogs().At(0).LogRecords(), want.ResourceLogs().At(i).ScopeLogs().At(0).LogRecords()
		for j := 0; j < records.Len(); j++ {
			r, w := records.At(j), wantRecords.At(j)
			assert.Equal(t, bodies[n], r.Body().Str())
			n++
			wantAttrs := w.Attributes().AsRaw()
			for _, k := range []string{"mremap.old_address", "mremap.new_address", "mremap.result_address"} {
				_, ok := r.Attributes().Get(k)
				assert.False(t, ok, "%s present with redact_addresses", k)
				delete(wantAttrs, k)
			}
			assert.Equal(t, wantAttrs, r.Attributes().AsRaw())
			assert.Equal(t, w.SeverityNumber(), r.SeverityNumber())
			assert.Equal(t, w.Timestamp(), r.Timestamp())
		}
	}
	assert.Equal(t, len(bodies), n)
}

func TestToLogsAttributeValues(t *testing.T) {
	c := &logConverter{probe: "kprobe"}
	tests := []struct {
		name string
		call mremap.Call
		want map[string]any // a subset of the attributes
		not  []string       // attributes that must be absent
	}{
		{
			name: "flags 0: empty names, in place",
			call: mremap.Call{OldAddress: 0x1000, OldSize: 8192, NewSize: 4096, Return: 0x1000, Resize: mremap.ResizeShrink},
			want: map[string]any{"mremap.flags": int64(0), "mremap.flags.names": "", "mremap.move": "none", "mremap.resize": "shrink", "mremap.size_delta": int64(-4096), "mremap.result_address": int64(0x1000)},
		},
		{
			name: "dontunmap",
			call: mremap.Call{OldAddress: 0x1000, OldSize: 4096, NewSize: 4096, Flags: mremap.FlagMayMove | mremap.FlagDontUnmap, Return: 0x5000, Move: mremap.MoveDontUnmap},
			want: map[string]any{"mremap.flags": int64(5), "mremap.flags.names": "MREMAP_MAYMOVE|MREMAP_DONTUNMAP", "mremap.move": "dontunmap", "mremap.resize": "none"},
		},
		{
			name: "unknown flag bits",
			call: mremap.Call{Flags: 0x10 | mremap.FlagMayMove, Return: -22, Errno: 22},
			want: map[string]any{"mremap.flags": int64(0x11), "mremap.flags.names": "MREMAP_MAYMOVE|0x10", "mremap.result": "EINVAL"},
			not:  []string{"mremap.result_address"},
		},
		{
			name: "failed fixed call is still fixed",
			call: mremap.Call{Flags: mremap.FlagFixed, NewAddress: 0x9000, Return: -22, Errno: 22, Move: mremap.MoveFixed},
			want: map[string]any{"mremap.move": "fixed", "mremap.new_address": int64(0x9000), "mremap.result": "EINVAL"},
			not:  []string{"mremap.result_address"},
		},
		{
			name: "errors by name",
			call: mremap.Call{Return: -14, Errno: 14},
			want: map[string]any{"mremap.result": "EFAULT"},
			not:  []string{"mremap.result_address"},
		},
		{
			name: "enomem",
			call: mremap.Call{OldSize: 4096, NewSize: 1 << 40, Return: -12, Errno: 12, Resize: mremap.ResizeGrow},
			want: map[string]any{"mremap.result": "ENOMEM", "mremap.resize": "grow", "mremap.size_delta": int64(1<<40 - 4096), "mremap.move": "none"},
		},
		{
			name: "probe",
			call: mremap.Call{Return: 0x1000},
			want: map[string]any{"mremap.probe": "kprobe"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld := c.toLogs(observe(t.TempDir(), tt.call))
			require.Equal(t, 1, ld.LogRecordCount())
			attrs := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().AsRaw()
			for k, v := range tt.want {
				assert.Equal(t, v, attrs[k], k)
			}
			for _, k := range tt.not {
				assert.NotContains(t, attrs, k)
			}
		})
	}
}

func TestToLogsResources(t *testing.T) {
	root := t.TempDir()
	c := &logConverter{probe: "tracepoint"}

	// No host name, and a process /proc no longer knows: only what the
	// kernel reported.
	ld := c.toLogs(observe(root, mremap.Call{Process: postgres, Return: 1}))
	require.Equal(t, 1, ld.ResourceLogs().Len())
	assert.Equal(t, map[string]any{
		"process.pid":             int64(100),
		"process.executable.name": "postgres",
		"process.parent_pid":      int64(1),
		"process.user.id":         int64(999),
	}, ld.ResourceLogs().At(0).Resource().Attributes().AsRaw())

	// One pid with two comms (an exec between calls) is two resources.
	execd := postgres
	execd.Comm = "psql"
	ld = c.toLogs(observe(root, mremap.Call{Process: postgres}, mremap.Call{Process: execd}, mremap.Call{Process: postgres}, mremap.Call{Process: java}))
	require.Equal(t, 3, ld.ResourceLogs().Len())
	var comms []string
	var counts []int
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		v, _ := rl.Resource().Attributes().Get("process.executable.name")
		comms = append(comms, v.Str())
		counts = append(counts, rl.ScopeLogs().At(0).LogRecords().Len())
	}
	assert.Equal(t, []string{"postgres", "psql", "java"}, comms)
	assert.Equal(t, []int{2, 1, 1}, counts)

	assert.Equal(t, 0, c.toLogs(nil).ResourceLogs().Len())
}

func TestNewLogConverterHostName(t *testing.T) {
	cfg := createDefaultConfig()
	c := newLogConverter(cfg, "host-a", "kprobe")
	assert.Equal(t, "host-a", c.hostName)
	assert.Equal(t, "kprobe", c.probe)

	cfg.ResourceAttributes.HostName.Enabled = false
	c = newLogConverter(cfg, "host-a", "kprobe")
	ld := c.toLogs(observe(t.TempDir(), mremap.Call{Process: java}))
	_, ok := ld.ResourceLogs().At(0).Resource().Attributes().Get("host.name")
	assert.False(t, ok, "host.name disabled")
}

func TestCommandLineOptIn(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, java.PID, "/usr/bin/java", "")
	require.NoError(t, os.WriteFile(filepath.Join(root, "200", "cmdline"), []byte("java\x00-jar\x00app.jar\x00"), 0o644))
	calls := observe(root, mremap.Call{Process: java})

	cfg := createDefaultConfig()
	assert.False(t, cfg.ResourceAttributes.ProcessCommandLine.Enabled, "off by default")
	ld := newLogConverter(cfg, "h", "kprobe").toLogs(calls)
	_, ok := ld.ResourceLogs().At(0).Resource().Attributes().Get("process.command_line")
	assert.False(t, ok, "process.command_line disabled")

	cfg.ResourceAttributes.ProcessCommandLine.Enabled = true
	ld = newLogConverter(cfg, "h", "kprobe").toLogs(calls)
	v, ok := ld.ResourceLogs().At(0).Resource().Attributes().Get("process.command_line")
	assert.True(t, ok)
	assert.Equal(t, "java -jar app.jar", v.Str())
}

func TestProcessCache(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 100, "/usr/bin/postgres", "12:memory:/docker/"+testContainerID+"\n")
	require.NoError(t, os.WriteFile(filepath.Join(root, "100", "cmdline"), []byte("postgres\x00-D\x00/var/lib/pg data\x00"), 0o644))
	c := newProcessCache(root, true)
	pg := mremap.Process{PID: 100, Comm: "postgres", StartTime: 5_000_000}

	want := processInfo{exePath: "/usr/bin/postgres", commandLine: "postgres -D '/var/lib/pg data'", containerID: testContainerID}
	assert.Equal(t, want, c.lookup(pg))

	// Read once per process: a change in /proc is not seen...
	require.NoError(t, os.Remove(filepath.Join(root, "100", "exe")))
	require.NoError(t, os.Symlink("/usr/bin/psql", filepath.Join(root, "100", "exe")))
	assert.Equal(t, want, c.lookup(pg))
	assert.Equal(t, want, c.lookup(mremap.Process{PID: 100, PPID: 7, UID: 3, Comm: "postgres", StartTime: 5_000_000}),
		"the ppid and uid come from the record and are no part of the key")
	// ...until the comm changes (an exec)...
	psql := want
	psql.exePath = "/usr/bin/psql"
	assert.Equal(t, psql, c.lookup(mremap.Process{PID: 100, Comm: "psql", StartTime: 5_000_000}))
	// ...or the pid is reused by a process that started later, even with
	// the same comm.
	require.NoError(t, os.Remove(filepath.Join(root, "100", "exe")))
	require.NoError(t, os.Symlink("/usr/bin/other", filepath.Join(root, "100", "exe")))
	other := want
	other.exePath = "/usr/bin/other"
	assert.Equal(t, other, c.lookup(mremap.Process{PID: 100, Comm: "postgres", StartTime: 9_000_000}))

	// A process gone from /proc is unknown, not an error.
	assert.Equal(t, processInfo{}, c.lookup(mremap.Process{PID: 4242, Comm: "gone"}))

	// The command line is read only when process.command_line is enabled.
	assert.Equal(t, processInfo{exePath: "/usr/bin/other", containerID: testContainerID},
		newProcessCache(root, false).lookup(pg))

	// The cache is bounded.
	for pid := uint32(1000); pid < 1000+maxCachedProcesses+10; pid++ {
		c.lookup(mremap.Process{PID: pid, Comm: "x"})
	}
	assert.LessOrEqual(t, len(c.m), maxCachedProcesses)
}

func TestReadCommandLine(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("a", maxCommandLine+10)
	tests := []struct {
		name, cmdline, want string
	}{
		{"arguments", "/bin/sleep\x0010\x00", "/bin/sleep 10"},
		{"an argument with a space", "sh\x00-c\x00echo a b\x00", "sh -c 'echo a b'"},
		{"the same words as arguments", "sh\x00-c\x00echo\x00a\x00b\x00", "sh -c echo a b"},
		{"quotes", "echo\x00it's\x00\"q\"\x00", `echo 'it'\''s' '"q"'`},
		{"an empty argument", "prog\x00\x00x\x00", "prog '' x"},
		{"shell characters", "sh\x00-c\x00ls *; echo $HOME > /tmp/x\x00", `sh -c 'ls *; echo $HOME > /tmp/x'`},
		{"no trailing NUL (setproctitle)", "nginx: worker process", "'nginx: worker process'"},
		{"a title padded with NULs", "nginx: master\x00\x00\x00\x00", "'nginx: master'"},
		{"invalid UTF-8, a newline and a backslash", "prog\x00\xff\xfe\x00a\nb\x00c\\d\x00", `prog '\xff\xfe' 'a\x0ab' 'c\\d'`},
		{"UTF-8", "grep\x00café\x00", "grep café"},
		{"a no-break space", "grep\x00a\u00a0b\x00", "grep 'a\u00a0b'"},
		{"empty (a kernel thread)", "", ""},
		{"too long", long, long[:maxCommandLine] + "..."},
		{"too long, in a quoted argument", "sh\x00-c\x00" + strings.Repeat("a ", maxCommandLine), "sh -c '" + strings.Repeat("a ", (maxCommandLine-6)/2) + "'..."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "cmdline")
			require.NoError(t, os.WriteFile(path, []byte(tt.cmdline), 0o644))
			assert.Equal(t, tt.want, readCommandLine(path))
		})
	}
	assert.Equal(t, "", readCommandLine(filepath.Join(dir, "missing")))
}

// A command line reads back as its arguments: split at unquoted spaces,
// '...' taken as it is, \' outside quotes a quote, then mremap.Unescape.
func TestCommandLineReadsBackAsItsArguments(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"a b"}, {"a", "b"}, {"a", "", "b"}, {"it's", "'", "''"}, {`a\b`, `\'`, "x\ny"},
		{"\xff", "caf\xc3\xa9", "tab\there"}, {"--opt=a b", "-x", "$(rm -rf /)", "`id`"},
	} {
		path := filepath.Join(dir, "cmdline")
		require.NoError(t, os.WriteFile(path, []byte(strings.Join(args, "\x00")+"\x00"), 0o644))
		line := readCommandLine(path)
		got, err := splitCommandLine(line)
		require.NoError(t, err, line)
		assert.Equal(t, args, got, "%q read back from %s", args, line)
	}
}

// splitCommandLine undoes readCommandLine for the test.
func splitCommandLine(line string) ([]string, error) {
	var args []string
	var cur []byte
	inArg, quoted := false, false
	flush := func() error {
		b, err := mremap.Unescape(string(cur))
		args = append(args, string(b))
		cur, inArg = nil, false
		return err
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			cur = append(cur, c)
		case c == '\'':
			quoted, inArg = true, true
		case c == '\\' && i+1 < len(line) && line[i+1] == '\'':
			cur = append(cur, '\'')
			i++
		case c == ' ':
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			cur, inArg = append(cur, c), true
		}
	}
	if inArg || len(cur) > 0 {
		if err := flush(); err != nil {
			return nil, err
		}
	}
	return args, nil
}

// Values read from /proc are escaped too.
func TestProcessCacheEscapes(t *testing.T) {
	root := t.TempDir()
	fakeProc(t, root, 100, "/opt/caf\xe9/bin\\x", "")
	info := newProcessCache(root, false).lookup(mremap.Process{PID: 100, Comm: "x"})
	assert.Equal(t, `/opt/caf\xe9/bin\\x`, info.exePath)
}

func TestContainerIDFromCgroup(t *testing.T) {
	const id = testContainerID
	tests := []struct {
		name   string
		cgroup string
		want   string
	}{
		{"v2 docker", "0::/system.slice/docker-" + id + ".scope", id},
		{"v2 cri-containerd", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-" + id + ".scope", id},
		{"v2 crio", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/crio-" + id + ".scope", id},
		{"v2 podman", "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + id + ".scope", id},
		{"v2 podman running systemd", "0::/machine.slice/libpod-" + id + ".scope/container", id},
		{"v2 podman cgroupfs", "0::/libpod_parent/libpod-" + id, id},
		{"v1 docker", "12:memory:/docker/" + id, id},
		{"v1 kubepods plain id", "11:cpu,cpuacct:/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/" + id, id},
		{
			"v1 several lines, the id on a later one",
			"13:rdma:/\n12:pids:/docker/" + id + "\n11:memory:/docker/" + id + "\n0::/system.slice/containerd.service\n",
			id,
		},
		{"v2 no container: a session", "0::/user.slice/user-1000.slice/session-3.scope", ""},
		{"v2 no container: a service", "0::/system.slice/ssh.service", ""},
		{"v2 root", "0::/", ""},
		{"v1 no container", "12:memory:/user.slice\n11:cpu:/\n", ""},
		{"empty", "", ""},
		{"not a cgroup line", id, ""},
		{"63 hex digits", "0::/docker/" + id[:63], ""},
		{"65 hex digits", "0::/docker/a" + id, ""},
		{"upper-case hex", "0::/docker/" + strings.ToUpper(id), ""},
		{"id in the middle of the path", "0::/docker/" + id + "/child", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := containerIDFromCgroup(bufio.NewScanner(strings.NewReader(tt.cgroup)))
			assert.Equal(t, tt.want, got)
		})
	}
}

// toLogsOneByOne is what toLogs does, written plainly: each call converted
// alone, its record moved to a ResourceLogs per process in the order
// processes first appear.
func toLogsOneByOne(c *logConverter, calls []observedCall) plog.Logs {
	ld := plog.NewLogs()
	scopes := map[processKey]plog.ScopeLogs{}
	for i := range calls {
		one := c.toLogs(calls[i : i+1]).ResourceLogs().At(0)
		k := keyOf(calls[i].Process)
		sl, ok := scopes[k]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			one.Resource().CopyTo(rl.Resource())
			sl = rl.ScopeLogs().AppendEmpty()
			one.ScopeLogs().At(0).Scope().CopyTo(sl.Scope())
			scopes[k] = sl
		}
		one.ScopeLogs().At(0).LogRecords().At(0).CopyTo(sl.LogRecords().AppendEmpty())
	}
	return ld
}

// A batch whose processes interleave (and some of whose calls have a
// mapping) becomes the same records, attributes in the same order, as the
// calls converted one at a time; converting the next batch leaves it as it
// is (the bodies of a batch share one buffer).
func TestToLogsGroupsByProcess(t *testing.T) {
	marshal := func(ld plog.Logs) []byte {
		b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
		require.NoError(t, err)
		return b
	}
	for _, redact := range []bool{false, true} {
		c := &logConverter{hostName: "host-a", probe: "tracepoint", redact: redact}
		calls := benchCalls(300, 7)
		for i := range calls {
			if i%3 == 0 {
				calls[i].VMA = mremap.VMA{Found: true, Permissions: "rw-p", Path: "/usr/lib/libc.so.6"}
			}
			if i%50 < 10 { // runs of one process too
				calls[i].Process = calls[0].Process
			}
		}
		ld := c.toLogs(calls)
		want := marshal(toLogsOneByOne(c, calls))
		require.Equal(t, want, marshal(ld), "redact %v", redact)
		assert.Equal(t, 7, ld.ResourceLogs().Len())

		c.toLogs(benchCalls(100, 3))
		require.Equal(t, want, marshal(ld), "after the next batch, redact %v", redact)
	}
}
