// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// path.bpf.h: the absolute path of a file, built in the kernel as d_path()
// does for /proc/PID/maps: names are prepended right to left in a scratch
// buffer, walking up dentries and across mount points.
#ifndef PATH_BPF_H
#define PATH_BPF_H

#define PATH_MASK (VMA_PATH_LEN - 1)

// path_step is one step of the walk file_path starts (a bpf_loop callback,
// so that the verifier checks one step, not every path through all of
// them): it prepends the name of the current dentry to s->buf, or, at the
// root of a mount, continues from the mount point in the parent mount, as
// d_path() does. It returns 1 to stop.
static long path_step(__u32 i, void *ctx)
{
	struct scratch *s = this_cpu_scratch();
	if (!s)
		return 1;
	struct path_walk *w = &s->walk;
	struct dentry *d = (struct dentry *)w->dentry;
	struct mount *mnt = (struct mount *)w->mnt;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	if (d == (struct dentry *)w->root || d == parent) {
		if (d != (struct dentry *)w->root) {
			// The root of a filesystem mounted nowhere (pipes, memfds' shm).
			w->done = 1;
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

// file_path writes the absolute path of file into v, built in
// s->buf[0, VMA_PATH_LEN) and then copied.
static __always_inline void file_path(struct scratch *s, struct vma *v, struct file *file)
{
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
	// A file of no directory (shared anonymous memory, a memfd: shmem's
	// pseudo files) is named as its d_dname, simple_dname, names it:
	// "/" and its name, " (deleted)".
	if (BPF_CORE_READ(d, d_parent) == d && d != (struct dentry *)w->root) {
		struct qstr name;
		BPF_CORE_READ_INTO(&name, d, d_name);
		__u32 len = name.len;
		if (len > VMA_PATH_LEN - 1)
			len = VMA_PATH_LEN - 1;
		v->path[0] = '/';
		v->path_len = 1;
		if (!bpf_probe_read_kernel(&v->path[1], len, name.name))
			v->path_len += len;
		v->flags |= VMA_PATH_DELETED;
		return;
	}

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

#endif
