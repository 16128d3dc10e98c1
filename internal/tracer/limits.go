//go:build linux

package tracer

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
)

// maxMapCountPath is the sysctl vm.max_map_count: how many mappings a
// process may have.
const maxMapCountPath = "/proc/sys/vm/max_map_count"

// writeLimits tells the programs vm.max_map_count, whose margin tells a
// failure at the limit from a lack of address space, and returns it.
func writeLimits(m *ebpf.Map) (uint64, error) {
	b, err := os.ReadFile(maxMapCountPath)
	if err != nil {
		return 0, fmt.Errorf("read vm.max_map_count: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("read vm.max_map_count: %q: %w", b, err)
	}
	if err := m.Put(uint32(0), bpf.MremapLimits{MaxMapCount: uint32(n)}); err != nil {
		return 0, fmt.Errorf("write vm.max_map_count into the limits map: %w", err)
	}
	return n, nil
}
