//go:build linux

package mremaptest

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GoStackFunctions are the functions of cmd/mremap-helper that its -stack
// call is made from, innermost first.
var GoStackFunctions = []string{"main.stackInner", "main.stackMiddle", "main.stackOuter", "main.stackCall", "main.main"}

// CommCStack is the comm of cmd/mremap-cstack (its file name).
const CommCStack = "mremap-cstack"

// CStackFunctions are the functions of cmd/mremap-cstack that its call is
// made from, innermost first.
var CStackFunctions = []string{"stack_inner", "stack_middle", "stack_outer", "main"}

// CStackPath returns cmd/mremap-cstack, a static C program built with frame
// pointers: $MREMAP_CSTACK if set (make test-kernel passes
// bin/mremap-cstack, the kernel VM suite its own copy), else one built for
// the test in its temporary directory. It skips the test where gcc cannot
// build static programs.
func CStackPath(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MREMAP_CSTACK"); p != "" {
		return p
	}
	path := filepath.Join(t.TempDir(), CommCStack)
	cmd := exec.Command("gcc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-fno-omit-frame-pointer",
		"-fno-optimize-sibling-calls", "-o", path, "cmd/mremap-cstack/main.c")
	cmd.Dir = ModuleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		if _, lerr := exec.LookPath("gcc"); lerr != nil {
			t.Skipf("gcc not found (Debian package gcc): cmd/mremap-cstack not built")
		}
		t.Fatalf("build cmd/mremap-cstack: %v\n%s", err, out)
	}
	return path
}

// StartHelper starts a helper (the Go one with -stack -linger D, or
// cmd/mremap-cstack MODE LINGER_MS) and returns the n calls it prints,
// while it still runs: until the test ends, or it exits on its own.
func StartHelper(t testing.TB, n int, path string, args ...string) []Made {
	t.Helper()
	cmd := exec.Command(path, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var made []Made
	sc := bufio.NewScanner(stdout)
	for len(made) < n && sc.Scan() {
		var m Made
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("parse %s output %q: %v", path, sc.Text(), err)
		}
		made = append(made, m)
	}
	if len(made) < n {
		cmd.Wait()
		t.Fatalf("%s %v printed %d calls, want %d: %s", path, args, len(made), n, stderr.String())
	}
	return made
}

// ExpectedStack holds the expectations for the calls of the call-stack
// helpers: mremap-helper -stack, and mremap-cstack's two modes, each two
// pages of anonymous memory shrunk to one in place; the tests that check
// them leave the lookup of the mapping off.
var ExpectedStack = []struct {
	Name string
	Expectation
}{
	{"stack", Expectation{"", "shrink", "none", "ok", -page, false, "", "", ""}},
	{"mremap", Expectation{"", "shrink", "none", "ok", -page, false, "", "", ""}},
	{"syscall", Expectation{"", "shrink", "none", "ok", -page, false, "", "", ""}},
}

// InOrder reports whether want appears in got as consecutive elements.
func InOrder(got []string, want ...string) bool {
	for i := 0; i+len(want) <= len(got); i++ {
		ok := true
		for j := range want {
			ok = ok && got[i+j] == want[j]
		}
		if ok {
			return true
		}
	}
	return false
}

// StrippedCopy copies the program at path, stripped of its symbol tables,
// into a directory of the test's under the same file name (so its comm is
// the same), and returns the copy's path: with strip(1) where it is
// installed, else (the kernel VM has no binutils) by turning the copy's
// symbol table sections into SHT_NULL ones, which no ELF reader takes for
// symbols.
func StrippedCopy(t testing.TB, path string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if _, err := exec.LookPath("strip"); err == nil {
		if b, err := exec.Command("strip", "-o", out, path).CombinedOutput(); err != nil {
			t.Fatalf("strip %s: %v\n%s", path, err, b)
		}
		return out
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := nullSymbolTables(b); err != nil {
		t.Fatalf("strip %s: %v", path, err)
	}
	if err := os.WriteFile(out, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return out
}

// nullSymbolTables sets the type of the SHT_SYMTAB and SHT_DYNSYM section
// headers of the 64-bit little-endian ELF file b to SHT_NULL.
func nullSymbolTables(b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if f.Class != elf.ELFCLASS64 || f.Data != elf.ELFDATA2LSB {
		return fmt.Errorf("not a 64-bit little-endian ELF file")
	}
	shoff := binary.LittleEndian.Uint64(b[0x28:])
	shentsize := uint64(binary.LittleEndian.Uint16(b[0x3a:]))
	for i, s := range f.Sections {
		if s.Type == elf.SHT_SYMTAB || s.Type == elf.SHT_DYNSYM {
			binary.LittleEndian.PutUint32(b[shoff+uint64(i)*shentsize+4:], uint32(elf.SHT_NULL))
		}
	}
	return nil
}
