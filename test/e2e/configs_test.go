package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// TestShippedConfigsValidate runs `otelcol-mremap validate` on the configs
// users start from: config/collector.yaml and the DaemonSet's ConfigMap.
func TestShippedConfigsValidate(t *testing.T) {
	bin := mremaptest.CollectorPath(t)
	root := mremaptest.ModuleRoot()

	configs := map[string]string{"config/collector.yaml": filepath.Join(root, "config", "collector.yaml")}
	ds, err := os.ReadFile(filepath.Join(root, "config", "deploy", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The ConfigMap's config.yaml is the block indented under "config.yaml: |".
	_, rest, ok := strings.Cut(string(ds), "config.yaml: |\n")
	if !ok {
		t.Fatal("daemonset.yaml has no config.yaml block")
	}
	var block []string
	for _, line := range strings.Split(rest, "\n") {
		if !strings.HasPrefix(line, "    ") && strings.TrimSpace(line) != "" {
			break
		}
		block = append(block, strings.TrimPrefix(line, "    "))
	}
	dsPath := filepath.Join(t.TempDir(), "daemonset-config.yaml")
	if err := os.WriteFile(dsPath, []byte(strings.Join(block, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	configs["config/deploy/daemonset.yaml"] = dsPath

	for name, path := range configs {
		if out, err := exec.Command(bin, "validate", "--config", path).CombinedOutput(); err != nil {
			t.Errorf("%s does not validate: %v\n%s", name, err, out)
		}
	}
}
