package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// deprecated finds what the collector logs about deprecated names and
// settings: component type aliases ("otlphttp" alias is deprecated; use
// "otlp_http" instead), config keys and feature gates. A word that starts
// so: the test's own temporary directories (TestShippedConfigsStartWithout
// Deprecations...) appear in the log where a component names its files.
var deprecated = regexp.MustCompile(`(?i)\bdeprecat`)

func deprecations(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if deprecated.MatchString(line) {
			out = append(out, line)
		}
	}
	return out
}

// TestShippedConfigsStartWithoutDeprecations starts every collector config
// under config/ (each different one once) and fails on every line of its
// log that speaks of something deprecated: a shipped config must use the
// names the v0.161 line prefers (otlp_http, otlp_grpc), which `validate`
// does not check, since the collector logs aliases only when it builds its
// pipelines. Listeners move to free loopback ports and output files to the
// test's directory; everything else is as shipped.
func TestShippedConfigsStartWithoutDeprecations(t *testing.T) {
	mremaptest.RequireBPF(t)
	bin := mremaptest.CollectorPath(t)
	configs := collectorConfigs(t)
	var names []string
	for name := range configs {
		names = append(names, name)
	}
	sort.Strings(names)
	started := map[string]string{}
	for _, name := range names {
		cfg := configs[name]
		for _, component := range notInDistribution[name] {
			without(t, cfg, "processors", component)
		}
		data, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if same, ok := started[string(data)]; ok {
			t.Logf("%s is %s", name, same)
			continue
		}
		started[string(data)] = name
		t.Run(strings.NewReplacer("/", "_", " ", "_").Replace(name), func(t *testing.T) {
			log := startShipped(t, bin, cfg)
			for _, line := range deprecations(log) {
				t.Errorf("%s logs at start: %s", name, line)
			}
		})
	}
}

// TestDeprecationsFound: the test above finds the warning of a deprecated
// alias, here otlphttp in a config with no mremap receiver.
func TestDeprecationsFound(t *testing.T) {
	bin := mremaptest.CollectorPath(t)
	var cfg map[string]any
	config := `
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:1
service:
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [otlphttp]
`
	if err := yaml.Unmarshal([]byte(config), &cfg); err != nil {
		t.Fatal(err)
	}
	found := deprecations(startShipped(t, bin, cfg))
	if len(found) != 1 || !strings.Contains(found[0], `"otlphttp" alias is deprecated; use "otlp_http" instead`) {
		t.Errorf("the otlphttp alias logs %q, want the alias warning", found)
	}
}

// startShipped starts the collector with cfg, its listeners and files
// moved, until it is ready, stops it, and returns its log.
func startShipped(t *testing.T, bin string, cfg map[string]any) string {
	dir := t.TempDir()
	relocate(t, cfg, dir)
	data, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", mremaptest.FreePort(t)) }
	env := []string{
		"MREMAP_OUTPUT_DIR=" + dir,
		"MREMAP_STORAGE_DIR=" + filepath.Join(dir, "queue"),
		"GATEWAY_ENDPOINT=" + free(),
		"HEALTH_CHECK_ENDPOINT=" + free(),
		"VICTORIALOGS_ENDPOINT=http://" + free(),
		"VICTORIAMETRICS_ENDPOINT=http://" + free(),
	}
	// The TLS files agent.yaml and gateway.yaml read (the gateway's serve
	// both: neither needs its peer to start).
	env = append(env, newPKI(t).env("gateway")...)
	c := runCollector(t, dir, env, bin, "--config", path)
	c.stop(t)
	return c.stderr.String()
}

// relocate moves what a config opens on the host into the test: every
// listener (the receivers' protocols, prometheus exporters, extensions, the
// collector's own telemetry) to a free port on 127.0.0.1, file exporters and
// storage directories to dir.
func relocate(t *testing.T, cfg map[string]any, dir string) {
	free := func() string { return fmt.Sprintf("127.0.0.1:%d", mremaptest.FreePort(t)) }
	section := func(kind string) map[string]any {
		m, _ := cfg[kind].(map[string]any)
		return m
	}
	for _, r := range section("receivers") {
		protocols := mapOf(mapOf(r)["protocols"])
		for name, p := range protocols {
			if m := mapOf(p); m != nil {
				m["endpoint"] = free()
			} else { // grpc: with the default endpoint
				protocols[name] = map[string]any{"endpoint": free()}
			}
		}
	}
	for id, e := range section("exporters") {
		m := mapOf(e)
		switch {
		case m == nil:
		case strings.HasPrefix(id, "prometheus"):
			m["endpoint"] = free()
		case strings.HasPrefix(id, "file"):
			m["path"] = filepath.Join(dir, filepath.Base(fmt.Sprint(m["path"])))
		}
	}
	for id, e := range section("extensions") {
		m := mapOf(e)
		switch {
		case m == nil:
		case strings.HasPrefix(id, "file_storage"):
			m["directory"] = filepath.Join(dir, "storage")
			if err := os.MkdirAll(filepath.Join(dir, "storage"), 0o700); err != nil {
				t.Fatal(err)
			}
		case m["endpoint"] != nil:
			m["endpoint"] = free()
		}
	}
	service := mapOf(cfg["service"])
	metrics := mapOf(mapOf(mapOf(service["telemetry"])["metrics"]))
	readers, _ := metrics["readers"].([]any)
	for _, r := range readers {
		if p := mapOf(mapOf(mapOf(mapOf(r)["pull"])["exporter"])["prometheus"]); p != nil {
			p["host"], p["port"] = "127.0.0.1", mremaptest.FreePort(t)
		}
	}
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}
