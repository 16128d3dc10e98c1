package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// TestSoak runs config/collector.yaml (the debug exporter at basic
// verbosity, ports moved to free ones, filtered to the helper's comm) for
// SOAK_DURATION while the helper makes mremap calls as fast as it can, and
// checks that the collector's RSS stays flat, that every call is delivered
// or counted as dropped, and that the health_check extension answers
// throughout. `make soak` runs it
// for two minutes; without SOAK_DURATION it is skipped.
func TestSoak(t *testing.T) {
	d := os.Getenv("SOAK_DURATION")
	if d == "" {
		t.Skip("skipped: set SOAK_DURATION (make soak runs it for 2m)")
	}
	duration, err := time.ParseDuration(d)
	if err != nil || duration < 10*time.Second {
		t.Fatalf("SOAK_DURATION=%q: want a duration of at least 10s", d)
	}
	mremaptest.RequireBPF(t)
	bin := mremaptest.CollectorPath(t)
	helper := mremaptest.HelperPath(t)

	data, err := os.ReadFile(filepath.Join(mremaptest.ModuleRoot(), "config", "collector.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	metricsPort, healthPort, telemetryPort := mremaptest.FreePort(t), mremaptest.FreePort(t), mremaptest.FreePort(t)
	config := string(data)
	for _, r := range []struct{ old, new string }{
		{"verbosity: normal", "verbosity: basic"},
		{"endpoint: localhost:8889", fmt.Sprintf("endpoint: 127.0.0.1:%d", metricsPort)},
		{"endpoint: localhost:13133", fmt.Sprintf("endpoint: 127.0.0.1:%d", healthPort)},
		{"port: 8888", fmt.Sprintf("port: %d", telemetryPort)},
		// Only the helper's calls: the invariant below counts them alone.
		{"exclude_comms: [otelcol-mremap]", "comms: [" + mremaptest.Comm + "]"},
	} {
		if !strings.Contains(config, r.old) {
			t.Fatalf("config/collector.yaml has no %q to replace", r.old)
		}
		config = strings.Replace(config, r.old, r.new, 1)
	}
	c := startCollector(t, bin, config)
	start := time.Now()

	// The health check, every second.
	var (
		mu             sync.Mutex
		checks, failed int
		lastFailure    string
	)
	stopHealth := make(chan struct{})
	healthDone := make(chan struct{})
	go func() {
		defer close(healthDone)
		client := &http.Client{Timeout: 2 * time.Second}
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/", healthPort))
			mu.Lock()
			checks++
			if err != nil {
				failed, lastFailure = failed+1, err.Error()
			} else {
				if resp.StatusCode != http.StatusOK {
					failed, lastFailure = failed+1, resp.Status
				}
				resp.Body.Close()
			}
			mu.Unlock()
			select {
			case <-stopHealth:
				return
			case <-tick.C:
			}
		}
	}()

	rss := sampleRSS(c.cmd.Process.Pid, time.Second)
	load := mremaptest.RunLoop(t, helper, 0, duration)
	samples := rss.Stop()
	close(stopHealth)
	<-healthDone

	// Every call of the helper is delivered (accepted or refused
	// downstream, in the collector's own telemetry) or dropped for a reason
	// that stands for a call: ring_buffer_full, rate_limited,
	// malformed_record. (unpaired and probe_missed are exits without a
	// counted call; cardinality_limit counts calls that are also
	// delivered.) First wait for a collection made after the load stopped,
	// the one whose mremap.calls holds all the helper's calls; then for the
	// reader to drain the ring buffer.
	helperCalls := float64(load.Calls)
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	var calls float64
	problems := mremapcheck.Eventually(60*time.Second, time.Second, func() []string {
		calls = sumSeries(scrape(t, metricsURL), `process_executable_name="`+mremaptest.Comm+`"`, "mremap_calls_total")
		if calls != helperCalls {
			return []string{fmt.Sprintf("mremap_calls_total of the helper %.0f, want the %.0f calls it made", calls, helperCalls)}
		}
		return nil
	})
	drops := map[string]float64{}
	var delivered, others float64
	if problems == nil {
		problems = mremapcheck.Eventually(60*time.Second, time.Second, func() []string {
			got := scrape(t, metricsURL)
			own := scrape(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetryPort))
			var inCalls float64
			for _, reason := range []string{"ring_buffer_full", "rate_limited", "malformed_record"} {
				drops[reason] = sumSeries(got, `reason="`+reason+`"`, "mremap_events_dropped_total")
				inCalls += drops[reason]
			}
			others = sumSeries(got, "", "mremap_events_dropped_total") - inCalls
			delivered = sumSeries(own, `receiver="mremap"`, "otelcol_receiver_accepted_log_records",
				"otelcol_receiver_refused_log_records", "otelcol_receiver_failed_log_records")
			if delivered+inCalls != helperCalls {
				return []string{fmt.Sprintf("delivered %.0f + ring_buffer_full %.0f + rate_limited %.0f + malformed_record %.0f = %.0f, want the helper's %.0f calls",
					delivered, drops["ring_buffer_full"], drops["rate_limited"], drops["malformed_record"], delivered+inCalls, helperCalls)}
			}
			return nil
		})
	}
	if drops["malformed_record"] > 0 {
		t.Errorf("%.0f malformed records: the eBPF object and the receiver disagree", drops["malformed_record"])
	}
	summary := summarizeRSS(samples)
	t.Logf("%v at full rate: %.0f calls by the helper (%.0f/s), %.0f counted; %.0f log records delivered, dropped %v (other reasons, not calls: %.0f); RSS %v over %d samples; %d health checks, %d failed",
		time.Since(start).Round(time.Second), helperCalls, helperCalls/load.Elapsed.Seconds(), calls, delivered, drops, others, summary, len(samples), checks, failed)
	for _, p := range problems {
		t.Error(p)
	}
	if failed > 0 {
		t.Errorf("%d of %d health checks failed, the last with %s", failed, checks, lastFailure)
	}
	if checks < int(duration/time.Second)/2 {
		t.Errorf("only %d health checks in %v", checks, duration)
	}
	// Flat: the last quarter's median within 25% (and at least 32 MiB) of
	// the first quarter's; and under the ceiling throughout.
	if slack := max(summary.First/4, 32<<20); summary.Last > summary.First+slack {
		t.Errorf("RSS grew: %v (allowed: %d MiB more)", summary, slack>>20)
	}
	if summary.Peak > rssCeiling {
		t.Errorf("RSS %v, above the ceiling of %d MiB", summary, rssCeiling>>20)
	}
	if c.exited() {
		t.Fatal("the collector exited during the soak")
	}
	c.stop(t)
}
