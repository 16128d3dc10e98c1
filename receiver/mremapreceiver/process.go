//go:build linux

package mremapreceiver // import "github.com/otelcol-mremap/otelcol-mremap/receiver/mremapreceiver"

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremap"
)

// processInfo is what /proc tells of a process beyond what the kernel put
// in the record: its executable's path, its command line (when asked for)
// and its container, where known. Values are made valid UTF-8 by
// mremap.Escape: they may hold any bytes.
type processInfo struct {
	exePath     string
	commandLine string
	containerID string
}

// processCache remembers processInfo per process, so /proc is read once per
// process and not once per call. A process is its pid and its start time,
// so a later process that reuses the pid is read anew, and its comm, so
// that after an exec (a new executable, the same pid and start time) it is
// read anew too. It is bounded: when full it starts over.
type processCache struct {
	procRoot    string
	commandLine bool // read /proc/PID/cmdline
	m           map[processKey]processInfo
}

// processKey names a process: its pid, its start time (ns since boot) and
// its comm.
type processKey struct {
	pid       uint32
	startTime uint64
	comm      string
}

func keyOf(p mremap.Process) processKey { return processKey{p.PID, p.StartTime, p.Comm} }

const maxCachedProcesses = 4096

// maxCommandLine bounds the command line read, in bytes; a longer one ends
// in "...".
const maxCommandLine = 4096

func newProcessCache(procRoot string, commandLine bool) *processCache {
	return &processCache{procRoot: procRoot, commandLine: commandLine, m: map[processKey]processInfo{}}
}

func (c *processCache) lookup(p mremap.Process) processInfo {
	k := keyOf(p)
	if info, ok := c.m[k]; ok {
		return info
	}
	if len(c.m) >= maxCachedProcesses {
		clear(c.m)
	}
	dir := c.procRoot + "/" + strconv.FormatUint(uint64(p.PID), 10)
	var info processInfo
	// The process may have exited already; then these stay unknown.
	if exe, err := os.Readlink(dir + "/exe"); err == nil {
		info.exePath = mremap.Escape([]byte(strings.TrimSuffix(exe, " (deleted)")))
	}
	if c.commandLine {
		info.commandLine = readCommandLine(dir + "/cmdline")
	}
	if f, err := os.Open(dir + "/cgroup"); err == nil {
		info.containerID = containerIDFromCgroup(bufio.NewScanner(f))
		f.Close()
	}
	c.m[k] = info
	return info
}

// readCommandLine reads /proc/PID/cmdline, whose arguments end in NULs, as
// one string with the arguments separated by spaces and quoted as a POSIX
// shell would need them (quoteArgument), so that ["a b"] and ["a", "b"]
// read differently; at most maxCommandLine bytes of it, then "...".
// Trailing NULs are padding (a process that rewrites its title pads it
// with NULs), not empty arguments.
func readCommandLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, maxCommandLine+1)
	n, _ := io.ReadFull(f, buf)
	buf = buf[:n]
	truncated := n > maxCommandLine
	if truncated {
		buf = buf[:maxCommandLine]
	} else {
		buf = bytes.TrimRight(buf, "\x00")
	}
	if len(buf) == 0 {
		return ""
	}
	var s strings.Builder
	for i, arg := range bytes.Split(buf, []byte{0}) {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(quoteArgument(mremap.Escape(arg)))
	}
	if truncated {
		s.WriteString("...")
	}
	return s.String()
}

// quoteArgument quotes an argument (escaped by mremap.Escape) as a POSIX
// shell reads it, like Python's shlex.quote: as it is if it is not empty
// and holds only letters, digits and @%+=:,./-_; else in single quotes,
// where a single quote inside ends the quoted part, is written \' and
// starts a new one. Inside the quotes, \\ and \xNN are still
// mremap.Escape's escapes.
func quoteArgument(arg string) string {
	if arg != "" && strings.IndexFunc(arg, unsafeInArgument) < 0 {
		return arg
	}
	return "'" + strings.ReplaceAll(arg, "'", `'\''`) + "'"
}

func unsafeInArgument(r rune) bool {
	switch {
	case r < utf8.RuneSelf:
		return (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && !strings.ContainsRune("@%+=:,./-_", r)
	default:
		// Letters and digits of other scripts read as themselves;
		// spaces and symbols (U+00A0, U+2003) are quoted.
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	}
}

// A container's cgroup path ends in its 64-hex-digit id, as docker,
// containerd, CRI-O and podman name them: ".../docker-<id>.scope",
// ".../cri-containerd-<id>.scope", ".../crio-<id>.scope",
// ".../libpod-<id>.scope" (podman; ".../libpod-<id>.scope/container" when
// the container runs systemd), ".../<id>" (cgroupfs drivers, v1).
var containerIDPattern = regexp.MustCompile(`(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:/container)?$`)

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
