//go:build ignore

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// mremap.bpf.c observes every mremap(2) call: an entry probe saves the
// arguments per thread, an exit probe pairs them with the return value, then
// aggregates the call into bounded hash maps (for metrics) and, when user
// space serves a logs pipeline, submits one record to a ring buffer.
//
// Two attach modes share the same entry/exit logic:
//   - kprobe + kretprobe on the syscall's arch wrapper (__x64_sys_mremap,
//     __ia32_sys_mremap, __arm64_sys_mremap); the wrapper takes the user's
//     registers as a struct pt_regs *, so the five arguments are read from
//     that inner pt_regs with CO-RE;
//   - the syscalls:sys_enter_mremap / sys_exit_mremap tracepoints, which do
//     not fire for 32-bit (compat) syscalls on x86-64; there, raw
//     raw_syscalls:sys_enter / sys_exit tracepoints catch those.
#include "vmlinux.h"
#include "mremap.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// Filters and switches, set by user space before load so that the verifier
// prunes what is off.
const volatile bool emit_events = false;       // a logs pipeline is served
const volatile bool errors_only = false;       // log only failed calls
const volatile bool filter_pids = false;       // pid_filter holds the tgids to keep
const volatile bool filter_comms = false;      // comm_filter holds the comms to keep
const volatile bool filter_exclude_comms = false; // comm_exclude holds comms to drop
const volatile bool filter_cgroups = false;    // cgroup_filter holds cgroup v2 ids to keep
const volatile __u64 min_size_delta = 0;       // bytes
const volatile __u64 max_events_per_second = 0; // 0 = no cap
// Wake the reader only once this many bytes are pending (0: on every
// record). Waking user space per record costs more than the record; the
// reader also polls on a short timer, so a few records never wait long.
const volatile __u64 wakeup_bytes = 0;
// Look up the mapping at old_address at entry (bpf_find_vma).
const volatile bool vma_lookup = true;
// Pair entry and exit in inflight_lru instead of task storage (user space
// sets it on PREEMPT_RT kernels).
const volatile bool lru_pairing = false;

// The call between entry and exit, per thread: BPF task storage, a slot
// that the kernel keeps in the thread's task_struct and frees when the
// thread exits. Reaching it costs a pointer lookup, where a hash keyed by
// pid_tgid costs a hash, a lock and a copy per call; and nothing is left
// behind by threads that never return (killed in the syscall, or a missed
// kretprobe). enter_ns 0 marks the slot empty.
//
// Not on PREEMPT_RT kernels, where inflight_lru holds the calls instead:
// there, on 6.1, the slot of a thread's first call is allocated with
// GFP_ATOMIC from a probe that runs with preemption off, which RT forbids
// (slab locks sleep); and bpf_task_storage_get returns NULL while the CPU's
// task storage lock is held by a preempted holder (a thread exiting frees
// its storage preemptibly), so calls go unpaired.
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} inflight SEC(".maps");

// The calls between entry and exit on PREEMPT_RT kernels, keyed by
// pid_tgid: a preallocated hash takes raw spinlocks and allocates nothing
// in the probe, which RT allows. An LRU map, so that the entries of threads
// that never returned (killed in the syscall, or a missed kretprobe) are
// evicted rather than filling it. User space sizes whichever of inflight
// and inflight_lru is unused down to one entry.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, MAX_INFLIGHT);
	__type(key, __u64);
	__type(value, struct inflight);
} inflight_lru SEC(".maps");

// Per-CPU scratch space, for what is too big for the 512-byte BPF stack:
// the call being entered (with lru_pairing, the value inserted into
// inflight_lru; else the mapping being looked up, since bpf_find_vma's
// callback cannot reach the thread's inflight slot) and the buffer a file
// path is built in, from its last name to its first. Twice VMA_PATH_LEN, so that an offset and a length each masked to
// VMA_PATH_LEN-1 stay inside it, which is what the verifier checks.
struct path_walk {
	__u64 dentry, mnt, root; // where the walk is: kernel addresses
	__u32 off;               // where the path built so far starts in buf
	__u32 done;              // the walk reached the root
};

