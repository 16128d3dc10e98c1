//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// probesToTest are the probe modes this kernel can run. A mode the kernel
// lacks is skipped with the reason, unless MREMAP_REQUIRE_PROBES names it
// (the kernel VM tests require kprobe).
func probesToTest(t *testing.T) []Probe {
	probes := []Probe{ProbeTracepoint}
	tracefs, err := tracefsPath()
	if err != nil {
		t.Fatal(err)
	}
	if f := probeFacts(tracefs); f.kprobes {
		probes = append(probes, ProbeKprobe)
	} else if os.Getenv("MREMAP_REQUIRE_PROBES") != "" {
		t.Errorf("kprobe mode required by MREMAP_REQUIRE_PROBES but unavailable: %s", f.kprobesWhy)
	} else {
		t.Logf("kprobe mode not tested on this kernel: %s", f.kprobesWhy)
	}
	return probes
}

func newTracer(t *testing.T, opts Options) *Tracer {
	t.Helper()
	tr, err := New(opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", opts, err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// readCalls reads n calls, failing the test if they do not arrive.
func readCalls(t *testing.T, tr *Tracer, n int) []mremap.Call {
	t.Helper()
	type result struct {
		c   mremap.Call
		err error
	}
	ch := make(chan result)
	go func() {
		for i := 0; i < n; i++ {
			c, err := tr.Read()
			ch <- result{c, err}
			if err != nil {
				return
			}
		}
	}()
	var calls []mremap.Call
	timeout := time.After(30 * time.Second)
	for len(calls) < n {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("Read after %d calls: %v", len(calls), r.err)
			}
			calls = append(calls, r.c)
		case <-timeout:
			tr.Close()
			t.Fatalf("got %d calls, want %d", len(calls), n)
		}
	}
	return calls
}

func helperOnly() Filter { return Filter{Comms: []string{mremaptest.Comm}} }

// pairingsToTest are the kernel's own choice of where calls in flight are
// kept (task storage, or on PREEMPT_RT kernels the LRU hash), then the LRU
// hash if the kernel chose task storage: both run the real probes here.
// Task storage is not forced on PREEMPT_RT kernels, where it loses calls.
func pairingsToTest() []Pairing {
	if preemptRT("/sys/kernel/realtime") {
		return []Pairing{pairingAuto}
	}
	return []Pairing{pairingAuto, PairingLRU}
}

func pairingName(p Pairing) string {
	return strings.ReplaceAll(p.String(), " ", "_")
}

// wantPairing is the pairing, and why, that opts get.
func wantPairing(opts Options) (Pairing, PairingReason) {
	switch {
	case opts.pairing == PairingLRU:
		return PairingLRU, PairingForced
	case preemptRT("/sys/kernel/realtime"):
		return PairingLRU, PairingRealtime
	}
	return PairingTaskStorage, PairingDefault
}

func TestCallsAndAggregates(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	for _, probe := range probesToTest(t) {
		t.Run(string(probe), func(t *testing.T) {
			for _, pairing := range pairingsToTest() {
				t.Run(pairingName(pairing), func(t *testing.T) {
					testCallsAndAggregates(t, helper, Options{Probe: probe, Events: true, RingBufferSize: 1 << 20, Filter: helperOnly(), pairing: pairing})
				})
			}
			// The maps as kernels before 6.1 get them.
			t.Run("preallocated", func(t *testing.T) {
				testCallsAndAggregates(t, helper, Options{Probe: probe, Events: true, RingBufferSize: 1 << 20, Filter: helperOnly(), preallocate: true})
			})
		})
	}
}

