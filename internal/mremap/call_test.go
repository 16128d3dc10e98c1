//go:build linux

package mremap

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestFlagNames(t *testing.T) {
	tests := []struct {
		flags uint64
		want  string
	}{
		{0, ""},
		{FlagMayMove, "MREMAP_MAYMOVE"},
		{FlagFixed, "MREMAP_FIXED"},
		{FlagDontUnmap, "MREMAP_DONTUNMAP"},
		{FlagMayMove | FlagFixed, "MREMAP_MAYMOVE|MREMAP_FIXED"},
		{FlagMayMove | FlagDontUnmap, "MREMAP_MAYMOVE|MREMAP_DONTUNMAP"},
		{FlagFixed | FlagDontUnmap, "MREMAP_FIXED|MREMAP_DONTUNMAP"},
		{FlagMayMove | FlagFixed | FlagDontUnmap, "MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP"},
		// Unknown bits are one hex number after the known names.
		{0x8, "0x8"},
		{0x10 | FlagMayMove, "MREMAP_MAYMOVE|0x10"},
		{0x18 | FlagFixed, "MREMAP_FIXED|0x18"},
		{0xfffffffffffffff8 | 7, "MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP|0xfffffffffffffff8"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, FlagNames(tt.flags), "FlagNames(%#x)", tt.flags)
	}
}

func TestErrnoName(t *testing.T) {
	tests := []struct {
		errno uint16
		want  string
	}{
		{uint16(unix.EINVAL), "EINVAL"},
		{uint16(unix.EFAULT), "EFAULT"},
		{uint16(unix.ENOMEM), "ENOMEM"},
		{uint16(unix.EAGAIN), "EAGAIN"},
		{uint16(unix.EPERM), "EPERM"},
		{uint16(unix.EINTR), "EINTR"},
		{4000, "E4000"},
		{4095, "E4095"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ErrnoName(tt.errno), "ErrnoName(%d)", tt.errno)
	}
}

func TestErrnoText(t *testing.T) {
	tests := []struct {
		errno uint16
		want  string
	}{
		{uint16(unix.EINVAL), "Invalid argument"},
		{uint16(unix.EFAULT), "Bad address"},
		{uint16(unix.ENOMEM), "Cannot allocate memory"},
		{uint16(unix.EAGAIN), "Resource temporarily unavailable"},
		{uint16(unix.EPERM), "Operation not permitted"},
		// As the C library's strerror says it.
		{4000, "Unknown error 4000"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, ErrnoText(tt.errno), "ErrnoText(%d)", tt.errno)
	}
}

// The tables of names and texts say what the functions they cache say, for
// every errno the kernel can return.
func TestErrnoTables(t *testing.T) {
	for errno := range uint16(4096) {
		require.Equal(t, errnoName(errno), ErrnoName(errno), "ErrnoName(%d)", errno)
		require.Equal(t, errnoText(errno), ErrnoText(errno), "ErrnoText(%d)", errno)
	}
	assert.Equal(t, "EHWPOISON", ErrnoName(uint16(unix.EHWPOISON)))
	assert.Equal(t, "E200", ErrnoName(200))
	assert.Equal(t, "Unknown error 200", ErrnoText(200))
}

func TestMoveString(t *testing.T) {
	for m, want := range map[Move]string{
		MoveNone: "none", MoveMayMove: "maymove", MoveFixed: "fixed", MoveDontUnmap: "dontunmap", Move(7): "move(7)",
	} {
		assert.Equal(t, want, m.String())
	}
}

func TestCallOK(t *testing.T) {
	tests := []struct {
		errno uint16
		ok    bool
		res   string
	}{
		{0, true, "ok"},
		{uint16(unix.EPERM), false, "EPERM"},
		{uint16(unix.EINVAL), false, "EINVAL"},
		{uint16(unix.ENOMEM), false, "ENOMEM"},
		{4095, false, "E4095"},
	}
	for _, tt := range tests {
		c := Call{Return: -int64(tt.errno), Errno: tt.errno}
		assert.Equal(t, tt.ok, c.OK(), "OK() with errno %d", tt.errno)
		assert.Equal(t, tt.res, c.Result(), "Result() with errno %d", tt.errno)
		assert.Equal(t, tt.res, Result(tt.errno))
	}
	c := Call{Return: -4096}
	assert.Equal(t, uint64(0xfffffffffffff000), c.ResultAddress(), "an address in the top page is an address")
}
func TestCallSizeDelta(t *testing.T) {
	tests := []struct {
		oldSize, newSize uint64
		want             int64
	}{
		{4096, 8192, 4096},
		{8192, 4096, -4096},
		{4096, 4096, 0},
		{0, 1 << 40, 1 << 40},
		{1 << 40, 0, -(1 << 40)},
	}
	for _, tt := range tests {
		c := Call{OldSize: tt.oldSize, NewSize: tt.newSize}
		assert.Equal(t, tt.want, c.SizeDelta(), "SizeDelta of %d -> %d", tt.oldSize, tt.newSize)
	}
}

