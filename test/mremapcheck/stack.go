//go:build linux

package mremapcheck

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/otelcol-mremap/otelcol-mremap/internal/mremaptest"
)

// Frame is one line of code.stacktrace, as docs/call-stacks.md writes it:
// "function+0xoff (path)", "0x7f.. (path+0xoff)" when no symbol covers the
// address, "0x7f.." when no file backs it.
type Frame struct {
	Function string // "" when the frame has no name
	Module   string // "" when no file backs it
	Address  bool   // the frame shows its address (no name)
}

var (
	namedFrame = regexp.MustCompile(`^(.+)\+0x[0-9a-f]+ \((.+)\)$`)
	fileFrame  = regexp.MustCompile(`^0x[0-9a-f]+ \((.+)\+0x[0-9a-f]+\)$`)
	bareFrame  = regexp.MustCompile(`^0x[0-9a-f]+$`)
)

// ParseTrace parses code.stacktrace; a line in none of the three forms is
// an error.
func ParseTrace(trace string) ([]Frame, error) {
	var out []Frame
	for _, line := range strings.Split(trace, "\n") {
		if m := fileFrame.FindStringSubmatch(line); m != nil {
			out = append(out, Frame{Module: m[1], Address: true})
		} else if m := namedFrame.FindStringSubmatch(line); m != nil {
			out = append(out, Frame{Function: m[1], Module: m[2]})
		} else if bareFrame.MatchString(line) {
			out = append(out, Frame{Address: true})
		} else {
			return nil, fmt.Errorf("frame %q is in none of the documented forms", line)
		}
	}
	return out, nil
}

// StackWant is what a record's call-stack attributes must say.
type StackWant struct {
	// Functions are the helper's functions, innermost first: the frames
	// name them one after the other, each in Module.
	Functions []string
	Module    string
	// Function is code.function.name ("" for absent); End is
	// mremap.call_stack.end ("a|b": either), Unresolved
	// mremap.call_stack.unresolved ("" for absent).
	Function, End, Unresolved string
	// FileFrames: the frames of Module show their offset in it, with no
	// name (a stripped file).
	FileFrames bool
}

// Check returns what is wrong with the call-stack attributes a.
func (w StackWant) Check(what string, a pcommon.Map) []string {
	var p problems
	got := a.AsRaw()
	frames, err := ParseTrace(str(a, "code.stacktrace"))
	if err != nil {
		p.add("%s: code.stacktrace: %v", what, err)
	}
	n := len(p)
	expect(&p, what+" code.function.name", fmt.Sprint(got["code.function.name"]), orNil(w.Function))
	if end := fmt.Sprint(got["mremap.call_stack.end"]); !slices.Contains(strings.Split(orNil(w.End), "|"), end) {
		p.add("%s mremap.call_stack.end = %s, want %s", what, end, orNil(w.End))
	}
	expect(&p, what+" mremap.call_stack.unresolved", fmt.Sprint(got["mremap.call_stack.unresolved"]), orNil(w.Unresolved))
	if len(p) > n {
		p.add("%s: code.stacktrace:\n%s", what, str(a, "code.stacktrace"))
	}
	var names []string
	inModule := 0
	for _, f := range frames {
		names = append(names, f.Function)
		if f.Module == w.Module {
			inModule++
			if w.FileFrames && !f.Address {
				p.add("%s: frame %s+... in %s has a name, want file offsets only", what, f.Function, w.Module)
			}
		}
	}
	if len(w.Functions) > 0 && !mremaptest.InOrder(names, w.Functions...) {
		p.add("%s: frames %q, want %q one after the other:\n%s", what, names, w.Functions, str(a, "code.stacktrace"))
	}
	for _, f := range frames {
		if slices.Contains(w.Functions, f.Function) && f.Module != w.Module {
			p.add("%s: frame %s in %q, want %q", what, f.Function, f.Module, w.Module)
		}
	}
	if w.FileFrames && inModule < 3 {
		p.add("%s: %d frames in %s, want the helper's own as file offsets:\n%s", what, inModule, w.Module, str(a, "code.stacktrace"))
	}
	return p
}

func orNil(s string) string {
	if s == "" {
		return "<nil>"
	}
	return s
}
