//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Capabilities checked before loading (<linux/capability.h>).
const (
	capSysAdmin = 21 // CAP_SYS_ADMIN, which implies CAP_BPF and CAP_PERFMON
	capPerfmon  = 38 // CAP_PERFMON, Linux 5.8+
	capBPF      = 39 // CAP_BPF, Linux 5.8+
)

// MinimalCapabilities is the smallest set the tracer runs with, in
// tracepoint mode: load programs and maps (CAP_BPF), attach tracepoints and
// read kernel memory (CAP_PERFMON), read the tracepoint IDs in tracefs,
// which is root's (CAP_DAC_READ_SEARCH).
var MinimalCapabilities = []string{"CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH"}

// MissingCapabilitiesError names the capabilities the process lacks to load
// and attach the programs.
type MissingCapabilitiesError struct {
	Missing []string
}

func (e *MissingCapabilitiesError) Error() string {
	return "missing capabilities " + strings.Join(e.Missing, ", ")
}

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

// prepare checks the privileges and finds tracefs, then asks the kernel
// what it offers. Every missing capability is named in one error, including
// the one tracefs needs, which shows only once tracefs is found.
func prepare() (facts, error) {
	missing, err := missingCapabilities()
	if err != nil {
		return facts{}, err
	}
	if len(missing) == 0 {
		// Kernels before 5.11 charge eBPF maps to RLIMIT_MEMLOCK, whose
		// default is far below a 4 MiB ring buffer; later kernels charge
		// the memory cgroup, and this does nothing.
		if err := rlimit.RemoveMemlock(); err != nil {
			return facts{}, fmt.Errorf("raise RLIMIT_MEMLOCK for the eBPF maps (this kernel charges them to it): grant CAP_SYS_RESOURCE or set LimitMEMLOCK=infinity: %w", err)
		}
	}
	tracefs, err := tracefsPath()
	if err != nil {
		if len(missing) > 0 {
			return facts{}, &MissingCapabilitiesError{Missing: missing}
		}
		return facts{}, err
	}
	f := probeFacts(tracefs)
	if errors.Is(f.tracepoints, errTracefsDenied) {
		// Only root may enter tracefs, where the tracepoint IDs are.
		missing = append(missing, "CAP_DAC_READ_SEARCH")
	}
	if len(missing) > 0 {
		return facts{}, &MissingCapabilitiesError{Missing: missing}
	}
	return f, nil
}
