//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// plaintextOverride is the override that config/NAME's comment gives for
// plaintext: the arguments after "otelcol-mremap --config config/NAME" on
// the comment line under "Plaintext".
func plaintextOverride(t *testing.T, name string) []string {
	t.Helper()
	data, err := os.ReadFile(configPath(name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	prefix := "otelcol-mremap --config config/" + name + " "
	for i, line := range lines {
		if !strings.HasPrefix(line, "# Plaintext") {
			continue
		}
		for _, l := range lines[i:] {
			if _, rest, ok := strings.Cut(l, prefix); ok && strings.HasPrefix(l, "#") {
				return shellWords(t, rest)
			}
		}
	}
	t.Fatalf("config/%s gives no plaintext override (a comment under \"# Plaintext\" with %q)", name, prefix)
	return nil
}

// shellWords splits a command line as sh does for words and single quotes.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	quoted, inWord := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, inWord = !quoted, true
		case r == ' ' && !quoted:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
			}
			inWord = false
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestPlaintextOverride: plaintext between agent and gateway is possible
// only by the override each config's comment gives (docs/security.md), and
// with both overrides the helper's calls arrive.
func TestPlaintextOverride(t *testing.T) {
	mremaptest.RequireBPF(t)
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	agentOverride, gatewayOverride := plaintextOverride(t, "agent.yaml"), plaintextOverride(t, "gateway.yaml")
	t.Logf("agent: %q; gateway: %q", agentOverride, gatewayOverride)
	f := newFleet(t)
	gateway := f.startGateway(t, gatewayOverride...)
	defer gateway.stop(t)
	agent := f.startAgent(t, agentOverride...)
	defer agent.stop(t)
	probe := "tracepoint"
	if mremaptest.HasKprobes() {
		probe = "kprobe"
	}
	run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
	run.Made = mremaptest.RunHelperLinger(t, helper, time.Second)
	run.End = time.Now()
	f.checkKnownCalls(t, run, 30*time.Second)
}
