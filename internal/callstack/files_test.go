//go:build linux

package callstack

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// printed symbolizes what a helper in print mode printed of its own
// frame-pointer walk, while it waits.
func printed(t *testing.T, s *Symbolizer, r *running) Stack {
	t.Helper()
	st := s.Symbolize(Request{PID: r.pid(), Addresses: r.addrs})
	t.Logf("end=%s unresolved=%s function=%q\n%s", st.End, st.Unresolved, st.Function, st.Trace)
	return st
}

func wantC(t *testing.T, st Stack) {
	t.Helper()
	if got := functions(st); !inOrder(got, "stack_inner", "stack_deep", "stack_middle", "stack_outer", "main") {
		t.Errorf("frames %q: want stack_inner, stack_deep, stack_middle, stack_outer, main", got)
	}
}

// TestGoNames: every frame of the Go helper, stripped or not, gets the
// name the Go runtime itself gives it.
func TestGoNames(t *testing.T) {
	for _, bin := range []string{"go", "go-pie", "go-stripped"} {
		t.Run(bin, func(t *testing.T) {
			r := start(t, helper(t, bin), "print")
			st := printed(t, New(Config{}), r)
			for i, f := range st.Frames {
				if f.Function != r.names[i] {
					t.Errorf("frame %d at %#x: %q, the Go runtime says %q", i, f.Address, f.Function, r.names[i])
				}
			}
		})
	}
}

// TestStripped: a stripped static binary has no symbols: module+offset
// frames, whose offsets are those of the unstripped build's functions.
func TestStripped(t *testing.T) {
	full := helper(t, "c-static")
	r := start(t, helper(t, "c-static-stripped"), "print")
	st := printed(t, New(Config{}), r)
	f, err := os.Open(full)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tab, err := parseELF(f, DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, fr := range st.Frames {
		if fr.Function != "" || fr.Reason != ReasonNoSymbol || !strings.HasSuffix(fr.Module, "c-static-stripped") {
			t.Errorf("frame %s: want module+offset, no_symbol", fr.String())
		}
		va, _ := tab.vaddr(fr.ModuleOffset)
		if i := tab.lookup(va - 1); i >= 0 {
			names = append(names, tab.syms[i].name)
		}
	}
	if !inOrder(names, "stack_inner", "stack_deep", "stack_middle", "stack_outer", "main") {
		t.Errorf("the offsets name %q in the unstripped build", names)
	}
}

// TestMountNamespace: a process in another mount namespace runs a binary
// at a path that exists only there; it resolves through /proc/PID/root.
func TestMountNamespace(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("unshare -m needs root")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare not found (Debian package util-linux)")
	}
	bin := helper(t, "c-dynamic")
	dir := t.TempDir()
	script := `mount -t tmpfs tmpfs "$1" && cp "$2" "$1/hidden" && exec "$1/hidden" print`
	r := start(t, "unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", dir, bin)
	if _, err := os.Stat(filepath.Join(dir, "hidden")); err == nil {
		t.Fatal("the binary is visible outside the namespace")
	}
	s := New(Config{})
	s.noMapFiles = true // the path, not the mapping, must resolve
	st := printed(t, s, r)
	wantC(t, st)
	if want := filepath.Join(dir, "hidden"); st.Frames[0].Module != want {
		t.Errorf("module %q, want %q (the path inside the namespace)", st.Frames[0].Module, want)
	}
}

// TestExited: a process that exited before its stack was symbolized
// keeps its addresses, and what was known of it before it exited.
func TestExited(t *testing.T) {
	cmd := exec.Command(helper(t, "c-dynamic"), "exit")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	var addrs []uint64
	for _, l := range strings.Fields(string(out)) {
		if a, ok := parseHex(l); ok {
			addrs = append(addrs, a)
		}
	}
	st := New(Config{}).Symbolize(Request{PID: uint32(cmd.Process.Pid), Addresses: addrs})
	if st.Unresolved != ReasonProcessExited || st.Frames[0].Module != "" || st.Function != "" {
		t.Errorf("unresolved=%s\n%s\nwant bare addresses, process_exited", st.Unresolved, st.Trace)
	}

	// Known before the exit: still named after it.
	r := start(t, helper(t, "c-dynamic"), "print")
	s := New(Config{})
	printed(t, s, r)
	r.stop()
	st = printed(t, s, r)
	wantC(t, st)
}

// TestPIDReused: a stack whose process start time is not the pid's
// present one is not symbolized with the present process's mappings.
func TestPIDReused(t *testing.T) {
	r := start(t, helper(t, "c-dynamic"), "print")
	s := New(Config{})
	st := s.Symbolize(Request{PID: r.pid(), StartTime: 1e9, Addresses: r.addrs})
	if st.Unresolved != ReasonProcessExited || st.Function != "" {
		t.Errorf("unresolved=%s\n%s\nwant process_exited", st.Unresolved, st.Trace)
	}
}

// TestReplacedAndDeleted: a binary replaced on disk while it runs (a new
// file renamed over it, as package managers do: the kernel then shows the
// mapping as deleted), deleted, or hidden by another file at its path (a
// bind mount in its namespace). Through /proc/PID/map_files (root) the
// mapped file itself is read and named right; without it, module+offset
// frames say why, never another file's names.
func TestReplacedAndDeleted(t *testing.T) {
	for _, change := range []string{"renamed-over", "deleted", "bind-mounted-over"} {
		t.Run(change, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "helper")
			copyFile(t, helper(t, "c-dynamic"), bin)
			other := helper(t, "c-static")
			var r *running
			want := ReasonFileDeleted
			switch change {
			case "renamed-over":
				r = start(t, bin, "print")
				copyFile(t, other, bin+".new")
				if err := os.Rename(bin+".new", bin); err != nil {
					t.Fatal(err)
				}
			case "deleted":
				r = start(t, bin, "print")
				if err := os.Remove(bin); err != nil {
					t.Fatal(err)
				}
			case "bind-mounted-over":
				if os.Getuid() != 0 {
					t.Skip("unshare -m and mount need root")
				}
				r = start(t, "unshare", "-m", "--propagation", "private", bin, "print")
				if out, err := exec.Command("nsenter", "-t", itoa(r.pid()), "-m", "mount", "--bind", other, bin).CombinedOutput(); err != nil {
					t.Fatalf("nsenter mount --bind: %v %s", err, out)
				}
				want = ReasonFileReplaced
			}
			s := New(Config{})
			s.noMapFiles = true
			st := printed(t, s, r)
			if f := st.Frames[0]; f.Function != "" || f.Reason != want || f.Module != bin {
				t.Errorf("frame 0 %s (%s): want module+offset, %s", f.String(), f.Reason, want)
			}
			if os.Getuid() == 0 {
				wantC(t, printed(t, New(Config{}), r))
			}
		})
	}
}

func itoa(n uint32) string { return strconv.FormatUint(uint64(n), 10) }

func copyFile(t *testing.T, from, to string) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func parseHex(s string) (uint64, bool) {
	var a uint64
	if !strings.HasPrefix(s, "0x") || len(s) < 3 {
		return 0, false
	}
	for _, c := range s[2:] {
		switch {
		case c >= '0' && c <= '9':
			a = a<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			a = a<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return a, true
}
