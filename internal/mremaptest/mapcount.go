//go:build linux

package mremaptest

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ExpectedMapCountLimit is the call MakeMapCountLimitCall makes.
var ExpectedMapCountLimit = []struct {
	Name string
	Expectation
}{
	// The middle page of a 3-page mapping unmapped by a shrink: the split
	// needs one more mapping than vm.max_map_count allows.
	{"map_count_limit", Expectation{"", "shrink", "none", "ENOMEM", -page, false, "rw-p", "", "map_count_limit"}},
}

// MakeMapCountLimitCall maps one page after another until the process has
// as many mappings as vm.max_map_count allows, makes the call, and unmaps
// them again. Nothing in between allocates: the Go runtime could not map
// memory for itself.
func MakeMapCountLimitCall() ([]Made, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	limit, err := MaxMapCount()
	if err != nil {
		return nil, err
	}
	c := &caller{pid: uint32(os.Getpid()), tid: uint32(unix.Gettid())}
	a, err := c.mmap(3)
	if err != nil {
		return nil, err
	}
	c.premapped, c.usePremapped = c.mappingOver(a, 2*page), true
	c.made = make([]Made, 0, 1)
	if err := atMapCountLimit(limit, func() { c.call("map_count_limit", a, 2*page, page, 0, 0) }); err != nil {
		return nil, err
	}
	return c.made, c.checkAgainst(ExpectedMapCountLimit, func(string) bool { return true })
}

// atMapCountLimit runs call with the process at vm.max_map_count mappings
// (limit): one page after another is mapped until the kernel refuses, and
// unmapped again after call.
func atMapCountLimit(limit int, call func()) error {
	filler := make([]uintptr, 0, limit+1)
	defer func() {
		for _, f := range filler {
			unix.RawSyscall(unix.SYS_MUNMAP, f, page, 0)
		}
	}()
	// Alternate protections, so that the kernel cannot merge neighbors.
	prots := [2]uintptr{unix.PROT_READ, unix.PROT_READ | unix.PROT_WRITE}
	for len(filler) < cap(filler) {
		r, _, errno := unix.RawSyscall6(unix.SYS_MMAP, 0, page, prots[len(filler)%2], unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uintptr(0), 0)
		if errno == unix.ENOMEM {
			break
		}
		if errno != 0 {
			return fmt.Errorf("mmap filler %d: %w", len(filler), errno)
		}
		filler = append(filler, r)
	}
	call()
	return nil
}

// MaxMapCount is vm.max_map_count.
func MaxMapCount() (int, error) {
	b, err := os.ReadFile("/proc/sys/vm/max_map_count")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
