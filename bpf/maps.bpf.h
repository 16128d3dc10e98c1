// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// maps.bpf.h: map helpers, and the per-CPU drop counters every part of the
// program counts into.
#ifndef MAPS_BPF_H
#define MAPS_BPF_H

// Calls not delivered in full, by enum drop_reason.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DROP_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

static __always_inline void count_drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);
	if (n)
		*n += 1;
}

// lookup_or_try_init returns the value of key in map, inserting init if it
// is new. NULL means the map is full: the caller counts a cardinality drop.
static __always_inline void *lookup_or_try_init(void *map, const void *key, const void *init)
{
	void *v = bpf_map_lookup_elem(map, key);
	if (v)
		return v;
	// BPF_NOEXIST: another CPU may have inserted it meanwhile (-EEXIST);
	// the lookup below then finds it.
	bpf_map_update_elem(map, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(map, key);
}

#endif
