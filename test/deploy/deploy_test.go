// Package deploy checks the deployment files as far as this machine can
// run them: the systemd unit with systemd-analyze verify, the DaemonSet's
// fields (there is no kubectl here), the Dockerfile statically (there is no
// Docker engine here) against the Makefile's build, and the
// k8sattributes example's builder-config.yaml line. The collector configs
// they carry are validated by test/e2e (TestShippedConfigsValidate).
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

func repoFile(t *testing.T, rel string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(mremaptest.ModuleRoot(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// unit parses a systemd unit: section -> key -> values (in order).
func unit(t *testing.T, text string) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	section := ""
	s := bufio.NewScanner(strings.NewReader(text))
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("unit line %q is not key=value in a section", line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// unitCapabilities are the capabilities the systemd unit gives the
// collector, without the CAP_ prefix, sorted.
func unitCapabilities(t *testing.T) []string {
	u := unit(t, repoFile(t, "config/deploy/otelcol-mremap.service"))
	ambient := strings.Fields(strings.Join(u["Service"]["AmbientCapabilities"], " "))
	bounding := strings.Fields(strings.Join(u["Service"]["CapabilityBoundingSet"], " "))
	sort.Strings(ambient)
	sort.Strings(bounding)
	if !slices.Equal(ambient, bounding) {
		t.Errorf("AmbientCapabilities %v and CapabilityBoundingSet %v differ", ambient, bounding)
	}
	var out []string
	for _, c := range ambient {
		out = append(out, strings.TrimPrefix(c, "CAP_"))
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	text := repoFile(t, "config/deploy/otelcol-mremap.service")
	u := unit(t, text)
	svc := u["Service"]
	one := func(k string) string {
		if len(svc[k]) != 1 {
			t.Errorf("[Service] %s: %v, want one value", k, svc[k])
			return ""
		}
		return svc[k][0]
	}
	if user := one("User"); user == "" || user == "root" || user == "0" {
		t.Errorf("User=%q: want a dedicated user", user)
	}
	for k, want := range map[string]string{"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes"} {
		if got := one(k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	exec0 := strings.Fields(one("ExecStart"))
	if len(exec0) != 3 || exec0[1] != "--config" {
		t.Errorf("ExecStart=%v: want the binary and --config <file>", exec0)
	}

	// Each capability is one the kernel knows (setpriv lists them); an
	// unknown name is silently ignored by systemd.
	caps := unitCapabilities(t)
	if len(caps) == 0 {
		t.Fatal("the unit grants no capabilities")
	}
	if out, err := exec.Command("setpriv", "--list-caps").Output(); err == nil {
		known := strings.Fields(strings.ToUpper(string(out)))
		for _, c := range caps {
			if !slices.Contains(known, c) {
				t.Errorf("CAP_%s is not a capability (setpriv --list-caps: %v)", c, known)
			}
		}
	} else {
		t.Logf("setpriv not available (%v): capability names not checked", err)
	}
	for _, c := range []string{"BPF", "PERFMON"} {
		if !slices.Contains(caps, c) {
			t.Errorf("the unit lacks CAP_%s, which loading and attaching the probes needs", c)
		}
	}
	if slices.Contains(caps, "SYS_ADMIN") {
		t.Error("the unit grants CAP_SYS_ADMIN")
	}

	// systemd-analyze verify, with ExecStart pointing at the built binary
	// (verify checks that the command exists).
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd): the unit is checked only by the fields above")
	}
	path := filepath.Join(t.TempDir(), "otelcol-mremap.service")
	text = strings.ReplaceAll(text, exec0[0], mremaptest.CollectorPath(t))
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// k8s is the part of the Kubernetes objects the test reads.
type k8s struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				HostPID     bool   `yaml:"hostPID"`
				HostNetwork bool   `yaml:"hostNetwork"`
				DNSPolicy   string `yaml:"dnsPolicy"`
				Containers  []struct {
					Image string   `yaml:"image"`
					Args  []string `yaml:"args"`
					Env   []struct {
						Name      string         `yaml:"name"`
						Value     string         `yaml:"value"`
						ValueFrom map[string]any `yaml:"valueFrom"`
					} `yaml:"env"`
					SecurityContext struct {
						RunAsUser                *int  `yaml:"runAsUser"`
						Privileged               *bool `yaml:"privileged"`
						AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
						ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
						Capabilities             struct {
							Add  []string `yaml:"add"`
							Drop []string `yaml:"drop"`
						} `yaml:"capabilities"`
					} `yaml:"securityContext"`
					ReadinessProbe struct {
						HTTPGet struct {
							Port int `yaml:"port"`
						} `yaml:"httpGet"`
					} `yaml:"readinessProbe"`
					Resources struct {
						Requests map[string]string `yaml:"requests"`
						Limits   map[string]string `yaml:"limits"`
					} `yaml:"resources"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string            `yaml:"name"`
					HostPath  map[string]string `yaml:"hostPath"`
					ConfigMap map[string]string `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func TestDaemonSet(t *testing.T) {
	dec := yaml.NewDecoder(strings.NewReader(repoFile(t, "config/deploy/daemonset.yaml")))
	objects := map[string]k8s{}
	for {
		var o k8s
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		objects[o.Kind] = o
	}
	cm, ds := objects["ConfigMap"], objects["DaemonSet"]
	if ds.Kind == "" || cm.Kind == "" {
		t.Fatalf("want a ConfigMap and a DaemonSet, got %v", objects)
	}
	if got, want := cm.Data["config.yaml"], repoFile(t, "config/agent.yaml"); got != want {
		t.Errorf("the ConfigMap's config.yaml differs from config/agent.yaml:\n%s", got)
	}
	pod := ds.Spec.Template.Spec
	if !pod.HostPID {
		t.Error("hostPID is not set: process ids and /proc would be the pod's")
	}
	if !pod.HostNetwork || pod.DNSPolicy != "ClusterFirstWithHostNet" {
		t.Errorf("hostNetwork %v, dnsPolicy %q: want the node's host name and cluster DNS", pod.HostNetwork, pod.DNSPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]

	sc := c.SecurityContext
	add := slices.Clone(sc.Capabilities.Add)
	sort.Strings(add)
	if want := unitCapabilities(t); !slices.Equal(add, want) {
		t.Errorf("capabilities add %v, want the systemd unit's %v", add, want)
	}
	if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("capabilities drop %v, want [ALL]", sc.Capabilities.Drop)
	}
	if sc.Privileged != nil && *sc.Privileged || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !sc.ReadOnlyRootFilesystem {
		t.Errorf("securityContext %+v: want not privileged, no privilege escalation, read-only root", sc)
	}

	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" || c.Resources.Limits[r] == "" {
			t.Errorf("resources: %s request %q, limit %q: want both", r, c.Resources.Requests[r], c.Resources.Limits[r])
		}
	}

	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "valueFrom"
		}
	}
	agent := repoFile(t, "config/agent.yaml")
	for _, v := range regexp.MustCompile(`\$\{env:([A-Z_]+)`).FindAllStringSubmatch(agent, -1) {
		if env[v[1]] == "" {
			t.Errorf("config/agent.yaml reads %s, which the DaemonSet does not set", v[1])
		}
	}
	if !strings.HasSuffix(env["HEALTH_CHECK_ENDPOINT"], ":13133") || c.ReadinessProbe.HTTPGet.Port != 13133 {
		t.Errorf("health_check at %q, readiness probe on port %d", env["HEALTH_CHECK_ENDPOINT"], c.ReadinessProbe.HTTPGet.Port)
	}

	// The host's tracefs, debugfs and BTF, at the same paths; the config
	// from the ConfigMap where args say.
	volumes := map[string]string{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v.HostPath["path"]
		if v.ConfigMap != nil {
			volumes[v.Name] = "configMap:" + v.ConfigMap["name"]
		}
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = volumes[m.Name]
	}
	for _, p := range []string{"/sys/kernel/tracing", "/sys/kernel/debug", "/sys/kernel/btf"} {
		if mounts[p] != p {
			t.Errorf("%s is mounted from %q, want the host's %s", p, mounts[p], p)
		}
	}
	// filter.cgroups needs the host's cgroup v2 hierarchy, beside the
	// pod's own /sys/fs/cgroup, not over it.
	if mounts["/host/sys/fs/cgroup"] != "/sys/fs/cgroup" {
		t.Errorf("/host/sys/fs/cgroup is mounted from %q, want the host's /sys/fs/cgroup", mounts["/host/sys/fs/cgroup"])
	}
	if _, over := mounts["/sys/fs/cgroup"]; over {
		t.Error("a volume is mounted over the pod's /sys/fs/cgroup, where memory_limiter reads the pod's limits")
	}
	if len(c.Args) != 1 || !strings.HasPrefix(c.Args[0], "--config=") ||
		mounts[filepath.Dir(strings.TrimPrefix(c.Args[0], "--config="))] != "configMap:"+cm.Metadata.Name {
		t.Errorf("args %v do not name config.yaml in the mounted ConfigMap %s (mounts %v)", c.Args, cm.Metadata.Name, mounts)
	}
}

// dockerfile returns the instructions of a Dockerfile, continuation lines
// joined, comments left out.
func dockerfile(text string) [][]string {
	var out [][]string
	var cur string
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur += strings.TrimSuffix(trimmed, "\\") + " "
			continue
		}
		cur += trimmed
		if f := strings.Fields(cur); len(f) > 0 {
			out = append(out, f)
		}
		cur = ""
	}
	return out
}

type stage struct {
	from, name string
	ins        [][]string
}

// dockerStages parses the Dockerfile into its stages; every instruction
// must be one Docker knows.
func dockerStages(t *testing.T) []stage {
	known := []string{"FROM", "ARG", "RUN", "WORKDIR", "COPY", "ENV", "EXPOSE", "ENTRYPOINT", "CMD", "USER", "LABEL", "VOLUME", "HEALTHCHECK", "ADD", "SHELL", "STOPSIGNAL", "ONBUILD"}
	var stages []stage
	for _, in := range dockerfile(repoFile(t, "Dockerfile")) {
		if !slices.Contains(known, in[0]) {
			t.Errorf("unknown Dockerfile instruction %q", strings.Join(in, " "))
			continue
		}
		if in[0] == "FROM" {
			s := stage{from: in[1]}
			if len(in) == 4 && strings.EqualFold(in[2], "AS") {
				s.name = in[3]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in[0] != "ARG" {
				t.Errorf("%s before the first FROM", in[0])
			}
			continue
		}
		stages[len(stages)-1].ins = append(stages[len(stages)-1].ins, in)
	}
	if len(stages) != 2 || stages[0].name == "" {
		t.Fatalf("want two stages, a named build stage and the runtime, got %+v", stages)
	}
	return stages
}

// buildRuns returns the build stage's RUN commands, ARGs expanded, and
// its WORKDIR.
func buildRuns(build stage) (runs []string, workdir string) {
	args := map[string]string{}
	workdir = "/"
	for _, in := range build.ins {
		switch in[0] {
		case "ARG":
			k, v, _ := strings.Cut(in[1], "=")
			args[k] = v
		case "WORKDIR":
			workdir = in[1]
		case "RUN":
			runs = append(runs, os.Expand(strings.Join(in[1:], " "), func(k string) string { return args[k] }))
		}
	}
	return runs, workdir
}

func makefileOCB(t *testing.T) string {
	ocb := regexp.MustCompile(`(?m)^OCB_VERSION := (\S+)$`).FindStringSubmatch(repoFile(t, "Makefile"))
	if ocb == nil {
		t.Fatal("no OCB_VERSION in the Makefile")
	}
	return ocb[1]
}

// ocbOutput is where ocb writes the binary: dist.output_path/dist.name.
func ocbOutput(t *testing.T) string {
	var manifest struct {
		Dist struct {
			Name       string `yaml:"name"`
			OutputPath string `yaml:"output_path"`
		} `yaml:"dist"`
	}
	if err := yaml.Unmarshal([]byte(repoFile(t, "builder-config.yaml")), &manifest); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(manifest.Dist.OutputPath, manifest.Dist.Name)
}

// TestDockerfile checks the Dockerfile without a Docker engine: every
// instruction is one Docker knows, the build stage runs the Makefile's ocb
// version on builder-config.yaml with the Go of go.mod, the runtime stage
// copies the binary from where ocb writes it and runs it with a config it
// copies, and every file it copies from the repository exists.
func TestDockerfile(t *testing.T) {
	root := mremaptest.ModuleRoot()
	stages := dockerStages(t)
	build, runtime := stages[0], stages[1]

	// Go as in go.mod.
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(repoFile(t, "go.mod"))
	if goVersion == nil || !strings.HasPrefix(build.from, "golang:"+goVersion[1]) {
		t.Errorf("build stage FROM %s, want golang:%s (go.mod)", build.from, goVersion)
	}

	// ocb: the Makefile's version, the same manifest.
	runs, workdir := buildRuns(build)
	all := strings.Join(runs, "\n")
	for _, want := range []string{"go install go.opentelemetry.io/collector/cmd/builder@" + makefileOCB(t), "builder --config=builder-config.yaml"} {
		if !strings.Contains(all, want) {
			t.Errorf("the build stage does not run %q; it runs:\n%s", want, all)
		}
	}
	built := filepath.Join(workdir, ocbOutput(t))

	// COPY sources: from the build stage, the built binary; from the
	// repository, files that exist (and are not left out by .dockerignore).
	ignored := strings.Fields(repoFile(t, ".dockerignore"))
	copied := map[string]string{} // destination -> source
	for _, s := range stages {
		for _, in := range s.ins {
			if in[0] != "COPY" {
				continue
			}
			srcs, dst := in[1:len(in)-1], in[len(in)-1]
			if strings.HasPrefix(srcs[0], "--from=") {
				if srcs[0] != "--from="+build.name || len(srcs) != 2 || srcs[1] != built {
					t.Errorf("COPY %v: want --from=%s %s (ocb's output)", srcs, build.name, built)
				}
				copied[dst] = "build:" + srcs[1]
				continue
			}
			for _, src := range srcs {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("COPY %s: %v", src, err)
				}
				if slices.Contains(ignored, strings.Split(src, "/")[0]) {
					t.Errorf("COPY %s: .dockerignore leaves it out", src)
				}
				copied[dst] = src
			}
		}
	}

	var entrypoint, cmd []string
	for _, in := range runtime.ins {
		switch in[0] {
		case "ENTRYPOINT":
			entrypoint = jsonArray(t, in)
		case "CMD":
			cmd = jsonArray(t, in)
		}
	}
	if len(entrypoint) != 1 || copied[entrypoint[0]] != "build:"+built {
		t.Errorf("ENTRYPOINT %v is not the binary copied from the build stage (%v)", entrypoint, copied)
	}
	if len(cmd) != 1 || !strings.HasPrefix(cmd[0], "--config=") || copied[strings.TrimPrefix(cmd[0], "--config=")] == "" {
		t.Errorf("CMD %v does not name a config the image copies (%v)", cmd, copied)
	}
}

// TestDockerBuildStage runs the Dockerfile's build stage without Docker:
// the build context (the repository less .dockerignore) copied as its
// COPY lines say into a directory of its own, then its RUN lines there,
// with the Makefile's ocb (the same version the stage installs) on PATH
// instead of `go install`. ocb's output must then be where the runtime
// stage copies it from. Missing files in the context (ocb's go mod tidy
// also resolves what the receiver's tests import) fail here.
func TestDockerBuildStage(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds the distribution")
	}
	root := mremaptest.ModuleRoot()
	ocb := filepath.Join(root, ".tools", "builder")
	out, err := exec.Command(ocb, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s (make build installs it): %v", ocb, err)
	}
	if !strings.Contains(string(out), makefileOCB(t)) {
		t.Fatalf("%s is %s, not the Makefile's %s", ocb, out, makefileOCB(t))
	}
	build := dockerStages(t)[0]
	runs, workdir := buildRuns(build)
	dir := t.TempDir()
	ctx := filepath.Join(dir, "context")
	stageRoot := filepath.Join(dir, "stage")
	ignored := strings.Fields(repoFile(t, ".dockerignore"))
	copyTree(t, root, ctx, func(rel string) bool { return slices.Contains(ignored, strings.Split(rel, "/")[0]) })
	wd := filepath.Join(stageRoot, workdir)
	for _, in := range build.ins {
		if in[0] != "COPY" {
			continue
		}
		srcs, dst := in[1:len(in)-1], in[len(in)-1]
		target := filepath.Join(wd, dst)
		for _, src := range srcs {
			if strings.HasSuffix(dst, "/") || len(srcs) > 1 {
				info, err := os.Stat(filepath.Join(ctx, src))
				if err != nil {
					t.Fatalf("COPY %s: %v", src, err)
				}
				if !info.IsDir() {
					copyTree(t, filepath.Join(ctx, src), filepath.Join(target, filepath.Base(src)), nil)
					continue
				}
			}
			copyTree(t, filepath.Join(ctx, src), target, nil)
		}
	}
	for _, run := range runs {
		if strings.HasPrefix(run, "go install go.opentelemetry.io/collector/cmd/builder@") {
			continue // the Makefile's ocb, same version, is on PATH
		}
		cmd := exec.Command("sh", "-c", run)
		cmd.Dir = wd
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(ocb)+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("RUN %s: %v\n%s", run, err, out)
		}
	}
	if _, err := os.Stat(filepath.Join(wd, ocbOutput(t))); err != nil {
		t.Errorf("the build stage did not produce %s: %v", ocbOutput(t), err)
	}
}

