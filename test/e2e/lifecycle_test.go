package e2e

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// A collector killed with SIGKILL cannot shut down, so nothing of it may
// outlive its file descriptors: no program, map or link stays loaded, and
// nothing is pinned in bpffs. On kprobe kernels the kretprobe created
// through tracefs (for its maxactive) stays registered in kprobe_events,
// disabled and with no program; the next start, in either mode, removes it
// (and any other a killed collector left), and a clean shutdown leaves none.
func TestCollectorKilledLeavesNothingAttached(t *testing.T) {
	mremaptest.RequireBPF(t)
	bin := mremaptest.CollectorPath(t)
	for _, probe := range mremaptest.Probes(t) {
		t.Run(probe, func(t *testing.T) {
			pinnedBefore := bpffsEntries(t)
			// Events an earlier collector left (a test that failed and
			// killed it) are not this one's.
			eventsBefore := ourKprobeEvents(t)
			since := mremaptest.LastIDs()
			c := startCollector(t, bin, fmt.Sprintf(fileConfig, probe))
			ours := mremaptest.ObjectsSince(since, mremaptest.OurNames())
			if len(ours.Programs) < 2 || len(ours.Links) < 2 {
				t.Fatalf("the running collector's programs and links were not found: %+v", ours)
			}
			if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			c.cmd.Wait()

			if left := mremaptest.ObjectsLeft(since, ours.Names()); !left.Empty() {
				t.Errorf("BPF objects left after SIGKILL: %+v", left)
			}
			if pinned := bpffsEntries(t); !equalStrings(pinned, pinnedBefore) {
				t.Errorf("bpffs was %v before the collector ran and is %v after", pinnedBefore, pinned)
			}
			stale := newStrings(ourKprobeEvents(t), eventsBefore)
			for _, ev := range stale {
				if enabled := readTrim(t, filepath.Join(tracefs(t), "events", ev, "enable")); enabled != "0" {
					t.Errorf("kprobe event %s left enabled (%s) after SIGKILL", ev, enabled)
				}
			}
			if probe == "tracepoint" && len(stale) > 0 {
				t.Errorf("tracepoint mode left kprobe events: %v", stale)
			}

			// The next start removes what the killed one left; a clean
			// shutdown leaves nothing.
			since = mremaptest.LastIDs()
			c = startCollector(t, bin, fmt.Sprintf(fileConfig, probe))
			c.stop(t)
			if left := ourKprobeEvents(t); len(left) > 0 {
				t.Errorf("kprobe events left after a restart and a clean shutdown: %v (after SIGKILL: %v, before: %v)", left, stale, eventsBefore)
			}
			if left := mremaptest.ObjectsLeft(since, ours.Names()); !left.Empty() {
				t.Errorf("BPF objects left after a clean shutdown: %+v", left)
			}
		})
	}
}

// bpffsEntries lists every path under /sys/fs/bpf (none if not mounted).
func bpffsEntries(t *testing.T) []string {
	var out []string
	err := filepath.WalkDir("/sys/fs/bpf", func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, path)
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// newStrings are the strings of after that are not in before.
func newStrings(after, before []string) []string {
	var out []string
	for _, s := range after {
		if !slices.Contains(before, s) {
			out = append(out, s)
		}
	}
	return out
}

func equalStrings(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

func tracefs(t *testing.T) string {
	for _, p := range []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"} {
		if _, err := os.Stat(filepath.Join(p, "events")); err == nil {
			return p
		}
	}
	t.Fatal("tracefs is not mounted")
	return ""
}

// ourKprobeEvents lists the kprobe events of our tracefs groups
// (otelcol_mremap_*) as "group/event".
func ourKprobeEvents(t *testing.T) []string {
	f, err := os.Open(filepath.Join(tracefs(t), "kprobe_events"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		first, _, _ := strings.Cut(strings.TrimSpace(s.Text()), " ")
		if _, name, ok := strings.Cut(first, ":"); ok && strings.HasPrefix(name, "otelcol_mremap_") {
			out = append(out, name)
		}
	}
	return out
}

func readTrim(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}
