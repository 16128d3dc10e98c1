//go:build linux

package tracer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// eventFields is a record's content, laid out by hand in rawEvent as the
// kernel's struct event (bpf/mremap.h).
type eventFields struct {
	enterNs, exitNs                              uint64
	oldAddress, oldSize, newSize, flags, newAddr uint64
	ret                                          int64
	tgid, tid, ppid, uid                         uint32
	errno                                        uint16
	resize, move                                 uint8
	mapCount                                     uint32
	comm                                         [16]byte
	startTime                                    uint64
	signals                                      uint16
	vmaFlags, vmaCount                           uint8
	vmaPerms                                     string // 4 bytes
	vmaPath                                      string // at most 256 bytes
}

// rawEvent lays out e in host byte order at the C struct's offsets.
func rawEvent(e eventFields) []byte {
	b := make([]byte, 0, 384)
	ne := binary.NativeEndian
	for _, v := range []uint64{e.enterNs, e.exitNs, e.oldAddress, e.oldSize, e.newSize, e.flags, e.newAddr, uint64(e.ret)} {
		b = ne.AppendUint64(b, v)
	}
	for _, v := range []uint32{e.tgid, e.tid, e.ppid, e.uid} {
		b = ne.AppendUint32(b, v)
	}
	// The classification: err, resize, move; the map count.
	b = ne.AppendUint16(b, e.errno)
	b = append(b, e.resize, e.move)
	b = ne.AppendUint32(b, e.mapCount)
	b = append(b, e.comm[:]...)
	b = ne.AppendUint64(b, e.startTime)
	// The signals, then 6 bytes of padding.
	b = ne.AppendUint16(b, e.signals)
	b = append(b, 0, 0, 0, 0, 0, 0)
	// struct vma: flags, perms[4], count, path_len (u16), path[256]
	b = append(b, e.vmaFlags)
	var perms [4]byte
	copy(perms[:], e.vmaPerms)
	b = append(b, perms[:]...)
	b = append(b, e.vmaCount)
	b = ne.AppendUint16(b, uint16(len(e.vmaPath)))
	var path [256]byte
	copy(path[:], e.vmaPath)
	return append(b, path[:]...)
}

func comm16(s string) [16]byte {
	var c [16]byte
	copy(c[:], s)
	return c
}

// TestEventLayout pins the offsets rawEvent assumes to the generated struct,
// so a change to the C struct fails here and not in decoding.
func TestEventLayout(t *testing.T) {
	var e bpf.MremapEvent
	assert.Equal(t, uintptr(384), unsafe.Sizeof(e))
	// EVENT_SIZE_NO_PATH: where the mapping's path starts.
	assert.Equal(t, 128, eventSizeNoPath)
	offsets := map[string][2]uintptr{
		"EnterNs":     {unsafe.Offsetof(e.EnterNs), 0},
		"ExitNs":      {unsafe.Offsetof(e.ExitNs), 8},
		"OldAddress":  {unsafe.Offsetof(e.OldAddress), 16},
		"OldSize":     {unsafe.Offsetof(e.OldSize), 24},
		"NewSize":     {unsafe.Offsetof(e.NewSize), 32},
		"Flags":       {unsafe.Offsetof(e.Flags), 40},
		"NewAddress":  {unsafe.Offsetof(e.NewAddress), 48},
		"Ret":         {unsafe.Offsetof(e.Ret), 56},
		"Tgid":        {unsafe.Offsetof(e.Tgid), 64},
		"Tid":         {unsafe.Offsetof(e.Tid), 68},
		"Ppid":        {unsafe.Offsetof(e.Ppid), 72},
		"Uid":         {unsafe.Offsetof(e.Uid), 76},
		"Err":         {unsafe.Offsetof(e.Err), 80},
		"Resize":      {unsafe.Offsetof(e.Resize), 82},
		"Move":        {unsafe.Offsetof(e.Move), 83},
		"MapCount":    {unsafe.Offsetof(e.MapCount), 84},
		"Comm":        {unsafe.Offsetof(e.Comm), 88},
		"StartTime":   {unsafe.Offsetof(e.StartTime), 104},
		"Signals":     {unsafe.Offsetof(e.Signals), 112},
		"Vma":         {unsafe.Offsetof(e.Vma), 120},
		"Vma.Flags":   {unsafe.Offsetof(e.Vma.Flags), 0},
		"Vma.Perms":   {unsafe.Offsetof(e.Vma.Perms), 1},
		"Vma.PathLen": {unsafe.Offsetof(e.Vma.PathLen), 6},
		"Vma.Path":    {unsafe.Offsetof(e.Vma.Path), 8},
	}
	for name, o := range offsets {
		assert.Equal(t, o[1], o[0], "offset of %s", name)
	}
}