func TestCallString(t *testing.T) {
	tests := []struct {
		name string
		call Call
		want string
	}{
		{
			name: "SPEC maymove",
			call: Call{OldAddress: 0x7f3a2c000000, OldSize: 4096, NewSize: 8192, Flags: FlagMayMove, Return: 0x7f3a2c100000},
			want: "mremap(0x7f3a2c000000, 4096, 8192, MREMAP_MAYMOVE) = 0x7f3a2c100000",
		},
		{
			name: "SPEC fixed",
			call: Call{
				OldAddress: 0x7f3a2c000000, OldSize: 4096, NewSize: 4096, Flags: FlagMayMove | FlagFixed,
				NewAddress: 0x7f3a2d000000, Return: 0x7f3a2d000000,
			},
			want: "mremap(0x7f3a2c000000, 4096, 4096, MREMAP_MAYMOVE|MREMAP_FIXED, 0x7f3a2d000000) = 0x7f3a2d000000",
		},
		{
			name: "SPEC einval",
			call: Call{OldAddress: 0x7f3a2c000001, OldSize: 4096, NewSize: 8192, Flags: FlagMayMove, Return: -int64(unix.EINVAL), Errno: uint16(unix.EINVAL)},
			want: "mremap(0x7f3a2c000001, 4096, 8192, MREMAP_MAYMOVE) = -1 EINVAL (Invalid argument)",
		},
		{
			name: "flags 0",
			call: Call{OldAddress: 0x7f0000000000, OldSize: 8192, NewSize: 4096, Return: 0x7f0000000000},
			want: "mremap(0x7f0000000000, 8192, 4096, 0) = 0x7f0000000000",
		},
		{
			name: "flags 0, enomem",
			call: Call{OldAddress: 0x7f0000000000, OldSize: 4096, NewSize: 8192, Return: -int64(unix.ENOMEM), Errno: uint16(unix.ENOMEM)},
			want: "mremap(0x7f0000000000, 4096, 8192, 0) = -1 ENOMEM (Cannot allocate memory)",
		},
		{
			name: "fixed without maymove: no fifth argument",
			call: Call{OldAddress: 0x7f0000000000, OldSize: 4096, NewSize: 4096, Flags: FlagFixed, NewAddress: 0x7f0000200000, Return: -int64(unix.EINVAL), Errno: uint16(unix.EINVAL)},
			want: "mremap(0x7f0000000000, 4096, 4096, MREMAP_FIXED) = -1 EINVAL (Invalid argument)",
		},
		{
			name: "dontunmap: no fifth argument",
			call: Call{
				OldAddress: 0x7f0000000000, OldSize: 4096, NewSize: 4096, Flags: FlagMayMove | FlagDontUnmap,
				NewAddress: 0x7f0000200000, Return: 0x7f0000300000,
			},
			want: "mremap(0x7f0000000000, 4096, 4096, MREMAP_MAYMOVE|MREMAP_DONTUNMAP) = 0x7f0000300000",
		},
		{
			name: "maymove|fixed|dontunmap: fifth argument",
			call: Call{
				OldAddress: 0x7f0000000000, OldSize: 4096, NewSize: 4096, Flags: FlagMayMove | FlagFixed | FlagDontUnmap,
				NewAddress: 0x7f0000200000, Return: 0x7f0000200000,
			},
			want: "mremap(0x7f0000000000, 4096, 4096, MREMAP_MAYMOVE|MREMAP_FIXED|MREMAP_DONTUNMAP, 0x7f0000200000) = 0x7f0000200000",
		},
		{
			name: "address 0 is NULL",
			call: Call{OldAddress: 0, OldSize: 4096, NewSize: 8192, Flags: FlagMayMove | FlagFixed, NewAddress: 0, Return: -int64(unix.EINVAL), Errno: uint16(unix.EINVAL)},
			want: "mremap(NULL, 4096, 8192, MREMAP_MAYMOVE|MREMAP_FIXED, NULL) = -1 EINVAL (Invalid argument)",
		},
		{
			name: "unknown flag bits",
			call: Call{OldAddress: 0x1000, OldSize: 4096, NewSize: 4096, Flags: 0x10 | FlagMayMove, Return: -int64(unix.EINVAL), Errno: uint16(unix.EINVAL)},
			want: "mremap(0x1000, 4096, 4096, MREMAP_MAYMOVE|0x10) = -1 EINVAL (Invalid argument)",
		},
		{
			name: "efault",
			call: Call{OldAddress: 0x1000, OldSize: 4096, NewSize: 8192, Flags: FlagMayMove, Return: -int64(unix.EFAULT), Errno: uint16(unix.EFAULT)},
			want: "mremap(0x1000, 4096, 8192, MREMAP_MAYMOVE) = -1 EFAULT (Bad address)",
		},
		{
			name: "unnamed errno",
			call: Call{OldAddress: 0x1000, OldSize: 4096, NewSize: 8192, Return: -4000, Errno: 4000},
			want: "mremap(0x1000, 4096, 8192, 0) = -1 E4000 (Unknown error 4000)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.call.String())
		})
	}
}

