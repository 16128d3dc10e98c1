//go:build ignore

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// mremap.bpf.c observes every mremap(2) call: an entry probe saves the
// arguments per thread, an exit probe pairs them with the return value,
// classifies the call, aggregates it (for metrics) and, when user space
// serves a logs pipeline, submits one record to a ring buffer.
//
// Two attach modes share the same entry/exit logic:
//   - kprobe + kretprobe on the syscall's arch wrapper (__x64_sys_mremap,
//     __ia32_sys_mremap, __arm64_sys_mremap); the wrapper takes the user's
//     registers as a struct pt_regs *, so the five arguments are read from
//     that inner pt_regs with CO-RE;
//   - the syscalls:sys_enter_mremap / sys_exit_mremap tracepoints, which do
//     not fire for 32-bit (compat) syscalls on x86-64; there, raw
//     raw_syscalls:sys_enter / sys_exit tracepoints catch those.
//
// Each concern has its header: filter (which calls), pairing (entry to
// exit), vma and path (the mapping at old_address), classify (what the call
// did), signals (which calls are suspicious), aggregate (the metrics'
// maps), rate and record (the ring buffer), stack (the caller's user
// stack, on the record), compat (32-bit callers on x86-64).
#include "vmlinux.h"
#include "mremap.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "maps.bpf.h"
#include "bits.bpf.h"
#include "scratch.bpf.h"
#include "filter.bpf.h"
#include "pairing.bpf.h"
#include "path.bpf.h"
#include "vma.bpf.h"
#include "classify.bpf.h"
#include "signals.bpf.h"
#include "aggregate.bpf.h"
#include "rate.bpf.h"
#include "compat.bpf.h"
#include "stack.bpf.h"
#include "record.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// Make the event and the enums visible in BTF, so that bpf2go generates them for Go.
const struct event *unused_event __attribute__((unused));
const enum call_flag *unused_call_flag __attribute__((unused));
const enum call_signal *unused_call_signal __attribute__((unused));
const enum hist_slots *unused_hist_slots __attribute__((unused));
const struct ia32_start *unused_ia32_start __attribute__((unused));
const enum resize *unused_resize __attribute__((unused));
const enum move *unused_move __attribute__((unused));
const enum drop_reason *unused_drop_reason __attribute__((unused));
const enum vma_flag *unused_vma_flag __attribute__((unused));
const struct stack_tail *unused_stack_tail __attribute__((unused));
const enum stack_flag *unused_stack_flag __attribute__((unused));

static __always_inline int on_enter(__u64 addr, __u64 old_len, __u64 new_len, __u64 flags,
				    __u64 new_addr)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct comm comm = {};
	if (!selected(id >> 32, &comm))
		return 0;

	struct task_struct *task = bpf_get_current_task_btf();
	struct scratch *s = this_cpu_scratch();
	if (!s)
		return 0;
	struct inflight *in = inflight_slot(task, s);
	if (!in)
		return 0;
	in->vma.flags = 0;
	in->vma.path_len = 0;
	if (find_mapping) {
		// Into s->in.vma: with lru_pairing, in's own.
		lookup_vma(s, task, addr);
		if (s->in.vma.flags & VMA_FOUND)
			s->in.vma.count = count_spanned(task, s->found_end, addr + old_len);
		if (!lru_pairing && s->in.vma.flags)
			__builtin_memcpy(&in->vma, &s->in.vma, sizeof(in->vma));
	}
	in->facts = entry_facts(task, flags, new_addr, new_len);
	in->args[0] = addr;
	in->args[1] = old_len;
	in->args[2] = new_len;
	in->args[3] = flags;
	in->args[4] = new_addr;
	// Last, after the lookup, so that the duration is the syscall's alone.
	in->enter_ns = bpf_ktime_get_ns();
	inflight_save(id, in);
	return 0;
}

static __always_inline int on_exit(void *ctx, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct comm comm = {};
	if (!selected(id >> 32, &comm))
		return 0;

	__u64 enter_ns = 0;
	struct inflight *in = inflight_take(id, &enter_ns);
	if (!in) {
		count_drop(DROP_UNPAIRED);
		return 0;
	}
	__u64 now = bpf_ktime_get_ns();
	struct outcome o = classify(in->args, ret);
	if (o.delta >= min_delta) {
		struct task_struct *task = bpf_get_current_task_btf();
		__u32 map_count = task->mm->map_count;
		__u16 signals = call_signals(in, &o, map_count);
		comm_of(&comm);
		if (!aggregate(&comm, &o, now - enter_ns, signals, map_count))
			count_drop(DROP_CARDINALITY_LIMIT);
		submit_record(ctx, in, id, &comm, &o, signals, map_count, ret, enter_ns, now);
	}
	inflight_done(id);
	return 0;
}

// A syscalls:sys_{enter,exit}_<name> record is struct syscall_trace_enter or
// syscall_trace_exit (an int nr after the common fields), not the
// raw_syscalls:sys_{enter,exit} layout (trace_event_raw_sys_enter/exit, a
// long id). The two agree only while struct trace_entry is 8 bytes: on
// kernels whose trace_entry is longer (Debian's 6.1 PREEMPT_RT kernel adds
// common_preempt_lazy_count) the raw layout puts the arguments 8 bytes too
// far, past the end of the record, and the kernel refuses the attach (EACCES).
SEC("tracepoint/syscalls/sys_enter_mremap")
int tracepoint_enter(struct syscall_trace_enter *ctx)
{
	return on_enter(ctx->args[0], ctx->args[1], ctx->args[2], ctx->args[3], ctx->args[4]);
}

SEC("tracepoint/syscalls/sys_exit_mremap")
int tracepoint_exit(struct syscall_trace_exit *ctx)
{
	return on_exit(ctx, ctx->ret);
}

// The arch wrapper's only argument is the user's saved registers; the
// syscall arguments are read from them with CO-RE in the native syscall
// convention.
SEC("kprobe/sys_mremap")
int kprobe_enter(struct pt_regs *ctx)
{
	struct pt_regs *regs = (struct pt_regs *)PT_REGS_PARM1(ctx);
	return on_enter(PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs),
			PT_REGS_PARM3_CORE_SYSCALL(regs), PT_REGS_PARM4_CORE_SYSCALL(regs),
			PT_REGS_PARM5_CORE_SYSCALL(regs));
}

SEC("kretprobe/sys_mremap")
int kprobe_exit(struct pt_regs *ctx)
{
	return on_exit(ctx, PT_REGS_RC(ctx));
}

#include "ia32.bpf.h"
