// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// ia32.bpf.h: 32-bit (ia32) callers on x86-64, whose saved registers hold
// the arguments in the i386 convention (bx, cx, dx, si, di). The programs
// exist on every architecture, so that both objects hold the same set; off
// x86-64 they are never attached.
#ifndef IA32_BPF_H
#define IA32_BPF_H

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
	return on_exit(ctx->args[1]);
#else
	return 0;
#endif
}

#endif
