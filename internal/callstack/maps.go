//go:build linux

package callstack

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// mappingKind says what backs an executable mapping.
type mappingKind uint8

const (
	mappingFile    mappingKind = iota // a file (possibly deleted)
	mappingAnon                       // anonymous memory: JIT code, trampolines
	mappingVDSO                       // the kernel's [vdso]
	mappingSpecial                    // [vsyscall] and other [name] mappings
)

// mapping is one executable mapping from /proc/PID/maps.
type mapping struct {
	start, end uint64
	offset     uint64 // file offset of start
	major      uint32
	minor      uint32
	inode      uint64
	path       string // as maps shows it, without " (deleted)"
	deleted    bool
	kind       mappingKind
	// res is set by the slow path once the file behind the mapping has
	// been looked at; nil means not yet.
	res atomicResolution
}

// maxMapsBytes caps what is read of one /proc/PID/maps: a process with
// more mappings than this keeps the first ones (addresses outside them
// show as bare addresses).
const maxMapsBytes = 16 << 20

const deletedSuffix = " (deleted)"

// readMaps reads the executable mappings of pid, sorted by address.
func readMaps(proc string, pid uint32) ([]*mapping, error) {
	f, err := os.Open(fmt.Sprintf("%s/%d/maps", proc, pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseMaps(io.LimitReader(f, maxMapsBytes))
}

func parseMaps(r io.Reader) ([]*mapping, error) {
	var out []*mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m, err := parseMapsLine(sc.Bytes())
		if err != nil {
			return nil, err
		}
		if m != nil {
			out = append(out, m)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out, nil
}

var errMapsLine = errors.New("malformed /proc/PID/maps line")

// parseMapsLine parses "start-end perms offset major:minor inode   path"
// and returns nil for a mapping that is not executable.
func parseMapsLine(line []byte) (*mapping, error) {
	fields := bytes.Fields(line)
	if len(fields) < 5 {
		return nil, fmt.Errorf("%w: %q", errMapsLine, line)
	}
	if len(fields[1]) < 3 || fields[1][2] != 'x' {
		return nil, nil
	}
	var m mapping
	lo, hi, ok := strings.Cut(string(fields[0]), "-")
	maj, min, ok2 := strings.Cut(string(fields[3]), ":")
	if !ok || !ok2 {
		return nil, fmt.Errorf("%w: %q", errMapsLine, line)
	}
	var errs [6]error
	var major, minor uint64
	m.start, errs[0] = strconv.ParseUint(lo, 16, 64)
	m.end, errs[1] = strconv.ParseUint(hi, 16, 64)
	m.offset, errs[2] = strconv.ParseUint(string(fields[2]), 16, 64)
	major, errs[3] = strconv.ParseUint(maj, 16, 32)
	minor, errs[4] = strconv.ParseUint(min, 16, 32)
	m.inode, errs[5] = strconv.ParseUint(string(fields[4]), 10, 64)
	if err := errors.Join(errs[:]...); err != nil || m.end <= m.start {
		return nil, fmt.Errorf("%w: %q", errMapsLine, line)
	}
	m.major, m.minor = uint32(major), uint32(minor)
	m.path = mapsPath(line)
	m.kind = kindOf(m.path, m.inode)
	if m.kind == mappingFile && strings.HasSuffix(m.path, deletedSuffix) {
		m.path = strings.TrimSuffix(m.path, deletedSuffix)
		m.deleted = true
	}
	return &m, nil
}

// mapsPath returns the path column: everything after the inode column's
// padding (a path may contain spaces).
func mapsPath(line []byte) string {
	rest := line
	for i := 0; i < 5; i++ {
		rest = bytes.TrimLeft(rest, " \t")
		n := bytes.IndexAny(rest, " \t")
		if n < 0 {
			return ""
		}
		rest = rest[n:]
	}
	return string(bytes.TrimLeft(rest, " \t"))
}

func kindOf(path string, inode uint64) mappingKind {
	switch {
	case path == "[vdso]":
		return mappingVDSO
	case strings.HasPrefix(path, "["):
		return mappingSpecial
	case path == "" || inode == 0:
		return mappingAnon
	}
	return mappingFile
}

// find returns the mapping that covers addr, or nil.
func find(ms []*mapping, addr uint64) *mapping {
	i := sort.Search(len(ms), func(i int) bool { return ms[i].end > addr })
	if i < len(ms) && ms[i].start <= addr {
		return ms[i]
	}
	return nil
}

// fileOffset is the offset in the mapped file of addr.
func (m *mapping) fileOffset(addr uint64) uint64 { return addr - m.start + m.offset }
