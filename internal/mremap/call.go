//go:build linux

// Package mremap describes mremap(2) calls as the tracer observes them: the
// arguments, the result, how the call resized and moved the mapping, and the
// call written the way strace prints it.
package mremap

import (
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
)

// Flag bits of mremap(2), from <linux/mman.h>, as the kernel program
// defines them (enum call_flag in bpf/mremap.h).
const (
	FlagMayMove   = uint64(bpf.MremapCallFlagMREMAP_MAYMOVE)
	FlagFixed     = uint64(bpf.MremapCallFlagMREMAP_FIXED)
	FlagDontUnmap = uint64(bpf.MremapCallFlagMREMAP_DONTUNMAP)
)

var flagNameList = []struct {
	bit  uint64
	name string
}{
	{FlagMayMove, "MREMAP_MAYMOVE"},
	{FlagFixed, "MREMAP_FIXED"},
	{FlagDontUnmap, "MREMAP_DONTUNMAP"},
}

// FlagNames names the set bits of flags joined by "|", in the order strace
// uses; unknown bits are appended as one hex number. It is empty for 0.
func FlagNames(flags uint64) string {
	if flags < uint64(len(knownFlagNames)) {
		return knownFlagNames[flags]
	}
	return flagNames(flags)
}

// knownFlagNames holds FlagNames of every combination of the known bits,
// so that naming them allocates nothing.
var knownFlagNames = func() (t [8]string) {
	for i := range t {
		t[i] = flagNames(uint64(i))
	}
	return t
}()

func flagNames(flags uint64) string {
	var names []string
	for _, f := range flagNameList {
		if flags&f.bit != 0 {
			names = append(names, f.name)
			flags &^= f.bit
		}
	}
	if flags != 0 {
		names = append(names, "0x"+strconv.FormatUint(flags, 16))
	}
	return strings.Join(names, "|")
}

// Resize says how a call changes the size of the mapping: new_size
// against old_size, whatever the result. The kernel program classifies
// each call (bpf/classify.bpf.h); these are its values.
type Resize uint8

const (
	ResizeNone   = Resize(bpf.MremapResizeRESIZE_NONE)
	ResizeGrow   = Resize(bpf.MremapResizeRESIZE_GROW)
	ResizeShrink = Resize(bpf.MremapResizeRESIZE_SHRINK)
)

func (r Resize) String() string {
	switch r {
	case ResizeGrow:
		return "grow"
	case ResizeShrink:
		return "shrink"
	case ResizeNone:
		return "none"
	}
	return "resize(" + strconv.Itoa(int(r)) + ")"
}

// Move says whether and how a call moves the mapping: fixed if
// MREMAP_FIXED is set; else dontunmap if MREMAP_DONTUNMAP is set; else
// maymove if the call succeeded and returned an address other than
// old_address; else none. The kernel program classifies each call
// (bpf/classify.bpf.h); these are its values.
type Move uint8

const (
	MoveNone      = Move(bpf.MremapMoveMOVE_NONE)
	MoveMayMove   = Move(bpf.MremapMoveMOVE_MAYMOVE) // the kernel moved it to an address it chose
	MoveFixed     = Move(bpf.MremapMoveMOVE_FIXED)   // MREMAP_FIXED
	MoveDontUnmap = Move(bpf.MremapMoveMOVE_DONTUNMAP)
)

func (m Move) String() string {
	switch m {
	case MoveNone:
		return "none"
	case MoveMayMove:
		return "maymove"
	case MoveFixed:
		return "fixed"
	case MoveDontUnmap:
		return "dontunmap"
	}
	return "move(" + strconv.Itoa(int(m)) + ")"
}

// Result is "ok" for errno 0, else the errno name.
func Result(errno uint16) string {
	if errno == 0 {
		return "ok"
	}
	return ErrnoName(errno)
}

// ErrnoName is the symbolic name of errno ("EINVAL"), or "E<n>" for a number
// the C library does not name.
func ErrnoName(errno uint16) string {
	if int(errno) < len(errnoNames) {
		return errnoNames[errno]
	}
	return errnoName(errno)
}

// errnoTableSize covers every errno Linux defines (133 is EHWPOISON), so
// that naming and describing them allocates nothing.
const errnoTableSize = 256

// errnoNames and errnoTexts hold ErrnoName and ErrnoText of every errno
// below errnoTableSize.
var errnoNames, errnoTexts = func() (names, texts [errnoTableSize]string) {
	for i := range names {
		names[i], texts[i] = errnoName(uint16(i)), errnoText(uint16(i))
	}
	return names, texts
}()

func errnoName(errno uint16) string {
	if name := unix.ErrnoName(unix.Errno(errno)); name != "" {
		return name
	}
	return "E" + strconv.Itoa(int(errno))
}

// ErrnoText is the C library's message for errno ("Invalid argument").
func ErrnoText(errno uint16) string {
	if int(errno) < len(errnoTexts) {
		return errnoTexts[errno]
	}
	return errnoText(errno)
}

func errnoText(errno uint16) string {
	s := unix.Errno(errno).Error()
	// Go has no message for a number it does not know and says "errno N";
	// the C library says "Unknown error N".
	if s == "" || strings.HasPrefix(s, "errno ") {
		return "Unknown error " + strconv.Itoa(int(errno))
	}
	// Go's messages are lower-case; strace prints the C library's.
	return strings.ToUpper(s[:1]) + s[1:]
}