func TestDecodeEvent(t *testing.T) {
	const offset = 1_700_000_000_000_000_000
	clock := ClockWithOffset(offset)
	raw := rawEvent(eventFields{
		enterNs:    5_000_000_000,
		exitNs:     5_000_012_345,
		oldAddress: 0x7f3a2c000000,
		oldSize:    4096,
		newSize:    8192,
		flags:      mremap.FlagMayMove | mremap.FlagFixed,
		newAddr:    0x7f3a2d000000,
		ret:        0x7f3a2d000000,
		tgid:       1234,
		tid:        1240,
		ppid:       1,
		uid:        1000,
		resize:     uint8(mremap.ResizeGrow),
		move:       uint8(mremap.MoveFixed),
		mapCount:   71,
		signals:    1<<mremap.SignalFixedReplace | 1<<mremap.SignalUnbackedCaller,
		comm:       comm16("mremap-helper"),
		startTime:  123_456_789,
		vmaFlags:   uint8(bpf.MremapVmaFlagVMA_FOUND),
		vmaCount:   2,
		vmaPerms:   "r-xp",
		vmaPath:    "/usr/lib/x86_64-linux-gnu/libc.so.6",
	})
	got, err := decodeEvent(raw, clock)
	require.NoError(t, err)
	want := mremap.Call{
		Enter:      time.Unix(0, offset+5_000_000_000),
		Exit:       time.Unix(0, offset+5_000_012_345),
		Duration:   12345 * time.Nanosecond,
		Process:    mremap.Process{PID: 1234, PPID: 1, UID: 1000, Comm: "mremap-helper", StartTime: 123_456_789},
		TID:        1240,
		OldAddress: 0x7f3a2c000000,
		OldSize:    4096,
		NewSize:    8192,
		Flags:      mremap.FlagMayMove | mremap.FlagFixed,
		NewAddress: 0x7f3a2d000000,
		Return:     0x7f3a2d000000,
		Resize:     mremap.ResizeGrow,
		Move:       mremap.MoveFixed,
		Signals:    1<<mremap.SignalFixedReplace | 1<<mremap.SignalUnbackedCaller,
		MapCount:   71,
		VMA:        mremap.VMA{Found: true, Permissions: "r-xp", Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", Count: 2},
	}
	assert.Equal(t, want, got)
	assert.True(t, got.Enter.Equal(want.Enter))
}

func TestDecodeEventFields(t *testing.T) {
	clock := ClockWithOffset(0)
	tests := []struct {
		name  string
		e     eventFields
		check func(t *testing.T, c mremap.Call)
	}{
		{
			name: "negative return is -errno",
			e:    eventFields{ret: -22, errno: 22, comm: comm16("a")},
			check: func(t *testing.T, c mremap.Call) {
				assert.Equal(t, int64(-22), c.Return)
				assert.Equal(t, "EINVAL", c.Result())
			},
		},
		{
			name: "exit at entry is a call of no duration",
			e:    eventFields{enterNs: 100, exitNs: 100},
			check: func(t *testing.T, c mremap.Call) {
				assert.Equal(t, time.Duration(0), c.Duration)
			},
		},
		{
			name: "comm of 15 bytes",
			e:    eventFields{comm: comm16("abcdefghijklmno")},
			check: func(t *testing.T, c mremap.Call) {
				assert.Equal(t, "abcdefghijklmno", c.Process.Comm)
			},
		},
		{
			name: "comm stops at the first NUL",
			e:    eventFields{comm: [16]byte{'s', 'h', 0, 'x', 'y', 'z'}},
			check: func(t *testing.T, c mremap.Call) {
				assert.Equal(t, "sh", c.Process.Comm)
			},
		},
		{
			name: "empty comm",
			e:    eventFields{},
			check: func(t *testing.T, c mremap.Call) {
				assert.Equal(t, "", c.Process.Comm)
			},
		},
		{
			name: "comm with bytes above 0x7f",
			e:    eventFields{comm: comm16("caf\xc3\xa9")},
			check: func(t *testing.T, c mremap.Call) {
				assert.Equal(t, "café", c.Process.Comm)
			},
		},
		{
			name: "unsigned fields keep their top bit",
			e: eventFields{
				oldAddress: 1 << 63, oldSize: ^uint64(0), newSize: 1 << 63, flags: ^uint64(0), newAddr: 1<<64 - 4096,
				tgid: 1<<32 - 1, tid: 1 << 31, ppid: 1<<32 - 2, uid: 1<<32 - 1,
			},
			check: func(t *testing.T, c mremap.Call) {
				assert.Equal(t, uint64(1<<63), c.OldAddress)
				assert.Equal(t, ^uint64(0), c.OldSize)
				assert.Equal(t, uint64(1<<63), c.NewSize)
				assert.Equal(t, ^uint64(0), c.Flags)
				assert.Equal(t, uint64(1<<64-4096), c.NewAddress)
				assert.Equal(t, uint32(1<<32-1), c.Process.PID)
				assert.Equal(t, uint32(1<<31), c.TID)
				assert.Equal(t, uint32(1<<32-2), c.Process.PPID)
				assert.Equal(t, uint32(1<<32-1), c.Process.UID)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := decodeEvent(rawEvent(tt.e), clock)
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestDecodeVMA(t *testing.T) {
	found := uint8(bpf.MremapVmaFlagVMA_FOUND)
	long := strings.Repeat("/d", 128)
	tests := []struct {
		name  string
		flags uint8
		perms string
		path  string
		want  mremap.VMA
	}{
		{"no mapping", 0, "", "", mremap.VMA{}},
		{"not found: the rest is ignored", 0, "rw-p", "/x", mremap.VMA{}},
		{"anonymous", found, "rw-p", "", mremap.VMA{Found: true, Permissions: "rw-p"}},
		{"heap", found, "rw-p", "[heap]", mremap.VMA{Found: true, Permissions: "rw-p", Path: "[heap]"}},
		{"shared file", found, "r--s", "/dev/shm/x", mremap.VMA{Found: true, Permissions: "r--s", Path: "/dev/shm/x"}},
		{"deleted", found | uint8(bpf.MremapVmaFlagVMA_PATH_DELETED), "rw-s", "/memfd:jit",
			mremap.VMA{Found: true, Permissions: "rw-s", Path: "/memfd:jit (deleted)"}},
		{"truncated", found | uint8(bpf.MremapVmaFlagVMA_PATH_TRUNCATED), "r-xp", long,
			mremap.VMA{Found: true, Permissions: "r-xp", Path: "..." + long}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := decodeEvent(rawEvent(eventFields{comm: comm16("a"), vmaFlags: tt.flags, vmaPerms: tt.perms, vmaPath: tt.path}), ClockWithOffset(0))
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.VMA)
		})
	}
}

// Strings from user space are made valid UTF-8, escaping what is not.
func TestDecodeEscapesUserBytes(t *testing.T) {
	raw := rawEvent(eventFields{comm: comm16("caf\xc3\\x"), vmaFlags: uint8(bpf.MremapVmaFlagVMA_FOUND), vmaPerms: "rw-s",
		vmaPath: "/dev/shm/\xff\nname"})
	c, err := decodeEvent(raw, ClockWithOffset(0))
	require.NoError(t, err)
	assert.Equal(t, `caf\xc3\\x`, c.Process.Comm)
	assert.Equal(t, `/dev/shm/\xff\x0aname`, c.VMA.Path)
}

func TestDecodeVMAPathLenBounded(t *testing.T) {
	// A path_len beyond the array is read as the whole array.
	raw := rawEvent(eventFields{comm: comm16("a"), vmaFlags: uint8(bpf.MremapVmaFlagVMA_FOUND), vmaPerms: "rw-p", vmaPath: strings.Repeat("a", 256)})
	var e bpf.MremapEvent
	binary.NativeEndian.PutUint16(raw[unsafe.Offsetof(e.Vma)+unsafe.Offsetof(e.Vma.PathLen):], 0xffff)
	c, err := decodeEvent(raw, ClockWithOffset(0))
	require.NoError(t, err)
	assert.Equal(t, strings.Repeat("a", 256), c.VMA.Path)
}

func TestDecodeEventFromStruct(t *testing.T) {
	e := bpf.MremapEvent{
		EnterNs: 10, ExitNs: 30, OldAddress: 0x1000, OldSize: 1, NewSize: 2, Flags: 4,
		NewAddress: 0x3000, Ret: -12, Tgid: 7, Tid: 8, Ppid: 9, Uid: 10,
		Err: 12, Resize: uint8(mremap.ResizeShrink), Move: uint8(mremap.MoveDontUnmap),
	}
	for i, c := range []byte("cat") {
		e.Comm[i] = int8(c)
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&e)), unsafe.Sizeof(e))
	c, err := decodeEvent(raw, ClockWithOffset(100))
	require.NoError(t, err)
	assert.Equal(t, time.Unix(0, 110), c.Enter)
	assert.Equal(t, time.Unix(0, 130), c.Exit)
	assert.Equal(t, 20*time.Nanosecond, c.Duration)
	assert.Equal(t, mremap.Process{PID: 7, PPID: 9, UID: 10, Comm: "cat"}, c.Process)
	assert.Equal(t, uint32(8), c.TID)
	assert.Equal(t, mremap.Call{
		Enter: c.Enter, Exit: c.Exit, Duration: c.Duration, Process: c.Process, TID: 8,
		OldAddress: 0x1000, OldSize: 1, NewSize: 2, Flags: 4, NewAddress: 0x3000, Return: -12,
		Errno: 12, Resize: mremap.ResizeShrink, Move: mremap.MoveDontUnmap,
	}, c)
}

func TestDecodeEventLongerRecord(t *testing.T) {
	// Ring buffer samples may carry padding after the struct.
	raw := append(rawEvent(eventFields{tgid: 42, comm: comm16("x")}), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	c, err := decodeEvent(raw, ClockWithOffset(0))
	require.NoError(t, err)
	assert.Equal(t, uint32(42), c.Process.PID)
	assert.Equal(t, "x", c.Process.Comm)
}

func TestDecodeEventShortRecord(t *testing.T) {
	full := rawEvent(eventFields{})
	for _, n := range []int{0, 1, 64, eventSizeNoPath - 1} {
		_, err := decodeEvent(full[:n], ClockWithOffset(0))
		require.Error(t, err, "record of %d bytes", n)
		assert.Contains(t, err.Error(), "want 384 (128 without a path)")
		assert.ErrorIs(t, err, errMalformed)
	}
	// A record with a path must hold all of it.
	withPath := rawEvent(eventFields{vmaFlags: uint8(bpf.MremapVmaFlagVMA_FOUND), vmaPerms: "r--s", vmaPath: "/dev/shm/x"})
	for _, n := range []int{eventSizeNoPath, len(withPath) - 1} {
		_, err := decodeEvent(withPath[:n], ClockWithOffset(0))
		require.Error(t, err, "record of %d bytes", n)
		assert.Contains(t, err.Error(), "with a path of 10, want 384")
		assert.ErrorIs(t, err, errMalformed)
	}
}

// The kernel submits a record whose mapping has no path (anonymous memory,
// or no mapping) without the path: it decodes as the whole struct would.
func TestDecodeEventWithoutPath(t *testing.T) {
	for _, f := range []eventFields{
		{enterNs: 1, exitNs: 3, tgid: 7, comm: comm16("anon"), vmaFlags: uint8(bpf.MremapVmaFlagVMA_FOUND), vmaPerms: "rw-p"},
		{enterNs: 1, exitNs: 3, tgid: 7, comm: comm16("none")},
	} {
		full := rawEvent(f)
		want, err := decodeEvent(full, ClockWithOffset(0))
		require.NoError(t, err)
		got, err := decodeEvent(full[:eventSizeNoPath], ClockWithOffset(0))
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
}

// A record whose exit precedes its entry on the monotonic clock is corrupt.
func TestDecodeEventExitBeforeEntry(t *testing.T) {
	_, err := decodeEvent(rawEvent(eventFields{enterNs: 100, exitNs: 50}), ClockWithOffset(0))
	require.ErrorIs(t, err, errMalformed)
	assert.Contains(t, err.Error(), "exit at 50 ns before entry at 100 ns")
}

func TestDecodeEventCommWithoutNUL(t *testing.T) {
	var comm [16]byte
	copy(comm[:], "abcdefghijklmnop")
	_, err := decodeEvent(rawEvent(eventFields{comm: comm}), ClockWithOffset(0))
	require.ErrorIs(t, err, errMalformed)
	assert.Contains(t, err.Error(), "not NUL-terminated")
}

// FuzzDecodeEvent feeds the decoder arbitrary records: it must never
// panic, must reject exactly the truncated and corrupt ones, and must
// decode every field of the others as laid out. The seed corpus is in
// testdata/fuzz/FuzzDecodeEvent; `make fuzz` runs it for longer.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(rawEvent(eventFields{enterNs: 1, exitNs: 2, oldAddress: 0x7f0000000000, oldSize: 4096, newSize: 8192,
		flags: 1, ret: 0x7f0000100000, tgid: 1, tid: 1, comm: comm16("a")}))
	f.Add(rawEvent(eventFields{enterNs: 2, exitNs: 1}))
	f.Add(rawEvent(eventFields{enterNs: 1, exitNs: 2, comm: comm16("b"), startTime: 5,
		vmaFlags: uint8(bpf.MremapVmaFlagVMA_FOUND | bpf.MremapVmaFlagVMA_PATH_DELETED), vmaPerms: "rw-s", vmaPath: "/memfd:x"}))
	f.Add(rawEvent(eventFields{})[:95])
	f.Add(rawEvent(eventFields{enterNs: 1, exitNs: 2, comm: comm16("c"), ret: -12, errno: 12, resize: 1, move: 3}))
	f.Add(rawEvent(eventFields{comm: comm16("d"), move: 4}))
	f.Add(rawEvent(eventFields{comm: comm16("e"), signals: 1 << 9}))
	f.Add(rawEvent(eventFields{comm: comm16("f"), signals: 0x1ff, mapCount: 65530, errno: 12}))
	f.Add([]byte{})
	size := int(unsafe.Sizeof(bpf.MremapEvent{}))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := decodeEvent(raw, ClockWithOffset(1_700_000_000_000_000_000))
		ne := binary.NativeEndian
		// A record may end where the path starts when it has none.
		var e bpf.MremapEvent
		pathLen := int(unsafe.Offsetof(e.Vma) + unsafe.Offsetof(e.Vma.PathLen))
		commEnd := int(unsafe.Offsetof(e.Comm)) + len(e.Comm)
		if len(raw) < eventSizeNoPath || len(raw) < size && ne.Uint16(raw[pathLen:]) > 0 {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("record of %d bytes: err %v, want malformed", len(raw), err)
			}
			return
		}
		enter, exit := ne.Uint64(raw[0:]), ne.Uint64(raw[8:])
		resize, move := raw[unsafe.Offsetof(e.Resize)], raw[unsafe.Offsetof(e.Move)]
		signals := ne.Uint16(raw[unsafe.Offsetof(e.Signals):])
		if exit < enter || raw[commEnd-1] != 0 || resize > 2 || move > 3 || signals >= 1<<mremap.NumSignals {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("exit %d, entry %d, comm %q, resize %d, move %d: err %v, want malformed", exit, enter, raw[commEnd-16:commEnd], resize, move, err)
			}
			return
		}
		if tail, ok := stackTailOf(raw); ok && !validStackTail(tail) {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("stack tail %x: err %v, want malformed", tail[:24], err)
			}
			return
		}
		if err != nil {
			t.Fatalf("record of %d bytes: %v", len(raw), err)
		}
		want := mremap.Call{
			Enter: c.Enter, Exit: c.Exit, Duration: time.Duration(exit - enter),
			Process: mremap.Process{PID: ne.Uint32(raw[64:]), PPID: ne.Uint32(raw[72:]), UID: ne.Uint32(raw[76:]), Comm: c.Process.Comm,
				StartTime: ne.Uint64(raw[unsafe.Offsetof(e.StartTime):])},
			TID: ne.Uint32(raw[68:]), OldAddress: ne.Uint64(raw[16:]), OldSize: ne.Uint64(raw[24:]),
			NewSize: ne.Uint64(raw[32:]), Flags: ne.Uint64(raw[40:]), NewAddress: ne.Uint64(raw[48:]), Return: int64(ne.Uint64(raw[56:])),
			Errno: ne.Uint16(raw[unsafe.Offsetof(e.Err):]), Resize: mremap.Resize(resize), Move: mremap.Move(move),
			Signals: mremap.Signals(signals), MapCount: ne.Uint32(raw[unsafe.Offsetof(e.MapCount):]),
			VMA: c.VMA, Stack: c.Stack, // FuzzDecodeStack checks the stack
		}
		if vmaFlags := raw[unsafe.Offsetof(e.Vma)]; vmaFlags&uint8(bpf.MremapVmaFlagVMA_FOUND) == 0 && c.VMA != (mremap.VMA{}) {
			t.Fatalf("vma flags 0x%x: decoded mapping %+v, want none", vmaFlags, c.VMA)
		}
		// Four characters, a path of at most 256 bytes with "..." and " (deleted)".
		if len(c.VMA.Permissions) > 4*4 || len(c.VMA.Path) > 4*256+len("...")+len(" (deleted)") {
			t.Fatalf("mapping %+v: too long", c.VMA)
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("decoded %+v, want %+v", c, want)
		}
		// Strings from user space are valid UTF-8 that escapes the bytes.
		for _, s := range []string{c.Process.Comm, c.VMA.Permissions, c.VMA.Path} {
			if !utf8.ValidString(s) {
				t.Fatalf("%q is not valid UTF-8", s)
			}
		}
		comm, err := mremap.Unescape(c.Process.Comm)
		if err != nil || len(comm) > 15 || bytes.IndexByte(comm, 0) >= 0 {
			t.Fatalf("comm %q (%q, %v): more than 15 bytes or a NUL", c.Process.Comm, comm, err)
		}
		// What the receiver makes of it must not panic either.
		_ = c.String()
		_ = c.Redacted()
	})
}

