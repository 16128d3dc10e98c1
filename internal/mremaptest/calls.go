//go:build linux

// Package mremaptest makes known mremap(2) calls for the real-kernel tests:
// cmd/mremap-helper runs MakeCalls in its own process (so its comm is
// known), and the tests compare what the tracer, the receiver and the
// collector report against the calls it printed and the expectations here.
package mremaptest

import (
	"fmt"
	"os"
	"path/filepath"
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
	// Maps is what /proc/self/maps showed, just before the call, of the
	// mapping that contained OldAddress; nil if none did.
	Maps *Mapping `json:"maps,omitempty"`
}

// Mapping is a line of /proc/PID/maps: its permissions and path.
type Mapping struct {
	Permissions string `json:"permissions"`
	Path        string `json:"path"`
	// Count is how many mappings the call's range spans, this one the first.
	Count int `json:"count"`
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
	// VMAPermissions of the mapping at the old address, as
	// /proc/PID/maps shows them; "" when there is none (EFAULT).
	VMAPermissions string
	// VMAPath is the mapping's path: "" (anonymous memory), "[heap]", or
	// TempFile or Executable, which stand for the helper's paths.
	VMAPath string
	// Signals the call raises, "|"-joined, where the kernel can raise
	// them (RaisedHere).
	Signals string
}

// Stand-ins in Expectation.VMAPath for paths known only when the helper
// runs: the temporary file it maps, and its own executable.
const (
	TempFile   = "<temporary file>"
	Executable = "<executable>"
)

const page = 4096

// Expected holds the expectations for each call MakeCalls makes, in order.
var Expected = []struct {
	Name string
	Expectation
}{
	{"shrink", Expectation{"", "shrink", "none", "ok", -page, false, "rw-p", "", ""}},
	{"grow_in_place", Expectation{"", "grow", "none", "ok", page, false, "rw-p", "", ""}},
	{"maymove", Expectation{"MREMAP_MAYMOVE", "grow", "maymove", "ok", page, true, "rw-p", "", ""}},
	{"fixed", Expectation{"MREMAP_MAYMOVE|MREMAP_FIXED", "none", "fixed", "ok", 0, true, "rw-p", "", "fixed_replace"}},
	{"dontunmap", Expectation{"MREMAP_MAYMOVE|MREMAP_DONTUNMAP", "none", "dontunmap", "ok", 0, true, "rw-p", "", "dontunmap"}},
	{"einval_unaligned", Expectation{"MREMAP_MAYMOVE", "grow", "none", "EINVAL", page, false, "rw-p", "", ""}},
	{"einval_fixed_without_maymove", Expectation{"MREMAP_FIXED", "none", "fixed", "EINVAL", 0, false, "rw-p", "", ""}},
	// A flag bit no kernel knows: EINVAL, and the decoder names it in hex.
	{"einval_unknown_flag", Expectation{"MREMAP_MAYMOVE|0x100000", "none", "none", "EINVAL", 0, false, "rw-p", "", ""}},
	{"efault_unmapped", Expectation{"MREMAP_MAYMOVE", "grow", "none", "EFAULT", page, false, "", "", ""}},
	{"enomem_blocked", Expectation{"", "grow", "none", "ENOMEM", page, false, "rw-p", "", ""}},
	// A shared read-only mapping of a file in /dev/shm, a mount of its own.
	{"file_shared_readonly", Expectation{"", "shrink", "none", "ok", -page, false, "r--s", TempFile, ""}},
	// The heap: memory the helper adds with brk(2).
	{"heap", Expectation{"", "shrink", "none", "ok", -page, false, "rw-p", "[heap]", ""}},
	// An executable mapping of the helper's own executable.
	{"exec_file", Expectation{"", "shrink", "none", "ok", -page, false, "r-xp", Executable, ""}},
	// The vDSO cannot grow (VM_DONTEXPAND): EFAULT, yet a mapping is there.
	{"vdso_dontexpand", Expectation{"", "grow", "none", "EFAULT", page, false, "r-xp", "[vdso]", ""}},
	// An unaligned address in the main thread's stack: EINVAL.
	{"stack_unaligned", Expectation{"", "none", "none", "EINVAL", 0, false, "rw-p", "[stack]", ""}},
}

const (
	mayMove   = 1
	fixed     = 2
	dontUnmap = 4
	// unknownFlag is a bit mremap(2) does not define: the kernel refuses
	// the call with EINVAL before it looks at the mapping.
	unknownFlag = 0x100000
)

// MakeCalls makes the calls of Expected, in order, on one thread, and
// returns them. It must run in a process of its own.
func MakeCalls() ([]Made, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c := &caller{pid: uint32(os.Getpid()), tid: uint32(unix.Gettid())}
	defer c.close()
	for _, calls := range []func(*caller) error{anonymousCalls, failingCalls, mappingCalls} {
		if err := calls(c); err != nil {
			return nil, err
		}
	}
	return c.made, c.check()
}

