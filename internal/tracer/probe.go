//go:build linux

package tracer

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// Probe is how the tracer attaches to mremap(2).
type Probe string

const (
	// ProbeAuto takes kprobe where the kernel supports kprobes, else tracepoint.
	ProbeAuto Probe = "auto"
	// ProbeKprobe attaches a kprobe and a kretprobe to the syscall's arch
	// wrapper (__x64_sys_mremap, and __ia32_sys_mremap where it exists).
	ProbeKprobe Probe = "kprobe"
	// ProbeTracepoint attaches to syscalls:sys_enter_mremap and
	// syscalls:sys_exit_mremap.
	ProbeTracepoint Probe = "tracepoint"
)

// ParseProbe checks a probe name.
func ParseProbe(s string) (Probe, error) {
	switch p := Probe(s); p {
	case ProbeAuto, ProbeKprobe, ProbeTracepoint:
		return p, nil
	}
	return "", fmt.Errorf("unknown probe %q: want auto, kprobe or tracepoint", s)
}

// syscallSymbols are the kernel functions the kprobe mode attaches to, for
// this architecture: the native wrapper first, then compat wrappers. Each
// wrapper takes the user's registers as its only argument.
func syscallSymbols() (native string, compat []string) {
	switch runtime.GOARCH {
	case "amd64":
		return "__x64_sys_mremap", []string{"__ia32_sys_mremap"}
	case "arm64":
		return "__arm64_sys_mremap", nil
	}
	return "sys_mremap", nil
}

// kallsymsHas reports which of names are functions in /proc/kallsyms.
func kallsymsHas(names ...string) (map[string]bool, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = false
	}
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 4096), 1<<20)
	for s.Scan() {
		// "ffffffff81234560 T __x64_sys_mremap"
		fields := strings.Fields(s.Text())
		if len(fields) < 3 {
			continue
		}
		if _, ok := want[fields[2]]; ok {
			want[fields[2]] = true
		}
	}
	return want, s.Err()
}
