package tracer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
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

// kprobeSupport tells whether this kernel can attach kprobes, and if not why.
// The kprobe PMU (perf_kprobe, 4.17+) or tracefs's kprobe_events are where
// kprobes are created; both exist only with CONFIG_KPROBE_EVENTS.
func kprobeSupport(tracefs string) (bool, string) {
	const pmu = "/sys/bus/event_source/devices/kprobe/type"
	_, pmuErr := os.Stat(pmu)
	events := tracefs + "/kprobe_events"
	_, evErr := os.Stat(events)
	if pmuErr != nil && evErr != nil {
		return false, fmt.Sprintf("the kernel has no kprobe support (neither %s nor %s exists; CONFIG_KPROBES is off)", pmu, events)
	}
	native, _ := syscallSymbols()
	have, err := kallsymsHas(native)
	if err != nil {
		return false, fmt.Sprintf("cannot read /proc/kallsyms to find %s: %v", native, err)
	}
	if !have[native] {
		return false, fmt.Sprintf("the kernel supports kprobes but has no %s in /proc/kallsyms", native)
	}
	if pmuErr == nil {
		return true, fmt.Sprintf("the kernel supports kprobes (kprobe PMU present) and has %s", native)
	}
	return true, fmt.Sprintf("the kernel supports kprobes (%s present) and has %s", events, native)
}

// tracefsPath returns where tracefs is mounted, mounting it at
// /sys/kernel/tracing if it is not: tracepoint IDs and tracefs kprobes are
// found there.
func tracefsPath() (string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			// ... mount-point ... - fstype source options
			left, right, ok := strings.Cut(line, " - ")
			if !ok {
				continue
			}
			rf := strings.Fields(right)
			lf := strings.Fields(left)
			if len(rf) > 0 && rf[0] == "tracefs" && len(lf) > 4 && lf[3] == "/" {
				return lf[4], nil
			}
		}
	}
	const path = "/sys/kernel/tracing"
	if err := unix.Mount("tracefs", path, "tracefs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return "", fmt.Errorf("tracefs is not mounted and mounting it at %s failed: %w", path, err)
	}
	return path, nil
}

// Capabilities checked before loading (<linux/capability.h>).
const (
	capSysAdmin = 21 // CAP_SYS_ADMIN, which implies CAP_BPF and CAP_PERFMON
	capPerfmon  = 38 // CAP_PERFMON, Linux 5.8+
	capBPF      = 39 // CAP_BPF, Linux 5.8+
)

// MinimalCapabilities is the smallest set a non-root collector runs with,
// in tracepoint mode. README's Privileges section explains each one.
var MinimalCapabilities = []string{"CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH"}

// missingCapabilities names the capabilities to load and attach the
// programs that this process lacks in its effective set.
func missingCapabilities() ([]string, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, fmt.Errorf("reading capabilities: %w", err)
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if has(capSysAdmin) {
		return nil, nil
	}
	var missing []string
	if !has(capBPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(capPerfmon) {
		missing = append(missing, "CAP_PERFMON")
	}
	return missing, nil
}

// capabilitiesError is the one message that names what is missing and what
// to grant.
func capabilitiesError(missing []string) error {
	return fmt.Errorf("missing capabilities %s: run as root, or grant %s (tracepoint mode; add CAP_DAC_OVERRIDE for kprobe mode, CAP_SYS_PTRACE for process.executable.path of other users' processes), e.g. setpriv or systemd AmbientCapabilities, see the README's Privileges section",
		strings.Join(missing, ", "), strings.Join(MinimalCapabilities, ", "))
}
