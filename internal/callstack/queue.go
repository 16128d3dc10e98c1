//go:build linux

package callstack

import "sync"

// Queue runs symbolization off the caller's goroutine (the ring-buffer
// reader's): Submit answers at once from the cache when it can, and
// otherwise hands the stack to a background goroutine that does the I/O
// and calls done. The queue is bounded: when it is full, Submit answers at
// once with what the cache has (module+offset frames, Unresolved ==
// ReasonPending) and counts it in Stats.QueueFull, so a slow or huge file
// never stalls the caller and no record is lost.
type Queue[T any] struct {
	s    *Symbolizer
	done func(T, Stack)
	ch   chan queued[T]
	mu   sync.RWMutex // held for reading by Submit, for writing by Close
	shut bool
	wg   sync.WaitGroup
}

type queued[T any] struct {
	req  Request
	item T
}

// NewQueue starts a queue of capacity stacks over s. done is called from
// the queue's goroutine, once for each stack Submit did not answer.
func NewQueue[T any](s *Symbolizer, capacity int, done func(T, Stack)) *Queue[T] {
	q := &Queue[T]{s: s, done: done, ch: make(chan queued[T], capacity)}
	q.wg.Add(1)
	go q.run()
	return q
}

func (q *Queue[T]) run() {
	defer q.wg.Done()
	for it := range q.ch {
		q.done(it.item, q.s.Symbolize(it.req))
	}
}

// Submit symbolizes req. When ok is true, st is the answer and done will
// not be called for item; otherwise done(item, st) will be, later, and st
// is what the cache had (module+offset frames, Unresolved ==
// ReasonPending), for a caller that cannot wait. It never blocks on I/O.
// req.Addresses is copied when queued.
func (q *Queue[T]) Submit(req Request, item T) (st Stack, ok bool) {
	if st, ok = q.s.Cached(req); ok {
		return st, true
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.shut {
		return st, true
	}
	req.Addresses = append([]uint64(nil), req.Addresses...)
	select {
	case q.ch <- queued[T]{req: req, item: item}:
		return st, false
	default:
		q.s.stats.queueFull.Add(1)
		return st, true
	}
}

// Close stops taking stacks (Submit then answers from the cache) and
// returns when every queued one has been symbolized and handed to done.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	if !q.shut {
		q.shut = true
		close(q.ch)
	}
	q.mu.Unlock()
	q.wg.Wait()
}
