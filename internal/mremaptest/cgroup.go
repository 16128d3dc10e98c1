//go:build linux

package mremaptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Cgroup2Root returns where the cgroup v2 hierarchy is mounted (on hybrid
// hosts, /sys/fs/cgroup/unified), mounting it in a temporary directory for
// the test if it is nowhere (as in the kernel VM). It skips the test, saying
// why, if there is none and none can be mounted, or if it is read-only (a
// container's /sys/fs/cgroup), where no test cgroup can be made.
func Cgroup2Root(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		left, right, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(rf) > 0 && rf[0] == "cgroup2" && len(lf) > 5 && lf[3] == "/" {
			if slices.Contains(strings.Split(lf[5], ","), "ro") {
				t.Skipf("the cgroup v2 hierarchy at %s is mounted read-only: no test cgroup can be made there", lf[4])
			}
			return lf[4]
		}
	}
	dir := t.TempDir()
	if err := unix.Mount("cgroup2", dir, "cgroup2", 0, ""); err != nil {
		t.Skipf("no cgroup v2 hierarchy, and mounting one failed: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// NewCgroup makes the cgroup v2 directory rel (e.g. "docker-<id>.scope")
// inside a top-level cgroup of the test's own (otelcol-mremap-test-PID,
// outside the slices systemd manages), removed with it when the test ends,
// and returns its absolute path. It skips the test, saying why, if the
// hierarchy does not let it make cgroups.
func NewCgroup(t testing.TB, rel string) string {
	t.Helper()
	root := Cgroup2Root(t)
	top := filepath.Join(root, fmt.Sprintf("otelcol-mremap-test-%d", os.Getpid()))
	dir := filepath.Join(top, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			t.Skipf("cannot make a test cgroup in the cgroup v2 hierarchy at %s: %v", root, err)
		}
		t.Fatalf("make cgroup %s: %v", dir, err)
	}
	t.Cleanup(func() {
		// Innermost first, up to the test's top-level cgroup; a cgroup can
		// be removed once its processes exited. One another test still
		// uses stays (rmdir fails on a cgroup with children).
		for d := dir; strings.HasPrefix(d, top); d = filepath.Dir(d) {
			_ = os.Remove(d)
		}
	})
	return dir
}

// CgroupPath is the path of the cgroup v2 directory dir as
// /proc/PID/cgroup shows it, from the hierarchy's root.
func CgroupPath(t testing.TB, dir string) string {
	t.Helper()
	return "/" + strings.TrimPrefix(strings.TrimPrefix(dir, Cgroup2Root(t)), "/")
}

// RunHelperInCgroup runs the helper inside the cgroup v2 directory dir
// from its first instruction (clone3 with CLONE_INTO_CGROUP), and returns
// its calls.
func RunHelperInCgroup(t testing.TB, path, dir string, args ...string) []Made {
	t.Helper()
	cg, err := os.Open(dir)
	if err != nil {
		t.Fatalf("open cgroup %s: %v", dir, err)
	}
	defer cg.Close()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s in cgroup %s: %v\n%s", path, dir, err, stderr.String())
	}
	return parseMade(t, stdout.Bytes())
}

func parseMade(t testing.TB, out []byte) []Made {
	t.Helper()
	var made []Made
	for _, line := range bytes.Split(out, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var m Made
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("parse helper output %q: %v", line, err)
		}
		made = append(made, m)
	}
	// The helper itself checks its calls against the expectations.
	if len(made) == 0 {
		t.Fatalf("the helper made no calls")
	}
	return made
}
