//go:build linux

package tracer

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestKprobeEventsAndMisses(t *testing.T) {
	dir := t.TempDir()
	events := "p:kprobes/other do_sys_open\n" +
		"r4096:ebpf_00112233/_x64_sys_mremap __x64_sys_mremap\n" +
		"r4096:otelcol_mremap_0123456789abcdef/_x64_sys_mremap __x64_sys_mremap\n" +
		"r4096:otelcol_mremap_0123456789abcdef/_ia32_sys_mremap __ia32_sys_mremap\n"
	profile := "  other                 10      1\n" +
		"  _x64_sys_mremap       20      2\n" +
		"  _x64_sys_mremap       30      3\n" +
		"  _ia32_sys_mremap       5      4\n"
	if err := os.WriteFile(filepath.Join(dir, "kprobe_events"), []byte(events), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "kprobe_profile"), []byte(profile), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := kprobeEvents(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kprobes/other", "ebpf_00112233/_x64_sys_mremap",
		"otelcol_mremap_0123456789abcdef/_x64_sys_mremap", "otelcol_mremap_0123456789abcdef/_ia32_sys_mremap"}
	if len(got) != len(want) {
		t.Fatalf("kprobeEvents = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %q, want %q", i, got[i], want[i])
		}
	}

	created := newEvents(got[:2], got, "__x64_sys_mremap")
	if len(created) != 1 || created[0] != want[2] {
		t.Errorf("newEvents = %v, want [%s]", created, want[2])
	}

	// Only our events count, told apart from another tool's event of the
	// same name by their position.
	ours := map[string]bool{want[2]: true, want[3]: true}
	n, err := tracefsMissed(dir, ours)
	if err != nil || n != 7 {
		t.Errorf("tracefsMissed = %d, %v; want 7", n, err)
	}

	// A profile that does not line up with the events is reported.
	if _, err := missedOf(got, profile+"  extra 1 1\n", ours); !errors.Is(err, errProfileMismatch) {
		t.Errorf("missedOf with an extra line: %v", err)
	}
	if _, err := missedOf(got[1:], profile, ours); !errors.Is(err, errProfileMismatch) {
		t.Errorf("missedOf with shifted names: %v", err)
	}
}

func TestTracefsEventName(t *testing.T) {
	tests := map[string]string{
		"__x64_sys_mremap":   "_x64_sys_mremap",
		"__ia32_sys_mremap":  "_ia32_sys_mremap",
		"__arm64_sys_mremap": "_arm64_sys_mremap",
		"sys_mremap":         "sys_mremap",
		"do_foo.isra.0":      "do_foo_isra_0",
		"a--b":               "a_b",
	}
	for in, want := range tests {
		assert.Equal(t, want, tracefsEventName(in), "tracefsEventName(%q)", in)
	}
}
