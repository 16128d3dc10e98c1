//go:build linux

package tracer

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/cilium/ebpf/asm"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// CallStack is whether the kernel captures the calling thread's user stack
// on each record (Options.CallStack), and how.
type CallStack uint8

const (
	CallStackOff CallStack = iota // not asked for
	// CallStackOn: the frame-pointer walk, and the top of the user stack
	// (x86) or the link register (arm64), where the caller of a leaf stub
	// is found.
	CallStackOn
	// CallStackFramesOnly: the walk alone; the kernel cannot reach the
	// saved user registers (Plan.CallStackLacks), so the caller of a leaf
	// stub is not recovered.
	CallStackFramesOnly
	// CallStackNoRecords: asked for, but there are no records to carry
	// it (Options.Events is off).
	CallStackNoRecords
)

// Captured tells whether the records carry a stack.
func (c CallStack) Captured() bool { return c == CallStackOn || c == CallStackFramesOnly }

// helperGetStack walks the user stack.
var helperGetStack = helper{asm.FnGetStack, "bpf_get_stack", "4.18", "which captures the caller's user stack"}

// chooseCallStack decides the capture for opts, and what the kernel lacks
// for the registers.
func (f facts) chooseCallStack(probe Probe, opts Options) (CallStack, []string) {
	switch {
	case !opts.CallStack:
		return CallStackOff, nil
	case !opts.Events:
		return CallStackNoRecords, nil
	}
	if why := f.lacksHelper(probe, helperTaskPtRegs); why != "" {
		return CallStackFramesOnly, []string{why}
	}
	return CallStackOn, nil
}

// callStackLacks is what the kernel lacks for a capture at all.
func (f facts) callStackLacks(probe Probe, opts Options) []Lack {
	if !opts.CallStack || !opts.Events {
		return nil
	}
	if why := f.lacksHelper(probe, helperGetStack); why != "" {
		return []Lack{{What: why, For: NeedCallStack}}
	}
	return nil
}

// stackTailSize is what a stack adds to a record (struct stack_tail),
// after its path, or where the path would start.
const stackTailSize = int(unsafe.Sizeof(bpf.MremapStackTail{}))

const maxStackFrames = len(bpf.MremapStackTail{}.Ips) - 1 // STACK_FRAMES

const stackFlags = uint8(bpf.MremapStackFlagSTACK_TRUNCATED | bpf.MremapStackFlagSTACK_WORDS_READ | bpf.MremapStackFlagSTACK_COMPAT)

// decodeStack decodes the stack of a record whose fixed part ends at
// fixed, if it carries one.
func decodeStack(raw []byte, fixed int) (mremap.Stack, error) {
	if len(raw) < fixed+stackTailSize {
		return mremap.Stack{}, nil
	}
	var t bpf.MremapStackTail
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&t)), stackTailSize), raw[fixed:])
	if int(t.Frames) > maxStackFrames || t.Flags&^stackFlags != 0 || t.Err > 0 {
		return mremap.Stack{}, fmt.Errorf("%w: stack of %d frames, flags 0x%x, error %d is not one the kernel writes", errMalformed, t.Frames, t.Flags, t.Err)
	}
	s := mremap.Stack{
		Captured:     true,
		Truncated:    t.Flags&uint8(bpf.MremapStackFlagSTACK_TRUNCATED) != 0,
		Err:          t.Err,
		Compat:       t.Flags&uint8(bpf.MremapStackFlagSTACK_COMPAT) != 0,
		StartTime:    t.StartBoottime,
		LinkRegister: stripPAC(t.LinkRegister),
	}
	if t.Frames > 0 {
		s.Addresses = append([]uint64(nil), t.Ips[:t.Frames]...)
	}
	if t.Flags&uint8(bpf.MremapStackFlagSTACK_WORDS_READ) != 0 {
		s.Words = stackWords(&t.Words, s.Compat)
	}
	return s, nil
}

// stackWords are the words on top of the stack; a 32-bit caller's are 4
// bytes each, as many as fit the first half.
func stackWords(w *[32]uint64, compat bool) []uint64 {
	if !compat {
		return append([]uint64(nil), w[:]...)
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(w)), len(w)*8)
	out := make([]uint64, len(w))
	for i := range out {
		out[i] = uint64(binary.NativeEndian.Uint32(b[4*i:]))
	}
	return out
}

// stripPAC removes a pointer authentication code from a return address in
// the link register (arm64), as the kernel's walk does for the frames'
// (ptrauth_strip_user_insn_pac): user addresses are below 2^48.
func stripPAC(lr uint64) uint64 {
	if runtime.GOARCH == "arm64" {
		return lr & (1<<48 - 1)
	}
	return lr
}
