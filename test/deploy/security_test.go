package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// SPEC's default for MREMAP_STORAGE_DIR, the agent's on-disk queue.
const storageDir = "/var/lib/otelcol-mremap/queue"

// objects decodes every YAML document of a manifest.
func objects(t *testing.T, rel string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(repoFile(t, rel)))
	var out []map[string]any
	for {
		var o map[string]any
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		out = append(out, o)
	}
}

// as converts a decoded YAML value into v.
func as(t *testing.T, in any, v any) {
	t.Helper()
	data, err := yaml.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatal(err)
	}
}

type certificate struct {
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		IsCA       bool     `yaml:"isCA"`
		SecretName string   `yaml:"secretName"`
		DNSNames   []string `yaml:"dnsNames"`
		Usages     []string `yaml:"usages"`
		IssuerRef  struct {
			Name string `yaml:"name"`
			Kind string `yaml:"kind"`
		} `yaml:"issuerRef"`
	} `yaml:"spec"`
}

type agentPod struct {
	Containers []struct {
		Env []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name     string            `yaml:"name"`
		HostPath map[string]string `yaml:"hostPath"`
		Secret   *struct {
			SecretName  string `yaml:"secretName"`
			DefaultMode int    `yaml:"defaultMode"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

func daemonSetPod(t *testing.T) agentPod {
	t.Helper()
	for _, o := range objects(t, "config/deploy/daemonset.yaml") {
		if o["kind"] == "DaemonSet" {
			var ds struct {
				Spec struct {
					Template struct {
						Spec agentPod `yaml:"spec"`
					} `yaml:"template"`
				} `yaml:"spec"`
			}
			as(t, o, &ds)
			if len(ds.Spec.Template.Spec.Containers) != 1 {
				t.Fatal("the DaemonSet does not have one container")
			}
			return ds.Spec.Template.Spec
		}
	}
	t.Fatal("config/deploy/daemonset.yaml has no DaemonSet")
	return agentPod{}
}

// TestDaemonSetTLSAndQueue: the DaemonSet gives the agent its TLS files
// from the Secret that config/deploy/cert-manager.yaml's agent Certificate
// fills (read-only, readable by the agent only), at the paths agent.yaml
// reads by default, and its on-disk queue on the node (a hostPath, which
// outlives the pod) at SPEC's MREMAP_STORAGE_DIR.
func TestDaemonSetTLSAndQueue(t *testing.T) {
	pod := daemonSetPod(t)
	c := pod.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	agent := repoFile(t, "config/agent.yaml")
	for _, v := range []string{"TLS_CA_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE", "MREMAP_STORAGE_DIR"} {
		m := regexp.MustCompile(`\$\{env:` + v + `:-([^}]*)\}`).FindStringSubmatch(agent)
		if m == nil {
			t.Errorf("config/agent.yaml does not read %s with a default", v)
		} else if env[v] != m[1] {
			t.Errorf("the DaemonSet sets %s=%q; config/agent.yaml's default is %q", v, env[v], m[1])
		}
	}
	if env["MREMAP_STORAGE_DIR"] != storageDir {
		t.Errorf("MREMAP_STORAGE_DIR=%q, want %s", env["MREMAP_STORAGE_DIR"], storageDir)
	}
	mounts := map[string]string{} // path -> volume
	readOnly := map[string]bool{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath], readOnly[m.MountPath] = m.Name, m.ReadOnly
	}
	secrets, hostPaths := map[string]int{}, map[string]string{}
	secretOf := map[string]string{}
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secrets[v.Name], secretOf[v.Name] = v.Secret.DefaultMode, v.Secret.SecretName
		}
		hostPaths[v.Name] = v.HostPath["path"]
	}
	tlsDir := filepath.Dir(env["TLS_CA_FILE"])
	for _, v := range []string{"TLS_CA_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE"} {
		if filepath.Dir(env[v]) != tlsDir {
			t.Errorf("%s=%s is not in %s with the others", v, env[v], tlsDir)
		}
	}
	vol := mounts[tlsDir]
	if _, ok := secrets[vol]; !ok || !readOnly[tlsDir] {
		t.Fatalf("%s is not a read-only Secret volume (mounts %v)", tlsDir, mounts)
	}
	if mode := secrets[vol]; mode&0o077 != 0 {
		t.Errorf("the TLS Secret's files have mode %#o: the private key is readable beyond its owner", mode)
	}
	var agentCert certificate
	for _, cert := range certificates(t) {
		if slices.Contains(cert.Spec.Usages, "client auth") {
			agentCert = cert
		}
	}
	if secretOf[vol] != agentCert.Spec.SecretName {
		t.Errorf("the DaemonSet mounts the Secret %q; cert-manager.yaml's client certificate fills %q", secretOf[vol], agentCert.Spec.SecretName)
	}
	if hostPaths[mounts[storageDir]] != storageDir || readOnly[storageDir] {
		t.Errorf("%s is mounted from %q (read-only %v), want the node's %s, writable", storageDir, hostPaths[mounts[storageDir]], readOnly[storageDir], storageDir)
	}
}

func certificates(t *testing.T) []certificate {
	t.Helper()
	var out []certificate
	for _, o := range objects(t, "config/deploy/cert-manager.yaml") {
		if o["kind"] == "Certificate" {
			var c certificate
			as(t, o, &c)
			out = append(out, c)
		}
	}
	return out
}

// TestCertManager: config/deploy/cert-manager.yaml makes a CA, an Issuer
// that signs with it, a client certificate for the agents and a server
// certificate for the gateway whose names include the host the DaemonSet's
// agents dial; every issuerRef names an Issuer of the file.
func TestCertManager(t *testing.T) {
	issuers := map[string]bool{}
	for _, o := range objects(t, "config/deploy/cert-manager.yaml") {
		if o["kind"] == "Issuer" {
			issuers[o["metadata"].(map[string]any)["name"].(string)] = true
		}
	}
	var ca, client, server int
	env := map[string]string{}
	for _, e := range daemonSetPod(t).Containers[0].Env {
		env[e.Name] = e.Value
	}
	host, _, _ := strings.Cut(env["GATEWAY_ENDPOINT"], ":")
	for _, c := range certificates(t) {
		if c.Spec.IssuerRef.Kind != "Issuer" || !issuers[c.Spec.IssuerRef.Name] {
			t.Errorf("Certificate %s: issuerRef %+v is not an Issuer of the file", c.Metadata.Name, c.Spec.IssuerRef)
		}
		switch {
		case c.Spec.IsCA:
			ca++
		case slices.Contains(c.Spec.Usages, "client auth"):
			client++
		case slices.Contains(c.Spec.Usages, "server auth"):
			server++
			if !slices.Contains(c.Spec.DNSNames, host) {
				t.Errorf("the gateway's Certificate names %v, not %s, which the agents dial", c.Spec.DNSNames, host)
			}
		default:
			t.Errorf("Certificate %s is neither a CA, a client nor a server certificate", c.Metadata.Name)
		}
	}
	if ca != 1 || client != 1 || server != 1 {
		t.Errorf("%d CA, %d client, %d server certificates; want one of each", ca, client, server)
	}
}

// TestUnitQueueAndMemory: the systemd unit provides the agent's queue
// directory (StateDirectory, at SPEC's MREMAP_STORAGE_DIR) and limits the
// service's memory, BPF maps included, to the DaemonSet's limit; the
// drop-in its comment gives for the TLS files verifies.
func TestUnitQueueAndMemory(t *testing.T) {
	text := repoFile(t, "config/deploy/otelcol-mremap.service")
	svc := unit(t, text)["Service"]
	state := strings.Fields(strings.Join(svc["StateDirectory"], " "))
	if !slices.Contains(state, strings.TrimPrefix(storageDir, "/var/lib/")) {
		t.Errorf("StateDirectory=%v does not provide %s", state, storageDir)
	}
	limit := daemonSetMemoryLimit(t)
	// systemd's M is 1024*1024, Kubernetes' Mi.
	if n, ok := strings.CutSuffix(limit, "Mi"); !ok || !slices.Equal(svc["MemoryMax"], []string{n + "M"}) {
		t.Errorf("MemoryMax=%v, want the DaemonSet's memory limit %s", svc["MemoryMax"], limit)
	}

	verifyDropin(t, text, strings.Fields(svc["ExecStart"][0])[0])
}

// daemonSetMemoryLimit is the DaemonSet's container memory limit, as written.
func daemonSetMemoryLimit(t *testing.T) string {
	t.Helper()
	for _, o := range objects(t, "config/deploy/daemonset.yaml") {
		if o["kind"] != "DaemonSet" {
			continue
		}
		var ds struct {
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Resources struct {
								Limits map[string]string `yaml:"limits"`
							} `yaml:"resources"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		as(t, o, &ds)
		return ds.Spec.Template.Spec.Containers[0].Resources.Limits["memory"]
	}
	t.Fatal("config/deploy/daemonset.yaml has no DaemonSet")
	return ""
}

