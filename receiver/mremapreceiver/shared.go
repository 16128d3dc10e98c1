package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"sync"

	"go.opentelemetry.io/collector/receiver"
)

// sharedReceivers keeps one receiver per configuration, so that the logs
// and the metrics pipelines of one `mremap` receiver share one set of
// probes. It is the small equivalent of the Collector's internal
// sharedcomponent package: the receiver starts once and shuts down once,
// then leaves the map.
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
		return r, nil
	}
	r, err := newReceiver(cfg, set)
	if err != nil {
		return nil, err
	}
	r.forget = func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.m, cfg)
	}
	s.m[cfg] = r
	return r, nil
}
