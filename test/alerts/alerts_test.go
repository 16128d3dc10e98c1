// Package alerts checks the alerting rules, config/prometheus/alerts.yaml,
// with Prometheus's promtool: the file is valid, every rule has unit tests
// (rules_test.yaml) in which it fires and in which it stays silent, and they
// pass, with promtool and with VictoriaMetrics' vmalert-tool; and the rules
// name only metrics and labels that otelcol-mremap exports.
package alerts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/backends"
)

var (
	rulesPath = filepath.Join(mremaptest.ModuleRoot(), "config", "prometheus", "alerts.yaml")
	testsPath = filepath.Join(mremaptest.ModuleRoot(), "test", "alerts", "rules_test.yaml")
)

// exported are the series names the rules may use: the receiver's metrics
// as the prometheus exporter and VictoriaMetrics with
// -opentelemetry.usePrometheusNaming name them, and Prometheus's up.
var exported = map[string]bool{
	"mremap_calls_total": true, "mremap_moves_total": true,
	"mremap_size_delta_bytes_bucket": true, "mremap_size_delta_bytes_sum": true, "mremap_size_delta_bytes_count": true,
	"mremap_duration_seconds_bucket": true, "mremap_duration_seconds_sum": true, "mremap_duration_seconds_count": true,
	"mremap_events_dropped_total": true, "mremap_signals_total": true,
	"up": true,
}

// labels are the labels of those series: the metrics' attributes, host_name
// (the resource attribute host.name), and up's job and instance.
var labels = map[string]bool{
	"process_executable_name": true, "mremap_resize": true, "mremap_move": true, "mremap_result": true,
	"reason": true, "mremap_signal": true, "host_name": true, "le": true, "job": true, "instance": true,
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func load(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: test/deps.sh installs it (Debian package prometheus)")
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

func TestRulesCheck(t *testing.T) {
	promtool(t, "check", "rules", rulesPath)
}

func TestRulesUnitTests(t *testing.T) {
	promtool(t, "test", "rules", testsPath)
}

// TestRulesUnitTestsOnVictoriaMetrics runs the same unit tests with
// vmalert-tool, VictoriaMetrics' evaluation of the rules (MetricsQL, its
// own staleness), as vmalert in front of VictoriaMetrics would evaluate
// them. The alerts carry no alertgroup label there either.
func TestRulesUnitTestsOnVictoriaMetrics(t *testing.T) {
	bin := backends.Binary(t, backends.VmalertToolPackage, backends.VictoriaMetricsVersion)
	cmd := exec.Command(bin, "unittest", "--disableAlertgroupLabel", "--files", filepath.Base(testsPath))
	cmd.Dir = filepath.Dir(testsPath) // rule_files are relative to the tests
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vmalert-tool unittest: %v\n%s", err, out)
	}
	t.Logf("vmalert-tool unittest:\n%s", out)
}

// TestEveryRuleTested: each alert has a case where it fires and one where it
// stays silent, and the tests load the shipped file.
func TestEveryRuleTested(t *testing.T) {
	var rules ruleFile
	var tests testFile
	load(t, rulesPath, &rules)
	load(t, testsPath, &tests)
	if len(tests.RuleFiles) != 1 || filepath.Join(filepath.Dir(testsPath), tests.RuleFiles[0]) != rulesPath {
		t.Errorf("rules_test.yaml loads %v, want only %s", tests.RuleFiles, rulesPath)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if !fires[r.Alert] || !silent[r.Alert] {
				t.Errorf("alert %s: a test where it fires: %v, where it stays silent: %v; want both", r.Alert, fires[r.Alert], silent[r.Alert])
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("alert %s: severity %q, want critical (page) or warning (ticket)", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s needs a summary and a description", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerting rule")
	}
}

var (
	seriesName = regexp.MustCompile(`\b(?:mremap_[a-z_]+|up)\b`)
	inside     = regexp.MustCompile(`\{[^}]*\}|by \([^)]*\)`)
	// by (...) clauses and label matchers
	labelName = regexp.MustCompile(`(?:by \(([a-z_, ]+)\))|(?:[{,]\s*([a-z_]+)\s*[=!]~?)`)
)

// TestRulesNameExportedSeries: a rule on a misspelled metric or label would
// never fire; promtool cannot tell.
func TestRulesNameExportedSeries(t *testing.T) {
	var rules ruleFile
	load(t, rulesPath, &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			// Series names, once the matchers and by clauses are out.
			names := seriesName.FindAllString(inside.ReplaceAllString(r.Expr, ""), -1)
			if len(names) == 0 {
				t.Errorf("alert %s names no series: %s", r.Alert, r.Expr)
			}
			for _, n := range names {
				if !exported[n] {
					t.Errorf("alert %s: %s is not a series otelcol-mremap exports", r.Alert, n)
				}
			}
			for _, m := range labelName.FindAllStringSubmatch(r.Expr, -1) {
				for _, l := range strings.Split(m[1]+","+m[2], ",") {
					if l = strings.TrimSpace(l); l != "" && !labels[l] {
						t.Errorf("alert %s: label %s is not one of those series' labels", r.Alert, l)
					}
				}
			}
		}
	}
}
