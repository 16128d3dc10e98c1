// Package layout checks the shape of the code: files a reader takes in at
// once, functions too, and the layers kept apart, so that the kernel side
// and the tracer never name what belongs to the Collector's users.
package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"
)

const (
	maxFileLines = 400
	maxFuncLines = 60
)

func root(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	dir, err := filepath.Abs(filepath.Join(filepath.Dir(file), "..", ".."))
	require.NoError(t, err)
	return dir
}

// productFiles are the repository's own sources under dirs, generated code
// aside, and tests too with withTests.
func productFiles(t *testing.T, withTests bool, dirs ...string) []string {
	var files []string
	for _, d := range dirs {
		err := filepath.WalkDir(filepath.Join(root(t), d), func(path string, e os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if e.IsDir() && e.Name() == "testdata" {
				return filepath.SkipDir
			}
			name := e.Name()
			switch {
			case e.IsDir(), !withTests && strings.HasSuffix(name, "_test.go"), strings.HasPrefix(name, "generated_"),
				strings.HasSuffix(name, "_bpfel.go"), name == "vmlinux.h":
				return nil
			case strings.HasSuffix(name, ".go"), strings.HasSuffix(name, ".c"), strings.HasSuffix(name, ".h"):
				files = append(files, path)
			}
			return nil
		})
		require.NoError(t, err)
	}
	require.NotEmpty(t, files)
	return files
}

func TestFilesAndFunctionsAreShort(t *testing.T) {
	for _, path := range productFiles(t, false, "bpf", "cmd", "internal", "receiver") {
		rel, _ := filepath.Rel(root(t), path)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		if n := strings.Count(string(data), "\n"); n > maxFileLines {
			t.Errorf("%s: %d lines, at most %d", rel, n, maxFileLines)
		}
		if !strings.HasSuffix(path, ".go") {
			continue
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, data, 0)
		require.NoError(t, err)
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			lines := fset.Position(fn.Body.Rbrace).Line - fset.Position(fn.Pos()).Line
			if lines > maxFuncLines {
				t.Errorf("%s:%d: %s is %d lines, at most %d", rel, fset.Position(fn.Pos()).Line, fn.Name.Name, lines, maxFuncLines)
			}
		}
	}
}

// userNames are the names the receiver's users see: its configuration keys
// (the mapstructure tags of its Config, nested with "::") and its
// attributes and metrics (metadata.yaml, and the histograms and log
// attributes it documents there).
func userNames(t *testing.T) []string {
	var names []string
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			key := prefix + tag
			if tag != "" && !strings.Contains(tag, ".") {
				names = append(names, key)
			}
			ours := strings.HasPrefix(f.Type.PkgPath(), "github.com/otelcol-mremap/")
			if f.Type.Kind() == reflect.Struct && (ours || opts == "squash") {
				if tag != "" {
					key += "::"
				}
				walk(key, f.Type)
			}
		}
	}
	walk("", reflect.TypeFor[mremapreceiver.Config]())

	data, err := os.ReadFile(filepath.Join(root(t), "receiver", "mremapreceiver", "metadata.yaml"))
	require.NoError(t, err)
	var meta struct {
		ResourceAttributes map[string]any `yaml:"resource_attributes"`
		Attributes         map[string]any `yaml:"attributes"`
		Metrics            map[string]any `yaml:"metrics"`
	}
	require.NoError(t, yaml.Unmarshal(data, &meta))
	for _, m := range []map[string]any{meta.ResourceAttributes, meta.Attributes, meta.Metrics} {
		for k := range m {
			names = append(names, k)
		}
	}
	// Names metadata.yaml cannot hold: the histograms and the log record's
	// attributes, as the receiver's README lists them.
	readme, err := os.ReadFile(filepath.Join(root(t), "receiver", "mremapreceiver", "README.md"))
	require.NoError(t, err)
	for _, m := range regexp.MustCompile("`((?:mremap|thread|process|container|host|code)\\.[a-z_.]+)`").FindAllStringSubmatch(string(readme), -1) {
		names = append(names, m[1])
	}
	return names
}

// The kernel program and the tracer speak in kernel terms: no
// configuration key, attribute or metric name of the receiver is written
// in bpf/ or internal/ (the receiver turns the tracer's facts into them).
func TestKernelSideNamesNoUserName(t *testing.T) {
	names := userNames(t)
	assert.Contains(t, names, "filter::cgroups")
	assert.Contains(t, names, "mremap.vma.path")
	assert.Contains(t, names, "process.executable.path")
	assert.Contains(t, names, "collection_interval")
	// Short keys (probe, filter) are words of the kernel too; the
	// receiver's keys that hold an underscore or a dot are its own.
	var own []string
	for _, n := range names {
		if strings.ContainsAny(n, "_.:") {
			own = append(own, regexp.QuoteMeta(n))
		}
	}
	pattern := regexp.MustCompile(`(^|[^a-z_.:])(` + strings.Join(own, "|") + `)($|[^a-z_.:])`)
	for _, path := range productFiles(t, true, "bpf", "internal") {
		rel, _ := filepath.Rel(root(t), path)
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		for i, line := range strings.Split(string(data), "\n") {
			if m := pattern.FindStringSubmatch(line); m != nil {
				t.Errorf("%s:%d names %q, the receiver's: %s", rel, i+1, m[2], strings.TrimSpace(line))
			}
		}
	}
}
