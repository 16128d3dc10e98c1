// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// stack.bpf.h: the calling thread's user-space stack, for call_stack.
//
// It is captured at the syscall's exit, straight into the call's ring
// buffer record, once the call is known to be logged (the filters,
// failures_only and the rate cap have decided), so that no other call
// pays. The exit sees the stack the entry would: while the thread is in
// the kernel its saved user registers (instruction, stack and frame
// pointers, link register) are those of the syscall instruction, and its
// stack is not run. bpf_get_stack walks the frame pointers from them
// (perf's user callchain, 32-bit frames for 32-bit tasks).
#ifndef STACK_BPF_H
#define STACK_BPF_H

const volatile bool capture_stack = false; // records carry a struct stack_tail
// The saved user registers can be reached (bpf_task_pt_regs, Linux 5.15):
// the top of the user stack (x86) or the link register (arm64) is read too.
const volatile bool stack_registers = false;

// capture_user_stack fills t, in the record of the current call of task;
// ctx is the program's context, which bpf_get_stack needs.
static __always_inline void capture_user_stack(void *ctx, struct task_struct *task,
					       struct stack_tail *t)
{
	// One frame more than kept, to tell a stack that is cut short; the
	// kernel zeroes what it does not fill.
	long n = bpf_get_stack(ctx, t->ips, sizeof(t->ips), BPF_F_USER_STACK);
	t->err = n < 0 ? n : 0;
	t->frames = n > 0 ? n / sizeof(__u64) : 0;
	t->flags = 0;
	t->pad = 0;
	if (t->frames > STACK_FRAMES) {
		t->frames = STACK_FRAMES;
		t->flags |= STACK_TRUNCATED;
	}
	t->start_boottime = task->group_leader->start_boottime;
	t->link_register = 0;
	if (!stack_registers) {
		__builtin_memset(t->words, 0, sizeof(t->words));
		return;
	}
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
#if defined(__TARGET_ARCH_arm64)
	// A leaf stub's caller is in the link register; the stack is not read.
	t->link_register = PT_REGS_RET_CORE(regs);
	__builtin_memset(t->words, 0, sizeof(t->words));
#else
	if (user32_regs(regs))
		t->flags |= STACK_COMPAT;
	// A failed read (the stack's top is less than words away) zeroes it.
	if (!bpf_probe_read_user(t->words, sizeof(t->words), (void *)PT_REGS_SP_CORE(regs)))
		t->flags |= STACK_WORDS_READ;
#endif
}

#endif
