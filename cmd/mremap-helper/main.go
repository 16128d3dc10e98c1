//go:build linux

// Command mremap-helper makes a known sequence of mremap(2) calls (grow in
// place, shrink, moves, failures) and prints each as a JSON line: the
// arguments, the raw return value, its pid and tid. The real-kernel tests
// run it and compare what the receiver reports. With -loop N it instead
// makes N shrink/grow pairs of calls and prints the ns per call, for the
// benchmarks (test/bench); with -for D it makes them for D; -cpu pins the
// loop to one CPU and -rate paces it. With -thread NAME the known calls are made on a
// second thread renamed NAME, as Java or browser worker threads are. With
// -stack it makes one call from known nested functions, for the call-stack
// tests; -mount-ns DIR runs it inside a mount namespace of its own.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// The main goroutine stays on the main thread, whose stack -signals moves.
func init() { runtime.LockOSThread() }

func main() {
	linger := flag.Duration("linger", 0, "stay alive this long after the calls, so /proc still shows the process")
	thread := flag.String("thread", "", "make the calls on a second thread with this name (prctl PR_SET_NAME)")
	pairs := flag.Int("loop", 0, "instead of the known calls, make this many shrink/grow pairs of calls and print the ns per call (for benchmarks)")
	during := flag.Duration("for", 0, "instead of the known calls, make shrink/grow pairs of calls for this long (load and soak tests)")
	cpu := flag.Int("cpu", -1, "with -loop or -for: pin the calling thread to this CPU")
	rate := flag.Float64("rate", 0, "with -loop or -for: calls per second (0: as fast as possible)")
	signals := flag.Bool("signals", false, "instead of the known calls, make the calls that raise each signal, and their look-alikes")
	mapCountLimit := flag.Bool("map-count-limit", false, "instead of the known calls, fill the process up to vm.max_map_count mappings and make a call that needs one more")
	sleep := flag.Duration("sleep", 0, "instead of the known calls, only sleep this long (a process that runs, for the tests)")
	stack := flag.Bool("stack", false, "instead of the known calls, make one call from known nested functions (main.stackOuter, main.stackMiddle, main.stackInner), for the call-stack tests")
	mountNS := flag.String("mount-ns", "", "run again with the other arguments from this directory, in a mount namespace of its own where the helper's directory is bind-mounted on it")
	flag.Parse()
	if *mountNS != "" {
		fmt.Fprintln(os.Stderr, "mremap-helper:", inMountNS(*mountNS))
		os.Exit(1)
	}
	if *sleep > 0 {
		time.Sleep(*sleep)
		return
	}
	if *pairs > 0 || *during > 0 {
		if err := loop(loopOptions{pairs: *pairs, during: *during, cpu: *cpu, rate: *rate}); err != nil {
			fmt.Fprintln(os.Stderr, "mremap-helper:", err)
			os.Exit(1)
		}
		return
	}
	// The known calls: no garbage collection while they are made. Its
	// workers, on other threads, would map heap memory meanwhile, and the
	// kernel's lookup of a call's mapping, which only try-locks the mmap
	// lock, would find nothing (they allocate a few hundred KiB).
	debug.SetGCPercent(-1)
	var made []mremaptest.Made
	var err error
	switch {
	case *signals:
		made, err = mremaptest.MakeSignalCalls()
	case *mapCountLimit:
		made, err = mremaptest.MakeMapCountLimitCall()
	case *stack:
		made, err = stackCall()
	case *thread != "":
		made, err = onNamedThread(*thread)
	default:
		made, err = mremaptest.MakeCalls()
	}
	enc := json.NewEncoder(os.Stdout)
	for _, m := range made {
		_ = enc.Encode(m)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mremap-helper:", err)
		os.Exit(1)
	}
	time.Sleep(*linger)
}

// onNamedThread makes the known calls on a thread other than the main one,
// renamed name; the process keeps the main thread's comm.
func onNamedThread(name string) ([]mremaptest.Made, error) {
	// While main holds its thread, the goroutine below runs on another.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	type result struct {
		made []mremaptest.Made
		err  error
	}
	done := make(chan result)
	go func() {
		runtime.LockOSThread() // never unlocked: the renamed thread exits with the goroutine
		b, err := unix.BytePtrFromString(name)
		if err == nil {
			if _, _, errno := unix.Syscall(unix.SYS_PRCTL, unix.PR_SET_NAME, uintptr(unsafe.Pointer(b)), 0); errno != 0 {
				err = errno
			}
		}
		if err != nil {
			done <- result{nil, fmt.Errorf("prctl PR_SET_NAME %q: %w", name, err)}
			return
		}
		made, err := mremaptest.MakeCalls()
		done <- result{made, err}
	}()
	r := <-done
	return r.made, r.err
}
