//go:build linux

package callstack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// openMapped opens the file behind m as the process sees it, and checks
// that it is the very file mapped. It tries /proc/PID/map_files first
// (the mapped file itself, even when deleted or replaced; it needs
// CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE), then /proc/PID/root/<path>
// (the path in the process's mount namespace, so containers' files
// resolve). A file whose device and inode differ from the mapping's is
// never read: its symbols would name the wrong functions.
func (s *Symbolizer) openMapped(pid uint32, m *mapping) (*os.File, fileKey, Reason) {
	if !s.noMapFiles {
		name := fmt.Sprintf("%s/%d/map_files/%x-%x", s.proc, pid, m.start, m.end)
		if f, err := os.Open(name); err == nil {
			if k, ok := matches(f, m, false); ok {
				return f, k, Resolved
			}
			f.Close()
		}
	}
	if m.deleted {
		return nil, fileKey{}, ReasonFileDeleted
	}
	f, err := os.Open(fmt.Sprintf("%s/%d/root%s", s.proc, pid, unescapePath(m.path)))
	if err != nil {
		return nil, fileKey{}, s.openReason(pid, err)
	}
	k, ok := matches(f, m, true)
	if !ok {
		f.Close()
		return nil, fileKey{}, ReasonFileReplaced
	}
	return f, k, Resolved
}

func (s *Symbolizer) openReason(pid uint32, err error) Reason {
	switch {
	case errors.Is(err, fs.ErrPermission):
		return ReasonNoAccess
	case errors.Is(err, fs.ErrNotExist):
		if _, err := os.Stat(fmt.Sprintf("%s/%d", s.proc, pid)); err != nil {
			return ReasonProcessExited
		}
		return ReasonFileDeleted
	}
	return ReasonFileUnreadable
}

// overlayfsMagic is OVERLAYFS_SUPER_MAGIC: on overlayfs, maps shows the
// underlying file's device, while fstat through the overlay path shows
// the overlay's device with the same inode number.
const overlayfsMagic = 0x794c7630

// matches reports whether f is the file of m, and returns its key.
func matches(f *os.File, m *mapping, viaPath bool) (fileKey, bool) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileKey{}, false
	}
	k := fileKey{major: m.major, minor: m.minor, inode: st.Ino, ctime: st.Ctim.Nano(), size: st.Size}
	if st.Ino != m.inode {
		return k, false
	}
	if unix.Major(st.Dev) == m.major && unix.Minor(st.Dev) == m.minor {
		return k, true
	}
	var sf unix.Statfs_t
	return k, viaPath && unix.Fstatfs(int(f.Fd()), &sf) == nil && sf.Type == overlayfsMagic
}

// unescapePath undoes the one escape /proc/PID/maps applies to a path: a
// newline is shown as \012.
func unescapePath(p string) string { return strings.ReplaceAll(p, `\012`, "\n") }
