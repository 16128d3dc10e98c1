//go:build linux

package mremap

import (
	"math/bits"
	"strconv"
	"strings"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
)

// Signals are what makes a call suspicious, or a failure the map-count
// limit: one bit each, as the kernel program decides them
// (bpf/signals.bpf.h).
type Signals uint16

// Signal is one of them: the index of its bit.
type Signal uint8

// The signals, in the order their names are joined.
const (
	SignalExecMove Signal = iota
	SignalWriteExec
	SignalFixedReplace
	SignalSharedAlias
	SignalDontUnmap
	SignalSealed
	SignalSpecialMove
	SignalUnbackedCaller
	SignalMapCountLimit
	NumSignals = int(bpf.MremapCallSignalSIGNALS)
)

var signalNames = [NumSignals]string{
	SignalExecMove:       "exec_move",
	SignalWriteExec:      "write_exec",
	SignalFixedReplace:   "fixed_replace",
	SignalSharedAlias:    "shared_alias",
	SignalDontUnmap:      "dontunmap",
	SignalSealed:         "sealed",
	SignalSpecialMove:    "special_move",
	SignalUnbackedCaller: "unbacked_caller",
	SignalMapCountLimit:  "map_count_limit",
}

func (s Signal) String() string {
	if int(s) < NumSignals {
		return signalNames[s]
	}
	return "signal(" + strconv.Itoa(int(s)) + ")"
}

// Has tells whether s holds sig.
func (s Signals) Has(sig Signal) bool { return s&(1<<sig) != 0 }

// Each calls f with each signal s holds, in order.
func (s Signals) Each(f func(Signal)) {
	for s != 0 {
		i := bits.TrailingZeros16(uint16(s))
		f(Signal(i))
		s &^= 1 << i
	}
}

// String joins the names of the signals s holds with "|"; "" for none.
func (s Signals) String() string {
	if s == 0 {
		return ""
	}
	if s&(s-1) == 0 {
		return Signal(bits.TrailingZeros16(uint16(s))).String() // one: no allocation
	}
	var b strings.Builder
	s.Each(func(sig Signal) {
		if b.Len() > 0 {
			b.WriteByte('|')
		}
		b.WriteString(sig.String())
	})
	return b.String()
}
