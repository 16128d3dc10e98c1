//go:build linux

package callstack

import (
	"path"
	"strconv"
	"strings"

	"github.com/ianlancetaylor/demangle"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// Frame is one frame of a stack.
type Frame struct {
	Address uint64
	// Function is the demangled name of the function that covers the
	// address (C++ and Rust names without their parameter lists), "" when
	// none does; Offset is the address's distance from its start.
	Function string
	Offset   uint64
	// Module is the mapped file's path as the process sees it (in its
	// mount namespace), or [vdso]; "" when no file backs the address.
	// ModuleOffset is the address's offset in that file.
	Module       string
	ModuleOffset uint64
	// Reason is why Function is empty (Resolved when it is not).
	Reason Reason

	m   *mapping
	tab *table
	idx int    // symbol index in tab, -1 for none
	va  uint64 // the address in the file's virtual addresses
}

// String formats the frame as the record's stack trace has it:
// "function+0xoff (path)", "0x7f.. (path+0xoff)" when no symbol covers it,
// "0x7f.." when no file backs it.
func (f *Frame) String() string { return string(f.appendTo(nil)) }

func (f *Frame) appendTo(b []byte) []byte {
	switch {
	case f.Function != "":
		b = appendEscaped(b, f.Function)
		b = append(b, "+0x"...)
		b = strconv.AppendUint(b, f.Offset, 16)
		b = append(b, " ("...)
		b = appendEscaped(b, f.Module)
		return append(b, ')')
	case f.Module != "":
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, f.Address, 16)
		b = append(b, " ("...)
		b = appendEscaped(b, f.Module)
		b = append(b, "+0x"...)
		b = strconv.AppendUint(b, f.ModuleOffset, 16)
		return append(b, ')')
	}
	b = append(b, "0x"...)
	return strconv.AppendUint(b, f.Address, 16)
}

// appendEscaped appends s as mremap.Escape writes it: a name or path from
// a file never breaks the one-frame-a-line format.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return append(b, mremap.Escape([]byte(s))...)
		}
	}
	return append(b, s...)
}

// Stack is a symbolized stack. Frames are innermost first.
type Stack struct {
	Frames []Frame
	// End tells how the stack ended.
	End End
	// Unresolved is the reason of the innermost frame without a function
	// name; Resolved when every frame has one.
	Unresolved Reason
	// Function is the caller's function: the function of the innermost frame
	// outside the C library, the dynamic loader, the vDSO and Go's
	// syscall packages; "" when that frame has no name or there is none.
	Function string
	// Trace is the stack trace: the frames, one a line; "" when the
	// kernel captured no stack.
	Trace string
}

func (st *Stack) finish() {
	var b []byte
	fnDone := false
	for i := range st.Frames {
		f := &st.Frames[i]
		if i > 0 {
			b = append(b, '\n')
		}
		b = f.appendTo(b)
		if f.Reason != Resolved && st.Unresolved == Resolved {
			st.Unresolved = f.Reason
		}
		if !fnDone && !isSystem(f) {
			st.Function, fnDone = f.Function, true
		}
		f.m, f.tab = nil, nil // do not keep tables alive through results
	}
	st.Trace = string(b)
}

// isSystem reports whether f is in the C library, the dynamic loader, the
// vDSO, or Go's runtime and syscall packages: the code between the
// application and the syscall, which Function looks past.
func isSystem(f *Frame) bool {
	if f.m != nil && f.m.kind == mappingVDSO {
		return true
	}
	if isCLibrary(path.Base(f.Module)) {
		return true
	}
	if f.tab == nil {
		return false
	}
	if f.tab.goBin {
		for _, p := range goSyscallPackages {
			if strings.HasPrefix(f.Function, p) {
				return true
			}
		}
	}
	// A static executable has the C library linked in: its functions are
	// told by name.
	return f.tab.static && (staticLibc[f.Function] || strings.HasPrefix(f.Function, "__GI_"))
}

// isCLibrary tells the C library and the dynamic loader by file name:
// glibc's libc.so.6 (libc-2.N.so before 2.34, with libpthread), its
// loaders ld-linux*.so.* (ld-2.N.so), musl's ld-musl-ARCH.so.1, which is
// both, and the libc.musl-ARCH.so.1 and libc.so names it goes by.
func isCLibrary(base string) bool {
	switch {
	case base == "libc.so.6", base == "libc.so", base == "libpthread.so.0":
		return true
	case strings.HasPrefix(base, "ld-linux"), strings.HasPrefix(base, "ld-musl-"),
		strings.HasPrefix(base, "libc.musl-"):
		return true
	case strings.HasSuffix(base, ".so") && (strings.HasPrefix(base, "libc-2.") ||
		strings.HasPrefix(base, "ld-2.") || strings.HasPrefix(base, "libpthread-2.")):
		return true
	}
	return false
}

// goSyscallPackages are Go's counterpart of the C library: the packages a
// Go program's mremap goes through.
var goSyscallPackages = []string{"runtime.", "syscall.", "internal/runtime/syscall.",
	"internal/runtime/syscall/",
	"runtime/internal/syscall.", "golang.org/x/sys/unix."}

// staticLibc are the C library functions a statically linked program's
// mremap goes through: glibc's and musl's wrappers and allocators.
var staticLibc = map[string]bool{
	"mremap": true, "__mremap": true, "syscall": true, "__syscall": true,
	"realloc": true, "__libc_realloc": true, "_int_realloc": true, "mremap_chunk": true,
	"__realloc": true, "__syscall_cp": true, "__syscall_cp_c": true, "__syscall_cp_asm": true,
}

// roots are the functions a thread's stack begins with.
var roots = map[string]bool{
	"_start": true, "__libc_start_main": true, "__libc_start_call_main": true,
	"__libc_start_main_impl": true, "start_thread": true, "clone": true, "clone3": true,
	"__clone": true, "__clone3": true, "__clone_internal": true, "_start_c": true,
	"start": true, "start_c11": true, "_dl_start_user": true,
	"runtime.goexit": true, "runtime.rt0_go": true, "runtime.mstart": true,
}

func isRoot(fn string) bool { return fn != "" && roots[fn] }

// name returns symbol i's name, demangled (C++ Itanium, Rust legacy and
// v0) without parameter lists, which makes names short and groupable.
func (t *table) name(i int) string {
	n := t.syms[i].name
	if !strings.HasPrefix(n, "_Z") && !strings.HasPrefix(n, "_R") {
		return n
	}
	if v, ok := t.demangled.Load(i); ok {
		return v.(string)
	}
	d := demangle.Filter(n, demangle.NoParams)
	t.demangled.Store(i, d)
	return d
}
