//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// CgroupID resolves a cgroup v2 path to the id the kernel gives the cgroup
// (bpf_get_current_cgroup_id): the inode number of its directory in the
// cgroup2 filesystem. path is either the absolute path of a cgroup2
// directory (/sys/fs/cgroup/system.slice/ssh.service) or, if it is not
// one, a path relative to the cgroup v2 mount as /proc/PID/cgroup shows it
// (/system.slice/ssh.service).
func CgroupID(path string) (uint64, error) {
	if !strings.HasPrefix(path, "/") {
		return 0, fmt.Errorf("cgroup %q: must be an absolute path, or one from the cgroup v2 root as /proc/PID/cgroup shows it", path)
	}
	if id, err := cgroup2Inode(path); err == nil {
		return id, nil
	}
	root, err := cgroup2Mount()
	if err != nil {
		return 0, fmt.Errorf("cgroup %q: %w", path, err)
	}
	full := filepath.Join(root, path)
	id, err := cgroup2Inode(full)
	if err != nil {
		return 0, fmt.Errorf("cgroup %q: neither it nor %s is a cgroup v2 directory: %w", path, full, err)
	}
	return id, nil
}

// cgroup2Inode is the inode number of dir, which must be a directory in a
// cgroup2 filesystem.
func cgroup2Inode(dir string) (uint64, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return 0, err
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return 0, fmt.Errorf("%s is not in a cgroup2 filesystem", dir)
	}
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return 0, fmt.Errorf("%s is not a directory", dir)
	}
	return st.Ino, nil
}

// cgroup2Mount is where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup,
// or /sys/fs/cgroup/unified on hybrid hosts.
func cgroup2Mount() (string, error) {
	if dir, ok := mountPoint("cgroup2"); ok {
		return dir, nil
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted (cgroup v1 only)")
}
