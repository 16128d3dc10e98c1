//go:build linux

package callstack

// End tells how a stack ended: whether the frames reach the thread's entry
// point or stop early, and why.
type End uint8

const (
	// EndUnknown: the outermost frame has no symbol, so whether it is the
	// thread's entry point cannot be told.
	EndUnknown End = iota
	// EndComplete: the outermost frame is a thread's entry point (_start,
	// __libc_start_call_main, start_thread, clone3, runtime.goexit, ...).
	EndComplete
	// EndTruncated: the kernel filled its buffer (MaxFrames); deeper
	// frames were not captured.
	EndTruncated
	// EndNoFramePointers: the walk reached code that keeps no frame
	// pointer, so what lay beyond could not be trusted and was cut off
	// (the outermost frame kept is in that code), or it led to an address
	// that no executable mapping covers.
	EndNoFramePointers
	// EndNotCaptured: the kernel captured no user stack for the call.
	EndNotCaptured
)

var endNames = [...]string{"unknown", "complete", "truncated", "no_frame_pointers", "not_captured"}

func (e End) String() string {
	if int(e) < len(endNames) {
		return endNames[e]
	}
	return "unknown"
}

// Reason tells why a frame has no function name. Stack.Unresolved holds
// the reason of the innermost such frame.
type Reason uint8

const (
	// Resolved: the frame has a function name.
	Resolved Reason = iota
	// ReasonPending: the process's mappings or the file's symbols were not
	// loaded yet when the stack was symbolized (Cached), or the
	// background queue was full.
	ReasonPending
	// ReasonProcessExited: the process had exited (or its pid had been
	// reused) before its mappings were read.
	ReasonProcessExited
	// ReasonNoAccess: /proc/PID/maps or the file could not be opened for
	// lack of privilege (CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH).
	ReasonNoAccess
	// ReasonFileDeleted: the mapped file was deleted and its mapping could
	// not be opened through /proc/PID/map_files.
	ReasonFileDeleted
	// ReasonFileReplaced: the file at the mapped path is no longer the one
	// mapped (device or inode differ): an upgrade replaced it.
	ReasonFileReplaced
	// ReasonFileUnreadable: the file is missing, could not be read, or is
	// not a valid ELF file (truncated, corrupt).
	ReasonFileUnreadable
	// ReasonOverLimit: the file's symbol tables exceed the configured
	// limits and were not read.
	ReasonOverLimit
	// ReasonNoSymbol: the file was read but no symbol covers the address
	// (a stripped binary, a static function with only .dynsym).
	ReasonNoSymbol
	// ReasonNoMapping: no file backs the address (no mapping, or anonymous
	// memory such as JIT code).
	ReasonNoMapping
)

var reasonNames = [...]string{"", "pending", "process_exited", "no_access", "file_deleted",
	"file_replaced", "file_unreadable", "over_limit", "no_symbol", "no_mapping"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}
