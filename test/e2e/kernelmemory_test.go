//go:build linux

package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// bpfMemlock sums what the kernel reports as locked memory (memlock in
// /proc/PID/fdinfo) of the BPF maps pid holds.
func bpfMemlock(t *testing.T, pid int) (maps int64) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fdinfo", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var memlock int64
		var isMap bool
		s := bufio.NewScanner(f)
		for s.Scan() {
			k, v, _ := strings.Cut(s.Text(), ":")
			switch k {
			case "map_id":
				isMap = true
			case "memlock":
				memlock, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			}
		}
		f.Close()
		if isMap {
			maps += memlock
		}
	}
	return maps
}

// agentOutcome waits until the agent's records for calls are sent or
// dropped and its queue is empty, for up to a minute, and returns the log
// records it sent (its own telemetry), those the kernel dropped (the
// gateway's mremap.events.dropped), refused and still queued.
func (f *fleet) agentOutcome(t *testing.T, calls int) (sent, dropped, refused, queued float64) {
	t.Helper()
	client := f.ns.httpClient()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		own := scrapeWith(client, agentTelemetry)
		sent = sumSeries(own, `exporter="otlp_grpc"`, "otelcol_exporter_sent_log_records")
		refused = sumSeries(own, `receiver="mremap"`, "otelcol_receiver_refused_log_records", "otelcol_receiver_failed_log_records")
		queued = sumSeries(own, `data_type="logs"`, "otelcol_exporter_queue_size")
		dropped = sumSeries(scrapeWith(client, gatewayMetrics), `reason=`, "mremap_events_dropped_total")
		if sent+dropped >= float64(calls) && queued == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	return sent, dropped, refused, queued
}

