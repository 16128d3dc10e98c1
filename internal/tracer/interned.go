//go:build linux

package tracer

import (
	"sync"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// interned holds the strings that records repeat (comms, mapping paths and
// permissions), made valid UTF-8 by mremap.Escape (they come from user
// space and may hold any bytes), so that decoding a record allocates
// nothing once its strings were seen. It is bounded: when full it starts
// over.
var interned = stringTable{m: map[string]internedString{}}

const maxInterned = 8192

type stringTable struct {
	mu sync.Mutex
	m  map[string]internedString
}

// internedString is mremap.Escape(raw), and raw.
type internedString struct{ raw, s string }

// get returns mremap.Escape(b), and b as a string: both stored once.
func (t *stringTable) get(b []byte) (raw, s string) {
	if len(b) == 0 {
		return "", ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// A map lookup keyed by string(b) does not allocate.
	if e, ok := t.m[string(b)]; ok {
		return e.raw, e.s
	}
	if len(t.m) >= maxInterned {
		clear(t.m)
	}
	e := internedString{raw: string(b), s: mremap.Escape(b)}
	t.m[e.raw] = e
	return e.raw, e.s
}
