package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loop makes pairs shrink/grow pairs of mremap(2) calls on one locked
// thread: a 2-page anonymous mapping shrunk to 1 page and grown back in
// place, flags 0. With pairs 0 it makes pairs until d has passed instead.
// It prints one line,
//
//	calls=<n> ns_per_call=<f> pid=<pid> tid=<tid> elapsed_ns=<n>
//
// for test/bench/bpftrace.sh, which measures what observing the calls adds,
// and for the accounting and soak tests.
func loop(pairs int, d time.Duration) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	page := uintptr(os.Getpagesize())
	m, err := unix.Mmap(-1, 0, int(2*page), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(m)))
	call := func(oldSize, newSize uintptr) error {
		r, _, errno := unix.Syscall6(unix.SYS_MREMAP, addr, oldSize, newSize, 0, 0, 0)
		if errno != 0 || r != addr {
			return fmt.Errorf("mremap(%#x, %d, %d, 0) = %#x, %v", addr, oldSize, newSize, r, errno)
		}
		return nil
	}

	start := time.Now()
	done := 0
	for pairs == 0 || done < pairs {
		if err := call(2*page, page); err != nil {
			return err
		}
		if err := call(page, 2*page); err != nil {
			return err
		}
		done++
		// Looking at the clock every 1024 pairs costs little.
		if pairs == 0 && done%1024 == 0 && time.Since(start) >= d {
			break
		}
	}
	elapsed := time.Since(start)

	calls := 2 * done
	fmt.Printf("calls=%d ns_per_call=%.1f pid=%d tid=%d elapsed_ns=%d\n",
		calls, float64(elapsed.Nanoseconds())/float64(calls), os.Getpid(), unix.Gettid(), elapsed.Nanoseconds())
	return unix.Munmap(m)
}
