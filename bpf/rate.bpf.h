// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// rate.bpf.h: a cap on the records per second, a fixed one-second window shared by
// all CPUs.
#ifndef RATE_BPF_H
#define RATE_BPF_H

const volatile __u64 max_records_per_sec = 0; // 0 = no cap

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rate_window);
} rate SEC(".maps");

// rate_allows: races between CPUs at a window's edge may let a few records
// more through; none is lost uncounted. Only non-fetching atomics are used,
// which kernels before 5.12 accept.
static __always_inline bool rate_allows(void)
{
	if (!max_records_per_sec)
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
	if (w->count >= max_records_per_sec)
		return false;
	__sync_fetch_and_add(&w->count, 1);
	return true;
}

#endif
