//go:build linux

package e2e

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.yaml.in/yaml/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
	"github.com/otelcol-mremap/otelcol-mremap/test/mremapcheck"
)

// handshakeDeadline is how long gRPC gives a new connection to finish its
// TLS handshake and send the HTTP/2 preface (grpc-go's connection
// timeout, which the Collector's gRPC server settings do not expose).
const handshakeDeadline = 120 * time.Second

// rawCodec sends bytes as they are, as the "proto" codec would send a
// message: the gateway decodes them as an OTLP request.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*(v.(*[]byte)) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

const logsExport = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

// exportRaw sends payload as the body of an OTLP logs export.
func exportRaw(conn *grpc.ClientConn, payload []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var reply []byte
	return conn.Invoke(ctx, logsExport, payload, &reply, grpc.ForceCodecV2(rawCodec{}))
}

// markerRequest is an OTLP logs request of n records whose bodies start
// with marker and are size bytes long.
func markerRequest(t *testing.T, marker string, n, size int) []byte {
	t.Helper()
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	body := marker + strings.Repeat("x", max(0, size-len(marker)))
	for range n {
		lrs.AppendEmpty().Body().SetStr(body)
	}
	data, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// closedBy reads from c until the gateway closes it, and says when.
func closedBy(c net.Conn, deadline time.Time) (time.Time, error) {
	c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return time.Time{}, err
	}
	return time.Now(), nil
}

// silent opens connections that never speak: n plain TCP connections, and
// n that finish the TLS handshake with the agent's certificate and then
// send nothing (no HTTP/2 preface). It returns when each was closed.
func (f *fleet) silent(t *testing.T, n int) func() []time.Duration {
	t.Helper()
	opened := time.Now()
	var conns []net.Conn
	for i := range 2 * n {
		c, err := f.ns.dial(context.Background(), "tcp", gatewayOTLP)
		if err != nil {
			t.Fatal(err)
		}
		if i >= n {
			tc := tls.Client(c, f.pki.clientTLS(t, f.pki.agentCert(t)))
			if err := tc.Handshake(); err != nil {
				t.Fatalf("a silent client's TLS handshake: %v", err)
			}
			c = tc
		}
		conns = append(conns, c)
	}
	closed := make([]time.Duration, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			at, err := closedBy(c, opened.Add(handshakeDeadline+30*time.Second))
			if err == nil {
				closed[i] = at.Sub(opened)
			}
		}()
	}
	return func() []time.Duration { wg.Wait(); return closed }
}

// badInput sends one round of each bad input and reports what the gateway
// did that it should not have.
func (f *fleet) badInput(t *testing.T, conn *grpc.ClientConn) []string {
	var p []string
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Garbage instead of a TLS ClientHello, and garbage instead of HTTP/2
	// after a good handshake: the gateway closes the connection.
	garbage := make([]byte, 64<<10)
	rand.Read(garbage)
	for _, overTLS := range []bool{false, true} {
		c, err := f.ns.dial(ctx, "tcp", gatewayOTLP)
		if err != nil {
			return append(p, "dial: "+err.Error())
		}
		if overTLS {
			tc := tls.Client(c, f.pki.clientTLS(t, f.pki.agentCert(t)))
			if err := tc.HandshakeContext(ctx); err != nil {
				c.Close()
				return append(p, "TLS handshake: "+err.Error())
			}
			c = tc
		}
		go c.Write(garbage) // the gateway may close before it read all
		if _, err := closedBy(c, time.Now().Add(10*time.Second)); err != nil {
			p = append(p, "garbage bytes (over TLS: "+map[bool]string{false: "no", true: "yes"}[overTLS]+"): the connection is still open after 10 s")
		}
		c.Close()
	}
	// A truncated protobuf: refused, not decoded into records.
	whole := markerRequest(t, "bad input: truncated", 3, 100)
	if err := exportRaw(conn, whole[:len(whole)/2]); status.Code(err) != codes.Internal {
		p = append(p, "truncated protobuf: "+errString(err)+", want INTERNAL (a decoding error)")
	}
	// Above max_recv_msg_size_mib: refused before decoding.
	if err := exportRaw(conn, markerRequest(t, "bad input: oversized", f.maxMessageMiB(t)+1, 1<<20)); status.Code(err) != codes.ResourceExhausted {
		p = append(p, "oversized message: "+errString(err)+", want RESOURCE_EXHAUSTED")
	}
	return p
}

