package backends

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/otelcol-mremap/otelcol-mremap/dashboards"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// The screenshots, in $MREMAP_SCREENSHOTS (docs/ for make screenshots).
const (
	vmuiScreenshot = "vmui-dashboard.png"
	logsScreenshot = "victorialogs.png"
)

// checkBrowser opens, in Debian's Chromium (headless), vmui's Dashboards tab
// with config/vmui/mremap.json and VictoriaLogs' web UI with a query for
// the helper's last run, and checks what a person would: every panel is
// there under its title and drew series (no error, no "no data"), and the
// logs view lists each of the run's calls. It saves a screenshot of each.
func checkBrowser(t *testing.T, st *stack) {
	ctx := browser(t)
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The whole run, and a little before and after it.
	span := time.Since(st.begin) + 20*time.Second
	dashboardsURL := fmt.Sprintf("%s/vmui/#/dashboards?g0.range_input=%ds", st.vm.URL, int(span.Seconds()))
	checkVMUI(t, ctx, dashboardsURL)
	screenshot(t, ctx, filepath.Join(dir, vmuiScreenshot))

	run := st.runs[len(st.runs)-1]
	query := fmt.Sprintf("process.pid:=%d", run.Made[0].PID)
	logsURL := fmt.Sprintf("%s/select/vmui/#/?query=%s", st.vl.URL, url.QueryEscape(query)) // the last 5 minutes
	// A screen's height: the logs view is short.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 1000)); err != nil {
		t.Fatal(err)
	}
	checkLogsUI(t, ctx, logsURL, run)
	// Open the first entry, to show its fields too.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](openFirstEntryJS)); err != nil {
		t.Error(err)
	}
	time.Sleep(500 * time.Millisecond)
	screenshot(t, ctx, filepath.Join(dir, logsScreenshot))
}

// browser starts Chromium headless, with a fresh profile and none of its
// background traffic (the machine's network is closed), for the test.
func browser(t *testing.T) context.Context {
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium is not installed: test/deps.sh installs it (Debian package chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // as root
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		// Tall enough for every panel at once: vmui fetches a panel's
		// data only once it is on screen.
		chromedp.WindowSize(1400, 3400),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	return ctx
}

// panelState is what the page shows of one vmui panel.
type panelState struct {
	Title   string   `json:"title"`
	Loading bool     `json:"loading"`
	Alerts  []string `json:"alerts"`
	Series  []string `json:"series"`
	// Max holds each series' "max" as the legend shows it.
	Max []string `json:"max"`
}

const panelsJS = `Array.from(document.querySelectorAll(".vm-predefined-panel")).map(p => ({
  title: (p.querySelector(".vm-predefined-panel-header__title") || {innerText: ""}).innerText.trim(),
  loading: !!p.querySelector(".vm-spinner"),
  alerts: Array.from(p.querySelectorAll(".vm-alert")).map(a => a.innerText.trim()),
  series: Array.from(p.querySelectorAll(".vm-legend-item-info__label")).map(l => l.innerText.trim()),
  max: Array.from(p.querySelectorAll(".vm-legend-item")).map(i => {
    const row = Array.from(i.querySelectorAll(".vm-legend-item-stats-row")).find(r => r.innerText.trim().startsWith("max:"));
    return row ? row.querySelector(".vm-legend-item-stats-row__value").innerText.trim() : "";
  }),
}))`

const openRowsJS = `(() => {
  const closed = document.querySelectorAll(".vm-predefined-dashboard-header:not(.vm-predefined-dashboard-header_open)");
  closed.forEach(h => h.click());
  return closed.length;
})()`

func checkVMUI(t *testing.T, ctx context.Context, pageURL string) {
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("open %s: %v", pageURL, err)
	}
	var panels []panelState
	problems := mremapcheck.Eventually(60*time.Second, 500*time.Millisecond, func() []string {
		// vmui opens the first row only: open the others, as a person would.
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[int](openRowsJS)); err != nil {
			return []string{err.Error()}
		}
		var err error
		panels, err = chromedp.Run(ctx, chromedp.Evaluate[[]panelState](panelsJS))
		if err != nil {
			return []string{err.Error()}
		}
		return vmuiProblems(panels)
	})
	for _, p := range problems {
		t.Errorf("vmui at %s: %s", pageURL, p)
	}
	for _, p := range panels {
		t.Logf("vmui panel %q: %d series %v, max %v", p.Title, len(p.Series), p.Series, p.Max)
	}
}

// vmuiProblems: every panel of the dashboard is on the page, loaded, without
// an error or a warning, with at least one series, and a series above zero
// unless it counts drops.
func vmuiProblems(panels []panelState) []string {
	byTitle := map[string]panelState{}
	for _, p := range panels {
		byTitle[p.Title] = p
	}
	var problems []string
	for _, want := range dashboards.Panels {
		p, ok := byTitle[want.Title]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("no panel titled %q among %d", want.Title, len(panels)))
		case p.Loading:
			problems = append(problems, fmt.Sprintf("panel %q is still loading", want.Title))
		case len(p.Alerts) > 0:
			problems = append(problems, fmt.Sprintf("panel %q shows %q", want.Title, p.Alerts))
		case len(p.Series) == 0:
			problems = append(problems, fmt.Sprintf("panel %q drew no series (no data)", want.Title))
		case !anyAboveZero(p.Max) && !strings.Contains(want.Queries[0].Expr, "mremap_events_dropped_total"):
			problems = append(problems, fmt.Sprintf("panel %q drew only zeros: %v %v", want.Title, p.Series, p.Max))
		}
	}
	return problems
}

func anyAboveZero(values []string) bool {
	for _, v := range values {
		var f float64
		if _, err := fmt.Sscanf(v, "%g", &f); err == nil && f > 0 {
			return true
		}
	}
	return false
}

// checkLogsUI: VictoriaLogs' web UI lists the body of each of the run's calls.
func checkLogsUI(t *testing.T, ctx context.Context, pageURL string, run mremapcheck.Run) {
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("open %s: %v", pageURL, err)
	}
	var missing []string
	problems := mremapcheck.Eventually(60*time.Second, 500*time.Millisecond, func() []string {
		text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		if err != nil {
			return []string{err.Error()}
		}
		missing = missing[:0]
		for _, m := range run.Made {
			if body := mremapcheck.Body(m, expectation(m.Name)); !strings.Contains(text, body) {
				missing = append(missing, body)
			}
		}
		if len(missing) > 0 {
			return []string{fmt.Sprintf("%d of the run's %d calls are not listed: %q", len(missing), len(run.Made), missing)}
		}
		return nil
	})
	for _, p := range problems {
		t.Errorf("VictoriaLogs UI at %s: %s", pageURL, p)
	}
}

const openFirstEntryJS = `(() => {
  const row = document.querySelector(".vm-group-logs-row-content");
  if (row) row.click();
  return !!row;
})()`

// screenshot saves the whole page as a PNG.
func screenshot(t *testing.T, ctx context.Context, path string) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Errorf("screenshot %s: %v", path, err)
		return
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Error(err)
		return
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
}
