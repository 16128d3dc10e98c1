package mremaptest

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Cgroup2Root returns where the cgroup v2 hierarchy is mounted (on hybrid
// hosts, /sys/fs/cgroup/unified), mounting it in a temporary directory for
// the test if it is nowhere (as in the kernel VM).
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
		if len(rf) > 0 && rf[0] == "cgroup2" && len(lf) > 4 && lf[3] == "/" {
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

// NewCgroup makes the cgroup v2 directory rel (e.g.
// "docker-<id>.scope") under the hierarchy's root, removed when the test
// ends, and returns its absolute path.
func NewCgroup(t testing.TB, rel string) string {
	t.Helper()
	root := Cgroup2Root(t)
	dir := filepath.Join(root, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("make cgroup %s: %v", dir, err)
	}
	t.Cleanup(func() {
		// Innermost first; a cgroup can be removed once its processes
		// exited. Directories that existed before stay (rmdir fails on
		// a cgroup with processes or children).
		for d := dir; d != root && d != "/" && d != "."; d = filepath.Dir(d) {
			_ = os.Remove(d)
		}
	})
	return dir
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
	if len(made) != len(Expected) {
		t.Fatalf("helper made %d calls, want %d", len(made), len(Expected))
	}
	return made
}