// anonymousCalls resize and move anonymous memory.
func anonymousCalls(c *caller) error {
	// shrink then grow back in place: the page the shrink frees is the one
	// the growth takes, so nothing else can be mapped in between.
	a, err := c.mmap(2)
	if err != nil {
		return err
	}
	grown := c.mappingOver(a, page)
	c.call("shrink", a, 2*page, page, 0, 0)
	c.premapped, c.usePremapped = grown, true
	c.call("grow_in_place", a, page, 2*page, 0, 0)

	// The page after b is mapped (the second page of the same mapping), so
	// growing the first page must move it.
	b, err := c.mmap(2)
	if err != nil {
		return err
	}
	c.call("maymove", b, page, 2*page, mayMove, 0)

	d, err := c.mmap(1)
	if err != nil {
		return err
	}
	target, err := c.mmap(1)
	if err != nil {
		return err
	}
	c.call("fixed", d, page, page, mayMove|fixed, target)

	e, err := c.mmap(1)
	if err != nil {
		return err
	}
	c.call("dontunmap", e, page, page, mayMove|dontUnmap, 0)
	return nil
}

// failingCalls fail, each with its own errno.
func failingCalls(c *caller) error {
	target, err := c.mmap(1)
	if err != nil {
		return err
	}
	c.call("einval_unaligned", target+1, page, 2*page, mayMove, 0)
	c.call("einval_fixed_without_maymove", target, page, page, fixed, target+16*page)
	c.call("einval_unknown_flag", target, page, page, mayMove|unknownFlag, 0)

	// A page below vm.mmap_min_addr (64 KiB on x86-64, 32 KiB on arm64)
	// is never mapped. A page just unmapped would not do: another thread
	// of the Go runtime may map it again before the call.
	const unmapped = page
	c.call("efault_unmapped", unmapped, page, 2*page, mayMove, 0)

	e, err := c.mmap(2)
	if err != nil {
		return err
	}
	c.call("enomem_blocked", e, page, 2*page, 0, 0)
	return nil
}

// mappingCalls resize mappings of each kind /proc/PID/maps names.
func mappingCalls(c *caller) error {
	tempFile, err := mapTempFile()
	if err != nil {
		return err
	}
	c.tempFile = tempFile.path
	c.call("file_shared_readonly", tempFile.addr, 2*page, page, 0, 0)

	heap, err := growHeap(2 * page)
	if err != nil {
		return err
	}
	c.call("heap", heap, 2*page, page, 0, 0)

	if c.exe, err = os.Executable(); err != nil {
		return fmt.Errorf("find the executable: %w", err)
	}
	x, err := mapFile(c.exe, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	c.call("exec_file", x, 2*page, page, 0, 0)

	vdso, err := mappingNamed("[vdso]")
	if err != nil {
		return err
	}
	c.call("vdso_dontexpand", vdso, page, 2*page, 0, 0)

	stack, err := mappingNamed("[stack]")
	if err != nil {
		return err
	}
	c.call("stack_unaligned", stack+1, page, page, 0, 0)
	return nil
}

// expectedMapping is what /proc/self/maps must show for e.
func expectedMapping(e Expectation, tempFile, exe string) *Mapping {
	if e.VMAPermissions == "" {
		return nil
	}
	path := e.VMAPath
	switch path {
	case TempFile:
		path = tempFile
	case Executable:
		path = exe
	}
	return &Mapping{Permissions: e.VMAPermissions, Path: path}
}

type mappedFile struct {
	path string
	addr uint64
}

// MapDirEnv names the directory where the helper makes the file it maps
// (file_shared_readonly); TestVMAPathCrossesMount mounts a tmpfs there, so
// that the path the kernel builds always crosses a mount point.
const MapDirEnv = "MREMAP_HELPER_MAP_DIR"

// mapTempFile maps a new 2-page file, shared and read-only, in $MapDirEnv,
// else in /dev/shm (a tmpfs mounted apart from /, so that its path crosses
// a mount point), else in the temporary directory.
func mapTempFile() (mappedFile, error) {
	dir := os.Getenv(MapDirEnv)
	if dir == "" {
		dir = "/dev/shm"
		if _, err := os.Stat(dir); err != nil {
			dir = os.TempDir()
		}
	}
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	f, err := os.CreateTemp(dir, "mremap-helper-*.data")
	if err != nil {
		return mappedFile{}, fmt.Errorf("create the file to map: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(2 * page); err != nil {
		os.Remove(f.Name())
		return mappedFile{}, fmt.Errorf("size %s: %w", f.Name(), err)
	}
	addr, err := mapFile(f.Name(), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		os.Remove(f.Name())
		return mappedFile{}, err
	}
	return mappedFile{f.Name(), addr}, nil
}

// mapFile maps the first 2 pages of a file.
func mapFile(path string, prot, flags int) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open the file to map: %w", err)
	}
	defer f.Close()
	b, err := unix.Mmap(int(f.Fd()), 0, 2*page, prot, flags)
	if err != nil {
		return 0, fmt.Errorf("mmap %s: %w", path, err)
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))), nil
}

// growHeap moves the program break up by n bytes (Go itself never uses
// brk(2), so the heap starts empty) and returns the start of what it added.
func growHeap(n uint64) (uint64, error) {
	cur, _, _ := unix.Syscall(unix.SYS_BRK, 0, 0, 0)
	got, _, _ := unix.Syscall(unix.SYS_BRK, cur+uintptr(n), 0, 0)
	if got != cur+uintptr(n) {
		return 0, fmt.Errorf("brk(0x%x) = 0x%x: the heap did not grow", cur+uintptr(n), got)
	}
	return uint64(cur), nil
}
