//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netns is a network namespace of the test's own, holding only a loopback
// interface: the shipped configs run there on their default ports and
// addresses, unchanged, without meeting another test's listeners, and
// nothing outside the namespace can reach them.
type netns struct {
	fd   int
	path string // the namespace as a file, for nsenter --net
}

// newNetns makes a network namespace with its loopback interface up; it
// is freed when the test ends and its processes have exited.
func newNetns(t *testing.T) *netns {
	t.Helper()
	type made struct {
		fd  int
		err error
	}
	ch := make(chan made)
	go func() {
		// The thread that enters the new namespace stays locked: Go ends a
		// locked thread with its goroutine, so nothing else runs there.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			ch <- made{-1, fmt.Errorf("unshare(CLONE_NEWNET): %w", err)}
			return
		}
		fd, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = loopbackUp()
		}
		ch <- made{fd, err}
	}()
	m := <-ch
	if m.err != nil {
		t.Fatalf("make a network namespace: %v", m.err)
	}
	t.Cleanup(func() { unix.Close(m.fd) })
	return &netns{fd: m.fd, path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), m.fd)}
}

// loopbackUp sets IFF_UP on lo, as `ip link set lo up` does.
func loopbackUp() error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS lo: %w", err)
	}
	return nil
}

// command is name with args, run inside the namespace (nsenter execs it:
// the process is name's own, for signals and /proc).
func (n *netns) command(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=" + n.path, "--", name}, args...)...)
}

// do runs fn on a thread inside the namespace: sockets it makes belong to
// the namespace.
func (n *netns) do(fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see newNetns
		if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
			ch <- fmt.Errorf("setns: %w", err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}

// dial connects to addr inside the namespace. addr must be an IP address
// and port: a name could make the dialer race addresses on other threads.
func (n *netns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// httpClient reaches HTTP servers inside the namespace.
func (n *netns) httpClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: n.dial, DisableKeepAlives: true}}
}