// testCallsAndAggregates checks every field of the helper's calls, and the
// aggregates they add up to, with no drops.
func testCallsAndAggregates(t *testing.T, helper string, opts Options) {
	probe := opts.Probe
	tr := newTracer(t, opts)
	if tr.Probe() != probe {
		t.Fatalf("Probe() = %s, want %s", tr.Probe(), probe)
	}
	if pairing, why := wantPairing(opts); tr.Plan().Pairing != pairing || tr.Plan().PairingReason != why {
		t.Errorf("pairing %v (%v), want %v (%v)", tr.Plan().Pairing, tr.Plan().PairingReason, pairing, why)
	}
	// The unused map is the smallest the kernel creates.
	lru := tr.Plan().Pairing == PairingLRU
	if info, err := tr.objs.maps.InflightLru.Info(); err != nil {
		t.Error(err)
	} else if lru && info.MaxEntries != 10240 || !lru && info.MaxEntries != 1 {
		t.Errorf("inflight_lru has %d entries (LRU pairing %v)", info.MaxEntries, lru)
	}
	if info, err := tr.objs.maps.Inflight.Info(); err != nil {
		t.Error(err)
	} else if lru && info.Type != ebpf.Array || !lru && info.Type != ebpf.TaskStorage {
		t.Errorf("inflight is a %v map (LRU pairing %v)", info.Type, lru)
	}
	checkPreallocation(t, tr)
	before := time.Now()
	made := mremaptest.RunHelper(t, helper)
	after := time.Now()
	calls := readCalls(t, tr, len(made))

	for i, m := range made {
		c := calls[i]
		want := mremaptest.ExpectationOf(t, m.Name)
		if c.Process.PID != m.PID || c.TID != m.TID {
			t.Errorf("%s: pid/tid %d/%d, want %d/%d", m.Name, c.Process.PID, c.TID, m.PID, m.TID)
		}
		if c.Process.Comm != mremaptest.Comm {
			t.Errorf("%s: comm %q", m.Name, c.Process.Comm)
		}
		if c.Process.PPID != uint32(os.Getpid()) {
			t.Errorf("%s: ppid %d, want %d", m.Name, c.Process.PPID, os.Getpid())
		}
		if c.Process.UID != uint32(os.Getuid()) {
			t.Errorf("%s: uid %d, want %d", m.Name, c.Process.UID, os.Getuid())
		}
		if c.OldAddress != m.OldAddress || c.OldSize != m.OldSize || c.NewSize != m.NewSize ||
			c.Flags != m.Flags || c.NewAddress != m.NewAddress || c.Return != m.Return {
			t.Errorf("%s: call %+v, helper made %+v", m.Name, c, m)
		}
		if c.Result() != want.Result || c.Resize.String() != want.Resize || c.Move.String() != want.Move ||
			mremap.FlagNames(c.Flags) != want.FlagNames || c.SizeDelta() != want.SizeDelta {
			t.Errorf("%s: result %s resize %s move %s flags %q delta %d, want %+v", m.Name,
				c.Result(), c.Resize, c.Move, mremap.FlagNames(c.Flags), c.SizeDelta(), want)
		}
		// The mapping at old_address, as /proc/self/maps showed it
		// to the helper just before the call.
		wantVMA := mremap.VMA{}
		if m.Maps != nil {
			wantVMA = mremap.VMA{Found: true, Permissions: m.Maps.Permissions, Path: m.Maps.Path,
				Count: mremaptest.MappingsSpannedHere(string(probe), m.Maps.Count)}
		}
		if c.VMA != wantVMA {
			t.Errorf("%s: mapping %+v, /proc/self/maps showed %+v", m.Name, c.VMA, wantVMA)
		}
		if c.Process.StartTime == 0 {
			t.Errorf("%s: process start time 0", m.Name)
		}
		if got, want := c.Signals.String(), mremaptest.RaisedHere(string(probe), want.Signals); got != want {
			t.Errorf("%s: signals %q, want %q", m.Name, got, want)
		}
		// The helper's mappings: a few dozen, and they do not vary much.
		if c.MapCount < 10 || c.MapCount > 1000 {
			t.Errorf("%s: map count %d", m.Name, c.MapCount)
		}
		// The clock conversion is exact to well under a millisecond.
		slack := 50 * time.Millisecond
		if c.Enter.Before(before.Add(-slack)) || c.Exit.After(after.Add(slack)) || c.Exit.Before(c.Enter) {
			t.Errorf("%s: enter %v exit %v, helper ran from %v to %v", m.Name, c.Enter, c.Exit, before, after)
		}
		if c.Duration <= 0 || c.Duration != c.Exit.Sub(c.Enter) {
			t.Errorf("%s: duration %v, exit-enter %v", m.Name, c.Duration, c.Exit.Sub(c.Enter))
		}
	}

	a, err := tr.ReadAggregates()
	if err != nil {
		t.Fatal(err)
	}
	checkAggregates(t, a)
}

