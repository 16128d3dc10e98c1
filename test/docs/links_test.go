// Package docs checks the repository's Markdown: every relative link names a
// file or directory in the repository, every #anchor names a heading of the
// page it points to, and the top README stays short. It needs neither root
// nor a kernel.
package docs

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// maxReadme is the top README's limit in bytes: it says what the project is
// and links the pages that hold the rest.
const maxReadme = 15000

// pendingDocs are pages that land from other branches: links to them are
// not checked while they are missing. Once a page is in the repository,
// TestPendingDocsPending fails until it is taken off this list, so that
// links to it are checked like any other.
var pendingDocs = []string{}

// repoRoot is the repository's root: this package is test/docs.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root %s: %v", root, err)
	}
	return root
}

// markdownFiles lists the Markdown files of the repository, relative to
// root, leaving out hidden directories (.git, .cache) and build output.
func markdownFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "bin" || rel == "build") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".md") {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// page is what the checks need of one Markdown file.
type page struct {
	anchors map[string]bool
	links   []link
}

type link struct {
	line int
	dest string
}

var (
	fence      = regexp.MustCompile("^\\s{0,3}(```|~~~)")
	heading    = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	inlineLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
	htmlAnchor = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	linkText   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// parse reads a Markdown file's headings (as GitHub's anchors) and link
// destinations, outside code blocks and code spans.
func parse(path string) (*page, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := &page{anchors: map[string]bool{}}
	seen := map[string]int{}
	inCode := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if fence.MatchString(line) {
			inCode = !inCode
			continue
		}
		if inCode {
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			slug := anchor(m[1])
			if k := seen[slug]; k > 0 {
				p.anchors[fmt.Sprintf("%s-%d", slug, k)] = true
			} else {
				p.anchors[slug] = true
			}
			seen[slug]++
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			p.anchors[m[1]] = true
		}
		text := codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			p.links = append(p.links, link{n, m[1]})
		}
		// A reference definition; [comment]: <> (...) is Markdown's comment.
		if m := refLink.FindStringSubmatch(text); m != nil && m[1] != "<>" {
			p.links = append(p.links, link{n, strings.Trim(m[1], "<>")})
		}
	}
	return p, sc.Err()
}

// anchor is the id GitHub gives a heading: its text without markup,
// lowercased, with everything but letters, digits, spaces, hyphens and
// underscores removed and spaces turned into hyphens.
func anchor(text string) string {
	text = linkText.ReplaceAllString(text, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(text) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// external is a link that leaves the repository by design: a URL.
func external(dest string) bool {
	u, err := url.Parse(dest)
	return err == nil && u.Scheme != ""
}

func TestLinksResolve(t *testing.T) {
	root := repoRoot(t)
	files := markdownFiles(t, root)
	for _, want := range []string{"README.md", "receiver/mremapreceiver/README.md", "docs/probes-and-kernels.md"} {
		if !slices.Contains(files, want) {
			t.Fatalf("%s not found among the Markdown files %v", want, files)
		}
	}
	pages := map[string]*page{}
	load := func(rel string) *page {
		if p, ok := pages[rel]; ok {
			return p
		}
		p, err := parse(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		pages[rel] = p
		return p
	}
	checked := 0
	for _, file := range files {
		for _, l := range load(file).links {
			where := fmt.Sprintf("%s:%d: link %q", file, l.line, l.dest)
			if l.dest == "" {
				t.Errorf("%s: empty destination", where)
				continue
			}
			if external(l.dest) {
				continue
			}
			target, frag, _ := strings.Cut(l.dest, "#")
			target, err := url.PathUnescape(target)
			if err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if strings.HasPrefix(target, "/") {
				t.Errorf("%s: an absolute path; link files of the repository relatively", where)
				continue
			}
			rel := file
			if target != "" {
				rel = filepath.ToSlash(filepath.Join(filepath.Dir(file), target))
			}
			if rel == ".." || strings.HasPrefix(rel, "../") {
				t.Errorf("%s: points outside the repository", where)
				continue
			}
			if slices.Contains(pendingDocs, rel) {
				if _, err := os.Stat(filepath.Join(root, rel)); os.IsNotExist(err) {
					continue // lands from another branch
				}
			}
			info, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
			if err != nil {
				t.Errorf("%s: %s is not in the repository", where, rel)
				continue
			}
			checked++
			if frag == "" {
				continue
			}
			if info.IsDir() || !strings.HasSuffix(rel, ".md") {
				t.Errorf("%s: an anchor into %s, which is not a Markdown page", where, rel)
				continue
			}
			if !load(rel).anchors[frag] {
				t.Errorf("%s: %s has no heading with anchor #%s", where, rel, frag)
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link was checked")
	}
	t.Logf("%d relative links checked in %d Markdown files", checked, len(files))
}

// TestPendingDocsPending: a page of pendingDocs that has landed is taken
// off the list, so that links to it are checked.
func TestPendingDocsPending(t *testing.T) {
	root := repoRoot(t)
	for _, rel := range pendingDocs {
		if _, err := os.Stat(filepath.Join(root, rel)); err == nil {
			t.Errorf("%s is in the repository now: remove it from pendingDocs in %s", rel, "test/docs/links_test.go")
		}
	}
}

func TestReadmeIsShort(t *testing.T) {
	info, err := os.Stat(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size() >= maxReadme {
		t.Errorf("README.md is %d bytes, want under %d: move the detail to the receiver's README or a page under docs/", info.Size(), maxReadme)
	}
}

func TestAnchor(t *testing.T) {
	for _, c := range []struct{ heading, want string }{
		{"Kernel requirements", "kernel-requirements"},
		{"32-bit callers", "32-bit-callers"},
		{"The mapping at `old_address`", "the-mapping-at-old_address"},
		{"Kubernetes metadata (k8sattributes)", "kubernetes-metadata-k8sattributes"},
		{"Drops: every call is delivered or counted", "drops-every-call-is-delivered-or-counted"},
		{"Privacy: what the records reveal", "privacy-what-the-records-reveal"},
		{"[Probes](x.md) and kernels", "probes-and-kernels"},
	} {
		if got := anchor(c.heading); got != c.want {
			t.Errorf("anchor(%q) = %q, want %q", c.heading, got, c.want)
		}
	}
}
