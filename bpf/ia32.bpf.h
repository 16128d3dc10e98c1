// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// ia32.bpf.h: 32-bit (ia32) callers on x86-64, whose saved registers hold
// the arguments in the i386 convention (bx, cx, dx, si, di). The programs
// exist on every architecture, so that both objects hold the same set; off
// x86-64 they are never attached.
//
// In tracepoint mode the raw_syscalls programs that catch 32-bit calls run
// on every syscall of the host, so user space attaches them only while a
// 32-bit program runs: ia32_procs holds those, found at start by ia32_scan
// (a task iterator) and at each exec by ia32_exec, which tells user space
// through ia32_starts; ia32_exit takes them out.
#ifndef IA32_BPF_H
#define IA32_BPF_H

// The 32-bit processes, by tgid: their start time.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_IA32_PROCS);
	__type(key, __u32);
	__type(value, __u64);
} ia32_procs SEC(".maps");

// The tgid of each 32-bit program started, for user space to attach.
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} ia32_starts SEC(".maps");

// A process that execs becomes 32-bit or not (a 32-bit program may exec a
// 64-bit one).
SEC("tracepoint/sched/sched_process_exec")
int ia32_exec(void *ctx)
{
#if defined(__TARGET_ARCH_x86)
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!is_ia32_task(task)) {
		bpf_map_delete_elem(&ia32_procs, &tgid);
		return 0;
	}
	__u64 start = task->group_leader->start_time;
	bpf_map_update_elem(&ia32_procs, &tgid, &start, BPF_ANY);
	struct ia32_start s = { .tgid = tgid, .exec_ns = bpf_ktime_get_ns() };
	bpf_ringbuf_output(&ia32_starts, &s, sizeof(s), BPF_RB_FORCE_WAKEUP);
#endif
	return 0;
}

// A process ends with its last thread: do_exit counts the live threads down
// before this tracepoint.
SEC("tracepoint/sched/sched_process_exit")
int ia32_exit(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!task->signal->live.counter)
		bpf_map_delete_elem(&ia32_procs, &tgid);
	return 0;
}

// ia32_scan finds the 32-bit processes running when the tracer starts.
SEC("iter/task")
int ia32_scan(struct bpf_iter__task *ctx)
{
#if defined(__TARGET_ARCH_x86)
	struct task_struct *task = ctx->task;
	if (!task || task->pid != task->tgid || !task->mm || !is_ia32_task(task))
		return 0;
	__u32 tgid = task->tgid;
	__u64 start = task->start_time;
	bpf_map_update_elem(&ia32_procs, &tgid, &start, BPF_ANY);
#endif
	return 0;
}

#if defined(__TARGET_ARCH_x86)
static __always_inline int on_enter_ia32(struct pt_regs *regs)
{
	return on_enter((__u32)BPF_CORE_READ(regs, bx), (__u32)BPF_CORE_READ(regs, cx),
			(__u32)BPF_CORE_READ(regs, dx), (__u32)BPF_CORE_READ(regs, si),
			(__u32)BPF_CORE_READ(regs, di));
}

// in_ia32_syscall tells whether the current task is in a 32-bit syscall
// (the kernel's in_ia32_syscall(): TS_COMPAT in its thread_info.status).
// A direct load through the BTF task pointer: no helper call, since the
// exit program runs this on every syscall.
static __always_inline bool in_ia32_syscall(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	return task->thread_info.status & TS_COMPAT;
}
#endif

// 32-bit tasks on x86-64 enter through __ia32_sys_mremap.
SEC("kprobe/__ia32_sys_mremap")
int kprobe_enter_ia32(struct pt_regs *ctx)
{
#if defined(__TARGET_ARCH_x86)
	struct pt_regs *regs = (struct pt_regs *)PT_REGS_PARM1(ctx);
	return on_enter_ia32(regs);
#else
	return 0;
#endif
}

// The syscalls:sys_{enter,exit}_mremap tracepoints skip compat syscalls, so
// in tracepoint mode on x86-64 kernels with ia32 emulation 32-bit callers
// are caught here: raw_syscalls:sys_enter/sys_exit fire on every syscall,
// so these return at once unless the syscall is the i386 mremap of a task
// in a compat syscall. Raw tracepoints hand over the tracepoint's own
// arguments (regs, id) and (regs, ret): cheaper than the perf-event
// tracepoints, which copy a record first.
SEC("raw_tracepoint/sys_enter")
int ia32_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
#if defined(__TARGET_ARCH_x86)
	if (ctx->args[1] != IA32_NR_MREMAP || !in_ia32_syscall())
		return 0;
	return on_enter_ia32((struct pt_regs *)ctx->args[0]);
#else
	return 0;
#endif
}

// At exit the syscall number is the saved orig_ax (syscall_get_nr); it is
// read (a helper call) only for tasks in a compat syscall.
SEC("raw_tracepoint/sys_exit")
int ia32_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
#if defined(__TARGET_ARCH_x86)
	if (!in_ia32_syscall())
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	if (BPF_CORE_READ(regs, orig_ax) != IA32_NR_MREMAP)
		return 0;
	return on_exit(ctx, ctx->args[1]);
#else
	return 0;
#endif
}

#endif