// verifyDropin adds the drop-in of the unit's header comment (the gateway
// and the TLS files as credentials) to its [Service] section and runs
// systemd-analyze verify on it, ExecStart pointing at the built binary.
func verifyDropin(t *testing.T, text, exec0 string) {
	t.Helper()
	// The drop-in of the header comment, added to [Service].
	var dropin []string
	for _, line := range strings.Split(text, "\n") {
		l := strings.TrimSpace(strings.TrimPrefix(line, "#"))
		if strings.HasPrefix(line, "#   ") && (strings.HasPrefix(l, "LoadCredential=") || strings.HasPrefix(l, "Environment=")) {
			dropin = append(dropin, l)
		}
	}
	if len(dropin) < 5 {
		t.Fatalf("the unit's comment gives %d drop-in lines for the gateway and the TLS files: %v", len(dropin), dropin)
	}
	for _, want := range []string{"TLS_CA_FILE=%d/", "TLS_CERT_FILE=%d/", "TLS_KEY_FILE=%d/"} {
		if !strings.Contains(strings.Join(dropin, " "), want) {
			t.Errorf("the drop-in %v does not set %s...", dropin, want)
		}
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd): the drop-in is not verified")
	}
	withDropin := strings.Replace(strings.ReplaceAll(text, exec0, mremaptest.CollectorPath(t)),
		"\n[Service]\n", "\n[Service]\n"+strings.Join(dropin, "\n")+"\n", 1)
	path := filepath.Join(t.TempDir(), "otelcol-mremap.service")
	if err := os.WriteFile(path, []byte(withDropin), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify with the drop-in %v: %v\n%s", dropin, err, out)
	}
}
