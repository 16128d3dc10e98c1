//go:build linux

package tracer

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// stackFields is a stack tail's content, laid out by hand in rawStack as the
// kernel's struct stack_tail (bpf/mremap.h).
type stackFields struct {
	startBoottime, linkRegister uint64
	err                         int32
	frames                      uint16
	flags                       uint8
	words                       [32]uint64
	ips                         []uint64 // at most 65
}

// rawStack lays out s in host byte order at the C struct's offsets.
func rawStack(s stackFields) []byte {
	ne := binary.NativeEndian
	b := ne.AppendUint64(nil, s.startBoottime)
	b = ne.AppendUint64(b, s.linkRegister)
	b = ne.AppendUint32(b, uint32(s.err))
	b = ne.AppendUint16(b, s.frames)
	b = append(b, s.flags, 0)
	for _, w := range s.words {
		b = ne.AppendUint64(b, w)
	}
	var ips [65]uint64
	copy(ips[:], s.ips)
	for _, ip := range ips {
		b = ne.AppendUint64(b, ip)
	}
	return b
}

// TestStackTailLayout pins the offsets rawStack assumes, and the sizes of
// the four kinds of record: without a stack they are what they were.
func TestStackTailLayout(t *testing.T) {
	var s bpf.MremapStackTail
	assert.Equal(t, 800, stackTailSize)
	assert.Equal(t, stackTailSize, len(rawStack(stackFields{})))
	assert.Equal(t, 64, maxStackFrames)
	offsets := map[string][2]uintptr{
		"StartBoottime": {unsafe.Offsetof(s.StartBoottime), 0},
		"LinkRegister":  {unsafe.Offsetof(s.LinkRegister), 8},
		"Err":           {unsafe.Offsetof(s.Err), 16},
		"Frames":        {unsafe.Offsetof(s.Frames), 20},
		"Flags":         {unsafe.Offsetof(s.Flags), 22},
		"Words":         {unsafe.Offsetof(s.Words), 24},
		"Ips":           {unsafe.Offsetof(s.Ips), 280},
	}
	for name, o := range offsets {
		assert.Equal(t, o[1], o[0], "offset of %s", name)
	}
	// EVENT_SIZE_NO_PATH, sizeof(struct event), EVENT_SIZE_STACK_NO_PATH,
	// EVENT_SIZE_STACK: each a multiple of 8, as ring buffer records are.
	for _, n := range []int{eventSizeNoPath, int(unsafe.Sizeof(bpf.MremapEvent{})), eventSizeNoPath + stackTailSize, int(unsafe.Sizeof(bpf.MremapEvent{})) + stackTailSize} {
		assert.Zero(t, n%8, "record of %d bytes", n)
	}
}

// stackTailOf is the stack tail of raw, if it has one.
func stackTailOf(raw []byte) ([]byte, bool) {
	fixed := eventSizeNoPath
	pathLen := int(unsafe.Offsetof(bpf.MremapEvent{}.Vma) + unsafe.Offsetof(bpf.MremapVma{}.PathLen))
	if binary.NativeEndian.Uint16(raw[pathLen:]) > 0 {
		fixed = int(unsafe.Sizeof(bpf.MremapEvent{}))
	}
	if len(raw) < fixed+stackTailSize {
		return nil, false
	}
	return raw[fixed : fixed+stackTailSize], true
}

// validStackTail tells whether the kernel could have written tail.
func validStackTail(tail []byte) bool {
	ne := binary.NativeEndian
	return int32(ne.Uint32(tail[16:])) <= 0 && ne.Uint16(tail[20:]) <= 64 && tail[22]&^7 == 0
}

func withStack(e eventFields, s stackFields) []byte {
	raw := rawEvent(e)
	if e.vmaPath == "" {
		raw = raw[:eventSizeNoPath]
	}
	return append(raw, rawStack(s)...)
}

