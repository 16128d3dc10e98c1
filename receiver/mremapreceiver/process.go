package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// processInfo is what /proc tells of a process beyond what the kernel put
// in the record: its executable's path and its container, where known.
type processInfo struct {
	exePath     string
	containerID string
}

// processCache remembers processInfo per (pid, comm), so /proc is read once
// per process and not once per call; a new comm (after exec) is read anew.
// It is bounded: when full it starts over.
type processCache struct {
	procRoot string
	m        map[processKey]processInfo
}

type processKey struct {
	pid  uint32
	comm string
}

const maxCachedProcesses = 4096

func newProcessCache(procRoot string) *processCache {
	return &processCache{procRoot: procRoot, m: map[processKey]processInfo{}}
}

func (c *processCache) lookup(pid uint32, comm string) processInfo {
	k := processKey{pid, comm}
	if info, ok := c.m[k]; ok {
		return info
	}
	if len(c.m) >= maxCachedProcesses {
		clear(c.m)
	}
	dir := c.procRoot + "/" + strconv.FormatUint(uint64(pid), 10)
	var info processInfo
	// The process may have exited already; then these stay unknown.
	if p, err := os.Readlink(dir + "/exe"); err == nil {
		info.exePath = strings.TrimSuffix(p, " (deleted)")
	}
	if f, err := os.Open(dir + "/cgroup"); err == nil {
		info.containerID = containerIDFromCgroup(bufio.NewScanner(f))
		f.Close()
	}
	c.m[k] = info
	return info
}

// A container's cgroup path ends in its 64-hex-digit id, as docker,
// containerd, CRI-O and podman name them: ".../docker-<id>.scope",
// ".../cri-containerd-<id>.scope", ".../crio-<id>.scope", ".../<id>".
var containerIDPattern = regexp.MustCompile(`(?:^|[/-])([0-9a-f]{64})(?:\.scope)?$`)

func containerIDFromCgroup(s *bufio.Scanner) string {
	for s.Scan() {
		// "0::/system.slice/docker-<id>.scope" (cgroup v2) or
		// "4:memory:/docker/<id>" (v1)
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if m := containerIDPattern.FindStringSubmatch(parts[2]); m != nil {
			return m[1]
		}
	}
	return ""
}
