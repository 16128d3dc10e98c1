//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// errTracefsDenied: tracefs exists but this process may not read it.
var errTracefsDenied = errors.New("tracefs is not readable")

// tracefsPath returns where tracefs is mounted, mounting it at
// /sys/kernel/tracing if it is not: tracepoint IDs and tracefs kprobes are
// found there.
func tracefsPath() (string, error) {
	if dir, ok := mountPoint("tracefs"); ok {
		return dir, nil
	}
	const path = "/sys/kernel/tracing"
	if err := unix.Mount("tracefs", path, "tracefs", 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
		return "", fmt.Errorf("tracefs is not mounted and mounting it at %s failed: %w", path, err)
	}
	return path, nil
}

// mountPoint is where a filesystem of type fstype is mounted from its root,
// from /proc/self/mountinfo.
func mountPoint(fstype string) (string, bool) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	for _, line := range strings.Split(string(data), "\n") {
		// id parent major:minor root mount-point options ... - fstype source options
		left, right, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(rf) > 0 && rf[0] == fstype && len(lf) > 4 && lf[3] == "/" {
			return lf[4], true
		}
	}
	return "", false
}

// syscallTracepoints tells whether mremap's syscall tracepoints exist.
func syscallTracepoints(tracefs string) error {
	var errs []error
	for _, name := range []string{"sys_enter_mremap", "sys_exit_mremap"} {
		path := tracefs + "/events/syscalls/" + name + "/id"
		f, err := os.Open(path)
		switch {
		case err == nil:
			f.Close()
		case errors.Is(err, os.ErrPermission):
			return fmt.Errorf("%w: %w", errTracefsDenied, err)
		case errors.Is(err, os.ErrNotExist):
			errs = append(errs, fmt.Errorf("no %s", path))
		default:
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("the kernel has no syscall tracepoints for mremap (%w; CONFIG_FTRACE_SYSCALLS is off)", errors.Join(errs...))
	}
	return nil
}

// kprobeSupport tells whether this kernel can attach kprobes to symbol, and
// why (not). The kprobe PMU (perf_kprobe, 4.17+) or tracefs's kprobe_events
// are where kprobes are created; both exist only with CONFIG_KPROBE_EVENTS.
func kprobeSupport(tracefs, symbol string, kallsyms map[string]bool, kallsymsErr error) (bool, string) {
	const pmu = "/sys/bus/event_source/devices/kprobe/type"
	_, pmuErr := os.Stat(pmu)
	events := tracefs + "/kprobe_events"
	_, evErr := os.Stat(events)
	switch {
	case pmuErr != nil && evErr != nil:
		return false, fmt.Sprintf("the kernel has no kprobe support (neither %s nor %s exists; CONFIG_KPROBES is off)", pmu, events)
	case kallsymsErr != nil:
		return false, fmt.Sprintf("cannot read /proc/kallsyms to find %s: %v", symbol, kallsymsErr)
	case !kallsyms[symbol]:
		return false, fmt.Sprintf("the kernel supports kprobes but has no %s in /proc/kallsyms", symbol)
	case pmuErr == nil:
		return true, fmt.Sprintf("the kernel supports kprobes (kprobe PMU present) and has %s", symbol)
	}
	return true, fmt.Sprintf("the kernel supports kprobes (%s present) and has %s", events, symbol)
}
