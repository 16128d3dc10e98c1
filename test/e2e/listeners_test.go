package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// listener is an address a collector config makes the collector listen on.
type listener struct {
	component string // receivers::otlp::protocols::grpc, extensions::health_check, ...
	address   string // host:port, ${env:...} resolved
}

// defaultEndpoints are the components' own defaults (v0.161.0), for a
// config that does not set an endpoint.
var defaultEndpoints = map[string]string{
	"receivers::otlp::protocols::grpc": "localhost:4317",
	"receivers::otlp::protocols::http": "localhost:4318",
	"extensions::health_check":         "localhost:13133",
	"extensions::pprof":                "localhost:1777",
	"service::telemetry":               "localhost:8888",
}

var envRef = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// resolve replaces ${env:NAME:-default} with env[NAME] where env sets it,
// else with the default the config gives.
func resolve(s string, env map[string]string) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string {
		sub := envRef.FindStringSubmatch(m)
		if v, ok := env[sub[1]]; ok {
			return v
		}
		return sub[2]
	})
}

// listeners lists what cfg listens on: the receivers and exporters of its
// pipelines, its service extensions, and its own telemetry's pull readers.
func listeners(cfg map[string]any, env map[string]string) []listener {
	service, _ := cfg["service"].(map[string]any)
	used := map[string]bool{}
	pipelines, _ := service["pipelines"].(map[string]any)
	for _, p := range pipelines {
		p, _ := p.(map[string]any)
		for _, kind := range []string{"receivers", "exporters"} {
			list, _ := p[kind].([]any)
			for _, id := range list {
				used[kind+"::"+fmt.Sprint(id)] = true
			}
		}
	}
	exts, _ := service["extensions"].([]any)
	for _, id := range exts {
		used["extensions::"+fmt.Sprint(id)] = true
	}
	var out []listener
	add := func(component string, endpoint any) {
		typ, _, _ := strings.Cut(component, "/")
		if s, ok := endpoint.(string); ok && s != "" {
			out = append(out, listener{component, resolve(s, env)})
		} else if d, ok := defaultEndpoints[typ]; ok {
			out = append(out, listener{component, d})
		}
	}
	for _, kind := range []string{"receivers", "exporters", "extensions"} {
		section, _ := cfg[kind].(map[string]any)
		for id, c := range section {
			name := kind + "::" + id
			if !used[name] {
				continue
			}
			c, _ := c.(map[string]any)
			if protocols, ok := c["protocols"].(map[string]any); ok {
				for proto, pc := range protocols {
					pc, _ := pc.(map[string]any)
					add(name+"::protocols::"+proto, pc["endpoint"])
				}
				continue
			}
			// An exporter's endpoint is where it sends, but the prometheus
			// exporter's is where it serves.
			typ, _, _ := strings.Cut(id, "/")
			_, hasEndpoint := c["endpoint"]
			if kind == "exporters" && typ == "prometheus" || kind != "exporters" && (hasEndpoint || defaultEndpoints[kind+"::"+typ] != "") {
				add(name, c["endpoint"])
			}
		}
	}
	return append(out, telemetryListeners(service, env)...)
}

// telemetryListeners: the collector's own metrics, served by pull readers
// (by default one on localhost:8888), unless the level is none.
func telemetryListeners(service map[string]any, env map[string]string) []listener {
	telemetry, _ := service["telemetry"].(map[string]any)
	metrics, _ := telemetry["metrics"].(map[string]any)
	if metrics["level"] == "none" {
		return nil
	}
	readers, ok := metrics["readers"].([]any)
	if !ok {
		return []listener{{"service::telemetry", defaultEndpoints["service::telemetry"]}}
	}
	var out []listener
	for _, r := range readers {
		data, _ := yaml.Marshal(r)
		var reader struct {
			Pull struct {
				Exporter struct {
					Prometheus *struct {
						Host string `yaml:"host"`
						Port any    `yaml:"port"`
					} `yaml:"prometheus"`
				} `yaml:"exporter"`
			} `yaml:"pull"`
		}
		if yaml.Unmarshal(data, &reader) == nil && reader.Pull.Exporter.Prometheus != nil {
			p := reader.Pull.Exporter.Prometheus
			out = append(out, listener{"service::telemetry", resolve(net.JoinHostPort(p.Host, fmt.Sprint(p.Port)), env)})
		}
	}
	return out
}

