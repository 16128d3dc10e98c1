package tracer

import "sync"

// interned holds the strings that records repeat (comms, mapping paths and
// permissions), so that decoding a record allocates nothing once its
// strings were seen. It is bounded: when full it starts over.
var interned = stringTable{m: map[string]string{}}

const maxInterned = 8192

type stringTable struct {
	mu sync.Mutex
	m  map[string]string
}

// get returns prefix+string(b)+suffix, stored once when prefix and suffix
// are empty. (Prefixes and suffixes mark truncated and deleted paths, which
// are rare.)
func (t *stringTable) get(prefix string, b []byte, suffix string) string {
	if prefix != "" || suffix != "" {
		return prefix + string(b) + suffix
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
	s := string(b)
	t.m[s] = s
	return s
}
