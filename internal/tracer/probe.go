//go:build linux

package tracer

import (
	"bufio"
	"os"
	"runtime"
	"strings"
)

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
