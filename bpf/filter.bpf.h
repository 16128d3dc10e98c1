// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// filter.bpf.h: which calls are observed. The switches are set by user space
// before load, so that the verifier prunes the filters that are off; the
// maps' sizes are set then too.
#ifndef FILTER_BPF_H
#define FILTER_BPF_H

const volatile bool filter_pids = false;     // pid_filter holds the tgids to keep
const volatile bool filter_comms = false;    // comm_filter holds the comms to keep
const volatile bool filter_excluded = false; // comm_exclude holds comms to drop
const volatile bool filter_cgroups = false;  // cgroup_filter holds cgroup v2 ids to keep
const volatile __u64 min_delta = 0;          // bytes

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

// selected applies the pid, cgroup and comm filters, reading the process's
// comm into comm (zeroed) where a comm filter needs it. Entry and exit apply
// the same test, so an exit of a filtered-out call is not mistaken for an
// unpaired one.
static __always_inline bool selected(__u32 tgid, struct comm *comm)
{
	if (filter_pids && !bpf_map_lookup_elem(&pid_filter, &tgid))
		return false;
	if (filter_cgroups && !in_cgroups())
		return false;
	if (filter_comms || filter_excluded) {
		process_comm(comm);
		if (filter_comms && !bpf_map_lookup_elem(&comm_filter, comm))
			return false;
		if (filter_excluded && bpf_map_lookup_elem(&comm_exclude, comm))
			return false;
	}
	return true;
}

// comm_of fills comm unless selected already did.
static __always_inline void comm_of(struct comm *comm)
{
	if (!filter_comms && !filter_excluded)
		process_comm(comm);
}

#endif
