//go:build linux

package tracer

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// kretprobes are our kretprobes' tracefs events, whose misses (returns the
// kernel could not observe: more calls in flight than maxactive) are
// counted as probe_missed. The one place they are counted is
// kprobe_profile, where every tracefs kprobe shows them on every kernel.
type kretprobes struct {
	tracefs string
	events  map[string]bool // "group/event"
}

func newKretprobes(tracefs string) *kretprobes {
	return &kretprobes{tracefs: tracefs, events: map[string]bool{}}
}

// missed sums the returns the kernel missed on our kretprobes.
func (k *kretprobes) missed() (uint64, error) {
	if len(k.events) == 0 {
		return 0, nil
	}
	return tracefsMissed(k.tracefs, k.events)
}

// tracefsGroupPrefix names the tracefs groups of our kprobe events
// ("otelcol_mremap_<random>"), so that ours can be told from other tools'.
const tracefsGroupPrefix = "otelcol_mremap"

// kprobeEvents lists the events of <tracefs>/kprobe_events as
// "group/event", in the file's order. Its lines look like
// "r4096:otelcol_mremap_0123456789abcdef/_x64_sys_mremap __x64_sys_mremap".
func kprobeEvents(tracefs string) ([]string, error) {
	f, err := os.Open(tracefs + "/kprobe_events")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var events []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		first, _, _ := strings.Cut(strings.TrimSpace(s.Text()), " ")
		_, name, ok := strings.Cut(first, ":")
		if !ok {
			continue
		}
		events = append(events, name)
	}
	return events, s.Err()
}

// removeStaleKprobes removes the kprobe events a collector left behind when
// it was killed before it could remove them (SIGKILL, OOM). An event still
// in use by a running receiver cannot be removed (EBUSY) and stays.
func removeStaleKprobes(tracefs string) {
	events, err := kprobeEvents(tracefs)
	if err != nil {
		return
	}
	for _, ev := range events {
		if !strings.HasPrefix(ev, tracefsGroupPrefix+"_") {
			continue
		}
		f, err := os.OpenFile(tracefs+"/kprobe_events", os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return
		}
		_, _ = f.WriteString("-:" + ev + "\n")
		f.Close()
	}
}

// tracefsEventName is the name cilium/ebpf gives the tracefs kprobe event
// it creates for symbol: every run of characters other than [a-zA-Z0-9]
// becomes one underscore, so __x64_sys_mremap is _x64_sys_mremap.
func tracefsEventName(symbol string) string {
	var b strings.Builder
	skip := false
	for _, c := range symbol {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
			skip = false
		} else if !skip {
			b.WriteByte('_')
			skip = true
		}
	}
	return b.String()
}

// newEvents returns the events of after that are not in before and are
// named for symbol: the ones an attach just created.
func newEvents(before, after []string, symbol string) []string {
	old := make(map[string]bool, len(before))
	for _, ev := range before {
		old[ev] = true
	}
	var out []string
	for _, ev := range after {
		group, name, _ := strings.Cut(ev, "/")
		if !old[ev] && strings.HasPrefix(group, tracefsGroupPrefix+"_") && name == tracefsEventName(symbol) {
			out = append(out, ev)
		}
	}
	return out
}

// errProfileMismatch: kprobe_events and kprobe_profile did not list the same
// events (one changed between the two reads).
var errProfileMismatch = errors.New("kprobe_events and kprobe_profile differ")

// missedOf sums the "missed" column of kprobe_profile for the events in
// ours. kprobe_profile names events without their group, but it lists them
// in the order kprobe_events does, which gives each line its group.
func missedOf(events []string, profile string, ours map[string]bool) (uint64, error) {
	var total uint64
	i := 0
	s := bufio.NewScanner(strings.NewReader(profile))
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) != 3 {
			continue
		}
		if i >= len(events) {
			return 0, errProfileMismatch
		}
		ev := events[i]
		i++
		if _, name, _ := strings.Cut(ev, "/"); name != fields[0] {
			return 0, errProfileMismatch
		}
		if !ours[ev] {
			continue
		}
		n, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse kprobe_profile line %q: %w", s.Text(), err)
		}
		total += n
	}
	if i != len(events) {
		return 0, errProfileMismatch
	}
	return total, s.Err()
}

// tracefsMissed reads the misses of our tracefs kprobe events, retrying
// when another tool changed the event list between the two reads.
func tracefsMissed(tracefs string, ours map[string]bool) (uint64, error) {
	var err error
	for try := 0; try < 5; try++ {
		var events []string
		events, err = kprobeEvents(tracefs)
		if err != nil {
			return 0, fmt.Errorf("read kretprobe misses: %w", err)
		}
		var profile []byte
		profile, err = os.ReadFile(tracefs + "/kprobe_profile")
		if err != nil {
			return 0, fmt.Errorf("read kretprobe misses: %w", err)
		}
		var n uint64
		n, err = missedOf(events, string(profile), ours)
		if !errors.Is(err, errProfileMismatch) {
			return n, err
		}
	}
	return 0, fmt.Errorf("read kretprobe misses: %w", err)
}
