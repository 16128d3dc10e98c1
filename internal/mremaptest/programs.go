package mremaptest

import (
	"os"

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

// HasKprobes tells whether this kernel can create kprobes.
func HasKprobes() bool {
	for _, p := range []string{"/sys/bus/event_source/devices/kprobe", "/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events"} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
