//go:build linux

package callstack

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

var errExited = errors.New("process exited")

// refresh reads p's mappings again, unless another goroutine did since
// old was loaded. Resolutions of mappings that did not change are kept.
// When the process is gone, the mappings known before are kept: stacks
// queued before it exited still resolve.
func (s *Symbolizer) refresh(p *process, old *procMaps) *procMaps {
	p.refresh.Lock()
	defer p.refresh.Unlock()
	if cur := p.maps.Load(); cur != nil && cur != old {
		return cur
	}
	s.stats.mapsReads.Add(1)
	pm := &procMaps{readAt: time.Now()}
	ms, err := s.readProcess(p)
	switch {
	case err == nil:
		pm.ms = carryOver(ms, old)
	case old != nil && len(old.ms) > 0:
		pm.ms = old.ms
	case errors.Is(err, fs.ErrPermission):
		pm.err = ReasonNoAccess
	default:
		pm.err = ReasonProcessExited
	}
	p.maps.Store(pm)
	return pm
}

// readProcess checks that pid is still the process that made the call
// (its start time) and reads its executable mappings. A zombie has none.
func (s *Symbolizer) readProcess(p *process) ([]*mapping, error) {
	start, err := s.startTime(p.pid)
	if err == nil && p.start != 0 && start != p.start {
		err = errExited
	}
	var ms []*mapping
	if err == nil {
		ms, err = readMaps(s.proc, p.pid)
	}
	if err == nil && len(ms) == 0 {
		err = errExited
	}
	if err != nil && !errors.Is(err, fs.ErrPermission) {
		p.exited.Store(true)
	}
	return ms, err
}

// startTime returns field 22 of /proc/PID/stat: the start time in clock
// ticks since boot.
func (s *Symbolizer) startTime(pid uint32) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", s.proc, pid))
	if err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return 0, errExited
		}
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errExited
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, errExited
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func carryOver(ms []*mapping, old *procMaps) []*mapping {
	if old == nil {
		return ms
	}
	for _, m := range ms {
		o := find(old.ms, m.start)
		if o != nil && o.start == m.start && o.end == m.end && o.offset == m.offset &&
			o.inode == m.inode && o.major == m.major && o.minor == m.minor && o.path == m.path {
			m.res.Store(o.res.Load())
		}
	}
	return ms
}

// resolve finds the file of m, parsing it unless the cache has it.
func (w *walker) resolve(m *mapping) *resolution {
	var res *resolution
	if m.kind == mappingVDSO {
		res = w.s.resolveVDSO(w.p.pid, m)
	} else if f, k, why := w.s.openMapped(w.p.pid, m); f == nil {
		res = &resolution{reason: why}
	} else {
		w.keep(m, f)
		e := w.s.files.entry(k)
		w.s.load(e, f, nil)
		res = &resolution{file: e}
	}
	m.res.Store(res)
	return res
}

func (w *walker) keep(m *mapping, f *os.File) {
	if w.open == nil {
		w.open = map[*mapping]*os.File{}
	}
	if old := w.open[m]; old != nil {
		old.Close()
	}
	w.open[m] = f
}

// load gives e a table: one of the same build id from the cache, or a
// new parse of r. image, when not nil, is r's bytes, kept for code reads.
func (s *Symbolizer) load(e *fileEntry, r io.ReaderAt, image []byte) {
	s.parseMu.Lock()
	defer s.parseMu.Unlock()
	if e.tableOf() != nil || e.reason.Load() != 0 {
		return
	}
	if t := s.files.byID(peekBuildID(r, s.cfg.Limits)); t != nil {
		s.files.add(e, t)
		return
	}
	s.stats.parses.Add(1)
	t, err := parseELF(r, s.cfg.Limits)
	if err != nil {
		s.stats.parseFailures.Add(1)
		why := ReasonFileUnreadable
		if errors.Is(err, errTooLarge) {
			why = ReasonOverLimit
		}
		e.reason.Store(uint32(why))
		return
	}
	if t.limited != Resolved {
		s.stats.parseFailures.Add(1)
	}
	t.image = image
	s.files.add(e, t)
}

func peekBuildID(r io.ReaderAt, lim Limits) (id string) {
	defer func() {
		if recover() != nil {
			id = ""
		}
	}()
	if precheck(r, lim) != nil {
		return ""
	}
	f, err := elf.NewFile(r)
	if err != nil {
		return ""
	}
	return buildID(f)
}

// maxVDSO caps what is read of a [vdso] mapping (it is 8 KiB).
const maxVDSO = 1 << 20

// resolveVDSO reads the vDSO's ELF image from the process's memory.
func (s *Symbolizer) resolveVDSO(pid uint32, m *mapping) *resolution {
	size := m.end - m.start
	if size > maxVDSO {
		return &resolution{reason: ReasonOverLimit}
	}
	f, err := os.Open(fmt.Sprintf("%s/%d/mem", s.proc, pid))
	if err != nil {
		return &resolution{reason: s.openReason(pid, err)}
	}
	defer f.Close()
	img := make([]byte, size)
	if _, err := f.ReadAt(img, int64(m.start)); err != nil {
		return &resolution{reason: ReasonFileUnreadable}
	}
	h := fnv.New64a()
	h.Write(img)
	e := s.files.entry(fileKey{inode: h.Sum64(), size: int64(size), ctime: -1})
	s.load(e, bytes.NewReader(img), img)
	return &resolution{file: e}
}