struct scratch {
	struct inflight in;
	struct path_walk walk;
	char buf[2 * VMA_PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 1024); // set from ring_buffer_size before load
} events SEC(".maps");

// Filters; their sizes are set by user space before load.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct comm);
	__type(value, __u8);
} comm_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, struct comm);
	__type(value, __u8);
} comm_exclude SEC(".maps");

// cgroup v2 ids (the cgroup directory's inode number): a call is kept if
// the calling task's cgroup or one of its ancestors is here.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1);
	__type(key, __u64);
	__type(value, __u8);
} cgroup_filter SEC(".maps");

// Aggregates. Plain (not per-CPU) hashes updated with atomic adds: mremap is
// not a hot syscall, and per-CPU values of histograms keyed by comm would
// multiply the memory by the number of CPUs. A full map does not lose the
// call silently: it is counted as DROP_CARDINALITY_LIMIT.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CALL_KEYS);
	__type(key, struct call_key);
	__type(value, __u64);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SIZE_KEYS);
	__type(key, struct size_key);
	__type(value, struct hist);
} size_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_DURATION_KEYS);
	__type(key, struct duration_key);
	__type(value, struct hist);
} duration_hist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

// One fixed one-second window for max_events_per_second, shared by all CPUs.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate_window);
} rate SEC(".maps");

// Make the event and the enums visible in BTF, so that bpf2go generates them for Go.
const struct event *unused_event __attribute__((unused));
const enum resize *unused_resize __attribute__((unused));
const enum move *unused_move __attribute__((unused));
const enum drop_reason *unused_drop_reason __attribute__((unused));
const enum vma_flag *unused_vma_flag __attribute__((unused));

// Zero values to insert new aggregate keys with.
static const struct hist zero_hist;
static const __u64 zero_count;

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);
	if (n)
		*n += 1;
}

