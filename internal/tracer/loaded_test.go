package tracer

import (
	"errors"
	"os"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
)

// eventRecordSize is the size of one event in the ring buffer: an 8-byte
// header and the event, rounded up to 8 bytes.
var eventRecordSize = 8 + (int(unsafe.Sizeof(bpf.MremapEvent{}))+7)&^7

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
