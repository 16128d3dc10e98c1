// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// pairing.bpf.h: where a call is kept between its entry and its exit, per
// thread: the thread's BPF task storage, or, on PREEMPT_RT kernels, a
// preallocated LRU hash keyed by pid_tgid. User space picks one before load
// (lru_pairing) and sizes the other down to one entry.
#ifndef PAIRING_BPF_H
#define PAIRING_BPF_H

const volatile bool lru_pairing = false;

// Task storage is a slot that the kernel keeps in the thread's task_struct
// and frees when the thread exits. Reaching it costs a pointer lookup, where
// a hash keyed by pid_tgid costs a hash, a lock and a copy per call; and
// nothing is left behind by threads that never return (killed in the
// syscall, or a missed kretprobe). enter_ns 0 marks the slot empty.
//
// Not on PREEMPT_RT kernels: there, on 6.1, the slot of a thread's first
// call is allocated with GFP_ATOMIC from a probe that runs with preemption
// off, which RT forbids (slab locks sleep); and bpf_task_storage_get returns
// NULL while the CPU's task storage lock is held by a preempted holder (a
// thread exiting frees its storage preemptibly), so calls go unpaired.
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} inflight SEC(".maps");

// On PREEMPT_RT a preallocated hash takes raw spinlocks and allocates
// nothing in the probe, which RT allows. An LRU map, so that the entries of
// threads that never returned are evicted rather than filling it.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, struct inflight);
} inflight_lru SEC(".maps");

// inflight_slot is where the entry writes the call: the thread's task
// storage slot, or the scratch space that inflight_save copies into the LRU
// hash. NULL when the kernel cannot allocate the slot, or when another
// program on this CPU is using task storage; the exit then counts the call
// as unpaired.
static __always_inline struct inflight *inflight_slot(struct task_struct *task, struct scratch *s)
{
	if (lru_pairing)
		return &s->in;
	return bpf_task_storage_get(&inflight, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

// inflight_save ends the entry. A failed insert (no free element) leaves the
// exit unpaired, counted.
static __always_inline void inflight_save(__u64 id, struct inflight *in)
{
	if (lru_pairing)
		bpf_map_update_elem(&inflight_lru, &id, in, BPF_ANY);
}

// inflight_take finds the thread's call at its exit and its entry time, or
// returns NULL. A task storage slot is the thread's own, and the thread is
// here: it stays as it is until the program returns, but is marked empty at
// once.
static __always_inline struct inflight *inflight_take(__u64 id, __u64 *enter_ns)
{
	struct inflight *in;
	if (lru_pairing) {
		in = bpf_map_lookup_elem(&inflight_lru, &id);
		if (in)
			*enter_ns = in->enter_ns;
		return in;
	}
	in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
	if (!in || !in->enter_ns)
		return NULL;
	*enter_ns = in->enter_ns;
	in->enter_ns = 0;
	return in;
}

// inflight_done releases what inflight_take found, once the call's record
// holds its mapping: once deleted, another CPU may reuse an LRU element at
// once.
static __always_inline void inflight_done(__u64 id)
{
	if (lru_pairing)
		bpf_map_delete_elem(&inflight_lru, &id);
}

#endif
