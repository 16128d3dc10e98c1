// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// bits.bpf.h: log2 histogram slots.
#ifndef BITS_BPF_H
#define BITS_BPF_H

// hist_slot is the slot of v such that slot k holds (2^(k-1), 2^k] and slot
// 0 holds [0, 1], matching explicit power-of-two histogram bounds 1, 2, 4,
// ... whose buckets are upper-inclusive; the last of slots holds everything
// above.
static __always_inline __u32 hist_slot(__u64 v, __u32 slots)
{
	__u32 slot = 0, shift;
	if (v <= 1)
		return 0;
	v -= 1;
	// Branch-free log2 of v, then +1.
	shift = (v > 0xFFFFFFFFULL) << 5;
	v >>= shift;
	slot = shift;
	shift = (v > 0xFFFF) << 4;
	v >>= shift;
	slot |= shift;
	shift = (v > 0xFF) << 3;
	v >>= shift;
	slot |= shift;
	shift = (v > 0xF) << 2;
	v >>= shift;
	slot |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	slot |= shift;
	slot |= (v >> 1);
	slot += 1;
	if (slot >= slots)
		slot = slots - 1;
	return slot;
}

#endif