// checkAggregates compares the kernel's aggregates with those the helper's
// calls must produce, counted from the hand-written expectations.
func checkAggregates(t *testing.T, a *Aggregates) {
	t.Helper()
	type callKey struct{ resize, move, result string }
	wantCalls := map[callKey]uint64{}
	type durKey struct{ move, result string }
	wantDur := map[durKey]uint64{}
	wantSize := map[string][2]uint64{} // resize -> count, sum
	for _, e := range mremaptest.Expected {
		wantCalls[callKey{e.Resize, e.Move, e.Result}]++
		wantDur[durKey{e.Move, e.Result}]++
		if e.Result == "ok" && e.Resize != "none" {
			d := e.SizeDelta
			if d < 0 {
				d = -d
			}
			w := wantSize[e.Resize]
			wantSize[e.Resize] = [2]uint64{w[0] + 1, w[1] + uint64(d)}
		}
	}

	gotCalls := map[callKey]uint64{}
	for _, c := range a.Calls {
		if c.Comm != mremaptest.Comm {
			t.Errorf("calls of comm %q despite the filter", c.Comm)
		}
		gotCalls[callKey{c.Resize.String(), c.Move.String(), c.Result()}] += c.Count
	}
	if !mapsEqual(gotCalls, wantCalls) {
		t.Errorf("calls %v, want %v", gotCalls, wantCalls)
	}

	gotDur := map[durKey]uint64{}
	for _, d := range a.Durations {
		gotDur[durKey{d.Move.String(), d.Result()}] += d.Count()
		if d.Sum == 0 {
			t.Errorf("duration histogram %v/%v has sum 0", d.Move, d.Result())
		}
	}
	if !mapsEqual(gotDur, wantDur) {
		t.Errorf("durations %v, want %v", gotDur, wantDur)
	}

	gotSize := map[string][2]uint64{}
	for _, s := range a.SizeDeltas {
		if s.Comm != mremaptest.Comm {
			t.Errorf("size deltas of comm %q despite the filter", s.Comm)
		}
		// Every delta is one page: 4096 = 2^12 is in slot 12, (2^11, 2^12].
		if s.Counts[12] != s.Count() {
			t.Errorf("size deltas %v: slots %v, want all in slot 12", s.Resize, s.Counts)
		}
		gotSize[s.Resize.String()] = [2]uint64{s.Count(), s.Sum}
	}
	if !mapsEqual(gotSize, wantSize) {
		t.Errorf("size deltas (count, sum) %v, want %v", gotSize, wantSize)
	}

	if a.Drops != (Drops{}) {
		t.Errorf("drops %+v, want none", a.Drops)
	}
}