func TestCommKeyCommString(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"a", "a"},
		{"mremap-helper", "mremap-helper"},
		{"abcdefghijklmno", "abcdefghijklmno"},
		// The kernel keeps 15 bytes and a NUL.
		{"abcdefghijklmnop", "abcdefghijklmno"},
		{"a-much-longer-process-name", "a-much-longer-p"},
		{"café", "café"},
	}
	for _, tt := range tests {
		k := commKey(tt.in)
		assert.Equal(t, int8(0), k.Name[15], "commKey(%q) keeps the terminating NUL", tt.in)
		assert.Equal(t, tt.want, commString(k.Name), "commString(commKey(%q))", tt.in)
	}
	// Bytes after the name are zero, so equal names are equal keys.
	assert.Equal(t, commKey("sh"), commKey("sh"))
	assert.NotEqual(t, commKey("sh"), commKey("sh2"))

	// A name without a NUL takes all 16 bytes.
	var full [16]int8
	for i := range full {
		full[i] = 'a' + int8(i)
	}
	assert.Equal(t, "abcdefghijklmnop", commString(full))
}

func TestParseProbe(t *testing.T) {
	for _, s := range []string{"auto", "kprobe", "tracepoint"} {
		p, err := ParseProbe(s)
		require.NoError(t, err, s)
		assert.Equal(t, Probe(s), p)
	}
	assert.Equal(t, ProbeAuto, Probe("auto"))
	assert.Equal(t, ProbeKprobe, Probe("kprobe"))
	assert.Equal(t, ProbeTracepoint, Probe("tracepoint"))
	for _, s := range []string{"", "Auto", "KPROBE", "fentry", "kretprobe", "tracepoint "} {
		p, err := ParseProbe(s)
		require.Error(t, err, "ParseProbe(%q)", s)
		assert.Equal(t, Probe(""), p)
		assert.Contains(t, err.Error(), "unknown probe")
		assert.Contains(t, err.Error(), "auto, kprobe or tracepoint")
	}
}

