//go:build linux

package tracer

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/otelcol-mremap/otelcol-mremap/bpf"
)

// kretprobeMaxActive is how many calls a kretprobe can track at once. The
// default is max(10, 2*CPUs); beyond it the kernel misses returns. 4096 is
// the kernel's maximum (KRETPROBE_MAXACTIVE_MAX). Setting it makes
// cilium/ebpf create the probe through tracefs, where its misses are
// counted (missed.go).
const kretprobeMaxActive = 4096

// attachment is one program to attach, and where.
type attachment struct {
	kind    attachKind
	target  string // tracepoint name or kernel symbol
	program string
}

type attachKind uint8

const (
	attachTracepoint      attachKind = iota // syscalls:<target>
	attachSchedTracepoint                   // sched:<target>
	attachRawTracepoint                     // raw_syscalls:<target>, a BPF raw tracepoint
	attachKprobe
	attachKretprobe
)

// ia32Attachments are the raw_syscalls programs for 32-bit callers, exit
// first.
var ia32Attachments = []attachment{
	{attachRawTracepoint, "sys_exit", bpf.MremapProgIa32SysExit},
	{attachRawTracepoint, "sys_enter", bpf.MremapProgIa32SysEnter},
}

// attachments lists what a plan attaches, in order: every exit before any
// entry, so that no entry is recorded before the exit that pairs it exists.
func attachments(p Plan) []attachment {
	var exits, enters []attachment
	switch p.Probe {
	case ProbeTracepoint:
		exits = append(exits, attachment{attachTracepoint, "sys_exit_mremap", bpf.MremapProgTracepointExit})
		enters = append(enters, attachment{attachTracepoint, "sys_enter_mremap", bpf.MremapProgTracepointEnter})
		switch p.Ia32 {
		case Ia32RawTracepoints:
			// The raw_syscalls programs come and go with 32-bit programs
			// (ia32watch.go); these tell when.
			exits = append(exits, attachment{attachSchedTracepoint, "sched_process_exit", bpf.MremapProgIa32Exit})
			enters = append(enters, attachment{attachSchedTracepoint, "sched_process_exec", bpf.MremapProgIa32Exec})
		case Ia32RawTracepointsAlways:
			exits = append(exits, ia32Attachments[0])
			enters = append(enters, ia32Attachments[1])
		}
	case ProbeKprobe:
		for i, sym := range p.kprobeSymbols {
			enter := bpf.MremapProgKprobeEnter
			if i > 0 {
				// The compat wrappers' registers hold the i386 convention.
				enter = bpf.MremapProgKprobeEnterIa32
			}
			exits = append(exits, attachment{attachKretprobe, sym, bpf.MremapProgKprobeExit})
			enters = append(enters, attachment{attachKprobe, sym, enter})
		}
	}
	return append(exits, enters...)
}

// attach attaches the plan's programs in order. The links are closed in
// reverse order by Tracer.detach.
func attach(o *objects, p Plan, k *kretprobes) ([]link.Link, error) {
	var links []link.Link
	for _, a := range attachments(p) {
		l, err := attachOne(a, o.program(a.program), k)
		if err != nil {
			closeLinks(links)
			return nil, err
		}
		links = append(links, l)
	}
	return links, nil
}

func attachOne(a attachment, prog *ebpf.Program, k *kretprobes) (link.Link, error) {
	switch a.kind {
	case attachTracepoint:
		l, err := link.Tracepoint("syscalls", a.target, prog, nil)
		if err != nil {
			return nil, fmt.Errorf("attach tracepoint syscalls:%s: %w", a.target, err)
		}
		return l, nil
	case attachSchedTracepoint:
		l, err := link.Tracepoint("sched", a.target, prog, nil)
		if err != nil {
			return nil, fmt.Errorf("attach tracepoint sched:%s: %w", a.target, err)
		}
		return l, nil
	case attachRawTracepoint:
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.target, Program: prog})
		if err != nil {
			return nil, fmt.Errorf("attach raw tracepoint raw_syscalls:%s: %w", a.target, err)
		}
		return l, nil
	case attachKprobe:
		l, err := link.Kprobe(a.target, prog, nil)
		if err != nil {
			return nil, fmt.Errorf("attach kprobe %s: %w", a.target, err)
		}
		return l, nil
	case attachKretprobe:
		return k.attach(a.target, prog)
	}
	return nil, fmt.Errorf("unknown attach kind %d", a.kind)
}

// attach attaches a kretprobe through tracefs and notes which tracefs event
// is ours, to read its misses from kprobe_profile.
func (k *kretprobes) attach(sym string, prog *ebpf.Program) (link.Link, error) {
	before, _ := kprobeEvents(k.tracefs)
	opts := &link.KprobeOptions{RetprobeMaxActive: kretprobeMaxActive, TraceFSPrefix: tracefsGroupPrefix}
	l, err := link.Kretprobe(sym, prog, opts)
	if errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("attach kretprobe %s: %w (creating it writes %s/kprobe_events, which needs CAP_DAC_OVERRIDE or root)", sym, err, k.tracefs)
	}
	if err != nil {
		return nil, fmt.Errorf("attach kretprobe %s: %w", sym, err)
	}
	after, err := kprobeEvents(k.tracefs)
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("attach kretprobe %s: find its tracefs event, whose misses are counted: %w", sym, err)
	}
	ours := newEvents(before, after, sym)
	if len(ours) == 0 {
		l.Close()
		return nil, fmt.Errorf("attach kretprobe %s: no new %s_* event for it in %s/kprobe_events, so its misses could not be counted", sym, tracefsGroupPrefix, k.tracefs)
	}
	for _, ev := range ours {
		k.events[ev] = true
	}
	return l, nil
}

func closeLinks(links []link.Link) error {
	var errs []error
	for i := len(links) - 1; i >= 0; i-- {
		errs = append(errs, links[i].Close())
	}
	return errors.Join(errs...)
}
