//go:build linux

package mremaptest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// ExpectedSignals holds the expectations for each call MakeSignalCalls
// makes, in order: each pattern a signal stands for, and look-alikes that
// must raise none.
var ExpectedSignals = []struct {
	Name string
	Expectation
}{
	{"exec_move", Expectation{"MREMAP_MAYMOVE", "grow", "maymove", "ok", page, true, "r-xp", "", "exec_move"}},
	{"write_exec", Expectation{"", "shrink", "none", "ok", -page, false, "rwxp", "", "write_exec"}},
	{"fixed_replace", Expectation{"MREMAP_MAYMOVE|MREMAP_FIXED", "none", "fixed", "ok", 0, true, "rw-p", "", "fixed_replace"}},
	// A move into a hole replaces nothing.
	{"fixed_into_hole", Expectation{"MREMAP_MAYMOVE|MREMAP_FIXED", "none", "fixed", "ok", 0, true, "rw-p", "", ""}},
	// old_size 0: a second mapping of the same shared pages. Shared
	// anonymous memory is shmem, which /proc/PID/maps names so.
	{"shared_alias", Expectation{"MREMAP_MAYMOVE", "grow", "maymove", "ok", page, true, "rw-s", "/dev/zero (deleted)", "shared_alias"}},
	{"dontunmap", Expectation{"MREMAP_MAYMOVE|MREMAP_DONTUNMAP", "none", "dontunmap", "ok", 0, true, "rw-p", "", "dontunmap"}},
	// mseal (Linux 6.10+): the call fails with EPERM; left out where the
	// kernel has no mseal.
	{"sealed", Expectation{"MREMAP_MAYMOVE", "grow", "none", "EPERM", page, false, "rw-p", "", "sealed"}},
	// The main thread's stack moved away, and back (the second move is of
	// plain anonymous memory: the stack is where mm->start_stack is).
	{"special_move", Expectation{"MREMAP_MAYMOVE|MREMAP_FIXED", "none", "fixed", "ok", 0, true, "rw-p", "[stack]", "special_move"}},
	{"stack_back", Expectation{"MREMAP_MAYMOVE|MREMAP_FIXED", "none", "fixed", "ok", 0, true, "rw-p", "", ""}},
	// mremap(2) called from code in anonymous executable memory, and from
	// code in a memfd.
	{"unbacked_caller_anonymous", Expectation{"", "shrink", "none", "ok", -page, false, "rw-p", "", "unbacked_caller"}},
	{"unbacked_caller_memfd", Expectation{"", "shrink", "none", "ok", -page, false, "rw-p", "", "unbacked_caller"}},
}

// MakeSignalCalls makes the calls of ExpectedSignals, in order, on the main
// thread (the special move moves its stack, which only that thread uses),
// leaving out the sealed call where the kernel has no mseal.
func MakeSignalCalls() ([]Made, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if unix.Gettid() != os.Getpid() {
		return nil, errors.New("the signal calls must run on the main thread")
	}
	c := &caller{pid: uint32(os.Getpid()), tid: uint32(unix.Gettid())}
	defer c.close()
	for _, calls := range []func(*caller) error{mappingSignalCalls, specialMoveCalls, unbackedCallerCalls} {
		if err := calls(c); err != nil {
			return nil, err
		}
	}
	return c.made, c.checkAgainst(ExpectedSignals, func(name string) bool { return name != "sealed" || HasMseal() })
}

