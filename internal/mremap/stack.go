//go:build linux

package mremap

// Stack is the user-space stack of the thread that made a call, as the
// kernel captured it at the call (with call stacks on), and, once user
// space symbolized it, as the log record shows it.
type Stack struct {
	// Captured says the kernel was asked for the stack: the record
	// carried one. Addresses may still be empty (Err says why).
	Captured bool
	// Addresses are the user instruction pointer at the syscall, then the
	// return addresses the frame-pointer walk found, innermost first; at
	// most 64.
	Addresses []uint64
	// Truncated: the stack had more frames than Addresses holds.
	Truncated bool
	// Err is the kernel's error (a negative errno) when it walked no
	// frame, else 0.
	Err int32
	// Words are the words on top of the user stack, from the stack
	// pointer up (x86-64; a 32-bit caller's 4-byte words zero-extended),
	// and LinkRegister the link register (arm64): where the caller of a
	// function that sets up no frame (glibc's mremap()) is found. Empty
	// and 0 when not read.
	Words        []uint64
	LinkRegister uint64
	// Compat: a 32-bit (ia32) caller on x86-64.
	Compat bool
	// StartTime is when the process started, in ns since boot on the
	// clock /proc/PID/stat counts (CLOCK_BOOTTIME), to tell a process
	// from a later one that reused its pid.
	StartTime uint64

	// Symbolized is the stack as text, set by whoever symbolizes it.
	Symbolized SymbolizedStack
}

// SymbolizedStack is a stack as a log record carries it.
type SymbolizedStack struct {
	// Trace is the frames, one a line, innermost first; "" when the
	// kernel captured no frame.
	Trace string
	// Function is the innermost application function (outside the C
	// library, the dynamic loader and Go's runtime); "" when unnamed.
	Function string
	// End tells how the stack ended (complete, truncated,
	// no_frame_pointers, unknown, not_captured); Unresolved why the
	// innermost frame without a name has none, "" when all have one.
	End, Unresolved string
}