// lookup_or_insert returns the value of key in map, inserting zero if it is
// new. NULL means the map is full: the caller counts a cardinality drop.
static __always_inline void *lookup_or_insert(void *map, const void *key, const void *zero)
{
	void *v = bpf_map_lookup_elem(map, key);
	if (v)
		return v;
	// BPF_NOEXIST: another CPU may have inserted it meanwhile (-EEXIST);
	// the lookup below then finds it.
	bpf_map_update_elem(map, key, zero, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

// log2 slot of v such that slot k holds (2^(k-1), 2^k] and slot 0 holds
// [0, 1], matching explicit power-of-two histogram bounds 1, 2, 4, ...
// whose buckets are upper-inclusive.
static __always_inline __u32 hist_slot(__u64 v)
{
	__u32 slot = 0;
	if (v <= 1)
		return 0;
	v -= 1;
	// Branch-free log2 of v, then +1.
	__u32 shift;
	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; slot = shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; slot |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; slot |= shift;
	shift = (v > 0xF) << 2; v >>= shift; slot |= shift;
	shift = (v > 0x3) << 1; v >>= shift; slot |= shift;
	slot |= (v >> 1);
	slot += 1;
	if (slot >= HIST_SLOTS)
		slot = HIST_SLOTS - 1;
	return slot;
}

static __always_inline void hist_add(struct hist *h, __u64 v)
{
	__u32 slot = hist_slot(v);
	if (slot < HIST_SLOTS)
		__sync_fetch_and_add(&h->slots[slot], 1);
	__sync_fetch_and_add(&h->sum, v);
}

// process_comm reads the comm of the calling process: its thread group
// leader's, so that every thread of a process (Java's "C2 CompilerThre",
// a browser's workers) is seen under the process's name. c must be zeroed.
static __always_inline void process_comm(struct comm *c)
{
	// A BTF pointer: the loads below are plain (fault-safe) loads, not
	// bpf_probe_read_kernel calls. The kernel keeps comm NUL-terminated.
	struct task_struct *task = bpf_get_current_task_btf();
	__builtin_memcpy(c->name, task->group_leader->comm, sizeof(c->name));
}

// in_cgroups tells whether the calling task's cgroup v2, or one of its
// ancestors, is in cgroup_filter, so that a slice or a pod's cgroup keeps
// everything below it.
static __always_inline bool in_cgroups(void)
{
	__u64 id = bpf_get_current_cgroup_id();
	if (bpf_map_lookup_elem(&cgroup_filter, &id))
		return true;
	for (int level = 0; level < MAX_CGROUP_LEVELS; level++) {
		id = bpf_get_current_ancestor_cgroup_id(level);
		if (!id)
			return false; // deeper than the task's own cgroup
		if (bpf_map_lookup_elem(&cgroup_filter, &id))
			return true;
	}
	return false;
}

// selected applies the pid, cgroup and comm filters. Entry and exit apply the same
// test, so an exit of a filtered-out call is not mistaken for an unpaired one.
static __always_inline bool selected(__u32 tgid, struct comm *comm)
{
	if (filter_pids && !bpf_map_lookup_elem(&pid_filter, &tgid))
		return false;
	if (filter_cgroups && !in_cgroups())
		return false;
	if (filter_comms || filter_exclude_comms) {
		process_comm(comm);
		if (filter_comms && !bpf_map_lookup_elem(&comm_filter, comm))
			return false;
		if (filter_exclude_comms && bpf_map_lookup_elem(&comm_exclude, comm))
			return false;
	}
	return true;
}

// vm_flags bits, from <linux/mm.h>.
#define VM_READ 0x1UL
#define VM_WRITE 0x2UL
#define VM_EXEC 0x4UL
#define VM_MAYSHARE 0x80UL

#define PATH_MASK (VMA_PATH_LEN - 1)

// path_step is one step of the walk file_path starts (a bpf_loop callback,
// so that the verifier checks one step, not every path through all of
// them): it prepends the name of the current dentry to s->buf, or, at the
// root of a mount, continues from the mount point in the parent mount, as
// d_path() does. It returns 1 to stop.
static long path_step(__u32 i, void *ctx)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 1;
	struct path_walk *w = &s->walk;
	struct dentry *d = (struct dentry *)w->dentry;
	struct mount *mnt = (struct mount *)w->mnt;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == (struct dentry *)w->root || d == parent) {
		if (d != (struct dentry *)w->root) {
			w->done = 1; // the root of a filesystem not mounted anywhere (pipes, memfds' shm)
			return 1;
		}
		struct mount *up = BPF_CORE_READ(mnt, mnt_parent);
		if (up == mnt) {
			w->done = 1; // the root mount
			return 1;
		}
		w->dentry = (__u64)BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = (__u64)up;
		w->root = (__u64)BPF_CORE_READ(up, mnt.mnt_root);
		return 0;
	}
	struct qstr name;
	BPF_CORE_READ_INTO(&name, d, d_name);
	__u32 len = name.len, off = w->off;
	if (len + 1 > off)
		return 1; // no room: keep the last names, marked truncated
	if (len > 0) {
		off -= len + 1;
		// Both masks are no-ops (off+1 < VMA_PATH_LEN since len > 0); they
		// show the verifier that the write stays inside buf.
		bpf_probe_read_kernel(&s->buf[(off + 1) & PATH_MASK], len & PATH_MASK, name.name);
		s->buf[off & PATH_MASK] = '/';
		w->off = off;
	}
	w->dentry = (__u64)parent;
	return 0;
}

