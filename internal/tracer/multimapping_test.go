//go:build linux

package tracer

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// kernelAtLeast tells whether the running kernel's release is major.minor
// or later.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("kernel release %q: %v", release, err)
	}
	return ma > major || ma == major && mi >= minor
}

// Since Linux 6.17 a move-only mremap (MREMAP_FIXED, old_size equal to
// new_size) moves every mapping in [old_address, old_address+old_size),
// each keeping its permissions; before, a range that ends past the first
// mapping fails with EFAULT. Either way the call's mapping is the one at
// old_address, the first.
func TestMoveAcrossTwoMappings(t *testing.T) {
	mremaptest.RequireBPF(t)
	const page = 4096
	multi := kernelAtLeast(t, 6, 17)
	for _, probe := range probesToTest(t) {
		t.Run(string(probe), func(t *testing.T) {
			tr := newTracer(t, Options{Probe: probe, Events: true, RingBufferSize: 1 << 20,
				Filter: Filter{PIDs: []uint32{uint32(os.Getpid())}}})
			src := mmapAnon(t, 2*page, unix.PROT_READ|unix.PROT_WRITE)
			// The second page read-only: two mappings, rw-p then r--p.
			if _, _, errno := unix.Syscall(unix.SYS_MPROTECT, uintptr(src+page), page, unix.PROT_READ); errno != 0 {
				t.Fatalf("mprotect: %v", errno)
			}
			dst := mmapAnon(t, 2*page, unix.PROT_READ)
			want := []string{"rw-p", "r--p"}
			for i, p := range want {
				if m, _ := mremaptest.MappingAt(src + uint64(i)*page); m == nil || m.Permissions != p {
					t.Fatalf("page %d of the source is %+v, want %s", i, m, p)
				}
			}

			runtime.LockOSThread()
			r, _, errno := unix.Syscall6(unix.SYS_MREMAP, uintptr(src), 2*page, 2*page,
				unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, uintptr(dst), 0)
			runtime.UnlockOSThread()
			ret := int64(r)
			if errno != 0 {
				ret = -int64(errno)
			}
			if multi {
				if ret != int64(dst) {
					t.Fatalf("mremap = %d, want 0x%x: Linux 6.17 moves both mappings", ret, dst)
				}
				for i, p := range want {
					if m, _ := mremaptest.MappingAt(dst + uint64(i)*page); m == nil || m.Permissions != p {
						t.Errorf("page %d moved to %+v, want %s", i, m, p)
					}
				}
			} else if errno != unix.EFAULT {
				t.Fatalf("mremap = %d (%v), want EFAULT before Linux 6.17", ret, errno)
			}

			c := readCalls(t, tr, 1)[0]
			if c.OldAddress != src || c.OldSize != 2*page || c.NewSize != 2*page || c.NewAddress != dst || c.Return != ret {
				t.Errorf("call %+v, made mremap(0x%x, %d, %d, fixed, 0x%x) = %d", c, src, 2*page, 2*page, dst, ret)
			}
			if got := c.Move.String(); got != "fixed" {
				t.Errorf("move %s, want fixed", got)
			}
			// The first mapping's: the one at old_address; and how many
			// the range spans, where the kernel can count them.
			wantVMA := mremap.VMA{Found: true, Permissions: "rw-p", Count: mremaptest.MappingsSpannedHere(string(probe), 2)}
			if c.VMA != wantVMA {
				t.Errorf("mapping %+v, want %+v (the first of the two)", c.VMA, wantVMA)
			}
			t.Logf("multi-mapping moves (Linux 6.17+): %v; the call: %s, mapping %+v", multi, c.Result(), c.VMA)
		})
	}
}

// mmapAnon maps n bytes of private anonymous memory, unmapped at the end of the test.
func mmapAnon(t *testing.T, n, prot int) uint64 {
	t.Helper()
	b, err := unix.Mmap(-1, 0, n, prot, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap %d bytes: %v", n, err)
	}
	addr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	t.Cleanup(func() {
		_, _, _ = unix.Syscall(unix.SYS_MUNMAP, uintptr(addr), uintptr(n), 0)
	})
	return addr
}
