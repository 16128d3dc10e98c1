//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"sync"

	"go.opentelemetry.io/collector/receiver"
)

// sharedReceivers keeps one mremapReceiver per configuration, so that the
// logs and the metrics pipelines of one `mremap` receiver share one set of
// probes. It is the small equivalent of the Collector's internal
// sharedcomponent package: each receiver created on it counts as a user,
// and the last one to shut down takes it out of the map.
type sharedReceivers struct {
	mu sync.Mutex
	m  map[*Config]*mremapReceiver
}

func newSharedReceivers() *sharedReceivers {
	return &sharedReceivers{m: map[*Config]*mremapReceiver{}}
}

func (s *sharedReceivers) getOrCreate(cfg *Config, set receiver.Settings) (*mremapReceiver, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.m[cfg]; ok {
		r.users++
		return r, nil
	}
	r, err := newReceiver(cfg, set)
	if err != nil {
		return nil, err
	}
	r.users = 1
	r.leave = func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if r.users--; r.users > 0 {
			return false
		}
		delete(s.m, cfg)
		return true
	}
	s.m[cfg] = r
	return r, nil
}
