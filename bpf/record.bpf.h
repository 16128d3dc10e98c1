// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// record.bpf.h: one record per call in a ring buffer, when user space serves
// a logs pipeline.
#ifndef RECORD_BPF_H
#define RECORD_BPF_H

const volatile bool emit_events = false;   // a logs pipeline is served
const volatile bool failures_only = false; // records only for failed calls
// Wake the reader each time the pending bytes reach a multiple of this
// (0: on every record, the kernel's own policy). A wake-up is an
// interrupt (a self-IPI, costly in a VM), and once the reader is behind,
// waking it on every record would cost each call microseconds while the
// reader is awake anyway; a sleeping reader drained the ring, so the next
// multiple wakes it. The reader also polls on a short timer, so a few
// records never wait long.
const volatile __u64 wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 1024); // sized by user space before load
} events SEC(".maps");

// reserve_record reserves a record for a call whose mapping is v. A record
// whose mapping has no path (anonymous memory, or no mapping) ends where the
// path would start: a third of the size, so three times as many fit the
// ring buffer, and less is copied. User space reads path_len to tell the two
// apart. With capture_stack, the stack follows the record's fixed part:
// *tail is set to it.
static __always_inline struct event *reserve_record(const struct vma *v, struct stack_tail **tail)
{
	struct event *e;
	if (!v->path_len) {
		if (!capture_stack)
			return bpf_ringbuf_reserve(&events, EVENT_SIZE_NO_PATH, 0);
		e = bpf_ringbuf_reserve(&events, EVENT_SIZE_STACK_NO_PATH, 0);
		if (e)
			*tail = (void *)e + EVENT_SIZE_NO_PATH;
		return e;
	}
	if (!capture_stack)
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	else
		e = bpf_ringbuf_reserve(&events, EVENT_SIZE_STACK, 0);
	if (!e)
		return NULL;
	__builtin_memcpy(e->vma.path, v->path, sizeof(e->vma.path));
	if (capture_stack)
		*tail = (void *)(e + 1);
	return e;
}

// record_size is the size reserve_record reserves for a call whose mapping
// is v.
static __always_inline __u64 record_size(const struct vma *v)
{
	if (!v->path_len)
		return capture_stack ? EVENT_SIZE_STACK_NO_PATH : EVENT_SIZE_NO_PATH;
	return capture_stack ? EVENT_SIZE_STACK : sizeof(struct event);
}

// wakeup_flag is how the record of a call whose mapping is v is submitted:
// with a wake-up if the pending bytes, this record's included, reached the
// next multiple of wakeup_bytes with it.
static __always_inline __u64 wakeup_flag(const struct vma *v)
{
	if (!wakeup_bytes)
		return 0;
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = record_size(v);
	__u64 before = avail > size ? avail - size : 0;
	if (avail / wakeup_bytes != before / wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

// submit_record writes the call in (entered at enter_ns, returned ret at
// now) of the process comm, with its outcome, its signals and its process's
// map count, and with capture_stack the caller's stack, into the ring
// buffer, unless a filter, the rate cap or a full ring buffer keeps it out
// (the last two counted). ctx is the exit program's context.
static __always_inline void submit_record(void *ctx, const struct inflight *in, __u64 id,
					  const struct comm *comm, const struct outcome *o,
					  __u16 signals, __u32 map_count, long ret, __u64 enter_ns,
					  __u64 now)
{
	if (!emit_events || (failures_only && o->ok))
		return;
	if (!rate_allows()) {
		count_drop(DROP_RATE_LIMITED);
		return;
	}
	struct stack_tail *tail = NULL;
	struct event *e = reserve_record(&in->vma, &tail);
	if (!e) {
		count_drop(DROP_RING_BUFFER_FULL);
		return;
	}
	struct task_struct *task = bpf_get_current_task_btf();
	__builtin_memcpy(&e->vma, &in->vma, __builtin_offsetof(struct vma, path));
	e->enter_ns = enter_ns;
	e->exit_ns = now;
	__builtin_memcpy(&e->old_address, in->args, sizeof(in->args));
	e->ret = ret;
	e->tgid = id >> 32;
	e->tid = (__u32)id;
	e->ppid = task->real_parent->tgid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->err = o->err;
	e->resize = o->resize;
	e->move = o->move;
	e->map_count = map_count;
	e->start_time = task->group_leader->start_time;
	e->signals = signals;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	__builtin_memcpy(e->comm, comm->name, sizeof(e->comm));
	if (capture_stack && tail)
		capture_user_stack(ctx, task, tail);
	bpf_ringbuf_submit(e, wakeup_flag(&in->vma));
}

#endif
