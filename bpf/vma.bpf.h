// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// vma.bpf.h: the mapping at an address, as /proc/PID/maps shows it: its
// permissions and its path or name, looked up with bpf_find_vma (5.17+).
#ifndef VMA_BPF_H
#define VMA_BPF_H

// Look up the mapping at old_address at entry, for the signals and the
// records. User space turns it off where the kernel lacks the helpers.
const volatile bool find_mapping = true;
// Build the path of a file mapping too: only records show it.
const volatile bool mapping_paths = true;

// vm_flags bits, from <linux/mm.h>.
#define VM_READ 0x1UL
#define VM_WRITE 0x2UL
#define VM_EXEC 0x4UL
#define VM_MAYSHARE 0x80UL

static __always_inline void set_name(struct vma *v, const char *name, __u32 n)
{
	__builtin_memcpy(v->path, name, 8);
	v->path_len = n;
}

// anon_name names an anonymous mapping as show_map_vma does: [heap] or
// [stack] where it holds the brk area or the main thread's stack.
static __always_inline void anon_name(struct vma *v, struct vm_area_struct *vma)
{
	struct mm_struct *mm = vma->vm_mm;
	unsigned long start = vma->vm_start, end = vma->vm_end;
	if (start <= mm->brk && end >= mm->start_brk) {
		set_name(v, "[heap]\0", 6);
		return;
	}
	unsigned long stack = mm->start_stack;
	if (start <= stack && end >= stack) {
		set_name(v, "[stack]\0", 7);
		v->flags |= VMA_SPECIAL;
	}
}

// is_name tells whether the NUL-terminated name at p is want (n bytes with
// its NUL).
static __always_inline bool is_name(const char *p, const char *want, int n)
{
	for (int i = 0; i < n; i++)
		if (p[i] != want[i])
			return false;
	return true;
}

// special_name names a special mapping ([vdso], [vvar], [uprobes]): its
// vm_special_mapping's name. The ones the kernel lays out for every
// process are marked VMA_SPECIAL.
static __always_inline void special_name(struct vma *v, struct vm_area_struct *vma)
{
	struct vm_special_mapping *sm = BPF_CORE_READ(vma, vm_private_data);
	const char *name = BPF_CORE_READ(sm, name);
	long n = bpf_probe_read_kernel_str(v->path, sizeof(v->path), name);
	if (n <= 1)
		return;
	v->path_len = n - 1;
	if (is_name(v->path, "[vdso]", 7) || is_name(v->path, "[vvar]", 7) ||
	    is_name(v->path, "[vvar_vclock]", 14))
		v->flags |= VMA_SPECIAL;
}

// vma_found is bpf_find_vma's callback: it runs with the mm's mmap lock held
// for reading, so the mapping cannot change under it, and fills the
// scratch's vma. vma is a BTF pointer: its fields (and its mm's) are read
// with plain fault-safe loads rather than a bpf_probe_read_kernel call each.
static long vma_found(struct task_struct *task, struct vm_area_struct *vma, void *ctx)
{
	struct scratch *s = this_cpu_scratch();
	if (!s)
		return 0;
	struct vma *v = &s->in.vma;
	unsigned long fl = vma->vm_flags;
	v->flags = VMA_FOUND;
	s->found_end = vma->vm_end;
	v->perms[0] = fl & VM_READ ? 'r' : '-';
	v->perms[1] = fl & VM_WRITE ? 'w' : '-';
	v->perms[2] = fl & VM_EXEC ? 'x' : '-';
	v->perms[3] = fl & VM_MAYSHARE ? 's' : 'p';

	// The name, in the order /proc/PID/maps (show_map_vma) picks it.
	struct file *file = vma->vm_file;
	if (file) {
		if (mapping_paths)
			file_path(s, v, file);
		return 0;
	}
	// Special mappings are the ones whose vm_ops have a name().
	const struct vm_operations_struct *ops = vma->vm_ops;
	if (ops && ops->name) {
		special_name(v, vma);
		return 0;
	}
	anon_name(v, vma);
	return 0;
}

// lookup_vma fills s->in.vma with the mapping at addr in task, or leaves it
// empty when there is none, or when another thread holds the mmap lock for
// writing (bpf_find_vma fails with -EBUSY).
static __always_inline void lookup_vma(struct scratch *s, struct task_struct *task, __u64 addr)
{
	s->in.vma.flags = 0;
	s->in.vma.path_len = 0;
	s->in.vma.count = 0;
	bpf_find_vma(task, addr, vma_found, NULL, 0);
}

#endif
