// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// aggregate.bpf.h: the aggregates behind the metrics, so that user space
// reads a few hundred bytes per interval instead of a record per call.
//
// Plain (not per-CPU) hashes updated with atomic adds: per-CPU values of
// histograms keyed by comm would multiply the memory by the number of CPUs.
// A full map does not lose the call silently: it is counted, once, as
// DROP_CARDINALITY_LIMIT.
#ifndef AGGREGATE_BPF_H
#define AGGREGATE_BPF_H

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

// Zero values to insert new keys with.
static const struct hist zero_hist;
static const __u64 zero_count;

// aggregate counts the call of the process comm, with its outcome o and
// its duration in nanoseconds.
static __always_inline void aggregate(const struct comm *comm, const struct outcome *o,
				      __u64 duration)
{
	struct call_key ck = { .comm = *comm, .resize = o->resize, .move = o->move, .err = o->err };
	bool missing = false;
	__u64 *n = lookup_or_try_init(&calls, &ck, &zero_count);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		missing = true;

	if (o->ok && o->resize != RESIZE_NONE) {
		struct size_key sk = { .comm = *comm, .resize = o->resize };
		struct hist *h = lookup_or_try_init(&size_hist, &sk, &zero_hist);
		if (h)
			hist_add(h, o->delta);
		else
			missing = true;
	}

	struct duration_key dk = { .move = o->move, .err = o->err };
	struct hist *dh = lookup_or_try_init(&duration_hist, &dk, &zero_hist);
	if (dh)
		hist_add(dh, duration);
	else
		missing = true;
	if (missing)
		count_drop(DROP_CARDINALITY_LIMIT);
}

#endif
