//go:build linux

package tracer

import (
	"bufio"
	"compress/gzip"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// ia32Facts are what the kernel shows of its ia32 emulation, the ability of
// an x86-64 kernel to run 32-bit x86 programs.
type ia32Facts struct {
	// kallsymsErr: /proc/kallsyms could not be read.
	kallsymsErr error
	// symbol: __ia32_sys_mremap is in /proc/kallsyms (CONFIG_IA32_EMULATION).
	symbol bool
	// cmdline is /proc/cmdline: ia32_emulation= turns the emulation on or
	// off at boot (Linux 6.7+).
	cmdline string
	// defaultDisabled: CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y, from
	// /proc/config.gz or /boot/config-$(uname -r): the emulation is off
	// unless the command line says ia32_emulation=1.
	defaultDisabled bool
}

// ia32Raw decides whether tracepoint mode attaches the raw_syscalls raw
// tracepoints for 32-bit callers, and why not. Those programs run on every
// syscall of the host, so they are attached only where 32-bit programs can
// run.
func (f ia32Facts) ia32Raw() Ia32 {
	if f.kallsymsErr != nil {
		return Ia32KallsymsUnreadable
	}
	if !f.symbol {
		return Ia32None // no ia32 emulation built in: no 32-bit callers
	}
	on, set := cmdlineBool(f.cmdline, "ia32_emulation")
	switch {
	case set && !on:
		return Ia32EmulationOff
	case !set && f.defaultDisabled:
		return Ia32EmulationDefaultOff
	}
	return Ia32RawTracepoints
}

// cmdlineBool reads a boolean kernel parameter as the kernel does
// (kstrtobool; the last one wins), from the part of the command line the
// kernel reads (before "--", which starts init's arguments).
func cmdlineBool(cmdline, name string) (on, set bool) {
	for _, field := range strings.Fields(cmdline) {
		if field == "--" {
			break
		}
		v, ok := strings.CutPrefix(field, name+"=")
		if !ok {
			continue
		}
		if b, ok := kstrtobool(strings.Trim(v, `"`)); ok {
			on, set = b, true
		}
	}
	return on, set
}

// kstrtobool is the kernel's: y/t/1 and "on" are true, n/f/0 and "off"
// false, by their first characters.
func kstrtobool(s string) (bool, bool) {
	if s == "" {
		return false, false
	}
	switch s[0] {
	case 'y', 'Y', 't', 'T', '1':
		return true, true
	case 'n', 'N', 'f', 'F', '0':
		return false, true
	case 'o', 'O':
		if len(s) > 1 {
			switch s[1] {
			case 'n', 'N':
				return true, true
			case 'f', 'F':
				return false, true
			}
		}
	}
	return false, false
}

// readIa32Facts reads what the running x86-64 kernel shows, given whether
// /proc/kallsyms has __ia32_sys_mremap (or could not be read).
func readIa32Facts(symbol bool, kallsymsErr error) ia32Facts {
	f := ia32Facts{symbol: symbol, kallsymsErr: kallsymsErr}
	if kallsymsErr != nil || !symbol {
		return f
	}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		f.cmdline = string(b)
	}
	f.defaultDisabled = kernelConfigHas("CONFIG_IA32_EMULATION_DEFAULT_DISABLED=y")
	return f
}

// kernelConfigHas tells whether the kernel's build configuration, where it
// is shown (/proc/config.gz with CONFIG_IKCONFIG_PROC, or
// /boot/config-RELEASE), has the line. Without either, it says no.
func kernelConfigHas(line string) bool {
	var r io.Reader
	if f, err := os.Open("/proc/config.gz"); err == nil {
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			return false
		}
		r = gz
	} else {
		var u unix.Utsname
		if unix.Uname(&u) != nil {
			return false
		}
		f, err := os.Open("/boot/config-" + unix.ByteSliceToString(u.Release[:]))
		if err != nil {
			return false
		}
		defer f.Close()
		r = f
	}
	s := bufio.NewScanner(r)
	for s.Scan() {
		if s.Text() == line {
			return true
		}
	}
	return false
}