func TestDecodeStack(t *testing.T) {
	clock := ClockWithOffset(0)
	found := uint8(bpf.MremapVmaFlagVMA_FOUND)
	var words [32]uint64
	for i := range words {
		words[i] = 0x1000 + uint64(i)
	}
	ips := []uint64{0x7f0000001234, 0x555500001000, 0x555500002000}
	lr := uint64(0x555500003000)
	tests := []struct {
		name string
		raw  []byte
		want mremap.Stack
	}{
		{"no stack: the record as before", rawEvent(eventFields{comm: comm16("a")})[:eventSizeNoPath], mremap.Stack{}},
		{"no stack, with a path", rawEvent(eventFields{vmaFlags: found, vmaPath: "/bin/x"}), mremap.Stack{}},
		{"after where the path would start",
			withStack(eventFields{}, stackFields{startBoottime: 7, frames: 3, ips: ips, flags: uint8(bpf.MremapStackFlagSTACK_WORDS_READ), words: words}),
			mremap.Stack{Captured: true, StartTime: 7, Addresses: ips, Words: words[:]}},
		{"after the path",
			withStack(eventFields{vmaFlags: found, vmaPath: "/bin/x"}, stackFields{frames: 2, ips: ips, linkRegister: lr}),
			mremap.Stack{Captured: true, Addresses: ips[:2], LinkRegister: lr}},
		{"words not read are left out",
			withStack(eventFields{}, stackFields{frames: 1, ips: ips, words: words}),
			mremap.Stack{Captured: true, Addresses: ips[:1]}},
		{"cut short",
			withStack(eventFields{}, stackFields{frames: 64, ips: make([]uint64, 65), flags: uint8(bpf.MremapStackFlagSTACK_TRUNCATED)}),
			mremap.Stack{Captured: true, Addresses: make([]uint64, 64), Truncated: true}},
		{"no frame: the kernel's error",
			withStack(eventFields{}, stackFields{err: -14}),
			mremap.Stack{Captured: true, Err: -14}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := decodeEvent(tt.raw, clock)
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.Stack)
		})
	}
}

// TestDecodeStackCompat: a 32-bit caller's stack words are 4 bytes.
func TestDecodeStackCompat(t *testing.T) {
	var words [32]uint64
	b := unsafe.Slice((*byte)(unsafe.Pointer(&words)), 256)
	for i := 0; i < 64; i++ {
		binary.NativeEndian.PutUint32(b[4*i:], 0x08040000+uint32(i))
	}
	c, err := decodeEvent(withStack(eventFields{}, stackFields{frames: 1, ips: []uint64{0xf7f00000},
		flags: uint8(bpf.MremapStackFlagSTACK_COMPAT | bpf.MremapStackFlagSTACK_WORDS_READ), words: words}), ClockWithOffset(0))
	require.NoError(t, err)
	assert.True(t, c.Stack.Compat)
	require.Len(t, c.Stack.Words, 32)
	for i, w := range c.Stack.Words {
		assert.Equal(t, uint64(0x08040000+i), w, "word %d", i)
	}
}

func TestDecodeStackMalformed(t *testing.T) {
	for name, s := range map[string]stackFields{
		"more frames than the kernel keeps": {frames: 65},
		"an unknown flag":                   {flags: 8},
		"a positive error":                  {err: 1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := decodeEvent(withStack(eventFields{}, s), ClockWithOffset(0))
			assert.True(t, errors.Is(err, errMalformed), "err %v, want malformed", err)
		})
	}
}

func TestStripPAC(t *testing.T) {
	signed := uint64(0x002d_0000_aaaa_1234)
	want := signed
	if runtime.GOARCH == "arm64" {
		want = 0x0000_aaaa_1234
	}
	assert.Equal(t, want, stripPAC(signed))
}

func FuzzDecodeStack(f *testing.F) {
	f.Add(rawStack(stackFields{frames: 3, ips: []uint64{1, 2, 3}}))
	f.Add(rawStack(stackFields{frames: 64, ips: make([]uint64, 65), flags: 7}))
	f.Add(rawStack(stackFields{frames: 65}))
	f.Add(rawStack(stackFields{err: -14})[:100])
	// The tail after a record without a path.
	f.Fuzz(func(t *testing.T, tail []byte) {
		raw := append(rawEvent(eventFields{})[:eventSizeNoPath], tail...)
		c, err := decodeEvent(raw, ClockWithOffset(0))
		st, ok := stackTailOf(raw)
		switch {
		case !ok:
			require.NoError(t, err)
			assert.False(t, c.Stack.Captured)
		case !validStackTail(st):
			assert.True(t, errors.Is(err, errMalformed), "err %v, want malformed", err)
		default:
			require.NoError(t, err)
			frames := int(binary.NativeEndian.Uint16(st[20:]))
			assert.True(t, c.Stack.Captured)
			assert.Len(t, c.Stack.Addresses, frames)
			assert.True(t, len(c.Stack.Words) == 0 || len(c.Stack.Words) == 32)
		}
	})
}
