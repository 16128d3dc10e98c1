package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// pki is a fleet's certificates, made for the test in its temporary
// directory by config/tls/make-certs.sh, as `make certs` makes them.
type pki struct {
	dir string
}

// MREMAP_TEST_CERTS names a directory make-certs.sh already wrote, which
// the tests only read: the kernel VM suite makes one on the host, since
// the VM has no openssl.
func newPKI(t *testing.T) *pki {
	t.Helper()
	if dir := os.Getenv("MREMAP_TEST_CERTS"); dir != "" {
		return &pki{dir: dir}
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed (test/deps.sh installs it): config/tls/make-certs.sh cannot make the fleet's certificates")
	}
	dir := t.TempDir()
	script := filepath.Join(mremaptest.ModuleRoot(), "config", "tls", "make-certs.sh")
	if out, err := exec.Command(script, dir).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return &pki{dir: dir}
}

// env is the TLS_* variables for role, "agent" or "gateway".
func (p *pki) env(role string) []string {
	d := filepath.Join(p.dir, role)
	return []string{
		"TLS_CA_FILE=" + filepath.Join(d, "ca.crt"),
		"TLS_CERT_FILE=" + filepath.Join(d, "tls.crt"),
		"TLS_KEY_FILE=" + filepath.Join(d, "tls.key"),
	}
}

// clientTLS is a client's TLS configuration that trusts the fleet's CA and
// presents cert (none if nil), for the gateway at localhost.
func (p *pki) clientTLS(t *testing.T, cert *tls.Certificate) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	data, err := os.ReadFile(filepath.Join(p.dir, "ca.crt"))
	if err != nil || !pool.AppendCertsFromPEM(data) {
		t.Fatalf("read the fleet's CA: %v", err)
	}
	// h2: gRPC servers refuse TLS clients that do not offer HTTP/2 (ALPN).
	cfg := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS13, NextProtos: []string{"h2"}}
	if cert != nil {
		// Sent whatever CAs the server asks for, as an attacker would
		// (Go's client would send no certificate the server's CAs did not
		// sign).
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return cfg
}

// agentCert is the agent's certificate as make-certs.sh made it.
func (p *pki) agentCert(t *testing.T) *tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(p.dir, "agent", "tls.crt"), filepath.Join(p.dir, "agent", "tls.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// expiredCert is a client certificate the fleet's CA signed, which
// expired yesterday.
func (p *pki) expiredCert(t *testing.T) *tls.Certificate {
	t.Helper()
	caCert, caKey := p.ca(t)
	return issue(t, caCert, caKey, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
}

// ca is the fleet's CA certificate and key.
func (p *pki) ca(t *testing.T) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	certPEM, err := os.ReadFile(filepath.Join(p.dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(p.dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		t.Fatal("ca.crt or ca.key is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key.(crypto.Signer)
}

// foreignCert is a valid client certificate from a CA other than the
// fleet's.
func foreignCert(t *testing.T) *tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "another CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return issue(t, ca, key, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// issue makes a client certificate (clientAuth, CN otelcol-mremap-agent,
// as an agent's) that ca signs, valid from notBefore to notAfter.
func issue(t *testing.T, ca *x509.Certificate, caKey crypto.Signer, notBefore, notAfter time.Time) *tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "otelcol-mremap-agent"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
