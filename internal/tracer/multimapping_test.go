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
	multi := kernelAtLeast(t, 6, 17)
	for _, probe := range probesToTest(t) {
		t.Run(string(probe), func(t *testing.T) {
			tr := newTracer(t, Options{Probe: probe, Events: true, RingBufferSize: 1 << 20,
				Filter: Filter{PIDs: []uint32{uint32(os.Getpid())}}})
			// Two pages to move, a page between, two to move them to.
			res := reserve(t, 5)
			src := res.mapAt(t, 0, 2, unix.PROT_READ|unix.PROT_WRITE)
			// The second page read-only: two mappings, rw-p then r--p.
			if _, _, errno := unix.Syscall(unix.SYS_MPROTECT, uintptr(src+page), page, unix.PROT_READ); errno != 0 {
				t.Fatalf("mprotect: %v", errno)
			}
			dst := res.mapAt(t, 3, 2, unix.PROT_READ)
			want := []string{"rw-p", "r--p"}
			for i, p := range want {
				if m, _ := mremaptest.MappingAt(src + uint64(i)*page); m == nil || m.Permissions != p {
					t.Fatalf("page %d of the source is %+v, want %s", i, m, p)
				}
			}

			runtime.LockOSThread()
			r, _, errno := unix.Syscall6(unix.SYS_MREMAP, uintptr(src), 2*page, 2*page,
				unix.MREMAP_MAYMOVE|unix.MREMAP_FIXED, uintptr(dst), 0)
			ret := int64(r)
			if errno != 0 {
				ret = -int64(errno)
			}
			// The move unmapped the source; the failed call, the
			// destination (the kernel unmaps it before it checks the
			// source).
			if ret == int64(dst) {
				res.reclaim(0, 2)
			} else {
				res.reclaim(3, 2)
			}
			runtime.UnlockOSThread()
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

// reservation is memory the test owns, page by page. A move with
// MREMAP_FIXED unmaps pages of it (the source once moved; the destination
// even when the call fails), where the Go runtime may map memory of its
// own before the test ends: reclaim maps them again at once, and the
// cleanup unmaps only the pages the test still owns, never the runtime's.
type reservation struct {
	addr  uint64
	owned []bool
}

const page = 4096

// reserve maps pages of inaccessible memory, unmapped at the end of the
// test.
func reserve(t *testing.T, pages int) *reservation {
	t.Helper()
	b, err := unix.Mmap(-1, 0, pages*page, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatalf("mmap %d pages: %v", pages, err)
	}
	r := &reservation{addr: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))), owned: make([]bool, pages)}
	for i := range r.owned {
		r.owned[i] = true
	}
	t.Cleanup(func() {
		for i, own := range r.owned {
			if own {
				_, _, _ = unix.Syscall(unix.SYS_MUNMAP, uintptr(r.addr)+uintptr(i*page), page, 0)
			}
		}
	})
	return r
}

// mapAt maps pages of the reservation from page first with prot, private
// and anonymous, and returns their address.
func (r *reservation) mapAt(t *testing.T, first, pages, prot int) uint64 {
	t.Helper()
	addr := r.addr + uint64(first*page)
	got, _, errno := unix.Syscall6(unix.SYS_MMAP, uintptr(addr), uintptr(pages*page), uintptr(prot),
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED, ^uintptr(0), 0)
	if errno != 0 || uint64(got) != addr {
		t.Fatalf("mmap %d pages at 0x%x: 0x%x, %v", pages, addr, got, errno)
	}
	return addr
}

// reclaim maps again each page of the reservation from first the kernel
// unmapped, without replacing anything (MAP_FIXED_NOREPLACE): a page
// mapped meanwhile by someone else is no longer the test's.
func (r *reservation) reclaim(first, pages int) {
	for i := first; i < first+pages; i++ {
		addr := uintptr(r.addr) + uintptr(i*page)
		got, _, errno := unix.Syscall6(unix.SYS_MMAP, addr, page, unix.PROT_NONE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uintptr(0), 0)
		switch {
		case errno != 0:
			r.owned[i] = false
		case got != addr: // a kernel before 4.17 took the address as a hint
			_, _, _ = unix.Syscall(unix.SYS_MUNMAP, got, page, 0)
			r.owned[i] = false
		}
	}
}
