//go:build linux

package main

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// getppidLoop makes calls getppid(2) calls on a thread of this process
// pinned to the load generator's CPU, and times them as the load generator
// times its mremap calls: wall-clock and the thread's own CPU time.
func (b *bench) getppidLoop(calls int) (loopResult, error) {
	type result struct {
		r   loopResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The thread is never unlocked: it ends with the goroutine, and
		// its CPU affinity with it.
		runtime.LockOSThread()
		var set unix.CPUSet
		set.Set(b.opts.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			done <- result{err: fmt.Errorf("pin the getppid loop to CPU %d: %w", b.opts.cpu, err)}
			return
		}
		for range calls / 10 { // warm up on the CPU
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
		cpu0, start := threadCPU(), time.Now()
		for range calls {
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
		elapsed, cpu := time.Since(start), threadCPU()-cpu0
		done <- result{r: loopResult{
			calls:       int64(calls),
			nsPerCall:   float64(elapsed.Nanoseconds()) / float64(calls),
			callsPerSec: float64(calls) / elapsed.Seconds(),
			cpuPerCall:  float64(cpu.Nanoseconds()) / float64(calls),
		}}
	}()
	res := <-done
	return res.r, res.err
}

// threadCPU is the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID).
func threadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}
