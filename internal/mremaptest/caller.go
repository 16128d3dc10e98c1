//go:build linux

package mremaptest

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// caller makes calls and records them, with the mapping /proc/self/maps
// showed at each call's old address just before it.
type caller struct {
	pid, tid uint32
	made     []Made
	// Reading /proc/self/maps allocates, and the Go runtime may then map
	// memory into a hole the helper just made (the page a shrink freed).
	// Before a call whose result depends on such a hole, the mapping is
	// read earlier and set in premapped (nil: none), and the call follows
	// at once.
	premapped    *Mapping
	usePremapped bool
	tempFile     string // the file mappingCalls maps, removed by close
	exe          string
	mapped       map[uint64][]byte // by address, what mmapProt mapped
}

// mappingOver is the mapping at addr, with the mappings [addr, addr+size)
// spans.
func (c *caller) mappingOver(addr, size uint64) *Mapping {
	m, err := MappingOver(addr, size)
	if err != nil {
		return &Mapping{Permissions: "error", Path: err.Error()}
	}
	return m
}

// call makes one mremap(2) call and returns what it returned.
func (c *caller) call(name string, addr, oldSize, newSize, flags, newAddr uint64) uint64 {
	maps := c.premapped
	if !c.usePremapped {
		maps = c.mappingOver(addr, oldSize)
	}
	c.premapped, c.usePremapped = nil, false
	r, _, errno := unix.Syscall6(unix.SYS_MREMAP, uintptr(addr), uintptr(oldSize), uintptr(newSize),
		uintptr(flags), uintptr(newAddr), 0)
	ret := int64(r)
	if errno != 0 {
		ret = -int64(errno)
	}
	c.made = append(c.made, Made{name, c.pid, c.tid, addr, oldSize, newSize, flags, newAddr, ret, maps})
	return uint64(r)
}

func (c *caller) mmap(pages int) (uint64, error) {
	return c.mmapProt(pages, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
}

// mmapProt maps anonymous memory with prot and flags (MAP_PRIVATE or
// MAP_SHARED).
func (c *caller) mmapProt(pages, prot, flags int) (uint64, error) {
	b, err := unix.Mmap(-1, 0, pages*page, prot, flags|unix.MAP_ANONYMOUS)
	if err != nil {
		return 0, fmt.Errorf("mmap %d pages: %w", pages, err)
	}
	if c.mapped == nil {
		c.mapped = map[uint64][]byte{}
	}
	c.mapped[addrOf(b)] = b
	return addrOf(b), nil
}

// bytesAt is the memory mmapProt mapped at addr.
func (c *caller) bytesAt(addr uint64) []byte { return c.mapped[addr] }

// rawCall is a call made with a raw system call, its mapping known before.
type rawCall struct {
	name                                   string
	addr, oldSize, newSize, flags, newAddr uint64
	maps                                   *Mapping
}

// rawCalls makes calls back to back with raw system calls, which do not
// enter the Go scheduler, then records them. The thread's signals are
// blocked meanwhile: a call may move the main thread's stack away, and a
// signal (the runtime's asynchronous preemption, SIGURG) would have the
// runtime switch to that stack to schedule; it is delivered once the calls
// are done.
func (c *caller) rawCalls(calls []rawCall) {
	rets := make([]int64, len(calls))
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^all.Val[i]
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, _, errno := unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK,
		uintptr(unsafe.Pointer(&all)), uintptr(unsafe.Pointer(&old)), sigsetSize, 0, 0); errno != 0 {
		panic(fmt.Sprintf("rt_sigprocmask: %v", errno))
	}
	for i, rc := range calls {
		r, _, errno := unix.RawSyscall6(unix.SYS_MREMAP, uintptr(rc.addr), uintptr(rc.oldSize), uintptr(rc.newSize),
			uintptr(rc.flags), uintptr(rc.newAddr), 0)
		rets[i] = int64(r)
		if errno != 0 {
			rets[i] = -int64(errno)
		}
	}
	_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&old)), 0, sigsetSize, 0, 0)
	for i, rc := range calls {
		c.made = append(c.made, Made{rc.name, c.pid, c.tid, rc.addr, rc.oldSize, rc.newSize, rc.flags, rc.newAddr, rets[i], rc.maps})
	}
}

// callFrom makes a call from the code at code (syscallCode): its user
// instruction pointer at the system call is there.
func (c *caller) callFrom(code uint64, name string, addr, oldSize, newSize, flags, newAddr uint64) {
	maps := c.mappingOver(addr, oldSize)
	// The kernel's raw return: an address, or -errno.
	ret := int64(callCode(uintptr(code), unix.SYS_MREMAP, uintptr(addr), uintptr(oldSize), uintptr(newSize), uintptr(flags), uintptr(newAddr)))
	c.made = append(c.made, Made{name, c.pid, c.tid, addr, oldSize, newSize, flags, newAddr, ret, maps})
}

// sigsetSize is the kernel's signal set, in bytes: 64 signals.
const sigsetSize = 8

func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))) }

func (c *caller) close() {
	if c.tempFile != "" {
		os.Remove(c.tempFile)
	}
}

// check compares the calls made with Expected.
func (c *caller) check() error {
	return c.checkAgainst(Expected, func(string) bool { return true })
}

// checkAgainst compares the calls made with expected, less the calls that
// made says are not made here.
func (c *caller) checkAgainst(expected []struct {
	Name string
	Expectation
}, made func(name string) bool) error {
	var want []struct {
		Name string
		Expectation
	}
	for _, e := range expected {
		if made(e.Name) {
			want = append(want, e)
		}
	}
	if len(c.made) != len(want) {
		return fmt.Errorf("%d calls made, %d expected", len(c.made), len(want))
	}
	for i, m := range c.made {
		if m.Name != want[i].Name {
			return fmt.Errorf("call %d is %s, expected %s", i, m.Name, want[i].Name)
		}
		if wantOK := want[i].Result == "ok"; wantOK != (m.Return >= 0) {
			return fmt.Errorf("call %s returned %d, expected %s", m.Name, m.Return, want[i].Result)
		}
		if mapping := expectedMapping(want[i].Expectation, c.tempFile, c.exe); !sameMapping(m.Maps, mapping) {
			return fmt.Errorf("call %s: /proc/self/maps showed %v at 0x%x, expected %v", m.Name, m.Maps, m.OldAddress, mapping)
		}
	}
	return nil
}

// sameMapping compares the permissions and paths of two mappings, or nil.
func sameMapping(a, b *Mapping) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Permissions == b.Permissions && a.Path == b.Path
}