// copyTree copies a file or a directory; skip (relative paths) leaves
// entries out.
func copyTree(t *testing.T, src, dst string, skip func(rel string) bool) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if rel != "." && skip != nil && skip(filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case info.Mode().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			return os.WriteFile(target, data, info.Mode().Perm())
		}
		return nil // sockets, symlinks: not part of a build context here
	})
	if err != nil {
		t.Fatal(err)
	}
}

func jsonArray(t *testing.T, in []string) []string {
	var out []string
	if err := yaml.Unmarshal([]byte(strings.Join(in[1:], " ")), &out); err != nil {
		t.Errorf("%s is not a JSON array: %v", strings.Join(in, " "), err)
	}
	return out
}

// TestK8sAttributesBuilderLine: the builder-config.yaml line the example and
// docs/deployment.md give is the contrib k8sattributes processor at the
// contrib version builder-config.yaml uses.
func TestK8sAttributesBuilderLine(t *testing.T) {
	contrib := regexp.MustCompile(`opentelemetry-collector-contrib/\S+ (v\S+)`).FindStringSubmatch(repoFile(t, "builder-config.yaml"))
	if contrib == nil {
		t.Fatal("builder-config.yaml has no contrib module")
	}
	want := "- gomod: github.com/open-telemetry/opentelemetry-collector-contrib/processor/k8sattributesprocessor " + contrib[1]
	for _, f := range []string{"config/k8sattributes-example.yaml", "docs/deployment.md"} {
		if !strings.Contains(repoFile(t, f), want) {
			t.Errorf("%s does not give the builder-config.yaml line %q", f, want)
		}
	}
}
