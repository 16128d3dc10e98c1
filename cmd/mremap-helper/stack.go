//go:build linux

package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// stackCall makes one mremap(2) call, two pages shrunk to one in place, from
// known nested functions: stackOuter -> stackMiddle -> stackInner, which
// calls syscall.Syscall6 (Go keeps frame pointers, so the kernel's walk
// sees each of them): mremaptest.GoStackFunctions.
func stackCall() ([]mremaptest.Made, error) {
	b, err := unix.Mmap(-1, 0, 2*os.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	m := mremaptest.Made{Name: "stack", PID: uint32(os.Getpid()), TID: uint32(unix.Gettid()),
		OldAddress: addrOf(b), OldSize: uint64(len(b)), NewSize: uint64(len(b)) / 2}
	m.Return = stackOuter(&m)
	return []mremaptest.Made{m}, nil
}

//go:noinline
func stackOuter(m *mremaptest.Made) int64 { return stackMiddle(m) + sink() }

//go:noinline
func stackMiddle(m *mremaptest.Made) int64 { return stackInner(m) + sink() }

//go:noinline
func stackInner(m *mremaptest.Made) int64 {
	r, _, errno := syscall.Syscall6(syscall.SYS_MREMAP, uintptr(m.OldAddress), uintptr(m.OldSize),
		uintptr(m.NewSize), uintptr(m.Flags), 0, 0)
	if errno != 0 {
		return -int64(errno) + sink()
	}
	return int64(r) + sink()
}

// sinkValue keeps the calls above from being tail calls.
var sinkValue int64

//go:noinline
func sink() int64 { return sinkValue }

func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

// inMountNS runs the helper again, with the flags set but -mount-ns, in a
// mount namespace of its own, from dir: there alone the helper's directory
// is bind-mounted on dir, so the path it runs from (and its mappings show)
// exists in no other namespace, as a container's binaries do. It returns
// only on error.
func inMountNS(dir string) error {
	var args []string
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "mount-ns" {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	// The main goroutine is locked to its thread (init): the namespace
	// is that thread's, and exec keeps it.
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return fmt.Errorf("unshare(CLONE_NEWNS): %w", err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the mounts private: %w", err)
	}
	if err := unix.Mount(filepath.Dir(exe), dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", filepath.Dir(exe), dir, err)
	}
	path := filepath.Join(dir, filepath.Base(exe))
	return unix.Exec(path, append([]string{path}, args...), os.Environ())
}
