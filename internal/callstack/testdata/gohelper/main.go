// Command gohelper is the Go program the callstack tests symbolize. Its
// calls come from known nested functions: main.goOuter -> main.goMiddle ->
// main.goInner.
//
//	gohelper mremap   main.goInner calls mremap(2) through syscall.Syscall6
//	gohelper print    main.goInner prints runtime.Callers' return addresses
//	                  with the Go runtime's name for each, then waits for
//	                  stdin to close
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"
)

// init locks the main goroutine to the main thread: the one a tracer
// started with PTRACE_TRACEME follows.
func init() { runtime.LockOSThread() }

var sink int

//go:noinline
func goInner(mode string) {
	switch mode {
	case "mremap":
		p, err := syscall.Mmap(-1, 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
		if err != nil {
			panic(err)
		}
		addr := uintptr(unsafe.Pointer(&p[0]))
		r, _, _ := syscall.Syscall6(syscall.SYS_MREMAP, addr, 4096, 8192, 1, 0, 0)
		sink += int(r & 1)
	case "print":
		pcs := make([]uintptr, 64)
		n := runtime.Callers(1, pcs)
		w := bufio.NewWriter(os.Stdout)
		for _, pc := range pcs[:n] {
			name := ""
			if fn := runtime.FuncForPC(pc - 1); fn != nil {
				name = fn.Name()
			}
			fmt.Fprintf(w, "%#x %s\n", pc, name)
		}
		fmt.Fprintln(w, "ready")
		w.Flush()
		io.Copy(io.Discard, os.Stdin)
	}
	sink++
}

//go:noinline
func goMiddle(mode string) { goInner(mode); sink++ }

//go:noinline
func goOuter(mode string) { goMiddle(mode); sink++ }

func main() {
	if len(os.Args) != 2 {
		os.Exit(2)
	}
	goOuter(os.Args[1])
}
