package mremaptest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// OurPrograms lists the loaded BPF programs that carry the names of ours,
// to show that nothing is left after shutdown.
func OurPrograms() []string {
	names := map[string]bool{}
	for _, n := range []string{"tracepoint_enter", "tracepoint_exit", "kprobe_enter", "kprobe_enter_ia32", "kprobe_exit"} {
		// The kernel keeps 15 characters; cilium/ebpf may report the
		// full name from BTF.
		names[n] = true
		names[n[:min(len(n), 15)]] = true
	}
	var found []string
	id := ebpf.ProgramID(0)
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			return found
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		p.Close()
		if err == nil && names[info.Name] {
			found = append(found, info.Name)
		}
	}
}

// ProgramsLeft lists our programs still loaded after a shutdown. The kernel
// frees a program after an RCU grace period, so it looks twice.
func ProgramsLeft() []string {
	left := OurPrograms()
	if len(left) > 0 {
		time.Sleep(500 * time.Millisecond)
		left = OurPrograms()
	}
	return left
}

// CollectorPath is the built collector: $OTELCOL_MREMAP, or
// bin/otelcol-mremap in the module.
func CollectorPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("OTELCOL_MREMAP")
	if p == "" {
		p = filepath.Join(ModuleRoot(), "bin", "otelcol-mremap")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("the collector binary is missing (%v): run `make build` first, or `make test`", err)
	}
	return p
}

// FreePort is a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// HasKprobes tells whether this kernel can create kprobes.
func HasKprobes() bool {
	for _, p := range []string{"/sys/bus/event_source/devices/kprobe", "/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
