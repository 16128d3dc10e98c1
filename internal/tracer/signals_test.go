//go:build linux

package tracer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// Each pattern a signal stands for raises it, in every probe mode and with
// records or without; the look-alikes raise none; the aggregates count
// them by signal.
func TestSignals(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	for _, probe := range probesToTest(t) {
		t.Run(string(probe), func(t *testing.T) {
			tr := newTracer(t, Options{Probe: probe, Events: true, RingBufferSize: 1 << 20, Filter: helperOnly()})
			made := mremaptest.RunHelperSignals(t, helper)
			calls := readCalls(t, tr, len(made))
			want := map[mremap.Signal]uint64{}
			for i, m := range made {
				e := mremaptest.SignalExpectationOf(t, m.Name)
				signals := mremaptest.RaisedHere(string(tr.Probe()), e.Signals)
				assert.Equal(t, signals, calls[i].Signals.String(), "%s: signals", m.Name)
				assert.Equal(t, e.Result, calls[i].Result(), "%s", m.Name)
				assert.Equal(t, e.Move, calls[i].Move.String(), "%s", m.Name)
				calls[i].Signals.Each(func(s mremap.Signal) { want[s]++ })
			}
			a, err := tr.ReadAggregates()
			require.NoError(t, err)
			got := map[mremap.Signal]uint64{}
			for _, s := range a.Signals {
				assert.Equal(t, mremaptest.Comm, s.Comm)
				got[s.Signal] += s.Count
			}
			assert.Equal(t, want, got, "signal counts")
			assert.Equal(t, Drops{}, a.Drops)
		})
	}
}

// Without the mapping lookup, the signals that need it are not raised, and
// the plan says so; the others still are.
func TestSignalsWithoutLookup(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	tr := newTracer(t, Options{Probe: ProbeAuto, SkipVMALookup: true, Filter: helperOnly()})
	require.Len(t, tr.Plan().Unraised, 1)
	off := tr.Plan().Unraised[0].Signals
	assert.Equal(t, "exec_move|write_exec|fixed_replace|special_move|unbacked_caller", off.String())
	made := mremaptest.RunHelperSignals(t, helper)
	want := map[mremap.Signal]uint64{}
	for _, m := range made {
		e := mremaptest.SignalExpectationOf(t, m.Name)
		for _, name := range splitSignals(mremaptest.RaisedHere(string(tr.Probe()), e.Signals)) {
			for s := mremap.Signal(0); int(s) < mremap.NumSignals; s++ {
				if s.String() == name && off&(1<<s) == 0 {
					want[s]++
				}
			}
		}
	}
	a, err := tr.ReadAggregates()
	require.NoError(t, err)
	got := map[mremap.Signal]uint64{}
	for _, s := range a.Signals {
		got[s.Signal] += s.Count
	}
	assert.Equal(t, want, got)
}

func splitSignals(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "|")
}

// A process at vm.max_map_count mappings that needs one more fails with
// ENOMEM, and the call raises map_count_limit; the tracer reads the sysctl
// again when it reads the aggregates, so a lower limit is seen: with the
// limit it read first, the same process would not be at it.
func TestMapCountLimit(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	limit, err := mremaptest.MaxMapCount()
	require.NoError(t, err)
	tr := newTracer(t, Options{Probe: ProbeAuto, Events: true, RingBufferSize: 1 << 16, Filter: helperOnly()})

	check := func(limit int) {
		t.Helper()
		made := mremaptest.RunHelperArgs(t, helper, "-map-count-limit")
		c := readCalls(t, tr, len(made))[0]
		assert.Equal(t, "ENOMEM", c.Result())
		assert.Equal(t, "map_count_limit", c.Signals.String())
		assert.GreaterOrEqual(t, int(c.MapCount), limit-3)
		assert.LessOrEqual(t, int(c.MapCount), limit+1)
	}
	check(limit)

	// A lower limit, for the second run (the host's processes have far
	// fewer mappings than this).
	lower := limit / 2
	writeSysctl(t, strconv.Itoa(lower))
	t.Cleanup(func() { writeSysctl(t, strconv.Itoa(limit)) })
	_, err = tr.ReadAggregates()
	require.NoError(t, err)
	check(lower)
}

func writeSysctl(t *testing.T, value string) {
	t.Helper()
	require.NoError(t, os.WriteFile("/proc/sys/vm/max_map_count", []byte(value), 0o644))
}

// What benign programs do raises nothing: glibc's realloc growing a large
// buffer, a Python bytearray growing, the Go helper's resizes in place.
func TestBenignProgramsRaiseNothing(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	dir := t.TempDir()
	programs := map[string][]string{"mremap-helper": {helper, "-loop", "100"}}
	if python, err := exec.LookPath("python3"); err == nil {
		programs["python3"] = []string{python, "-c", "b = bytearray()\nfor _ in range(64): b += b'x' * (1 << 20)"}
	} else {
		t.Log("python3 not found: the bytearray case is not run")
	}
	realloc := filepath.Join(dir, "realloc-grow")
	cc := exec.Command("gcc", "-O1", "-o", realloc, "-x", "c", "-")
	cc.Stdin = strings.NewReader(`#include <stdlib.h>
#include <string.h>
int main(void) {
	char *p = NULL;
	for (size_t n = 1 << 20; n <= (size_t)64 << 20; n += 1 << 20) {
		p = realloc(p, n);
		if (!p) return 1;
		memset(p + n - (1 << 20), 1, 1 << 20);
	}
	free(p);
	return 0;
}
`)
	if out, err := cc.CombinedOutput(); err == nil {
		programs["realloc-grow"] = []string{realloc}
	} else {
		t.Logf("gcc cannot build the realloc program (%v: %s): its case is not run", err, out)
	}
	var comms []string
	for comm := range programs {
		comms = append(comms, comm)
	}
	tr := newTracer(t, Options{Probe: ProbeAuto, Filter: Filter{Comms: comms}})
	for comm, argv := range programs {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", comm, err, out)
		}
	}
	a, err := tr.ReadAggregates()
	require.NoError(t, err)
	calls := map[string]uint64{}
	for _, c := range a.Calls {
		calls[c.Comm] += c.Count
	}
	for comm := range programs {
		assert.NotZero(t, calls[comm], "%s made no mremap call", comm)
	}
	assert.Empty(t, a.Signals, "signals raised by benign programs")
	t.Logf("calls by program: %v", calls)
}
