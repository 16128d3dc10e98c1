//go:build !linux

// Command mremap-helper makes known mremap(2) calls for the tests: a Linux
// system call.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "mremap-helper: mremap(2) is a Linux system call; this is %s\n", runtime.GOOS)
	os.Exit(1)
}
