// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// compat.bpf.h: telling 32-bit (ia32) code on x86-64 by the task's saved
// user registers, for the 32-bit callers (ia32.bpf.h) and their stacks
// (stack.bpf.h).
#ifndef COMPAT_BPF_H
#define COMPAT_BPF_H

// The user code segment of 32-bit tasks (__USER32_CS): what their saved
// registers show while they are in the kernel.
#define USER32_CS 0x23

#if defined(__TARGET_ARCH_x86)
// user32_regs tells whether the saved user registers regs are a 32-bit
// task's: in the 32-bit code segment.
static __always_inline bool user32_regs(struct pt_regs *regs)
{
	return BPF_CORE_READ(regs, cs) == USER32_CS;
}

// is_ia32_task tells whether task runs 32-bit code.
static __always_inline bool is_ia32_task(struct task_struct *task)
{
	return user32_regs((struct pt_regs *)bpf_task_pt_regs(task));
}
#endif

#endif
