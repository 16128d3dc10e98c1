package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// configFile is one YAML or JSON file under config/, parsed.
type configFile struct {
	rel  string           // path relative to the repository root
	docs []map[string]any // YAML documents (one for JSON)
}

// configFiles parses every YAML and JSON file under config/.
func configFiles(t *testing.T) []configFile {
	t.Helper()
	root := mremaptest.ModuleRoot()
	var out []configFile
	err := filepath.WalkDir(filepath.Join(root, "config"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f := configFile{rel: rel}
		switch filepath.Ext(path) {
		case ".json":
			var doc map[string]any
			if err := json.Unmarshal(data, &doc); err != nil {
				t.Errorf("%s: %v", rel, err)
			}
			f.docs = append(f.docs, doc)
		case ".yaml", ".yml":
			dec := yaml.NewDecoder(bytes.NewReader(data))
			for {
				var doc map[string]any
				err := dec.Decode(&doc)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Errorf("%s: %v", rel, err)
					break
				}
				f.docs = append(f.docs, doc)
			}
			if len(f.docs) == 0 {
				t.Errorf("%s: no YAML document", rel)
			}
		default:
			return nil
		}
		out = append(out, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestConfigFilesParse: every YAML and JSON file under config/ parses.
func TestConfigFilesParse(t *testing.T) {
	var names []string
	for _, f := range configFiles(t) {
		names = append(names, f.rel)
	}
	for _, want := range []string{
		"config/collector.yaml", "config/agent.yaml", "config/gateway.yaml", "config/prometheus.yml",
		"config/k8sattributes-example.yaml", "config/deploy/daemonset.yaml", "config/grafana/mremap.json",
		"config/grafana/provisioning/datasources/prometheus.yaml", "config/grafana/provisioning/dashboards/mremap.yaml",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("%s is missing; found %v", want, names)
		}
	}
}

func isCollectorConfig(doc map[string]any) bool {
	service, _ := doc["service"].(map[string]any)
	_, hasReceivers := doc["receivers"]
	return hasReceivers && service != nil && service["pipelines"] != nil
}

// notInDistribution are the components a config under config/ may use
// although bin/otelcol-mremap does not include them: the example of
// building one's own distribution with k8sattributes. Those configs are
// validated with the component taken out.
var notInDistribution = map[string][]string{
	"config/k8sattributes-example.yaml": {"k8sattributes"},
}

// collectorConfigs returns every collector config under config/: the files
// that are one, and each ConfigMap entry that is one; name -> YAML.
func collectorConfigs(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, f := range configFiles(t) {
		for _, doc := range f.docs {
			if isCollectorConfig(doc) {
				out[f.rel] = doc
			}
			if doc["kind"] != "ConfigMap" {
				continue
			}
			data, _ := doc["data"].(map[string]any)
			for key, v := range data {
				var cfg map[string]any
				if s, ok := v.(string); ok && yaml.Unmarshal([]byte(s), &cfg) == nil && isCollectorConfig(cfg) {
					meta, _ := doc["metadata"].(map[string]any)
					out[f.rel+": ConfigMap "+strings.TrimSpace(meta["name"].(string))+" "+key] = cfg
				}
			}
		}
	}
	return out
}

// TestShippedConfigsValidate runs `otelcol-mremap validate` on every
// collector config under config/.
func TestShippedConfigsValidate(t *testing.T) {
	bin := mremaptest.CollectorPath(t)
	configs := collectorConfigs(t)
	var names []string
	for name := range configs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, want := range []string{"config/collector.yaml", "config/agent.yaml", "config/gateway.yaml", "config/k8sattributes-example.yaml"} {
		if !slices.Contains(names, want) {
			t.Errorf("no collector config %s among %v", want, names)
		}
	}
	// As shipped, a config with components the distribution lacks fails,
	// naming them.
	root := mremaptest.ModuleRoot()
	for name, components := range notInDistribution {
		out, err := exec.Command(bin, "validate", "--config", filepath.Join(root, name)).CombinedOutput()
		for _, c := range components {
			if err == nil || !strings.Contains(string(out), c) {
				t.Errorf("%s validates with %s, which the distribution lacks (%v):\n%s", name, c, err, out)
			}
		}
	}
	dir := t.TempDir()
	for i, name := range names {
		cfg := configs[name]
		for _, component := range notInDistribution[name] {
			without(t, cfg, "processors", component)
		}
		data, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("%d.yaml", i))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput()
		if err != nil {
			t.Errorf("%s does not validate: %v\n%s", name, err, out)
		} else {
			t.Logf("%s validates (%d bytes)", name, len(data))
		}
	}
}

// without takes a component out of a config and out of its pipelines; it
// fails the test if the config did not use it.
func without(t *testing.T, cfg map[string]any, kind, id string) {
	t.Helper()
	section, _ := cfg[kind].(map[string]any)
	if _, ok := section[id]; !ok {
		t.Errorf("%s %s is not in the config", kind, id)
	}
	delete(section, id)
	pipelines := cfg["service"].(map[string]any)["pipelines"].(map[string]any)
	for _, p := range pipelines {
		p := p.(map[string]any)
		list, _ := p[kind].([]any)
		p[kind] = slices.DeleteFunc(list, func(v any) bool { return v == id })
	}
}

// TestK8sAttributesExample checks the example's k8sattributes processor:
// keyed on the container.id the receiver sets, in the logs pipeline (the
// only one whose resources carry container.id).
func TestK8sAttributesExample(t *testing.T) {
	cfg := collectorConfigs(t)["config/k8sattributes-example.yaml"]
	if cfg == nil {
		t.Fatal("config/k8sattributes-example.yaml is not a collector config")
	}
	var c struct {
		Processors struct {
			K8s struct {
				PodAssociation []struct {
					Sources []struct {
						From string `yaml:"from"`
						Name string `yaml:"name"`
					} `yaml:"sources"`
				} `yaml:"pod_association"`
				Extract struct {
					Metadata []string `yaml:"metadata"`
				} `yaml:"extract"`
			} `yaml:"k8sattributes"`
		} `yaml:"processors"`
		Service struct {
			Pipelines map[string]struct {
				Receivers  []string `yaml:"receivers"`
				Processors []string `yaml:"processors"`
			} `yaml:"pipelines"`
		} `yaml:"service"`
	}
	data, _ := yaml.Marshal(cfg)
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	pa := c.Processors.K8s.PodAssociation
	if len(pa) != 1 || len(pa[0].Sources) != 1 || pa[0].Sources[0].From != "resource_attribute" || pa[0].Sources[0].Name != "container.id" {
		t.Errorf("pod_association = %+v, want one source: resource_attribute container.id", pa)
	}
	// pod_association on container.id needs a container attribute extracted.
	if !slices.ContainsFunc(c.Processors.K8s.Extract.Metadata, func(m string) bool {
		return strings.HasPrefix(m, "container.") || m == "k8s.container.name"
	}) {
		t.Errorf("extract.metadata %v has no container attribute", c.Processors.K8s.Extract.Metadata)
	}
	logs := c.Service.Pipelines["logs"]
	if !slices.Contains(logs.Receivers, "mremap") || !slices.Contains(logs.Processors, "k8sattributes") {
		t.Errorf("the logs pipeline %+v does not run mremap through k8sattributes", logs)
	}
}