// mappingSignalCalls raise the signals of the mapping at old_address, of
// the target range and of the arguments.
func mappingSignalCalls(c *caller) error {
	x, err := c.mmapProt(2, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	c.call("exec_move", x, page, 2*page, mayMove, 0)
	wx, err := c.mmapProt(2, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC, unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	c.call("write_exec", wx, 2*page, page, 0, 0)

	src, err := c.mmap(1)
	if err != nil {
		return err
	}
	target, err := c.mmap(1)
	if err != nil {
		return err
	}
	c.call("fixed_replace", src, page, page, mayMove|fixed, target)
	if err := intoHole(c); err != nil {
		return err
	}

	shared, err := c.mmapProt(1, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return err
	}
	c.call("shared_alias", shared, 0, page, mayMove, 0)
	d, err := c.mmap(1)
	if err != nil {
		return err
	}
	c.call("dontunmap", d, page, page, mayMove|dontUnmap, 0)
	if HasMseal() {
		s, err := c.mmap(1)
		if err != nil {
			return err
		}
		if _, _, errno := unix.Syscall(unix.SYS_MSEAL, uintptr(s), page, 0); errno != 0 {
			return fmt.Errorf("mseal: %w", errno)
		}
		c.call("sealed", s, page, 2*page, mayMove, 0)
	}
	return nil
}

// intoHole moves a page into a range just unmapped: the call follows at
// once, so that nothing is mapped there in between.
func intoHole(c *caller) error {
	src, err := c.mmap(1)
	if err != nil {
		return err
	}
	hole, err := c.mmap(2)
	if err != nil {
		return err
	}
	c.premapped, c.usePremapped = c.mappingOver(src, page), true
	if err := unix.Munmap(c.bytesAt(hole)); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	c.call("fixed_into_hole", src, page, page, mayMove|fixed, hole)
	return nil
}

// specialMoveCalls move the main thread's stack away and back, with raw
// system calls: in between, nothing may run on that stack (the goroutine
// runs on its own, and the Go runtime uses the main thread's stack only
// when it schedules, which a raw system call does not).
func specialMoveCalls(c *caller) error {
	start, end, err := mappingRange("[stack]")
	if err != nil {
		return err
	}
	size := end - start
	hole, err := c.mmap(int(size / page))
	if err != nil {
		return err
	}
	if err := unix.Munmap(c.bytesAt(hole)); err != nil {
		return fmt.Errorf("munmap: %w", err)
	}
	stack := c.mappingOver(start, size)
	moved := &Mapping{Permissions: stack.Permissions, Count: 1}
	c.rawCalls([]rawCall{
		{"special_move", start, size, size, mayMove | fixed, hole, stack},
		{"stack_back", hole, size, size, mayMove | fixed, start, moved},
	})
	return nil
}

// unbackedCallerCalls call mremap(2) from code in anonymous executable
// memory and from code in a memfd.
func unbackedCallerCalls(c *caller) error {
	if len(syscallCode) == 0 {
		return fmt.Errorf("no code to make a system call from on %s", runtime.GOARCH)
	}
	anon, err := c.mmap(1)
	if err != nil {
		return err
	}
	copy(c.bytesAt(anon), syscallCode)
	if err := unix.Mprotect(c.bytesAt(anon), unix.PROT_READ|unix.PROT_EXEC); err != nil {
		return fmt.Errorf("mprotect: %w", err)
	}
	fd, err := unix.MemfdCreate("mremap-helper-code", 0)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, page); err != nil {
		return fmt.Errorf("ftruncate memfd: %w", err)
	}
	if _, err := unix.Pwrite(fd, syscallCode, 0); err != nil {
		return fmt.Errorf("write memfd: %w", err)
	}
	code, err := unix.Mmap(fd, 0, page, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_PRIVATE)
	if err != nil {
		return fmt.Errorf("mmap memfd: %w", err)
	}
	for _, from := range []struct {
		name string
		code uint64
	}{{"unbacked_caller_anonymous", anon}, {"unbacked_caller_memfd", addrOf(code)}} {
		a, err := c.mmap(2)
		if err != nil {
			return err
		}
		c.callFrom(from.code, from.name, a, 2*page, page, 0, 0)
	}
	return nil
}

// RunHelperSignals runs the helper's -signals mode and returns its calls.
func RunHelperSignals(t testing.TB, path string, args ...string) []Made {
	t.Helper()
	return RunHelperArgs(t, path, append([]string{"-signals"}, args...)...)
}

// SignalExpectationOf returns the expectation of the signal call named name.
func SignalExpectationOf(t testing.TB, name string) Expectation {
	t.Helper()
	for _, e := range append(ExpectedSignals, ExpectedMapCountLimit...) {
		if e.Name == name {
			return e.Expectation
		}
	}
	t.Fatalf("no expectation for signal call %q", name)
	return Expectation{}
}

// HasMseal tells whether the kernel has mseal(2) (Linux 6.10+), which
// seals a mapping against mremap.
func HasMseal() bool {
	_, _, errno := unix.Syscall(unix.SYS_MSEAL, 0, 0, 0)
	return errno != unix.ENOSYS
}

// RaisedHere is signals (as Expectation.Signals) without those this kernel
// cannot raise in probe mode: fixed_replace needs the task vma iterator
// (Linux 6.7+); on arm64, kprobe programs run with interrupts masked and
// look up only the mapping at old_address, so neither fixed_replace nor
// unbacked_caller is raised there.
func RaisedHere(probe, signals string) string {
	var out []string
	for _, s := range strings.Split(signals, "|") {
		switch {
		case s == "":
		case s == "fixed_replace" && (!hasVMAIterator() || oneLookupPerCall(probe)):
		case s == "unbacked_caller" && oneLookupPerCall(probe):
		default:
			out = append(out, s)
		}
	}
	return strings.Join(out, "|")
}

// MappingsSpannedHere is n, the mappings a call's range spans, where the
// kernel can count them in probe mode (the task vma iterator, Linux 6.7+;
// not from arm64's kprobes), else 0.
func MappingsSpannedHere(probe string, n int) int {
	if hasVMAIterator() && !oneLookupPerCall(probe) {
		return n
	}
	return 0
}

// oneLookupPerCall: arm64's kprobes run with interrupts masked, where a
// program takes the mmap lock once per call.
func oneLookupPerCall(probe string) bool { return probe == "kprobe" && runtime.GOARCH == "arm64" }

// hasVMAIterator tells whether the kernel's BTF has bpf_iter_task_vma_new.
func hasVMAIterator() bool {
	b, err := os.ReadFile("/sys/kernel/btf/vmlinux")
	return err == nil && bytes.Contains(b, []byte("\x00bpf_iter_task_vma_new\x00"))
}
