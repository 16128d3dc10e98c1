// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// aggregate.bpf.h: the aggregates behind the metrics, so that user space
// reads a few kilobytes per interval instead of a record per call.
//
// One update per call: calls_by_key holds, per finest key (comm, resize,
// move, errno), the count and both histograms, and user space sums the
// coarser series of the metrics from it. A plain (not per-CPU) hash with
// atomic adds: per-CPU values of histograms keyed by comm would multiply
// the memory by the number of CPUs. Not preallocated: a key's value is
// allocated when its first call comes, so the memory grows with the keys
// seen, not with the limit. A full map does not lose the call silently: it
// is counted as DROP_CARDINALITY_LIMIT.
#ifndef AGGREGATE_BPF_H
#define AGGREGATE_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_CALL_KEYS);
	__type(key, struct call_key);
	__type(value, struct call_agg);
} calls_by_key SEC(".maps");

// The calls that raised each signal, by comm: touched only by calls that
// raise one.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, MAX_SIGNAL_KEYS);
	__type(key, struct signal_key);
	__type(value, __u64);
} signal_counts SEC(".maps");

// Zero values to insert new keys with.
static const struct call_agg zero_agg;
static const __u64 zero_count;

// aggregate counts the call of the process comm, with its outcome o, its
// duration in nanoseconds, the signals it raised and its process's map
// count. It returns false if a
// map was full, and the call is missing from some aggregate.
static __always_inline bool aggregate(const struct comm *comm, const struct outcome *o,
				      __u64 duration, __u16 signals, __u32 map_count)
{
	struct call_key ck = { .comm = *comm, .resize = o->resize, .move = o->move, .err = o->err };
	struct call_agg *a = lookup_or_try_init(&calls_by_key, &ck, &zero_agg);
	if (!a)
		return false;
	__sync_fetch_and_add(&a->count, 1);
	a->map_count = map_count; // the latest wins: a plain 8-byte store
	// barrier_var: the compiler must not fold the bounds checks into
	// hist_slot's clamp, where the verifier loses track of them.
	__u32 slot = hist_slot(duration, DURATION_SLOTS);
	barrier_var(slot);
	if (slot < DURATION_SLOTS)
		__sync_fetch_and_add(&a->duration_slots[slot], 1);
	__sync_fetch_and_add(&a->duration_sum, duration);
	if (o->ok && o->resize != RESIZE_NONE) {
		slot = hist_slot(o->delta, SIZE_SLOTS);
		barrier_var(slot);
		if (slot < SIZE_SLOTS)
			__sync_fetch_and_add(&a->size_slots[slot], 1);
		__sync_fetch_and_add(&a->size_sum, o->delta);
	}
	if (!signals)
		return true;
	bool counted = true;
	for (__u32 i = 0; i < SIGNALS; i++) {
		if (!(signals & (1 << i)))
			continue;
		struct signal_key sk = { .comm = *comm, .signal = i };
		__u64 *n = lookup_or_try_init(&signal_counts, &sk, &zero_count);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			counted = false;
	}
	return counted;
}

#endif
