//go:build linux

package tracer

import (
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// classifier runs the kernel program's own classification of a call
// (classify_call, a BPF_PROG_TYPE_SYSCALL program run with
// BPF_PROG_TEST_RUN), the one place the rules are written.
type classifier struct{ prog *ebpf.Program }

func newClassifier(t *testing.T) classifier {
	t.Helper()
	mremaptest.RequireBPF(t)
	spec, err := bpf.LoadMremap()
	require.NoError(t, err)
	o, err := loadObjects(spec, []string{bpf.MremapProgClassifyCall})
	require.NoError(t, err, "load classify_call")
	t.Cleanup(func() { o.Close() })
	return classifier{o.program(bpf.MremapProgClassifyCall)}
}

func (c classifier) classify(t *testing.T, oldAddress, oldSize, newSize, flags uint64, ret int64) bpf.MremapClassifyTest {
	t.Helper()
	in := bpf.MremapClassifyTest{Args: [5]uint64{oldAddress, oldSize, newSize, flags, 0}, Ret: ret}
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&in)), unsafe.Sizeof(in))
	out := make([]byte, len(buf))
	_, err := c.prog.Run(&ebpf.RunOptions{Context: buf, ContextOut: out})
	require.NoError(t, err)
	return *(*bpf.MremapClassifyTest)(unsafe.Pointer(&out[0]))
}

func TestClassifyMove(t *testing.T) {
	c := newClassifier(t)
	const old, other = 0x7f0000000000, 0x7f0000100000
	einval := -int64(unix.EINVAL)
	tests := []struct {
		name  string
		flags uint64
		ret   int64
		want  mremap.Move
	}{
		{"no flags, in place", 0, old, mremap.MoveNone},
		{"maymove, in place", mremap.FlagMayMove, old, mremap.MoveNone},
		{"maymove, moved", mremap.FlagMayMove, other, mremap.MoveMayMove},
		{"moved without maymove flag still counts", 0, other, mremap.MoveMayMove},
		{"maymove, failed", mremap.FlagMayMove, einval, mremap.MoveNone},
		{"fixed", mremap.FlagMayMove | mremap.FlagFixed, other, mremap.MoveFixed},
		{"fixed at the same address", mremap.FlagMayMove | mremap.FlagFixed, old, mremap.MoveFixed},
		{"fixed, failed", mremap.FlagFixed, einval, mremap.MoveFixed},
		{"dontunmap", mremap.FlagMayMove | mremap.FlagDontUnmap, other, mremap.MoveDontUnmap},
		{"dontunmap, failed", mremap.FlagMayMove | mremap.FlagDontUnmap, einval, mremap.MoveDontUnmap},
		{"fixed wins over dontunmap", mremap.FlagMayMove | mremap.FlagFixed | mremap.FlagDontUnmap, other, mremap.MoveFixed},
		{"fixed wins over dontunmap, failed", mremap.FlagFixed | mremap.FlagDontUnmap, einval, mremap.MoveFixed},
		// -4096 as an address is 0xfffffffffffff000, not the old address.
		{"an address in the top page moved", mremap.FlagMayMove, -4096, mremap.MoveMayMove},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.classify(t, old, 4096, 4096, tt.flags, tt.ret)
			assert.Equal(t, tt.want, mremap.Move(got.Move))
		})
	}
}

func TestClassifyResize(t *testing.T) {
	c := newClassifier(t)
	tests := []struct {
		oldSize, newSize uint64
		want             mremap.Resize
		delta            uint64
	}{
		{4096, 8192, mremap.ResizeGrow, 4096},
		{8192, 4096, mremap.ResizeShrink, 4096},
		{4096, 4096, mremap.ResizeNone, 0},
		{0, 0, mremap.ResizeNone, 0},
		{0, 1, mremap.ResizeGrow, 1},
		{^uint64(0), 0, mremap.ResizeShrink, ^uint64(0)},
	}
	for _, tt := range tests {
		// Resize compares the sizes whatever the result.
		for _, ret := range []int64{0x1000, -int64(unix.EINVAL)} {
			got := c.classify(t, 0x1000, tt.oldSize, tt.newSize, 0, ret)
			assert.Equal(t, tt.want, mremap.Resize(got.Resize), "%d -> %d, ret %d", tt.oldSize, tt.newSize, ret)
			assert.Equal(t, tt.delta, got.Delta, "%d -> %d", tt.oldSize, tt.newSize)
		}
	}
	assert.Equal(t, "grow", mremap.ResizeGrow.String())
	assert.Equal(t, "resize(9)", mremap.Resize(9).String())
}

func TestClassifyResult(t *testing.T) {
	c := newClassifier(t)
	tests := []struct {
		ret   int64
		ok    bool
		errno uint16
	}{
		{0x7f3a2c100000, true, 0},
		{1, true, 0},
		{0, true, 0},
		{-1, false, uint16(unix.EPERM)},
		{-int64(unix.EINVAL), false, uint16(unix.EINVAL)},
		{-int64(unix.ENOMEM), false, uint16(unix.ENOMEM)},
		{-4095, false, 4095},
		// Below -4095 the value is an address in the top page-aligned range.
		{-4096, true, 0},
		{-0x1000000, true, 0},
	}
	for _, tt := range tests {
		got := c.classify(t, 0x1000, 4096, 4096, 0, tt.ret)
		assert.Equal(t, tt.ok, got.Ok == 1, "ok of %d", tt.ret)
		assert.Equal(t, tt.errno, got.Err, "errno of %d", tt.ret)
	}
}
