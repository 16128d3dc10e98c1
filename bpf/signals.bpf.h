// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// signals.bpf.h: which calls are suspicious, and which failures are the
// map-count limit. The entry notes what it found (enum entry_fact): where
// the caller's code lies and, for MREMAP_FIXED, whether the target was
// taken; the exit decides the signals from those facts, the mapping at
// old_address and the call's outcome. User space only decodes them.
#ifndef SIGNALS_BPF_H
#define SIGNALS_BPF_H

// Look up the mapping of the caller's instruction pointer (bpf_find_vma,
// 5.17+), for SIGNAL_UNBACKED_CALLER.
const volatile bool find_caller = true;
// Look for a mapping in MREMAP_FIXED's target range (the task vma
// iterator, 6.7+), for SIGNAL_FIXED_REPLACE.
const volatile bool find_target = false;

#define ENOMEM 12
#define EPERM 1

// Set by user space at start and whenever it reads the aggregates.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct limits);
} limits_map SEC(".maps");

extern int bpf_iter_task_vma_new(struct bpf_iter_task_vma *it, struct task_struct *task,
				 __u64 addr) __weak __ksym;
extern struct vm_area_struct *bpf_iter_task_vma_next(struct bpf_iter_task_vma *it) __weak __ksym;
extern void bpf_iter_task_vma_destroy(struct bpf_iter_task_vma *it) __weak __ksym;

// is_memfd tells whether file is a memfd: its dentry is named "memfd:...",
// /proc/PID/maps shows /memfd:NAME (deleted).
static __always_inline bool is_memfd(struct file *file)
{
	char name[6];
	const unsigned char *p = BPF_CORE_READ(file, f_path.dentry, d_name.name);
	if (bpf_probe_read_kernel(name, sizeof(name), p))
		return false;
	return name[0] == 'm' && name[1] == 'e' && name[2] == 'm' && name[3] == 'f' &&
	       name[4] == 'd' && name[5] == ':';
}

// caller_found is bpf_find_vma's callback for the caller's instruction
// pointer: code no file on disk backs is anonymous executable memory that
// is not a special mapping ([vdso]: the kernel's), or a memfd.
static long caller_found(struct task_struct *task, struct vm_area_struct *vma, void *ctx)
{
	bool *unbacked = ctx;
	struct file *file = vma->vm_file;
	if (file) {
		*unbacked = is_memfd(file);
		return 0;
	}
	const struct vm_operations_struct *ops = vma->vm_ops;
	*unbacked = (vma->vm_flags & VM_EXEC) && !(ops && ops->name);
	return 0;
}

// MAX_SPANNED bounds the mappings count_spanned walks.
#define MAX_SPANNED 255

// count_spanned counts the mappings in [addr, end) of a range whose first
// mapping was found: since Linux 6.17 one move may take several (6.7+:
// the task vma iterator; 0 without it, or when the iterator cannot take
// the mmap lock).
static __always_inline __u8 count_spanned(struct task_struct *task, __u64 first_end, __u64 end)
{
	if (!find_target)
		return 0;
	__u32 n = 1;
	if (end <= first_end)
		return n;
	struct bpf_iter_task_vma it;
	if (bpf_iter_task_vma_new(&it, task, first_end)) {
		n = 0; // not counted: the attribute is left out
	} else {
		struct vm_area_struct *vma;
		while (n < MAX_SPANNED && (vma = bpf_iter_task_vma_next(&it)) &&
		       vma->vm_start < end)
			n++;
	}
	bpf_iter_task_vma_destroy(&it);
	return n;
}

// entry_facts notes, at entry, what the exit's signals need.
static __always_inline __u32 entry_facts(struct task_struct *task, __u64 flags, __u64 new_addr,
					 __u64 new_len)
{
	__u32 facts = 0;
	if (find_caller) {
		bool unbacked = false;
		struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
		bpf_find_vma(task, PT_REGS_IP_CORE(regs), caller_found, &unbacked, 0);
		if (unbacked)
			facts |= FACT_CALLER_UNBACKED;
	}
	if (find_target && (flags & MREMAP_FIXED)) {
		struct bpf_iter_task_vma it;
		// The first mapping that ends above new_addr: it overlaps the
		// target if it starts below its end.
		if (!bpf_iter_task_vma_new(&it, task, new_addr)) {
			struct vm_area_struct *vma = bpf_iter_task_vma_next(&it);
			if (vma && vma->vm_start < new_addr + new_len)
				facts |= FACT_TARGET_OCCUPIED;
		}
		bpf_iter_task_vma_destroy(&it);
	}
	return facts;
}

// at_map_count_limit tells whether a process with map_count mappings is at
// the kernel's limit: move_vma refuses at vm.max_map_count - 3.
static __always_inline bool at_map_count_limit(__u32 map_count)
{
	__u32 zero = 0;
	struct limits *l = bpf_map_lookup_elem(&limits_map, &zero);
	return l && l->max_map_count && map_count + 3 >= l->max_map_count;
}

// call_signals decides the signals of the call in, with outcome o, whose
// process had map_count mappings at exit.
static __always_inline __u16 call_signals(const struct inflight *in, const struct outcome *o,
					  __u32 map_count)
{
	__u16 s = 0;
	const struct vma *v = &in->vma;
	bool found = v->flags & VMA_FOUND;
	bool exec = found && v->perms[2] == 'x', write = found && v->perms[1] == 'w';
	bool moved = o->ok && o->move != MOVE_NONE;
	if (exec && moved)
		s |= SIGNAL_EXEC_MOVE;
	if (exec && write)
		s |= SIGNAL_WRITE_EXEC;
	if (o->ok && o->move == MOVE_FIXED && (in->facts & FACT_TARGET_OCCUPIED))
		s |= SIGNAL_FIXED_REPLACE;
	if (o->ok && in->args[1] == 0)
		s |= SIGNAL_SHARED_ALIAS;
	if (in->args[3] & MREMAP_DONTUNMAP)
		s |= SIGNAL_DONTUNMAP;
	if (o->err == EPERM)
		s |= SIGNAL_SEALED;
	if (moved && (v->flags & VMA_SPECIAL))
		s |= SIGNAL_SPECIAL_MOVE;
	if (in->facts & FACT_CALLER_UNBACKED)
		s |= SIGNAL_UNBACKED_CALLER;
	if (o->err == ENOMEM && at_map_count_limit(map_count))
		s |= SIGNAL_MAP_COUNT_LIMIT;
	return s;
}

#endif