// daemonSetLimits are the DaemonSet's container memory request and limit
// in bytes, and the BPF maps' memory its comment documents.
func daemonSetLimits(t *testing.T) (request, limit, documentedMaps int64) {
	t.Helper()
	data, err := os.ReadFile(configPath(filepath.Join("deploy", "daemonset.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var o struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Resources struct {
								Requests map[string]string `yaml:"requests"`
								Limits   map[string]string `yaml:"limits"`
							} `yaml:"resources"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if o.Kind == "DaemonSet" && len(o.Spec.Template.Spec.Containers) > 0 {
			r := o.Spec.Template.Spec.Containers[0].Resources
			request, limit = quantity(t, r.Requests["memory"]), quantity(t, r.Limits["memory"])
		}
	}
	m := regexp.MustCompile(`BPF maps at the defaults: ([0-9.]+) MiB`).FindSubmatch(data)
	if m == nil {
		t.Fatal(`config/deploy/daemonset.yaml does not say "BPF maps at the defaults: N MiB"`)
	}
	mib, _ := strconv.ParseFloat(string(m[1]), 64)
	return request, limit, int64(mib * (1 << 20))
}

// quantity parses a Kubernetes memory quantity: 256Mi, 1Gi, 300M.
func quantity(t *testing.T, q string) int64 {
	t.Helper()
	for suffix, mult := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1e3, "M": 1e6, "G": 1e9} {
		if n, ok := strings.CutSuffix(q, suffix); ok {
			v, err := strconv.ParseInt(n, 10, 64)
			if err != nil {
				t.Fatalf("memory quantity %q: %v", q, err)
			}
			return v * mult
		}
	}
	v, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		t.Fatalf("memory quantity %q: %v", q, err)
	}
	return v
}

// kernelAtLeast tells whether the running kernel is major.minor or later,
// and gives its release.
func kernelAtLeast(major, minor int) (string, bool) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown", false
	}
	release := unix.ByteSliceToString(u.Release[:])
	var maj, mnr int
	_, _ = fmt.Sscanf(release, "%d.%d", &maj, &mnr)
	return release, maj > major || maj == major && mnr >= minor
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// TestKernelMemoryInLimits runs the agent as the DaemonSet does:
// config/agent.yaml with every default (probe, ring buffer, filters, the
// on-disk queue), nothing set but the variables that name its files, in a
// memory cgroup of its own, delivering to the shipped gateway. Its BPF maps
// must be charged to that cgroup (the cgroup's kernel memory holds at least
// their memlock and the documented size), their memlock must be what the
// DaemonSet's comment and docs/security.md say (on Linux 6.4 and later,
// where memlock is the maps' use), and under a load of every call logged the
// cgroup's peak charge must stay inside the DaemonSet's memory limit (its
// idle charge inside the request), with no OOM kill and every call sent
// or counted as dropped.
func TestKernelMemoryInLimits(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	request, limit, documented := daemonSetLimits(t)
	cg := newMemoryCgroup(t)
	f := newFleet(t)
	gateway := f.startGateway(t)
	defer gateway.stop(t)

	cmd := f.ns.command(f.bin, "--config", configPath("agent.yaml"))
	cmd.Env = append(os.Environ(), f.pki.env("agent")...)
	cmd.Env = append(cmd.Env, "MREMAP_STORAGE_DIR="+f.queueDir)
	sampler := cg.sample(50 * time.Millisecond)
	agent := runCommand(t, t.TempDir(), cg.wrap(cmd))
	defer agent.stop(t)
	time.Sleep(time.Second)
	maps := bpfMemlock(t, agent.cmd.Process.Pid)
	idle, idleKernel, err := cg.usage()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("idle: cgroup charged %s, of it kernel %s; BPF maps %s (memlock); cgroup v2: %v",
		mib(idle), mib(idleKernel), mib(maps), cg.v2)

	// Every mremap call of the host is observed (no filter but the
	// collector's own comm): the helper's loop is the load. Each call is
	// sent, or counted as dropped (on 2 CPUs the ring buffer can fill while
	// the gateway writes its files). The agent's own telemetry says what it
	// sent, the gateway's metrics what the kernel dropped.
	loop := runLoopAt(t, helper, 5*time.Second, 40000)
	sent, dropped, refused, queued := f.agentOutcome(t, loop.Calls)
	total, kernel, unreclaimable := sampler.Stop()
	t.Logf("under %d calls in 5 s: peak charge %s (kernel %s, without page cache %s); DaemonSet request %s, limit %s; %.0f log records sent, %.0f dropped, %.0f refused, %.0f queued",
		loop.Calls, mib(total), mib(kernel), mib(unreclaimable), mib(request), mib(limit), sent, dropped, refused, queued)

	// Since Linux 6.4 memlock is what each map uses (map_mem_usage);
	// before, an estimate, which counts the maps that grow as keys come
	// at their full size.
	release, exact := kernelAtLeast(6, 4)
	floor := documented
	if exact {
		floor = max(maps, documented)
	}
	if idleKernel < 0 {
		t.Log("this kernel's memory.stat has no kernel field (Linux 5.18 added it): the maps' charge to the cgroup is not checked")
	} else if idleKernel < floor {
		t.Errorf("the cgroup's kernel memory (%s) is less than the agent's BPF maps (%s, documented %s): the maps are not charged to it", mib(idleKernel), mib(maps), mib(documented))
	}
	if !exact {
		t.Logf("Linux %s reports memlock as an estimate (before 6.4): %s, not compared with the documented %s", release, mib(maps), mib(documented))
	} else if maps < documented*8/10 || maps > documented*12/10 {
		t.Errorf("BPF maps at the defaults: %s, but config/deploy/daemonset.yaml documents %s", mib(maps), mib(documented))
	}
	if idle > request {
		t.Errorf("idle, the agent's cgroup is charged %s, above the DaemonSet's memory request %s", mib(idle), mib(request))
	}
	if total > limit {
		t.Errorf("under load, the agent's cgroup peaked at %s, above the DaemonSet's memory limit %s", mib(total), mib(limit))
	}
	if n := cg.ooms(); n > 0 {
		t.Errorf("the OOM killer killed %d times in the agent's cgroup", n)
	}
	if sent+dropped < float64(loop.Calls) || refused > 0 || queued > 0 {
		t.Errorf("the agent sent %.0f log records and dropped %.0f (%.0f refused, %.0f still queued), want each of the %d calls sent or dropped", sent, dropped, refused, queued, loop.Calls)
	}
}