// file_path writes the absolute path of file into s->in.vma, as d_path()
// does for /proc/PID/maps: names are prepended right to left in
// s->buf[0, VMA_PATH_LEN), walking up dentries and across mount points,
// then copied.
static __always_inline void file_path(struct scratch *s, struct file *file)
{
	struct vma *v = &s->in.vma;
	struct path_walk *w = &s->walk;
	struct path fp;
	BPF_CORE_READ_INTO(&fp, file, f_path);
	struct dentry *d = fp.dentry;
	w->dentry = (__u64)d;
	w->mnt = (__u64)container_of(fp.mnt, struct mount, mnt);
	w->root = (__u64)BPF_CORE_READ(fp.mnt, mnt_root);
	w->off = VMA_PATH_LEN;
	w->done = 0;

	// An unlinked dentry is unhashed and not its own parent (d_unlinked).
	if (!BPF_CORE_READ(d, d_hash.pprev) && BPF_CORE_READ(d, d_parent) != d)
		v->flags |= VMA_PATH_DELETED;

	bpf_loop(VMA_PATH_DEPTH, path_step, NULL, 0);

	if (!w->done)
		v->flags |= VMA_PATH_TRUNCATED;
	__u32 off = w->off;
	if (off >= VMA_PATH_LEN) {
		// The root directory itself (or nothing fitted).
		off = VMA_PATH_LEN - 1;
		s->buf[off] = '/';
	}
	__u32 n = VMA_PATH_LEN - off;
	if (n > VMA_PATH_LEN)
		n = VMA_PATH_LEN;
	bpf_probe_read_kernel(v->path, n, &s->buf[off & PATH_MASK]);
	v->path_len = n;
}

static __always_inline void set_name(struct vma *v, const char *name, __u32 n)
{
	__builtin_memcpy(v->path, name, 8);
	v->path_len = n;
}

// vma_found is bpf_find_vma's callback: it runs with the mm's mmap lock held
// for reading, so the mapping cannot change under it. vma is a BTF pointer:
// its fields (and its mm's) are read with plain fault-safe loads rather than
// a bpf_probe_read_kernel call each.
static long vma_found(struct task_struct *task, struct vm_area_struct *vma, void *ctx)
{
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	struct vma *v = &s->in.vma;
	unsigned long fl = vma->vm_flags;
	v->flags = VMA_FOUND;
	v->perms[0] = fl & VM_READ ? 'r' : '-';
	v->perms[1] = fl & VM_WRITE ? 'w' : '-';
	v->perms[2] = fl & VM_EXEC ? 'x' : '-';
	v->perms[3] = fl & VM_MAYSHARE ? 's' : 'p';

	// The name, in the order /proc/PID/maps (show_map_vma) picks it.
	struct file *file = vma->vm_file;
	if (file) {
		file_path(s, file);
		return 0;
	}
	// Special mappings ([vdso], [vvar], [uprobes]) are the ones whose
	// vm_ops have a name(); it returns their vm_special_mapping's name.
	const struct vm_operations_struct *ops = vma->vm_ops;
	if (ops && ops->name) {
		struct vm_special_mapping *sm = BPF_CORE_READ(vma, vm_private_data);
		const char *name = BPF_CORE_READ(sm, name);
		long n = bpf_probe_read_kernel_str(v->path, sizeof(v->path), name);
		if (n > 1)
			v->path_len = n - 1;
		return 0;
	}
	struct mm_struct *mm = vma->vm_mm;
	unsigned long start = vma->vm_start, end = vma->vm_end;
	if (start <= mm->brk && end >= mm->start_brk) {
		set_name(v, "[heap]\0", 6);
		return 0;
	}
	unsigned long stack = mm->start_stack;
	if (start <= stack && end >= stack)
		set_name(v, "[stack]\0", 7);
	return 0;
}

static __always_inline int on_enter(__u64 addr, __u64 old_len, __u64 new_len, __u64 flags,
				    __u64 new_addr)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct comm comm = {};
	if (!selected(id >> 32, &comm))
		return 0;

	struct task_struct *task = bpf_get_current_task_btf();
	__u32 zero = 0;
	struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0; // never: a per-CPU array of one
	struct inflight *in;
	if (lru_pairing) {
		// Built here, then copied into inflight_lru.
		in = &s->in;
	} else {
		// NULL when the kernel cannot allocate the slot, or when another
		// program on this CPU is using task storage; the exit then
		// counts the call as unpaired.
		in = bpf_task_storage_get(&inflight, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!in)
			return 0;
	}
	in->vma.flags = 0;
	in->vma.path_len = 0;
	if (vma_lookup) {
		// vma_found fills s->in.vma (with lru_pairing, in's own).
		s->in.vma.flags = 0;
		s->in.vma.path_len = 0;
		// Fails (the mapping stays unknown) when there is none at addr,
		// or when another thread holds the mmap lock for writing
		// (-EBUSY).
		bpf_find_vma(task, addr, vma_found, NULL, 0);
		if (!lru_pairing && s->in.vma.flags)
			__builtin_memcpy(&in->vma, &s->in.vma, sizeof(in->vma));
	}
	in->args[0] = addr;
	in->args[1] = old_len;
	in->args[2] = new_len;
	in->args[3] = flags;
	in->args[4] = new_addr;
	// Last, after the lookup, so that the duration is the syscall's alone.
	in->enter_ns = bpf_ktime_get_ns();
	// A failed insert (no free element) leaves the exit unpaired, counted.
	if (lru_pairing)
		bpf_map_update_elem(&inflight_lru, &id, in, BPF_ANY);
	return 0;
}

