//go:build linux

// Package backends runs the servers that otelcol-mremap sends to, for the
// tests: VictoriaMetrics and VictoriaLogs, built once from the Go module
// proxy into a cache under .cache/victoria (as the kernel VM suite caches
// its kernels in .cache/vm), and Debian's Prometheus. Each listens on a free
// loopback port, keeps its data in the test's temporary directory and is
// stopped when the test ends; the package also asks them what they hold.
package backends

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// The servers' releases, as docs/backends.md tells users to install them.
const (
	VictoriaMetricsPackage = "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics"
	VictoriaMetricsVersion = "v1.151.0"
	// VmalertToolPackage unit-tests alerting rules as vmalert evaluates
	// them; it is of VictoriaMetrics' release.
	VmalertToolPackage  = "github.com/VictoriaMetrics/VictoriaMetrics/app/vmalert-tool"
	VictoriaLogsPackage = "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"
	VictoriaLogsVersion = "v1.52.1"
)

// Binary returns the program pkg@version, built with `go install` into
// .cache/victoria/<name>-<version>/ the first time and taken from there
// after. A lock on the cache keeps two test processes from building it at
// once.
func Binary(t testing.TB, pkg, version string) string {
	t.Helper()
	name := filepath.Base(pkg)
	cache := filepath.Join(mremaptest.ModuleRoot(), ".cache", "victoria")
	dir := filepath.Join(cache, name+"-"+version)
	bin := filepath.Join(dir, name)
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err == nil {
		return bin // built by another test process meanwhile
	}
	tmp, err := os.MkdirTemp(cache, name+"-build-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	cmd := exec.Command("go", "install", pkg+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s@%s: %v\n%s", pkg, version, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s@%s into %s in %v", pkg, version, dir, time.Since(start).Round(time.Second))
	return bin
}

// Server is a backend server the test started.
type Server struct {
	// URL is where it answers, http://127.0.0.1:port.
	URL  string
	name string
	cmd  *exec.Cmd
	out  *output
}

// output collects a server's stdout and stderr for the test's log.
type output struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Output is what the server has printed so far.
func (s *Server) Output() string { return s.out.String() }

// StartVictoriaMetrics starts VictoriaMetrics as docs/backends.md does, with
// -opentelemetry.usePrometheusNaming, plus flags.
func StartVictoriaMetrics(t testing.TB, flags ...string) *Server {
	t.Helper()
	bin := Binary(t, VictoriaMetricsPackage, VictoriaMetricsVersion)
	port := mremaptest.FreePort(t)
	args := append([]string{
		fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", port),
		"-storageDataPath=" + filepath.Join(t.TempDir(), "victoria-metrics-data"),
		"-opentelemetry.usePrometheusNaming",
	}, flags...)
	return start(t, "victoria-metrics", port, "/health", bin, args...)
}

// StartVictoriaLogs starts VictoriaLogs with flags.
func StartVictoriaLogs(t testing.TB, flags ...string) *Server {
	t.Helper()
	bin := Binary(t, VictoriaLogsPackage, VictoriaLogsVersion)
	port := mremaptest.FreePort(t)
	args := append([]string{
		fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", port),
		"-storageDataPath=" + filepath.Join(t.TempDir(), "victoria-logs-data"),
	}, flags...)
	return start(t, "victoria-logs", port, "/health", bin, args...)
}

// StartPrometheus starts Debian's Prometheus with the configuration config.
func StartPrometheus(t testing.TB, config string) *Server {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatal("prometheus is not installed: test/deps.sh installs it (Debian package prometheus)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	port := mremaptest.FreePort(t)
	return start(t, "prometheus", port, "/-/ready", bin, "--config.file="+path,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port))
}

// start runs a server, waits until ready answers 200 and stops it with
// SIGTERM when the test ends, logging its output if the test failed.
func start(t testing.TB, name string, port int, ready, bin string, args ...string) *Server {
	t.Helper()
	s := &Server{URL: fmt.Sprintf("http://127.0.0.1:%d", port), name: name, out: &output{}}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, s.Output())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(s.URL + ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
			err = errors.New(resp.Status)
		}
		select {
		case <-exited:
			t.Fatalf("%s exited before it was ready (%v):\n%s", name, waitErr, s.Output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer on %s within 60s: %v\n%s", name, s.URL+ready, err, s.Output())
		}
	}
}