// Process is the process that made a call, as the kernel saw it.
type Process struct {
	PID  uint32 // tgid
	PPID uint32
	UID  uint32
	Comm string // the task's comm, at most 15 bytes
	// StartTime is when the process started, in ns since boot (the
	// kernel's task start_time). With PID it tells a process from a later
	// one that reused its pid.
	StartTime uint64
}

// VMA is the mapping that contained a call's old_address when the call
// entered the kernel, as /proc/PID/maps shows it.
type VMA struct {
	// Found is false when no mapping contained the address (the call fails
	// with EFAULT), or when it was not looked up.
	Found bool
	// Permissions are four characters: r, w, x or -, then s (shared) or p
	// (private), e.g. "rw-p", "r-xp", "r--s".
	Permissions string
	// Path is a file mapping's absolute path (with " (deleted)" when the
	// file was unlinked, and "..." before it when it was too long to keep
	// whole), the name of a special mapping ("[heap]", "[stack]",
	// "[vdso]"), or "" for anonymous memory.
	Path string
	// Count is how many mappings [OldAddress, OldAddress+OldSize) spans,
	// this one the first (since Linux 6.17 one move may take several); 0
	// where the kernel cannot count them (before 6.7).
	Count int
}

// Call is one mremap(2) call.
type Call struct {
	Enter time.Time // wall-clock time of syscall entry
	Exit  time.Time
	// Duration from entry to exit, measured on the kernel's monotonic clock.
	Duration time.Duration

	Process Process
	TID     uint32

	OldAddress uint64
	OldSize    uint64
	NewSize    uint64
	Flags      uint64
	NewAddress uint64 // argument 5, as passed

	// Return is the raw return value: an address, or -errno.
	Return int64

	// The kernel program's classification of the call.
	Errno   uint16 // the error of a failed call, 0 for a successful one
	Resize  Resize
	Move    Move
	Signals Signals

	// MapCount is the process's number of mappings when the call returned.
	MapCount uint32

	// VMA is the mapping at OldAddress at entry.
	VMA VMA

	// Stack is the calling thread's user stack, with call stacks on.
	Stack Stack
}

// OK tells whether the call succeeded.
func (c *Call) OK() bool { return c.Errno == 0 }

// Result is "ok", or the errno name of a failed call.
func (c *Call) Result() string { return Result(c.Errno) }

// ResultAddress is the address a successful call returned.
func (c *Call) ResultAddress() uint64 { return uint64(c.Return) }

// SizeDelta is new_size - old_size.
func (c *Call) SizeDelta() int64 { return int64(c.NewSize - c.OldSize) }

// String writes the call as strace prints it:
//
//	mremap(0x7f3a2c000000, 4096, 8192, MREMAP_MAYMOVE) = 0x7f3a2c100000
//	mremap(0x7f3a2c000000, 4096, 4096, MREMAP_MAYMOVE|MREMAP_FIXED, 0x7f3a2d000000) = 0x7f3a2d000000
//	mremap(0x7f3a2c000001, 4096, 8192, MREMAP_MAYMOVE) = -1 EINVAL (Invalid argument)
//
// As strace does, the fifth argument is printed only when both MREMAP_MAYMOVE
// and MREMAP_FIXED are set, the only case in which the kernel reads it.
func (c *Call) String() string {
	var buf [128]byte
	return string(c.AppendText(buf[:0], false))
}

// Redacted writes the call as String does, with every address (the old
// address, the fifth argument, the address returned) written as 0x?, so
// that the memory layout of processes is not revealed:
//
//	mremap(0x?, 4096, 8192, MREMAP_MAYMOVE) = 0x?
//
// Sizes, flags and errors are kept.
func (c *Call) Redacted() string {
	var buf [128]byte
	return string(c.AppendText(buf[:0], true))
}

// AppendText appends the call as String (or, with redact, Redacted) writes
// it to dst: converting many calls into one buffer allocates once.
func (c *Call) AppendText(dst []byte, redact bool) []byte {
	b := append(dst, "mremap("...)
	b = appendAddress(b, c.OldAddress, redact)
	b = append(b, ", "...)
	b = strconv.AppendUint(b, c.OldSize, 10)
	b = append(b, ", "...)
	b = strconv.AppendUint(b, c.NewSize, 10)
	b = append(b, ", "...)
	if c.Flags == 0 {
		b = append(b, '0')
	} else {
		b = append(b, FlagNames(c.Flags)...)
	}
	if c.Flags&(FlagMayMove|FlagFixed) == FlagMayMove|FlagFixed {
		b = append(b, ", "...)
		b = appendAddress(b, c.NewAddress, redact)
	}
	b = append(b, ") = "...)
	if c.OK() {
		return appendAddress(b, c.ResultAddress(), redact)
	}
	b = append(b, "-1 "...)
	b = append(b, ErrnoName(c.Errno)...)
	b = append(b, " ("...)
	b = append(b, ErrnoText(c.Errno)...)
	return append(b, ')')
}

// appendAddress prints an address as strace does: NULL for 0, else hex;
// redacted, 0x?.
func appendAddress(b []byte, a uint64, redact bool) []byte {
	switch {
	case redact:
		return append(b, "0x?"...)
	case a == 0:
		return append(b, "NULL"...)
	}
	return strconv.AppendUint(append(b, "0x"...), a, 16)
}