// rate_allows implements max_events_per_second with a fixed one-second
// window. Races between CPUs at a window's edge may let a few records more
// through; none is lost uncounted. Only non-fetching atomics are used, which
// kernels before 5.12 accept.
static __always_inline bool rate_allows(void)
{
	if (!max_events_per_second)
		return true;
	__u32 zero = 0;
	struct rate_window *w = bpf_map_lookup_elem(&rate, &zero);
	if (!w)
		return true;
	__u64 now = bpf_ktime_get_ns();
	// Signed: another CPU may have started a window after this now.
	if ((__s64)(now - w->start_ns) >= 1000000000LL) {
		w->start_ns = now;
		w->count = 0;
	}
	if (w->count >= max_events_per_second)
		return false;
	__sync_fetch_and_add(&w->count, 1);
	return true;
}

// account aggregates the call in, entered at enter_ns, and submits its
// record. in stays valid until it returns (its mapping is copied to the
// record).
static __always_inline void account(struct inflight *in, __u64 id, struct comm *cm, long ret,
				    __u64 enter_ns, __u64 now)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = id >> 32;
	struct comm comm = *cm;
	__u64 old_addr = in->args[0], old_len = in->args[1], new_len = in->args[2];
	__u64 flags = in->args[3], new_addr = in->args[4];

	__u64 delta = new_len > old_len ? new_len - old_len : old_len - new_len;
	if (delta < min_size_delta)
		return;

	if (!filter_comms && !filter_exclude_comms)
		process_comm(&comm);

	bool ok = ret >= 0 || ret < -4095;
	__u8 resize = new_len > old_len ? RESIZE_GROW : new_len < old_len ? RESIZE_SHRINK : RESIZE_NONE;
	__u8 move = MOVE_NONE;
	if (flags & MREMAP_FIXED_FLAG)
		move = MOVE_FIXED;
	else if (flags & MREMAP_DONTUNMAP_FLAG)
		move = MOVE_DONTUNMAP;
	else if (ok && (__u64)ret != old_addr)
		move = MOVE_MAYMOVE;
	__u16 err = ok ? 0 : (__u16)(-ret);

	struct call_key ck = { .comm = comm, .resize = resize, .move = move, .err = err };
	// A call missing from any aggregate counts once as cardinality_limit.
	bool missing = false;
	__u64 *n = lookup_or_insert(&calls, &ck, &zero_count);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		missing = true;

	if (ok && resize != RESIZE_NONE) {
		struct size_key sk = { .comm = comm, .resize = resize };
		struct hist *h = lookup_or_insert(&size_hist, &sk, &zero_hist);
		if (h)
			hist_add(h, delta);
		else
			missing = true;
	}

	struct duration_key dk = { .move = move, .err = err };
	struct hist *dh = lookup_or_insert(&duration_hist, &dk, &zero_hist);
	if (dh)
		hist_add(dh, now - enter_ns);
	else
		missing = true;
	if (missing)
		count_drop(DROP_CARDINALITY_LIMIT);

	if (!emit_events || (errors_only && ok))
		return;
	if (!rate_allows()) {
		count_drop(DROP_RATE_LIMITED);
		return;
	}

	// A record whose mapping has no path (anonymous memory, or no mapping)
	// ends where the path would start: a third of the size, so three times
	// as many fit the ring buffer, and less is copied. User space reads
	// path_len to tell the two apart.
	struct event *e;
	if (in->vma.path_len) {
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e)
			__builtin_memcpy(e->vma.path, in->vma.path, sizeof(e->vma.path));
	} else {
		e = bpf_ringbuf_reserve(&events, EVENT_SIZE_NO_PATH, 0);
	}
	if (!e) {
		count_drop(DROP_RING_BUFFER_FULL);
		return;
	}
	__builtin_memcpy(&e->vma, &in->vma, __builtin_offsetof(struct vma, path));
	e->enter_ns = enter_ns;
	e->exit_ns = now;
	e->old_address = old_addr;
	e->old_size = old_len;
	e->new_size = new_len;
	e->flags = flags;
	e->new_address = new_addr;
	e->ret = ret;
	e->tgid = tgid;
	e->tid = (__u32)id;
	e->ppid = task->real_parent->tgid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->start_time = task->group_leader->start_time;
	__builtin_memcpy(e->comm, comm.name, sizeof(e->comm));
	__u64 wakeup = 0;
	if (wakeup_bytes)
		wakeup = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										: BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, wakeup);
}

