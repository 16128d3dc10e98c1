// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// classify.bpf.h: what a call did. The one place the rules are written:
// the aggregates are keyed by the outcome and the record carries it, so
// user space decodes it and never classifies a call again.
#ifndef CLASSIFY_BPF_H
#define CLASSIFY_BPF_H

struct outcome {
	__u64 delta; // abs(new_size - old_size)
	__u16 err;   // errno of a failed call, 0 for success
	__u8 resize; // enum resize: new_size against old_size, whatever the result
	__u8 move;   // enum move
	bool ok;
};

// classify: the kernel returns -errno in [-4095, -1] for a failure, anything
// else is an address. The move is fixed if MREMAP_FIXED is set; else
// dontunmap if MREMAP_DONTUNMAP is set; else maymove if the call succeeded
// and returned an address other than old_address; else none.
static __always_inline struct outcome classify(const __u64 *args, long ret)
{
	__u64 old_addr = args[0], old_len = args[1], new_len = args[2];
	__u64 flags = args[3];
	struct outcome o = {};

	o.ok = ret >= 0 || ret < -4095;
	o.err = o.ok ? 0 : (__u16)(-ret);
	o.delta = new_len > old_len ? new_len - old_len : old_len - new_len;
	if (new_len > old_len)
		o.resize = RESIZE_GROW;
	else if (new_len < old_len)
		o.resize = RESIZE_SHRINK;
	else
		o.resize = RESIZE_NONE;
	if (flags & MREMAP_FIXED)
		o.move = MOVE_FIXED;
	else if (flags & MREMAP_DONTUNMAP)
		o.move = MOVE_DONTUNMAP;
	else if (o.ok && (__u64)ret != old_addr)
		o.move = MOVE_MAYMOVE;
	else
		o.move = MOVE_NONE;
	return o;
}

// classify_call runs classify on a call that user space hands in: a
// BPF_PROG_TYPE_SYSCALL program, run with BPF_PROG_TEST_RUN and never
// attached, so that tests check the kernel's own rule, case by case.
SEC("syscall")
int classify_call(struct classify_test *t)
{
	struct outcome o = classify(t->args, t->ret);
	t->delta = o.delta;
	t->err = o.err;
	t->resize = o.resize;
	t->move = o.move;
	t->ok = o.ok;
	return 0;
}

#endif
