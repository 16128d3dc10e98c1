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
var interned = stringTable{m: map[string]string{}}

const maxInterned = 8192

type stringTable struct {
	mu sync.Mutex
	m  map[string]string
}

// get returns prefix+mremap.Escape(b)+suffix, stored once when prefix and
// suffix are empty. (Prefixes and suffixes mark truncated and deleted
// paths, which are rare.)
func (t *stringTable) get(prefix string, b []byte, suffix string) string {
	if prefix != "" || suffix != "" {
		return prefix + mremap.Escape(b) + suffix
	}
	if len(b) == 0 {
		return ""
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// A map lookup keyed by string(b) does not allocate.
	if s, ok := t.m[string(b)]; ok {
		return s
	}
	if len(t.m) >= maxInterned {
		clear(t.m)
	}
	s := mremap.Escape(b)
	t.m[string(b)] = s
	return s
}