static __always_inline int on_exit(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct comm comm = {};
	if (!selected(id >> 32, &comm))
		return 0;

	struct inflight *in;
	if (lru_pairing) {
		in = bpf_map_lookup_elem(&inflight_lru, &id);
	} else {
		in = bpf_task_storage_get(&inflight, bpf_get_current_task_btf(), 0, 0);
		if (in && !in->enter_ns)
			in = NULL;
	}
	if (!in) {
		count_drop(DROP_UNPAIRED);
		return 0;
	}
	__u64 now = bpf_ktime_get_ns();
	__u64 enter_ns = in->enter_ns;
	// A task storage slot is the thread's own, and the thread is here: it
	// stays as it is until this program returns, but is marked empty at
	// once.
	if (!lru_pairing)
		in->enter_ns = 0;
	account(in, id, &comm, ret, enter_ns, now);
	// An LRU element is deleted only now that its mapping is in the
	// record: once deleted, another CPU may reuse it at once.
	if (lru_pairing)
		bpf_map_delete_elem(&inflight_lru, &id);
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
	return on_exit(ctx->ret);
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

#if defined(__TARGET_ARCH_x86)
// on_enter_ia32 is on_enter for a 32-bit task's saved registers, which hold
// the arguments in the i386 convention (bx, cx, dx, si, di).
static __always_inline int on_enter_ia32(struct pt_regs *regs)
{
	return on_enter((__u32)BPF_CORE_READ(regs, bx), (__u32)BPF_CORE_READ(regs, cx),
			(__u32)BPF_CORE_READ(regs, dx), (__u32)BPF_CORE_READ(regs, si),
			(__u32)BPF_CORE_READ(regs, di));
}
#endif

// 32-bit tasks on x86-64 enter through __ia32_sys_mremap, whose saved
// registers hold the arguments in the i386 convention (bx, cx, dx, si, di).
// On other architectures this program is never attached.
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

SEC("kretprobe/sys_mremap")
int kprobe_exit(struct pt_regs *ctx)
{
	return on_exit(PT_REGS_RC(ctx));
}

#if defined(__TARGET_ARCH_x86)
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

// The syscalls:sys_{enter,exit}_mremap tracepoints skip compat syscalls, so
// in tracepoint mode on x86-64 kernels with ia32 emulation 32-bit callers
// are caught here: raw_syscalls:sys_enter/sys_exit fire on every syscall,
// so these return at once unless the syscall is the i386 mremap of a task
// in a compat syscall. Raw tracepoints hand over the tracepoint's own
// arguments (regs, id) and (regs, ret): cheaper than the perf-event
// tracepoints, which copy a record first. The arguments are in the i386
// convention (bx, cx, dx, si, di).
SEC("raw_tracepoint/sys_enter")
int ia32_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
#if defined(__TARGET_ARCH_x86)
	if (ctx->args[1] != IA32_NR_MREMAP || !in_ia32_syscall())
		return 0;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	return on_enter_ia32(regs);
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
