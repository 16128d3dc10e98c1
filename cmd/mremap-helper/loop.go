//go:build linux

package main

import (
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// loopOptions shape the load generator.
type loopOptions struct {
	pairs  int           // shrink/grow pairs to make; 0: until during has passed
	during time.Duration // with pairs 0: how long to make pairs
	cpu    int           // pin the calling thread to this CPU; -1 leaves it free
	rate   float64       // calls per second; 0 = as fast as the CPU allows
}

// loop is the load generator: shrink/grow pairs of mremap(2) calls on one
// locked thread, optionally pinned to one CPU (sched_setaffinity) and paced
// to a rate: a 2-page anonymous mapping shrunk to 1 page and grown back in
// place, flags 0. It makes o.pairs pairs, or with o.pairs 0 makes pairs
// until o.during has passed. It prints one line,
//
//	calls=<n> ns_per_call=<f> pid=<pid> tid=<tid> elapsed_ns=<n> calls_per_second=<f> cpu_ns_per_call=<f>
//
// where cpu_ns_per_call is the thread's own CPU time (the probes run on it),
// without the time other tasks took its CPU.
// for the benchmark harness (test/bench), which measures what observing the
// calls adds, and for the accounting and soak tests.
func loop(o loopOptions) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if o.cpu >= 0 {
		var set unix.CPUSet
		set.Set(o.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin to CPU %d (sched_setaffinity): %w", o.cpu, err)
		}
	}
	page := uintptr(os.Getpagesize())
	m, err := unix.Mmap(-1, 0, int(2*page), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("mmap: %w", err)
	}
	defer unix.Munmap(m)

	// The thread's CPU time tells the calls' own cost (the probes run on
	// it) from time lost to other tasks on its CPU.
	cpu0, err := threadCPU()
	if err != nil {
		return err
	}
	start := time.Now()
	done, err := makePairs(uintptr(unsafe.Pointer(unsafe.SliceData(m))), page, o, start)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	cpu1, err := threadCPU()
	if err != nil {
		return err
	}
	calls := 2 * done
	fmt.Printf("calls=%d ns_per_call=%.1f pid=%d tid=%d elapsed_ns=%d calls_per_second=%.0f cpu_ns_per_call=%.1f\n",
		calls, float64(elapsed.Nanoseconds())/float64(calls), os.Getpid(), unix.Gettid(),
		elapsed.Nanoseconds(), float64(calls)/elapsed.Seconds(), float64(cpu1-cpu0)/float64(calls))
	return nil
}

// makePairs shrinks the 2-page mapping at addr to one page and grows it back,
// o.pairs times or until o.during has passed, paced to o.rate, and returns
// how many pairs it made.
func makePairs(addr, page uintptr, o loopOptions, start time.Time) (int, error) {
	// Paced: every 64 pairs, sleep until the schedule catches up when it
	// is more than a millisecond ahead (shorter sleeps overshoot).
	var perPair time.Duration
	if o.rate > 0 {
		perPair = time.Duration(2 * float64(time.Second) / o.rate)
	}
	done := 0
	for o.pairs == 0 || done < o.pairs {
		if err := resize(addr, 2*page, page); err != nil {
			return done, err
		}
		if err := resize(addr, page, 2*page); err != nil {
			return done, err
		}
		done++
		// Looking at the clock every 1024 pairs costs little.
		if o.pairs == 0 && done%1024 == 0 && time.Since(start) >= o.during {
			break
		}
		if perPair > 0 && done%64 == 0 {
			if ahead := time.Until(start.Add(time.Duration(done) * perPair)); ahead > time.Millisecond {
				time.Sleep(ahead)
			}
		}
	}
	return done, nil
}

// resize resizes the mapping at addr in place, flags 0.
func resize(addr, oldSize, newSize uintptr) error {
	r, _, errno := unix.Syscall6(unix.SYS_MREMAP, addr, oldSize, newSize, 0, 0, 0)
	if errno != 0 || r != addr {
		return fmt.Errorf("mremap(%#x, %d, %d, 0) = %#x, %w", addr, oldSize, newSize, r, errno)
	}
	return nil
}

// threadCPU is the calling thread's CPU time in nanoseconds.
func threadCPU() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_THREAD_CPUTIME_ID): %w", err)
	}
	return ts.Nano(), nil
}