func TestCallRedacted(t *testing.T) {
	tests := []struct {
		c    Call
		want string
	}{
		{Call{OldAddress: 0x7f3a2c000000, OldSize: 4096, NewSize: 8192, Flags: FlagMayMove, Return: 0x7f3a2c100000},
			"mremap(0x?, 4096, 8192, MREMAP_MAYMOVE) = 0x?"},
		{Call{OldAddress: 0x7f3a2c000000, OldSize: 4096, NewSize: 4096, Flags: FlagMayMove | FlagFixed, NewAddress: 0x7f3a2d000000, Return: 0x7f3a2d000000},
			"mremap(0x?, 4096, 4096, MREMAP_MAYMOVE|MREMAP_FIXED, 0x?) = 0x?"},
		// Errors are kept as they are.
		{Call{OldAddress: 0x7f3a2c000001, OldSize: 4096, NewSize: 8192, Flags: FlagMayMove, Return: -22, Errno: 22},
			"mremap(0x?, 4096, 8192, MREMAP_MAYMOVE) = -1 EINVAL (Invalid argument)"},
		// NULL is an address too.
		{Call{OldAddress: 0, OldSize: 8192, NewSize: 4096, Return: -14, Errno: 14},
			"mremap(0x?, 8192, 4096, 0) = -1 EFAULT (Bad address)"},
		// Unknown flag bits are flags, not addresses.
		{Call{OldAddress: 0x1000, OldSize: 4096, NewSize: 4096, Flags: 0x10, Return: -22, Errno: 22},
			"mremap(0x?, 4096, 4096, 0x10) = -1 EINVAL (Invalid argument)"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.c.Redacted())
	}
}

func FuzzCallString(f *testing.F) {
	f.Add(uint64(0x7f3a2c000000), uint64(4096), uint64(8192), uint64(1), uint64(0), int64(0x7f3a2c100000))
	f.Add(uint64(0x7f3a2c000000), uint64(4096), uint64(4096), uint64(3), uint64(0x7f3a2d000000), int64(0x7f3a2d000000))
	f.Add(uint64(0x7f3a2c000001), uint64(4096), uint64(8192), uint64(1), uint64(0), int64(-22))
	f.Add(uint64(0), uint64(0), uint64(0), uint64(0), uint64(0), int64(0))
	f.Add(^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0), int64(-4095))
	f.Add(uint64(1), uint64(2), uint64(3), uint64(0xf8), uint64(4), int64(-1<<63))
	f.Fuzz(func(t *testing.T, oldAddress, oldSize, newSize, flags, newAddress uint64, ret int64) {
		c := Call{OldAddress: oldAddress, OldSize: oldSize, NewSize: newSize, Flags: flags, NewAddress: newAddress, Return: ret}
		if ret < 0 && ret >= -4095 {
			// A failure, as the kernel program classifies it.
			c.Errno = uint16(-ret)
		}
		s := c.String()
		if !strings.HasPrefix(s, "mremap(") {
			t.Fatalf("%q does not start with mremap(", s)
		}
		if !strings.Contains(s, ") = ") {
			t.Fatalf("%q has no ) = ", s)
		}
		if !c.OK() && !strings.HasSuffix(s, ") = -1 "+ErrnoName(c.Errno)+" ("+ErrnoText(c.Errno)+")") {
			t.Fatalf("%q of a failed call does not end in the errno", s)
		}

		// The redacted body reveals no address: it is the same whatever
		// the addresses, and it is the body with each address as 0x?.
		r := c.Redacted()
		other := c
		other.OldAddress, other.NewAddress = ^oldAddress, ^newAddress
		if c.OK() {
			other.Return = 0x1000
			if ret == 0x1000 {
				other.Return = 0x2000
			}
		}
		if ro := other.Redacted(); ro != r {
			t.Fatalf("redacted bodies differ with the addresses: %q and %q", r, ro)
		}
		addrs := 1
		if c.Flags&(FlagMayMove|FlagFixed) == FlagMayMove|FlagFixed {
			addrs++
		}
		if c.OK() {
			addrs++
		}
		if n := strings.Count(r, "0x?"); n != addrs {
			t.Fatalf("%q has %d 0x?, want %d", r, n, addrs)
		}
		if len(r) > len(s)+3*addrs {
			t.Fatalf("redacted %q is longer than %q allows", r, s)
		}
	})
}
