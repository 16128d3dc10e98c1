// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// scratch.bpf.h: per-CPU scratch space, for what is too big for the 512-byte
// BPF stack: the call being entered (with lru_pairing, the value inserted
// into inflight_lru; else the mapping being looked up, since bpf_find_vma's
// callback cannot reach the thread's inflight slot) and the buffer a file
// path is built in, from its last name to its first.
#ifndef SCRATCH_BPF_H
#define SCRATCH_BPF_H

// Where a path walk (path.bpf.h) is.
struct path_walk {
	__u64 dentry, mnt, root; // kernel addresses
	__u32 off;               // where the path built so far starts in buf
	__u32 done;              // the walk reached the root
};

// buf is twice VMA_PATH_LEN, so that an offset and a length each masked to
// VMA_PATH_LEN-1 stay inside it, which is what the verifier checks.
struct scratch {
	struct inflight in;
	__u64 found_end; // vm_end of the mapping the lookup found
	struct path_walk walk;
	char buf[2 * VMA_PATH_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} scratch SEC(".maps");

// this_cpu_scratch is never NULL in practice (a per-CPU array of one); the
// verifier needs the check.
static __always_inline struct scratch *this_cpu_scratch(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&scratch, &zero);
}

#endif
