// mremap-dashboards writes the receiver's dashboards from the package
// dashboards (dashboards/panels.go): the Grafana dashboard config/grafana/mremap.json,
// then, from that file, the vmui dashboard config/vmui/mremap.json. Run it
// from the repository's root (make dashboards); `make test` fails when the
// committed files differ from what it writes.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/otelcol-mremap/otelcol-mremap/dashboards"
)

func main() {
	root := flag.String("root", ".", "the repository's root directory")
	flag.Parse()
	if err := write(*root); err != nil {
		fmt.Fprintln(os.Stderr, "mremap-dashboards:", err)
		os.Exit(1)
	}
}

func write(root string) error {
	grafana, err := dashboards.Grafana(dashboards.Panels)
	if err != nil {
		return err
	}
	grafanaPath := filepath.Join(root, dashboards.GrafanaFile)
	if err := os.WriteFile(grafanaPath, grafana, 0o644); err != nil {
		return err
	}
	data, err := os.ReadFile(grafanaPath)
	if err != nil {
		return err
	}
	vmui, err := dashboards.VMUI(data)
	if err != nil {
		return fmt.Errorf("%s: %w", grafanaPath, err)
	}
	vmuiPath := filepath.Join(root, dashboards.VMUIFile)
	if err := os.MkdirAll(filepath.Dir(vmuiPath), 0o755); err != nil {
		return err
	}
	return os.WriteFile(vmuiPath, vmui, 0o644)
}
