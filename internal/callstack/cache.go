//go:build linux

package callstack

import (
	"sort"
	"sync"
	"sync/atomic"
)

// fileKey identifies one version of one file: the device and inode that
// /proc/PID/maps shows, plus the change time and size that fstat gives, so
// that an inode number reused by a new file is not taken for the old one.
type fileKey struct {
	major, minor uint32
	inode        uint64
	ctime        int64
	size         int64
}

// fileEntry is one file version in the cache. Mappings of every process
// that maps it point to the same entry; its table may be evicted and
// parsed again later.
type fileEntry struct {
	key    fileKey
	table  atomic.Pointer[table]
	reason atomic.Uint32 // a Reason: why the file gave no table (not a valid ELF file)
}

// resolution is what the slow path learned about the file of a mapping.
type resolution struct {
	file   *fileEntry // nil when the file could not be used
	reason Reason     // why not
}

type atomicResolution = atomic.Pointer[resolution]

// fileCache holds the parsed tables, shared by all processes: a thousand
// processes of one binary parse it once. Tables are found by file version,
// and by build id, so that copies of one binary at different paths or in
// different container images share one table. The tables' memory is
// bounded: past budget bytes, the least recently used are evicted.
type fileCache struct {
	mu         sync.Mutex
	entries    map[fileKey]*fileEntry
	byBuildID  map[string]*table
	tables     map[*table]struct{}
	bytes      int64
	budget     int64
	maxEntries int
	evictions  atomic.Int64
	clock      atomic.Int64
}

func newFileCache(budget int64, maxEntries int) *fileCache {
	return &fileCache{entries: map[fileKey]*fileEntry{}, byBuildID: map[string]*table{},
		tables: map[*table]struct{}{}, budget: budget, maxEntries: maxEntries}
}

// touch marks t as used now, for the LRU.
func (c *fileCache) touch(t *table) { t.lastUsed.Store(c.clock.Add(1)) }

// entry returns the entry for k, creating it.
func (c *fileCache) entry(k fileKey) *fileEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[k]; e != nil {
		return e
	}
	if len(c.entries) >= c.maxEntries {
		// Entries are small; dropping them only costs a parse later (or
		// a build-id hit). Mappings that hold one keep it alive.
		clear(c.entries)
	}
	e := &fileEntry{key: k}
	c.entries[k] = e
	return e
}

// byID returns a cached table of the same build id, or nil.
func (c *fileCache) byID(id string) *table {
	if id == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.byBuildID[id]
	if t != nil && t.evicted.Load() {
		return nil
	}
	return t
}

// add makes t the table of e and evicts the least recently used tables
// past the budget. A table larger than the whole budget is not kept: its
// file is then parsed for every slow-path stack that needs it.
func (c *fileCache) add(e *fileEntry, t *table) {
	c.touch(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.tables[t]; !ok && t.bytes <= c.budget {
		c.tables[t] = struct{}{}
		c.bytes += t.bytes
		if t.buildID != "" {
			c.byBuildID[t.buildID] = t
		}
	}
	e.table.Store(t)
	c.evictLocked(t)
}

// evictLocked evicts the least recently used tables other than keep until
// the rest fit the budget.
func (c *fileCache) evictLocked(keep *table) {
	if c.bytes <= c.budget {
		return
	}
	all := make([]*table, 0, len(c.tables))
	for t := range c.tables {
		all = append(all, t)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].lastUsed.Load() < all[j].lastUsed.Load() })
	for _, t := range all {
		if c.bytes <= c.budget {
			break
		}
		if t == keep {
			continue
		}
		delete(c.tables, t)
		if c.byBuildID[t.buildID] == t {
			delete(c.byBuildID, t.buildID)
		}
		c.bytes -= t.bytes
		t.evicted.Store(true)
		c.evictions.Add(1)
	}
}

// usedBytes is the memory the cached tables hold.
func (c *fileCache) usedBytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// tableOf returns e's table unless it was evicted.
func (e *fileEntry) tableOf() *table {
	t := e.table.Load()
	if t == nil || t.evicted.Load() {
		return nil
	}
	return t
}
