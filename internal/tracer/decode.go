//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// errMalformed marks a ring buffer record that decodeEvent rejects.
var errMalformed = errors.New("malformed ring buffer record")

// eventSizeNoPath is the size of a record whose mapping has no path: the
// kernel leaves the path out (EVENT_SIZE_NO_PATH).
const eventSizeNoPath = int(unsafe.Offsetof(bpf.MremapEvent{}.Vma) + unsafe.Offsetof(bpf.MremapVma{}.Path))

// decoder turns ring buffer records into Calls, for one reader. It keeps
// the strings of the last record it decoded (comm, mapping permissions and
// path): consecutive records mostly come from one process and one mapping,
// whose strings it then reuses without the shared table's lock and hash.
type decoder struct {
	clock             Clock
	comm, perms, path lastString
}

// lastString is the string made of raw, the bytes of the last record.
type lastString struct{ raw, s string }

// get is the string of b (interned), the last one when b is the same bytes.
func (l *lastString) get(b []byte) string {
	// Comparing with string(b) does not allocate.
	if string(b) != l.raw {
		l.raw, l.s = interned.get(b)
	}
	return l.s
}

// decodeEvent decodes one record with a decoder of its own.
func decodeEvent(raw []byte, clock Clock) (mremap.Call, error) {
	d := decoder{clock: clock}
	return d.decode(raw)
}

// decode turns a ring buffer record into a Call. A record shorter than the
// struct (truncated; a record whose mapping has no path may end where the
// path would start), or a corrupt one (its exit precedes its entry on the
// kernel's monotonic clock, or its comm lacks the NUL the kernel always
// writes, or its classification is not one the kernel makes), is an
// errMalformed.
func (d *decoder) decode(raw []byte) (mremap.Call, error) {
	var e bpf.MremapEvent
	if len(raw) < eventSizeNoPath {
		return mremap.Call{}, fmt.Errorf("%w: %d bytes, want %d (%d without a path)", errMalformed, len(raw), unsafe.Sizeof(e), eventSizeNoPath)
	}
	// The record is the C struct event in host byte order and layout.
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&e)), unsafe.Sizeof(e)), raw)
	if e.Vma.PathLen > 0 && len(raw) < int(unsafe.Sizeof(e)) {
		return mremap.Call{}, fmt.Errorf("%w: %d bytes with a path of %d, want %d", errMalformed, len(raw), e.Vma.PathLen, unsafe.Sizeof(e))
	}
	if e.ExitNs < e.EnterNs {
		return mremap.Call{}, fmt.Errorf("%w: exit at %d ns before entry at %d ns", errMalformed, e.ExitNs, e.EnterNs)
	}
	if mremap.Resize(e.Resize) > mremap.ResizeShrink || mremap.Move(e.Move) > mremap.MoveDontUnmap || e.Signals >= 1<<mremap.NumSignals {
		return mremap.Call{}, fmt.Errorf("%w: resize %d, move %d or signals 0x%x is not one the kernel writes", errMalformed, e.Resize, e.Move, e.Signals)
	}
	if e.Comm[len(e.Comm)-1] != 0 {
		return mremap.Call{}, fmt.Errorf("%w: comm %q is not NUL-terminated", errMalformed, commString(e.Comm))
	}
	stack, err := decodeStack(raw, fixedSize(&e))
	if err != nil {
		return mremap.Call{}, err
	}
	return mremap.Call{
		Enter:    d.clock.Wall(e.EnterNs),
		Exit:     d.clock.Wall(e.ExitNs),
		Duration: time.Duration(e.ExitNs - e.EnterNs),
		Process: mremap.Process{
			PID:       e.Tgid,
			PPID:      e.Ppid,
			UID:       e.Uid,
			Comm:      d.comm.get(commBytes(e.Comm)),
			StartTime: e.StartTime,
		},
		TID:        e.Tid,
		OldAddress: e.OldAddress,
		OldSize:    e.OldSize,
		NewSize:    e.NewSize,
		Flags:      e.Flags,
		NewAddress: e.NewAddress,
		Return:     e.Ret,
		Errno:      e.Err,
		Resize:     mremap.Resize(e.Resize),
		Move:       mremap.Move(e.Move),
		Signals:    mremap.Signals(e.Signals),
		MapCount:   e.MapCount,
		VMA:        d.decodeVMA(&e.Vma),
		Stack:      stack,
	}, nil
}

// fixedSize is where a record's stack starts: after the path, or where the
// path would start.
func fixedSize(e *bpf.MremapEvent) int {
	if e.Vma.PathLen > 0 {
		return int(unsafe.Sizeof(*e))
	}
	return eventSizeNoPath
}

// decodeVMA turns the kernel's view of the mapping at old_address into a
// VMA. The path is shown as /proc/PID/maps would show it.
func (d *decoder) decodeVMA(v *bpf.MremapVma) mremap.VMA {
	if v.Flags&uint8(bpf.MremapVmaFlagVMA_FOUND) == 0 {
		return mremap.VMA{}
	}
	n := min(int(v.PathLen), len(v.Path))
	path := bytesOf(v.Path[:n])
	vma := mremap.VMA{Found: true, Permissions: d.perms.get(bytesOf(v.Perms[:])), Count: int(v.Count)}
	truncated := v.Flags&uint8(bpf.MremapVmaFlagVMA_PATH_TRUNCATED) != 0
	deleted := v.Flags&uint8(bpf.MremapVmaFlagVMA_PATH_DELETED) != 0
	if !truncated && !deleted {
		vma.Path = d.path.get(path)
		return vma
	}
	// Rare: these are built anew each time.
	prefix, suffix := "", ""
	if truncated {
		prefix = "..."
	}
	if deleted {
		suffix = " (deleted)"
	}
	vma.Path = prefix + mremap.Escape(path) + suffix
	return vma
}

// commString is a comm up to its NUL.
func commString(name [16]int8) string {
	_, s := interned.get(commBytes(name))
	return s
}

// commBytes is a comm's bytes up to its NUL.
func commBytes(name [16]int8) []byte {
	b := bytesOf(name[:])
	for i, c := range b {
		if c == 0 {
			return b[:i]
		}
	}
	return b
}

// bytesOf views C chars as bytes.
func bytesOf(c []int8) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(c))), len(c))
}
