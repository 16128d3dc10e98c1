package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// rssSampler samples a process's resident set size (VmRSS) at an interval.
type rssSampler struct {
	pid     int
	mu      sync.Mutex
	samples []int64 // bytes
	stop    chan struct{}
	done    chan struct{}
}

func sampleRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			if rss, err := readRSS(pid); err == nil {
				s.mu.Lock()
				s.samples = append(s.samples, rss)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the samples.
func (s *rssSampler) Stop() []int64 {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

func readRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// rssSummary is the peak and the median RSS of the first and the last
// quarter of the samples.
type rssSummary struct {
	Peak, First, Last int64
}

func summarizeRSS(samples []int64) rssSummary {
	var s rssSummary
	for _, v := range samples {
		s.Peak = max(s.Peak, v)
	}
	q := len(samples) / 4
	if q == 0 {
		return s
	}
	s.First, s.Last = median(samples[:q]), median(samples[len(samples)-q:])
	return s
}

func median(v []int64) int64 {
	c := append([]int64(nil), v...)
	for i := 1; i < len(c); i++ {
		for j := i; j > 0 && c[j] < c[j-1]; j-- {
			c[j], c[j-1] = c[j-1], c[j]
		}
	}
	return c[len(c)/2]
}

func (s rssSummary) String() string {
	return fmt.Sprintf("peak %d MiB, first quarter %d MiB, last quarter %d MiB", s.Peak>>20, s.First>>20, s.Last>>20)
}
