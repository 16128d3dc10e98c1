// Package mremaptest makes known mremap(2) calls for the real-kernel tests:
// cmd/mremap-helper runs MakeCalls in its own process (so its comm is
// known), and the tests compare what the tracer, the receiver and the
// collector report against the calls it printed and the expectations here.
package mremaptest

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Comm is the helper's process name as the kernel keeps it.
const Comm = "mremap-helper"

// Made is one call the helper made, with the kernel's raw return value.
type Made struct {
	Name       string `json:"name"`
	PID        uint32 `json:"pid"`
	TID        uint32 `json:"tid"`
	OldAddress uint64 `json:"old_address"`
	OldSize    uint64 `json:"old_size"`
	NewSize    uint64 `json:"new_size"`
	Flags      uint64 `json:"flags"`
	NewAddress uint64 `json:"new_address"`
	Return     int64  `json:"return"`
}

// Expectation is what the tests expect of a call, written out by hand.
type Expectation struct {
	FlagNames string
	Resize    string
	Move      string
	Result    string
	SizeDelta int64
	// Moved: the result address differs from the old address (maymove,
	// dontunmap and fixed moves).
	Moved bool
}

const page = 4096

// Expected holds the expectations for each call MakeCalls makes, in order.
var Expected = []struct {
	Name string
	Expectation
}{
	{"shrink", Expectation{"", "shrink", "none", "ok", -page, false}},
	{"grow_in_place", Expectation{"", "grow", "none", "ok", page, false}},
	{"maymove", Expectation{"MREMAP_MAYMOVE", "grow", "maymove", "ok", page, true}},
	{"fixed", Expectation{"MREMAP_MAYMOVE|MREMAP_FIXED", "none", "fixed", "ok", 0, true}},
	{"dontunmap", Expectation{"MREMAP_MAYMOVE|MREMAP_DONTUNMAP", "none", "dontunmap", "ok", 0, true}},
	{"einval_unaligned", Expectation{"MREMAP_MAYMOVE", "grow", "none", "EINVAL", page, false}},
	{"einval_fixed_without_maymove", Expectation{"MREMAP_FIXED", "none", "fixed", "EINVAL", 0, false}},
	{"efault_unmapped", Expectation{"MREMAP_MAYMOVE", "grow", "none", "EFAULT", page, false}},
	{"enomem_blocked", Expectation{"", "grow", "none", "ENOMEM", page, false}},
}

const (
	mayMove   = 1
	fixed     = 2
	dontUnmap = 4
)

// MakeCalls makes the calls of Expected, in order, on one thread, and
// returns them. It must run in a process of its own.
func MakeCalls() ([]Made, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	pid, tid := uint32(os.Getpid()), uint32(unix.Gettid())
	var made []Made
	call := func(name string, addr, oldSize, newSize, flags, newAddr uint64) uint64 {
		r, _, errno := unix.Syscall6(unix.SYS_MREMAP, uintptr(addr), uintptr(oldSize), uintptr(newSize),
			uintptr(flags), uintptr(newAddr), 0)
		ret := int64(r)
		if errno != 0 {
			ret = -int64(errno)
		}
		made = append(made, Made{name, pid, tid, addr, oldSize, newSize, flags, newAddr, ret})
		return uint64(r)
	}
	mmap := func(pages int) (uint64, error) {
		b, err := unix.Mmap(-1, 0, pages*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return 0, fmt.Errorf("mmap %d pages: %w", pages, err)
		}
		return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))), nil
	}

	// shrink then grow back in place: the page the shrink frees is the one
	// the growth takes, so nothing else can be mapped in between.
	a, err := mmap(2)
	if err != nil {
		return nil, err
	}
	call("shrink", a, 2*page, page, 0, 0)
	call("grow_in_place", a, page, 2*page, 0, 0)

	// The page after b is mapped (the second page of the same mapping), so
	// growing the first page must move it.
	b, err := mmap(2)
	if err != nil {
		return nil, err
	}
	call("maymove", b, page, 2*page, mayMove, 0)

	c, err := mmap(1)
	if err != nil {
		return nil, err
	}
	target, err := mmap(1)
	if err != nil {
		return nil, err
	}
	call("fixed", c, page, page, mayMove|fixed, target)

	d, err := mmap(1)
	if err != nil {
		return nil, err
	}
	call("dontunmap", d, page, page, mayMove|dontUnmap, 0)

	call("einval_unaligned", target+1, page, 2*page, mayMove, 0)
	call("einval_fixed_without_maymove", target, page, page, fixed, target+16*page)

	u, err := mmap(1)
	if err != nil {
		return nil, err
	}
	if _, _, errno := unix.Syscall(unix.SYS_MUNMAP, uintptr(u), page, 0); errno != 0 {
		return nil, fmt.Errorf("munmap: %w", errno)
	}
	call("efault_unmapped", u, page, 2*page, mayMove, 0)

	e, err := mmap(2)
	if err != nil {
		return nil, err
	}
	call("enomem_blocked", e, page, 2*page, 0, 0)

	for i, m := range made {
		if m.Name != Expected[i].Name {
			return nil, fmt.Errorf("call %d is %s, Expected lists %s", i, m.Name, Expected[i].Name)
		}
		if wantOK := Expected[i].Result == "ok"; wantOK != (m.Return >= 0) {
			return made, fmt.Errorf("call %s returned %d, expected %s", m.Name, m.Return, Expected[i].Result)
		}
	}
	return made, nil
}