func TestOptionsValidate(t *testing.T) {
	page := os.Getpagesize()
	ok := Options{Probe: ProbeAuto, Events: true, RingBufferSize: 4 << 20}
	require.NoError(t, ok.validate())

	tests := []struct {
		name    string
		modify  func(o *Options)
		wantErr []string // empty: valid
	}{
		{"one page", func(o *Options) { o.RingBufferSize = page }, nil},
		{"kprobe", func(o *Options) { o.Probe = ProbeKprobe }, nil},
		{"tracepoint", func(o *Options) { o.Probe = ProbeTracepoint }, nil},
		{"comms of 1 and 15 bytes", func(o *Options) {
			o.Filter = Filter{Comms: []string{"a", "abcdefghijklmno"}, ExcludeComms: []string{"b"}}
		}, nil},
		{"no events: ring buffer size unused", func(o *Options) { o.Events = false; o.RingBufferSize = 0 }, nil},
		{"unknown probe", func(o *Options) { o.Probe = "uprobe" }, []string{`unknown probe "uprobe"`}},
		{"empty probe", func(o *Options) { o.Probe = "" }, []string{`unknown probe ""`}},
		{"ring buffer not a power of two", func(o *Options) { o.RingBufferSize = 3 * page }, []string{"ring buffer size", "power of two"}},
		{"ring buffer below a page", func(o *Options) { o.RingBufferSize = page / 2 }, []string{"ring buffer size", "at least one page"}},
		{"ring buffer zero", func(o *Options) { o.RingBufferSize = 0 }, []string{"ring buffer size: ", "got 0"}},
		{"ring buffer negative", func(o *Options) { o.RingBufferSize = -page }, []string{"ring buffer size"}},
		{"comm too long", func(o *Options) { o.Filter.Comms = []string{"abcdefghijklmnop"} }, []string{`process name "abcdefghijklmnop"`, "1 to 15 characters"}},
		{"comm empty", func(o *Options) { o.Filter.Comms = []string{""} }, []string{`process name ""`}},
		{"exclude comm too long", func(o *Options) { o.Filter.ExcludeComms = []string{"x", "0123456789abcdefg"} }, []string{`process name "0123456789abcdefg"`}},
		{"exclude comm empty", func(o *Options) { o.Filter.ExcludeComms = []string{""} }, []string{`process name ""`}},
		{"every error at once", func(o *Options) {
			o.Probe = "nope"
			o.RingBufferSize = 1000
			o.Filter.Comms = []string{"abcdefghijklmnopq"}
			o.Filter.ExcludeComms = []string{""}
		}, []string{`unknown probe "nope"`, "got 1000", `process name "abcdefghijklmnopq"`, `process name ""`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.modify(&o)
			err := o.validate()
			if len(tt.wantErr) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tt.wantErr {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
