//go:build linux

package e2e

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// grpcConn is a gRPC client of the gateway's OTLP receiver, inside the
// fleet's namespace, with creds (TLS or plaintext).
func (f *fleet) grpcConn(t *testing.T, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+gatewayOTLP, grpc.WithTransportCredentials(creds),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return f.ns.dial(ctx, "tcp", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// exportMarker sends one log record whose body is marker.
func exportMarker(conn *grpc.ClientConn, marker string) error {
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr(marker)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := plogotlp.NewGRPCClient(conn).Export(ctx, plogotlp.NewExportRequestFromLogs(ld))
	return err
}

// handshake connects with cfg and reads the gateway's first bytes: after
// a TLS 1.3 handshake the client learns that the server refused its
// certificate from the alert the server sends; an accepted client reads
// the server's HTTP/2 SETTINGS frame.
func (f *fleet) handshake(t *testing.T, cfg *tls.Config) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := f.ns.dial(ctx, "tcp", gatewayOTLP)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := tls.Client(raw, cfg)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.Handshake(); err != nil {
		return err
	}
	_, err = c.Read(make([]byte, 64))
	return err
}

// TestGatewayMutualTLS runs config/gateway.yaml as it ships and connects
// as clients without the fleet's certificate: none, one from another CA,
// and one from the fleet's CA that has expired. Each is refused in the TLS
// handshake with the alert that names why, and the record each tries to
// send never reaches the gateway's output. A plaintext client gets no
// further. The agent's certificate, from make-certs.sh, is accepted: its
// record arrives.
func TestGatewayMutualTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: runs the collector")
	}
	f := newFleet(t)
	gateway := f.startGateway(t)
	defer gateway.stop(t)

	refused := []struct {
		name  string
		cert  *tls.Certificate
		alert string
	}{
		{"no certificate", nil, "tls: certificate required"},
		{"another CA", foreignCert(t), "tls: unknown certificate authority"},
		{"expired", f.pki.expiredCert(t), "tls: expired certificate"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			cfg := f.pki.clientTLS(t, c.cert)
			if err := f.handshake(t, cfg); err == nil || !strings.Contains(err.Error(), c.alert) {
				t.Errorf("TLS handshake: %v, want the gateway's alert %q", err, c.alert)
			}
			// gRPC reports the alert, or, when it wrote before it read,
			// the connection the gateway closed.
			if err := exportMarker(f.grpcConn(t, credentials.NewTLS(cfg)), "refused: "+c.name); status.Code(err) != codes.Unavailable {
				t.Errorf("OTLP export: %v, want UNAVAILABLE (the connection refused)", err)
			}
		})
	}
	t.Run("plaintext", func(t *testing.T) {
		if err := exportMarker(f.grpcConn(t, insecure.NewCredentials()), "refused: plaintext"); status.Code(err) != codes.Unavailable {
			t.Errorf("OTLP export in plaintext: %v, want UNAVAILABLE (the connection refused)", err)
		}
	})

	agent := f.pki.clientTLS(t, f.pki.agentCert(t))
	if err := f.handshake(t, agent); err != nil {
		t.Fatalf("the agent's certificate: TLS handshake: %v", err)
	}
	if err := exportMarker(f.grpcConn(t, credentials.NewTLS(agent)), "accepted: the agent's certificate"); err != nil {
		t.Fatalf("the agent's certificate: OTLP export: %v", err)
	}
	// The accepted record was sent last: once it is in the file, anything
	// accepted before it would be too.
	path := filepath.Join(f.gwDir, "logs.json")
	deadline := time.Now().Add(15 * time.Second)
	var out []byte
	for !strings.Contains(string(out), "accepted: the agent") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		out, _ = os.ReadFile(path)
	}
	if !strings.Contains(string(out), "accepted: the agent") {
		t.Fatalf("the agent's record did not reach %s", path)
	}
	if strings.Contains(string(out), "refused: ") {
		t.Errorf("a refused client's record reached the gateway's output:\n%s", out)
	}
}
