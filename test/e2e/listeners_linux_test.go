//go:build linux

package e2e

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// TestShippedListeners runs every shipped collector config file unchanged,
// each alone in a network namespace of its own, with only the variables
// that name its files set (TLS_*, MREMAP_OUTPUT_DIR, MREMAP_STORAGE_DIR),
// and compares the TCP sockets listening there with the listeners
// TestListenersDocumented reads from the config: a socket the config does
// not show (a component's hidden default) fails, and so does a listener
// that does not listen.
func TestShippedListeners(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: runs the collector")
	}
	bin := mremaptest.CollectorPath(t)
	certs := newPKI(t)
	configs := collectorConfigs(t)
	var names []string
	for name := range configs {
		if !strings.Contains(name, ":") && notInDistribution[name] == nil {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(strings.TrimPrefix(name, "config/"), func(t *testing.T) {
			cfg := configs[name]
			if receivers, _ := cfg["receivers"].(map[string]any); receivers["mremap"] != nil {
				mremaptest.RequireBPF(t)
			}
			ns := newNetns(t)
			cmd := ns.command(bin, "--config", name)
			cmd.Dir = mremaptest.ModuleRoot()
			cmd.Env = append(os.Environ(), certs.env("gateway")...)
			cmd.Env = append(cmd.Env, "MREMAP_OUTPUT_DIR="+t.TempDir(), "MREMAP_STORAGE_DIR="+t.TempDir())
			c := runCommand(t, t.TempDir(), cmd)
			defer c.stop(t)
			want := listeners(cfg, nil)
			got := listening(t, c.cmd.Process.Pid)
			for _, s := range got {
				found := false
				for _, l := range want {
					found = found || s.matches(l)
				}
				if !found {
					t.Errorf("%s listens on %v, which the config does not show (it shows %v)", name, s, want)
				}
			}
			for _, l := range want {
				found := false
				for _, s := range got {
					found = found || s.matches(l)
				}
				if !found {
					t.Errorf("%s: %s does not listen on %s (listening: %v)", name, l.component, l.address, got)
				}
			}
			t.Logf("%s listens on %v", name, got)
		})
	}
}
