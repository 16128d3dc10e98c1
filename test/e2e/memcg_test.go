//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// memoryCgroup is a cgroup of the test's own under the memory controller:
// cgroup v2 where the memory controller is there, else cgroup v1's memory
// hierarchy (hybrid hosts), inside the test's own memory cgroup. What the
// processes in it allocate is charged to it, BPF maps included (since
// Linux 5.11 the kernel charges a map to the cgroup of the process that
// made it).
type memoryCgroup struct {
	dir string
	v2  bool
}

// newMemoryCgroup makes the cgroup, without a limit; it is removed when
// the test ends, after its processes.
func newMemoryCgroup(t *testing.T) *memoryCgroup {
	t.Helper()
	name := fmt.Sprintf("otelcol-mremap-test-memory-%d", os.Getpid())
	var cg *memoryCgroup
	if root := cgroupMount("cgroup2", ""); root != "" && hasWord(filepath.Join(root, "cgroup.subtree_control"), "memory") {
		cg = &memoryCgroup{dir: filepath.Join(root, name), v2: true}
	} else if v1 := cgroupMount("cgroup", "memory"); v1 != "" {
		cg = &memoryCgroup{dir: filepath.Join(v1, ownCgroupV1("memory"), name)}
	} else if cgroupMount("cgroup2", "") == "" {
		// No hierarchy at all (the kernel VM): one of the test's own, whose
		// root may hand the memory controller to its children.
		root := mremaptest.Cgroup2Root(t)
		if err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
			t.Skipf("cannot enable the memory controller in the cgroup v2 hierarchy mounted at %s: %v", root, err)
		}
		cg = &memoryCgroup{dir: filepath.Join(root, name), v2: true}
	} else {
		t.Skip("no memory cgroup controller (neither cgroup v2's, delegated from its root, nor v1's): the kernel memory charged to the collector cannot be measured")
	}
	if err := os.Mkdir(cg.dir, 0o755); err != nil {
		t.Skipf("cannot make a memory cgroup at %s: %v", cg.dir, err)
	}
	t.Cleanup(func() {
		for i := 0; i < 50 && os.Remove(cg.dir) != nil; i++ {
			time.Sleep(100 * time.Millisecond) // its processes are still exiting
		}
	})
	return cg
}

// cgroupMount is where a cgroup hierarchy of fstype is mounted (for v1,
// the one with option opt), or "".
func cgroupMount(fstype, opt string) string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		left, right, ok := strings.Cut(line, " - ")
		lf, rf := strings.Fields(left), strings.Fields(right)
		if !ok || len(lf) < 5 || len(rf) < 3 || rf[0] != fstype || lf[3] != "/" {
			continue
		}
		if opt == "" || slices.Contains(strings.Split(rf[2], ","), opt) {
			return lf[4]
		}
	}
	return ""
}

// ownCgroupV1 is this process's cgroup in the v1 hierarchy of controller.
func ownCgroupV1(controller string) string {
	data, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), controller) {
			return f[2]
		}
	}
	return "/"
}

func hasWord(path, word string) bool {
	data, _ := os.ReadFile(path)
	return slices.Contains(strings.Fields(string(data)), word)
}

// wrap makes cmd start inside the cgroup: a shell moves itself there and
// execs cmd, so that everything the process allocates is charged to it.
func (cg *memoryCgroup) wrap(cmd *exec.Cmd) *exec.Cmd {
	w := exec.Command("sh", append([]string{"-c", `echo $$ > "$0" && exec "$@"`, filepath.Join(cg.dir, "cgroup.procs")}, cmd.Args...)...)
	w.Env, w.Dir = cmd.Env, cmd.Dir
	return w
}

func (cg *memoryCgroup) read(name string) (int64, error) {
	data, err := os.ReadFile(filepath.Join(cg.dir, name))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
}

// stat is one field of memory.stat (v1 or v2), or of another flat-keyed
// file such as memory.events; -1 if the kernel has no such field.
func (cg *memoryCgroup) stat(file, key string) int64 {
	data, _ := os.ReadFile(filepath.Join(cg.dir, file))
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// usage is what the cgroup is charged now: all of it, and the kernel's
// part of it (slab, vmalloc, BPF maps and programs, page tables, ...; -1
// where cgroup v2's memory.stat has no "kernel", before Linux 5.18).
func (cg *memoryCgroup) usage() (total, kernel int64, err error) {
	if cg.v2 {
		total, err = cg.read("memory.current")
		return total, cg.stat("memory.stat", "kernel"), err
	}
	total, err = cg.read("memory.usage_in_bytes")
	kernel, kerr := cg.read("memory.kmem.usage_in_bytes")
	return total, kernel, errors.Join(err, kerr)
}

// unreclaimable is the cgroup's charge less its page cache, which the
// kernel reclaims before it would kill: anonymous memory and kernel memory.
func (cg *memoryCgroup) unreclaimable() int64 {
	total, _, _ := cg.usage()
	if cg.v2 {
		return total - max(0, cg.stat("memory.stat", "file"))
	}
	return total - max(0, cg.stat("memory.stat", "cache"))
}

// ooms is how many times the kernel's OOM killer killed in the cgroup.
func (cg *memoryCgroup) ooms() int64 {
	file := "memory.oom_control"
	if cg.v2 {
		file = "memory.events"
	}
	return max(0, cg.stat(file, "oom_kill"))
}

// memorySampler keeps the highest charges of a cgroup while it runs.
type memorySampler struct {
	cg                        *memoryCgroup
	mu                        sync.Mutex
	total, kernel, unreclaimd int64
	stop, done                chan struct{}
}

func (cg *memoryCgroup) sample(every time.Duration) *memorySampler {
	s := &memorySampler{cg: cg, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			total, kernel, err := cg.usage()
			u := cg.unreclaimable()
			if err == nil {
				s.mu.Lock()
				s.total, s.kernel, s.unreclaimd = max(s.total, total), max(s.kernel, kernel), max(s.unreclaimd, u)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the peaks: the whole charge, its
// kernel part, and the charge less page cache.
func (s *memorySampler) Stop() (total, kernel, unreclaimable int64) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.kernel, s.unreclaimd
}