// maxMessageMiB is the gateway's max_recv_msg_size_mib.
func (f *fleet) maxMessageMiB(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile(configPath("gateway.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Receivers struct {
			OTLP struct {
				Protocols struct {
					GRPC struct {
						MaxRecvMsgSizeMiB int `yaml:"max_recv_msg_size_mib"`
					} `yaml:"grpc"`
				} `yaml:"protocols"`
			} `yaml:"otlp"`
		} `yaml:"receivers"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil || cfg.Receivers.OTLP.Protocols.GRPC.MaxRecvMsgSizeMiB == 0 {
		t.Fatalf("config/gateway.yaml sets no max_recv_msg_size_mib (%v)", err)
	}
	return cfg.Receivers.OTLP.Protocols.GRPC.MaxRecvMsgSizeMiB
}

func errString(err error) string {
	if err == nil {
		return "accepted"
	}
	return err.Error()
}

// TestGatewayBadInput runs the shipped agent and gateway (fleet) and, while
// the agent delivers the helper's calls, throws at the gateway: garbage
// bytes where a TLS handshake belongs and where HTTP/2 belongs after one,
// an OTLP request truncated in the middle, a request above the 4 MiB
// bound, and connections that never speak (plain TCP, and after a TLS
// handshake). Each is refused (the connection closed, or the call failed
// with the status that names why), none of it reaches the gateway's
// output, the silent connections are closed after gRPC's handshake
// deadline, and every one of the agent's records arrives, once.
func TestGatewayBadInput(t *testing.T) {
	mremaptest.RequireBPF(t)
	// Parallel with the other test that mostly waits (the outage, the
	// silent connections' deadline): each runs its own agent and gateway
	// in its own network namespace and counts only its own helper
	// processes' records (by pid), so the other's calls do not disturb it.
	t.Parallel()
	helper := mremaptest.HelperPath(t)
	exe, err := filepath.EvalSymlinks(helper)
	if err != nil {
		t.Fatal(err)
	}
	f := newFleet(t)
	gateway := f.startGateway(t)
	defer gateway.stop(t)
	agent := f.startAgent(t)
	defer agent.stop(t)
	silentClosed := f.silent(t, 32)

	done := make(chan loopRun)
	go func() { done <- runLoopAt(t, helper, 15*time.Second, 300) }()
	conn := f.grpcConn(t, credentials.NewTLS(f.pki.clientTLS(t, f.pki.agentCert(t))))
	rounds := 0
	var loop loopRun
	for running := true; running; {
		for _, p := range f.badInput(t, conn) {
			t.Errorf("round %d: %s", rounds, p)
		}
		rounds++
		select {
		case loop = <-done:
			running = false
		case <-time.After(200 * time.Millisecond):
		}
	}
	probe := "tracepoint"
	if mremaptest.HasKprobes() {
		probe = "kprobe"
	}
	run := mremapcheck.Run{Probe: probe, PPID: os.Getpid(), ExePath: exe, Start: time.Now()}
	run.Made = mremaptest.RunHelperLinger(t, helper, time.Second)
	run.End = time.Now()

	d := f.waitDelivered(t, loop, 30*time.Second)
	t.Logf("%d rounds of bad input while the agent delivered %d calls: %v", rounds, loop.Calls, d)
	if d.calls != loop.Calls || d.duplicates != 0 {
		t.Errorf("the agent's records: %v, want each of the %d calls once", d, loop.Calls)
	}
	f.checkKnownCalls(t, run, 30*time.Second)
	out, _ := os.ReadFile(filepath.Join(f.gwDir, "logs.json"))
	if strings.Contains(string(out), "bad input: ") {
		t.Error("a bad input's record reached the gateway's output")
	}

	checkClosed(t, silentClosed())
	if gateway.exited() {
		t.Fatal("the gateway exited")
	}
}

// checkClosed: every silent connection was closed by the gateway.
func checkClosed(t *testing.T, closed []time.Duration) {
	t.Helper()
	var still int
	for _, at := range closed {
		if at == 0 {
			still++
		}
	}
	t.Logf("%d silent connections, closed by the gateway after %v (first) .. %v (last)", len(closed), minDur(closed), maxDur(closed))
	if still > 0 {
		t.Errorf("%d of %d silent connections still open %v after they were opened", still, len(closed), handshakeDeadline+30*time.Second)
	}
}

func minDur(v []time.Duration) time.Duration {
	m := time.Duration(1<<63 - 1)
	for _, d := range v {
		if d > 0 {
			m = min(m, d)
		}
	}
	return m
}

func maxDur(v []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range v {
		m = max(m, d)
	}
	return m
}
