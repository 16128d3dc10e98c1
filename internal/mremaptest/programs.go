//go:build linux

package mremaptest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
)

// OurNames are the names of our programs and maps as the kernel reports
// them, from the eBPF object that bpf2go generated: the name, and its first
// 15 characters (the kernel keeps 15; cilium/ebpf may report the full name
// from BTF). Matching on them keeps out the objects that other programs on
// the host (systemd's cgroup programs, other agents) create meanwhile.
func OurNames() map[string]bool {
	spec, err := bpf.LoadMremap()
	if err != nil {
		panic(fmt.Sprintf("load the generated eBPF object: %v", err))
	}
	names := map[string]bool{}
	add := func(n string) {
		names[n] = true
		names[n[:min(len(n), 15)]] = true
	}
	for n := range spec.Programs {
		add(n)
	}
	for n := range spec.Maps {
		add(n)
	}
	return names
}

// OurPrograms lists the loaded BPF programs that carry the names of ours,
// to show that nothing is left after shutdown.
func OurPrograms() []string {
	names := OurNames()
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

// IDs are the largest BPF program, map and link IDs the kernel has given
// out. The kernel hands out IDs in increasing order, so an object with a
// larger ID was created after them.
type IDs struct {
	Program ebpf.ProgramID
	Map     ebpf.MapID
	Link    link.ID
}

// LastIDs returns the largest IDs now.
func LastIDs() IDs {
	var ids IDs
	for {
		next, err := ebpf.ProgramGetNextID(ids.Program)
		if err != nil {
			break
		}
		ids.Program = next
	}
	for {
		next, err := ebpf.MapGetNextID(ids.Map)
		if err != nil {
			break
		}
		ids.Map = next
	}
	it := new(link.Iterator)
	for it.Next() {
		ids.Link = it.ID
	}
	it.Close()
	return ids
}

// Objects are BPF objects in the kernel, each "name#id"; a link is named
// after its program.
type Objects struct {
	Programs, Maps, Links []string
}

// Empty tells whether there is no object at all.
func (o Objects) Empty() bool { return len(o.Programs)+len(o.Maps)+len(o.Links) == 0 }

// ObjectsSince lists the programs, maps and links created after since,
// those whose names are in names (OurNames, or those of one run's objects).
func ObjectsSince(since IDs, names map[string]bool) Objects {
	var o Objects
	keep := func(name string) bool { return names[name] }
	for id := since.Program; ; {
		next, err := ebpf.ProgramGetNextID(id)
		if err != nil {
			break
		}
		id = next
		if name, ok := programName(id); ok && keep(name) {
			o.Programs = append(o.Programs, fmt.Sprintf("%s#%d", name, id))
		}
	}
	for id := since.Map; ; {
		next, err := ebpf.MapGetNextID(id)
		if err != nil {
			break
		}
		id = next
		m, err := ebpf.NewMapFromID(id)
		if err != nil {
			continue
		}
		info, err := m.Info()
		m.Close()
		if err == nil && keep(info.Name) {
			o.Maps = append(o.Maps, fmt.Sprintf("%s#%d", info.Name, id))
		}
	}
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		if it.ID <= since.Link {
			continue
		}
		info, err := it.Link.Info()
		if err != nil {
			continue
		}
		if name, ok := programName(info.Program); ok && keep(name) {
			o.Links = append(o.Links, fmt.Sprintf("%s#%d", name, it.ID))
		}
	}
	return o
}

func programName(id ebpf.ProgramID) (string, bool) {
	p, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return "", false
	}
	defer p.Close()
	info, err := p.Info()
	if err != nil {
		return "", false
	}
	return info.Name, true
}

// Names are the names of every object in o, without their IDs.
func (o Objects) Names() map[string]bool {
	names := map[string]bool{}
	for _, list := range [][]string{o.Programs, o.Maps, o.Links} {
		for _, s := range list {
			names[s[:strings.LastIndexByte(s, '#')]] = true
		}
	}
	return names
}

// ObjectsLeft is ObjectsSince after the kernel had time to free what was
// released: it frees programs and maps after an RCU grace period, from a
// workqueue, which on a busy machine can take seconds; up to 15 s is
// waited.
func ObjectsLeft(since IDs, names map[string]bool) Objects {
	left := ObjectsSince(since, names)
	for i := 0; i < 150 && !left.Empty(); i++ {
		time.Sleep(100 * time.Millisecond)
		left = ObjectsSince(since, names)
	}
	return left
}

// OpenFDs counts this process's open file descriptors.
func OpenFDs(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries) - 1 // the directory ReadDir had open
}