// loopback tells whether a listener's host is this host's loopback only.
func loopback(address string) bool {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// documentedListeners reads the listener table of docs/security.md: rows
// of `config`, `component`, `address`, why. A config's ConfigMap copy is
// named as in collectorConfigs.
func documentedListeners(t *testing.T) map[string]map[listener]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(mremaptest.ModuleRoot(), "docs", "security.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[listener]string{}
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 6 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`config/") {
			continue
		}
		cell := func(i int) string { return strings.Trim(strings.TrimSpace(cells[i]), "`") }
		if out[cell(1)] == nil {
			out[cell(1)] = map[listener]string{}
		}
		out[cell(1)][listener{cell(2), cell(3)}] = cell(4)
	}
	return out
}

// daemonSetEnv is the agent container's environment in the DaemonSet,
// which the ConfigMap's config reads.
func daemonSetEnv(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, f := range configFiles(t) {
		for _, doc := range f.docs {
			if doc["kind"] != "DaemonSet" {
				continue
			}
			data, _ := yaml.Marshal(doc)
			var ds struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Env []struct {
									Name  string `yaml:"name"`
									Value string `yaml:"value"`
								} `yaml:"env"`
							} `yaml:"containers"`
						} `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			}
			if err := yaml.Unmarshal(data, &ds); err != nil {
				t.Fatal(err)
			}
			for _, c := range ds.Spec.Template.Spec.Containers {
				for _, e := range c.Env {
					env[e.Name] = e.Value
				}
			}
		}
	}
	return env
}

// TestListenersDocumented reads every shipped collector config (and the
// DaemonSet's copy of the agent's, with the DaemonSet's environment) and
// fails on a listener that docs/security.md does not list with why it is
// there, on one bound beyond loopback that it does not list, and on a
// listed one the config no longer has.
func TestListenersDocumented(t *testing.T) {
	docs := documentedListeners(t)
	configs := collectorConfigs(t)
	names := make([]string, 0, len(configs))
	for name := range configs {
		names = append(names, name)
	}
	sort.Strings(names)
	dsEnv := daemonSetEnv(t)
	for _, name := range names {
		var env map[string]string
		if strings.HasPrefix(name, "config/deploy/daemonset.yaml") {
			env = dsEnv
		}
		got := listeners(configs[name], env)
		for _, l := range got {
			why, ok := docs[name][l]
			switch {
			case !ok && !loopback(l.address):
				t.Errorf("%s: %s listens on %s, beyond loopback, and docs/security.md does not list it", name, l.component, l.address)
			case !ok:
				t.Errorf("%s: %s listens on %s; docs/security.md does not list it", name, l.component, l.address)
			case strings.TrimSpace(why) == "":
				t.Errorf("docs/security.md lists %s %s %s without saying why", name, l.component, l.address)
			}
		}
		for l := range docs[name] {
			if !slices.Contains(got, l) {
				t.Errorf("docs/security.md lists %s %s on %s, which the config does not have (it has %v)", name, l.component, l.address, got)
			}
		}
		t.Logf("%s: %v", name, got)
	}
	for name := range docs {
		if configs[name] == nil {
			t.Errorf("docs/security.md lists listeners of %s, which is not a shipped collector config", name)
		}
	}
}

// socket is a TCP socket in the LISTEN state, from /proc/PID/net/tcp{,6}.
type socket struct {
	ip   net.IP
	port int
}

func (s socket) String() string { return net.JoinHostPort(s.ip.String(), strconv.Itoa(s.port)) }

// listening lists the listening TCP sockets of pid's network namespace.
func listening(t *testing.T, pid int) []socket {
	t.Helper()
	var out []socket
	for _, file := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // TCP_LISTEN
				continue
			}
			hexIP, hexPort, _ := strings.Cut(f[1], ":")
			port, _ := strconv.ParseInt(hexPort, 16, 32)
			out = append(out, socket{procIP(hexIP), int(port)})
		}
	}
	return out
}

// procIP decodes an address as /proc/net/tcp prints it: 32-bit words in
// the host's byte order (little-endian here).
func procIP(h string) net.IP {
	var ip net.IP
	for i := 0; i+8 <= len(h); i += 8 {
		w, _ := strconv.ParseUint(h[i:i+8], 16, 32)
		ip = append(ip, byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
	return ip
}

// matches tells whether a listening socket is the listener l.
func (s socket) matches(l listener) bool {
	host, port, err := net.SplitHostPort(l.address)
	if err != nil || port != strconv.Itoa(s.port) {
		return false
	}
	switch ip := net.ParseIP(host); {
	case host == "localhost":
		return s.ip.IsLoopback()
	case ip == nil:
		return false
	case ip.IsUnspecified():
		return s.ip.IsUnspecified()
	default:
		return ip.Equal(s.ip)
	}
}
