//go:build linux

package tracer

import (
	"errors"
	"os"
	"time"

	"github.com/cilium/ebpf"
)

// loaded reports whether the program with id is still in the kernel. The
// kernel frees a program after its last reference is gone, which may take an
// RCU grace period.
func loaded(id uint32) bool {
	for i := 0; i < 100; i++ {
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if errors.Is(err, os.ErrNotExist) {
			return false
		}
		if err == nil {
			p.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}