func mapsEqual[K comparable, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestFilters(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	total := uint64(len(mremaptest.Expected))
	var resizes, failures int
	for _, e := range mremaptest.Expected {
		if e.SizeDelta != 0 {
			resizes++
		}
		if e.Result != "ok" {
			failures++
		}
	}
	tests := []struct {
		name       string
		filter     Filter
		wantEvents int
		wantCalls  uint64
	}{
		{"other pid", Filter{PIDs: []uint32{1}, Comms: []string{mremaptest.Comm}}, 0, 0},
		{"other comm", Filter{Comms: []string{"no-such-comm"}}, 0, 0},
		{"excluded comm", Filter{Comms: []string{mremaptest.Comm}, ExcludeComms: []string{mremaptest.Comm}}, 0, 0},
		// Every call of the helper resizes by one page or not at all.
		{"min size delta above", Filter{Comms: []string{mremaptest.Comm}, MinSizeDelta: 8192}, 0, 0},
		{"min size delta one page", Filter{Comms: []string{mremaptest.Comm}, MinSizeDelta: 4096}, resizes, uint64(resizes)},
		{"errors only", Filter{Comms: []string{mremaptest.Comm}, ErrorsOnly: true}, failures, total},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracer(t, Options{Probe: ProbeAuto, Events: true, RingBufferSize: 1 << 16, Filter: tt.filter})
			mremaptest.RunHelper(t, helper)
			calls := readCalls(t, tr, tt.wantEvents)
			for _, c := range calls {
				if tt.filter.ErrorsOnly && c.OK() {
					t.Errorf("ErrorsOnly delivered a successful call %s", c.String())
				}
			}
			// Nothing more arrives: a marker call from another process
			// would be filtered too, so check the ring buffer is empty.
			if n := tr.reader.AvailableBytes(); n != 0 {
				t.Errorf("%d more bytes in the ring buffer", n)
			}
			a, err := tr.ReadAggregates()
			if err != nil {
				t.Fatal(err)
			}
			var n uint64
			for _, c := range a.Calls {
				n += c.Count
			}
			if n != tt.wantCalls {
				t.Errorf("calls counted %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

// The cgroup filter keeps the calls of tasks in the cgroup and below it:
// of two helpers, one in a child of the filtered cgroup and one outside,
// only the first is seen.
func TestCgroupFilter(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	inside := mremaptest.NewCgroup(t, "filter/child")
	id, err := CgroupID(filepath.Dir(inside))
	if err != nil {
		t.Fatal(err)
	}
	for _, probe := range probesToTest(t) {
		t.Run(string(probe), func(t *testing.T) {
			tr := newTracer(t, Options{Probe: probe, Events: true, RingBufferSize: 1 << 20,
				Filter: Filter{Comms: []string{mremaptest.Comm}, CgroupIDs: []uint64{id}}})
			mremaptest.RunHelper(t, helper)
			made := mremaptest.RunHelperInCgroup(t, helper, inside)
			mremaptest.RunHelper(t, helper)
			calls := readCalls(t, tr, len(made))
			for i, c := range calls {
				if c.Process.PID != made[i].PID || c.OldAddress != made[i].OldAddress {
					t.Errorf("call %d: pid %d %s, want the helper in the cgroup (pid %d)", i, c.Process.PID, c.String(), made[i].PID)
				}
			}
			if n := tr.reader.AvailableBytes(); n != 0 {
				t.Errorf("%d more bytes in the ring buffer: calls from outside the cgroup", n)
			}
			a, err := tr.ReadAggregates()
			if err != nil {
				t.Fatal(err)
			}
			checkAggregates(t, a)
		})
	}
}

func TestCgroupID(t *testing.T) {
	mremaptest.RequireBPF(t)
	dir := mremaptest.NewCgroup(t, "id")
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	rel := mremaptest.CgroupPath(t, dir)
	for _, path := range []string{dir, rel} {
		id, err := CgroupID(path)
		if err != nil || id != st.Ino {
			t.Errorf("CgroupID(%q) = %d, %v; want the inode %d", path, id, err, st.Ino)
		}
	}
	for _, path := range []string{"/no/such/cgroup", "/proc", "relative/path", filepath.Join(dir, "cgroup.procs")} {
		if _, err := CgroupID(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("CgroupID(%q): %v, want an error naming the path", path, err)
		}
	}
}

// The path of a file-backed mapping crosses a mount point: the helper maps
// a file on a tmpfs mounted for the test (whether or not the machine has
// /dev/shm), and the kernel's path is the whole path, as /proc/PID/maps
// shows it.
func TestVMAPathCrossesMount(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	for _, probe := range probesToTest(t) {
		t.Run(string(probe), func(t *testing.T) {
			tr := newTracer(t, Options{Probe: probe, Events: true, RingBufferSize: 1 << 20, Filter: helperOnly()})
			made := mremaptest.RunHelperEnv(t, helper, []string{mremaptest.MapDirEnv + "=" + dir})
			calls := readCalls(t, tr, len(made))
			found := false
			for i, m := range made {
				if m.Name != "file_shared_readonly" {
					continue
				}
				found = true
				if m.Maps == nil || filepath.Dir(m.Maps.Path) != dir {
					t.Fatalf("%s: /proc/self/maps showed %+v, want a file in %s", m.Name, m.Maps, dir)
				}
				want := mremap.VMA{Found: true, Permissions: "r--s", Path: m.Maps.Path, Count: mremaptest.MappingsSpannedHere(string(tr.Probe()), 1)}
				if calls[i].VMA != want {
					t.Errorf("%s: mapping %+v, want %+v", m.Name, calls[i].VMA, want)
				}
			}
			if !found {
				t.Fatal("the helper made no file_shared_readonly call")
			}
		})
	}
}

// TestSkipVMALookup: without the lookup, no call carries a mapping.
func TestSkipVMALookup(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	tr := newTracer(t, Options{Probe: ProbeAuto, Events: true, RingBufferSize: 1 << 20, SkipVMALookup: true, Filter: helperOnly()})
	made := mremaptest.RunHelper(t, helper)
	for i, c := range readCalls(t, tr, len(made)) {
		if c.VMA != (mremap.VMA{}) {
			t.Errorf("%s: mapping %+v without the lookup", made[i].Name, c.VMA)
		}
	}
}

// countReads reads calls until ErrClosed and sends how many it read.
func countReads(t *testing.T, tr *Tracer) <-chan uint64 {
	done := make(chan uint64, 1)
	go func() {
		var n uint64
		for {
			_, err := tr.Read()
			if errors.Is(err, ErrClosed) {
				done <- n
				return
			}
			if err != nil {
				t.Errorf("Read after %d calls: %v", n, err)
				done <- n
				return
			}
			n++
		}
	}()
	return done
}

// callsCounted sums the calls counted over every key.
func callsCounted(a *Aggregates) uint64 {
	var n uint64
	for _, c := range a.Calls {
		n += c.Count
	}
	return n
}

// A one-page ring buffer and a burst of 200,000 calls: every call is either delivered or counted as ring_buffer_full, and the
// aggregates count every call whatever the ring buffer did.
func TestFullRingBufferCountsWhatItDrops(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	tr := newTracer(t, Options{Probe: ProbeAuto, Events: true, RingBufferSize: os.Getpagesize(), Filter: helperOnly()})
	// The reader starts only after the burst, so the ring buffer overflows
	// however fast this machine reads.
	burst := mremaptest.RunLoop(t, helper, 100_000, 0)
	if burst.Calls != 200_000 {
		t.Fatalf("the helper made %d calls, want 200000", burst.Calls)
	}
	// Detach, then read what is left: Read returns ErrClosed at the end.
	if err := tr.Stop(); err != nil {
		t.Fatal(err)
	}
	delivered := <-countReads(t, tr)
	a, err := tr.ReadAggregates()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d calls in %v: %d delivered, %d ring_buffer_full", burst.Calls, burst.Elapsed, delivered, a.Drops.RingBufferFull)
	if a.Drops.RingBufferFull == 0 {
		t.Errorf("no ring_buffer_full drops with a one-page ring buffer and %d calls", burst.Calls)
	}
	if delivered+a.Drops.RingBufferFull != burst.Calls {
		t.Errorf("delivered %d + ring_buffer_full %d = %d, want %d calls", delivered, a.Drops.RingBufferFull,
			delivered+a.Drops.RingBufferFull, burst.Calls)
	}
	if n := callsCounted(a); n != burst.Calls {
		t.Errorf("calls counted %d, want all %d: the aggregates must not depend on the ring buffer", n, burst.Calls)
	}
	if other := (Drops{RingBufferFull: a.Drops.RingBufferFull}); a.Drops != other {
		t.Errorf("drops %+v, want only ring_buffer_full", a.Drops)
	}
}

// MaxEventsPerSecond 1000 over a burst of a few seconds: about 1000 a
// second are delivered and every other call is counted as rate_limited.
func TestRateLimitCountsWhatItDrops(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	const perSecond = 1000
	tr := newTracer(t, Options{Probe: ProbeAuto, Events: true, RingBufferSize: 1 << 20, MaxEventsPerSecond: perSecond, Filter: helperOnly()})
	read := countReads(t, tr)
	burst := mremaptest.RunLoop(t, helper, 0, 3*time.Second)
	if err := tr.Stop(); err != nil {
		t.Fatal(err)
	}
	delivered := <-read
	a, err := tr.ReadAggregates()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d calls in %v: %d delivered, %d rate_limited", burst.Calls, burst.Elapsed, delivered, a.Drops.RateLimited)
	if delivered+a.Drops.RateLimited != burst.Calls {
		t.Errorf("delivered %d + rate_limited %d = %d, want %d calls", delivered, a.Drops.RateLimited,
			delivered+a.Drops.RateLimited, burst.Calls)
	}
	if n := callsCounted(a); n != burst.Calls {
		t.Errorf("calls counted %d, want all %d", n, burst.Calls)
	}
	// The kernel's window is one second from the first call past the last
	// window, so a burst of d seconds spans ceil(d) windows, all full but
	// the last: between floor(d) and ceil(d) windows' worth. One window of
	// slack on each side covers the helper's start and stop.
	secs := burst.Elapsed.Seconds()
	lo, hi := uint64(max(math.Floor(secs)-1, 1))*perSecond, uint64(math.Ceil(secs)+1)*perSecond
	if delivered < lo || delivered > hi {
		t.Errorf("delivered %d over a burst of %v at %d/s, want %d to %d", delivered, burst.Elapsed, perSecond, lo, hi)
	}
	if other := (Drops{RateLimited: a.Drops.RateLimited}); a.Drops != other {
		t.Errorf("drops %+v, want only rate_limited", a.Drops)
	}
}

func TestNoEventsWithoutLogs(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	tr := newTracer(t, Options{Probe: ProbeAuto, Filter: helperOnly()})
	mremaptest.RunHelper(t, helper)
	if _, err := tr.Read(); !errors.Is(err, ErrClosed) {
		t.Errorf("Read without Events: %v, want ErrClosed", err)
	}
	if n := tr.objs.maps.Events.MaxEntries(); n != uint32(os.Getpagesize()) {
		t.Errorf("ring buffer of %d bytes without events", n)
	}
	a, err := tr.ReadAggregates()
	if err != nil {
		t.Fatal(err)
	}
	checkAggregates(t, a)
}

func TestAutoSaysWhy(t *testing.T) {
	mremaptest.RequireBPF(t)
	tr := newTracer(t, Options{Probe: ProbeAuto})
	p := tr.Plan()
	t.Logf("auto: %s (%+v)", tr.Probe(), p)
	if p.ProbeChoice != ChoiceAuto || p.KprobesWhy == "" {
		t.Errorf("plan %+v: no reason for the probe choice", p)
	}
}

func TestCloseDetachesEverything(t *testing.T) {
	mremaptest.RequireBPF(t)
	tr, err := New(Options{Probe: ProbeAuto, Events: true, RingBufferSize: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for _, p := range tr.objs.programs {
		info, err := p.Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		ids = append(ids, uint32(id))
	}
	if len(ids) < 2 {
		t.Fatalf("program ids %v", ids)
	}
	done := make(chan error)
	go func() { _, err := tr.Read(); done <- err }()
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Read after Close: %v", err)
	}
	for _, id := range ids {
		if loaded(id) {
			t.Errorf("program %d still loaded after Close", id)
		}
	}
}

func TestStopDeliversWhatIsLeft(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	tr := newTracer(t, Options{Probe: ProbeAuto, Events: true, RingBufferSize: 1 << 16, Filter: helperOnly()})
	made := mremaptest.RunHelper(t, helper)
	if err := tr.Stop(); err != nil {
		t.Fatal(err)
	}
	calls := readCalls(t, tr, len(made))
	if _, err := tr.Read(); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after the last record of a stopped tracer: %v, want ErrClosed", err)
	}
	if calls[len(calls)-1].Return != made[len(made)-1].Return {
		t.Errorf("last call %v, want %+v", calls[len(calls)-1], made[len(made)-1])
	}
}

// A collector killed without a shutdown leaves its tracefs kretprobes
// behind; the next start removes them, and counts only its own misses.
func TestStaleKprobesRemoved(t *testing.T) {
	mremaptest.RequireBPF(t)
	if !mremaptest.HasKprobes() {
		if os.Getenv("MREMAP_REQUIRE_PROBES") != "" {
			t.Fatal("kprobes required by MREMAP_REQUIRE_PROBES but unavailable")
		}
		t.Skip("skipped: this kernel has no kprobes (the kernel VM suite runs it)")
	}
	tracefs, err := tracefsPath()
	if err != nil {
		t.Fatal(err)
	}
	native, _ := syscallSymbols()
	stale := tracefsGroupPrefix + "_00000000deadbeef/" + tracefsEventName(native)
	f, err := os.OpenFile(tracefs+"/kprobe_events", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.WriteString("r:" + stale + " " + native + "\n")
	f.Close()
	if err != nil {
		t.Fatalf("create a stale kretprobe event: %v", err)
	}
	tr := newTracer(t, Options{Probe: ProbeKprobe, Filter: helperOnly()})
	events, err := kprobeEvents(tracefs)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range events {
		if ev == stale {
			t.Errorf("stale event %s still registered after start: %v", stale, events)
		}
	}
	if len(tr.kretprobes.events) == 0 {
		t.Errorf("the tracer did not identify its kretprobe events among %v", events)
	}
	if _, err := tr.ReadAggregates(); err != nil {
		t.Errorf("ReadAggregates: %v", err)
	}
}

// Calls from a renamed thread are seen under the process's comm, so the
// filters and the process name of a Java or browser process
// cover all its threads.
func TestThreadsSeenUnderProcessComm(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	for _, probe := range probesToTest(t) {
		t.Run(string(probe), func(t *testing.T) {
			tr := newTracer(t, Options{Probe: probe, Events: true, RingBufferSize: 1 << 16, Filter: helperOnly()})
			made := mremaptest.RunHelperArgs(t, helper, "-thread", "mremap-worker")
			calls := readCalls(t, tr, len(made))
			for i, c := range calls {
				if c.Process.Comm != mremaptest.Comm || c.TID != made[i].TID || c.TID == c.Process.PID {
					t.Errorf("%s: comm %q tid %d pid %d; want comm %q from thread %d", made[i].Name, c.Process.Comm, c.TID,
						c.Process.PID, mremaptest.Comm, made[i].TID)
				}
			}
		})
	}
}

// A truncated record in the ring buffer is skipped and counted as
// malformed_record, and the reader goes on. The kernel program never
// writes one, so a second program of our own writes it into the same ring
// buffer (bpf_ringbuf_output from a socket filter run with
// BPF_PROG_TEST_RUN), followed by a real call of the helper.
func TestMalformedRecordCountedAndSkipped(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	tr := newTracer(t, Options{Probe: ProbeAuto, Events: true, RingBufferSize: 1 << 16, Filter: helperOnly()})

	writer, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SocketFilter,
		License: "GPL",
		Instructions: asm.Instructions{
			// An 8-byte record: far shorter than struct event.
			asm.Mov.Imm(asm.R1, 0x2a),
			asm.StoreMem(asm.R10, -8, asm.R1, asm.DWord),
			asm.LoadMapPtr(asm.R1, tr.objs.maps.Events.FD()),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, -8),
			asm.Mov.Imm(asm.R3, 8),
			asm.Mov.Imm(asm.R4, 0),
			asm.FnRingbufOutput.Call(),
			asm.Mov.Imm(asm.R0, 0),
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatalf("load the program that writes a short record: %v", err)
	}
	defer writer.Close()
	if _, err := writer.Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil {
		t.Fatalf("run the program that writes a short record: %v", err)
	}

	made := mremaptest.RunHelper(t, helper)
	calls := readCalls(t, tr, len(made))
	for i, c := range calls {
		if c.Return != made[i].Return || c.OldAddress != made[i].OldAddress {
			t.Errorf("call %d after the short record: %+v, want %+v", i, c, made[i])
		}
	}
	a, err := tr.ReadAggregates()
	if err != nil {
		t.Fatal(err)
	}
	if a.Drops != (Drops{MalformedRecord: 1}) {
		t.Errorf("drops %+v, want one malformed_record", a.Drops)
	}
}

// checkPreallocation checks that the aggregation hashes are preallocated
// as the plan says: where the kernel lacks its BPF memory allocator
// (before 6.1), or where a test asks.
func checkPreallocation(t *testing.T, tr *Tracer) {
	t.Helper()
	for name, m := range map[string]*ebpf.Map{"calls_by_key": tr.objs.maps.CallsByKey, "signal_counts": tr.objs.maps.SignalCounts} {
		info, err := m.Info()
		if err != nil {
			t.Error(err)
			continue
		}
		if onDemand := info.Flags&unix.BPF_F_NO_PREALLOC != 0; onDemand == tr.Plan().PreallocatedAggregates {
			t.Errorf("%s has flags %#x, want preallocated %v", name, info.Flags, tr.Plan().PreallocatedAggregates)
		}
		if fdinfo, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", m.FD())); err == nil {
			_, memlock, _ := strings.Cut(string(fdinfo), "memlock:")
			memlock, _, _ = strings.Cut(strings.TrimSpace(memlock), "\n")
			t.Logf("%s: %d entries, memlock %s bytes (preallocated %v)", name, info.MaxEntries, memlock, tr.Plan().PreallocatedAggregates)
		}
	}
}
