// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
//
// Types shared by the eBPF program and user space. bpf2go turns each of them
// into a Go type (-type), so the layout is declared once, here.
#ifndef MREMAP_H
#define MREMAP_H

#define TASK_COMM_LEN 16

// The aggregates: one value per finest key (comm, resize, move, errno),
// calls_by_key, holding the count and both histograms; the coarser series
// of the metrics are its sums. Signals are counted apart, by comm.
#define MAX_CALL_KEYS 16384
#define MAX_SIGNAL_KEYS 4096
// Threads in mremap(2) at once that inflight_lru holds (PREEMPT_RT kernels).
#define MAX_INFLIGHT 10240
// 32-bit processes that ia32_procs tracks at once.
#define MAX_IA32_PROCS 4096

// Ancestors of the calling task's cgroup that filter_cgroups checks, from
// the root (level 0) down; the task's own cgroup is checked at any depth.
#define MAX_CGROUP_LEVELS 16

// mremap's number in the i386 syscall table (arch/x86/entry/syscalls/syscall_32.tbl).
#define IA32_NR_MREMAP 163
// thread_info.status bit of x86-64 set while a task is in a 32-bit
// (compat) syscall (arch/x86/include/asm/thread_info.h).
#define TS_COMPAT 0x0002

// The flag bits of mremap(2) (<linux/mman.h>), the one definition both the
// kernel program and user space use.
enum call_flag {
	MREMAP_MAYMOVE = 1,
	MREMAP_FIXED = 2,
	MREMAP_DONTUNMAP = 4,
};

#if defined(__TARGET_ARCH_arm64)
// The x86-64 vmlinux.h lacks arm64's register layout, which bpf_tracing.h
// reads through; CO-RE relocates these fields against the running kernel.
struct user_pt_regs {
	__u64 regs[31];
	__u64 sp;
	__u64 pc;
	__u64 pstate;
} __attribute__((preserve_access_index));
#endif

// The slots of the two log2 histograms of each call's aggregate: slot k
// holds (2^(k-1), 2^k], slot 0 holds 0 and 1, and the last slot everything
// above. Size deltas up to 2^40 bytes (1 TiB) and durations up to 2^34 ns
// (about 17 s) have a slot of their own: the metrics' explicit bounds.
enum hist_slots {
	SIZE_SLOTS = 42,
	DURATION_SLOTS = 36,
};

// The signals a call raises (signals.bpf.h), one bit each, in the order
// their names are joined.
enum call_signal {
	SIGNAL_EXEC_MOVE = 1 << 0,
	SIGNAL_WRITE_EXEC = 1 << 1,
	SIGNAL_FIXED_REPLACE = 1 << 2,
	SIGNAL_SHARED_ALIAS = 1 << 3,
	SIGNAL_DONTUNMAP = 1 << 4,
	SIGNAL_SEALED = 1 << 5,
	SIGNAL_SPECIAL_MOVE = 1 << 6,
	SIGNAL_UNBACKED_CALLER = 1 << 7,
	SIGNAL_MAP_COUNT_LIMIT = 1 << 8,
	SIGNALS = 9, // how many there are
};

// How a call is classified, by the kernel program alone (classify.bpf.h):
// user space decodes these, it does not classify again.
enum resize {
	RESIZE_NONE = 0,
	RESIZE_GROW = 1,
	RESIZE_SHRINK = 2,
};

enum move {
	MOVE_NONE = 0,
	MOVE_MAYMOVE = 1,
	MOVE_FIXED = 2,
	MOVE_DONTUNMAP = 3,
};

// Reasons a call is not delivered in full; indexes of the drops map.
// (probe_missed is read from the kernel's kretprobe counters, not here.)
enum drop_reason {
	DROP_RING_BUFFER_FULL = 0,
	DROP_RATE_LIMITED = 1,
	DROP_UNPAIRED = 2,
	DROP_CARDINALITY_LIMIT = 3,
	DROP_REASONS = 4,
};

struct comm {
	char name[TASK_COMM_LEN];
};

// The mapping that contained old_address at entry, as /proc/PID/maps shows
// it. The path is built in the kernel, so it is right even when the mapping
// is gone by the time user space reads the record.
#define VMA_PATH_LEN 256
// Dentries and mount points a file path walks up through, at most.
#define VMA_PATH_DEPTH 32

enum vma_flag {
	// A mapping contains old_address; perms and path are set.
	VMA_FOUND = 1,
	// path holds only the last VMA_PATH_LEN bytes or VMA_PATH_DEPTH names.
	VMA_PATH_TRUNCATED = 2,
	// The file was unlinked: /proc/PID/maps appends " (deleted)".
	VMA_PATH_DELETED = 4,
	// [vdso], [vvar], [vvar_vclock] or [stack]: memory the kernel lays
	// out, which only CRIU and exploits move.
	VMA_SPECIAL = 8,
};

struct vma {
	__u8 flags;    // enum vma_flag bits
	char perms[4]; // "rw-p": VM_READ, VM_WRITE, VM_EXEC, then s (VM_MAYSHARE) or p
	// The mappings [old_address, old_address + old_size) spans, this one
	// the first (at most 255); 0 where the kernel cannot count them.
	__u8 count;
	__u16 path_len; // bytes of path used; no NUL
	char path[VMA_PATH_LEN];
};

// What the entry found, for the signals the exit decides.
enum entry_fact {
	// The user instruction pointer at the syscall lies in memory no file
	// backs: anonymous executable memory, or a memfd.
	FACT_CALLER_UNBACKED = 1,
	// With MREMAP_FIXED, a mapping overlapped the target range.
	FACT_TARGET_OCCUPIED = 2,
};

// A call between its entry and exit probes.
struct inflight {
	__u64 enter_ns;
	__u64 args[5];
	__u32 facts; // enum entry_fact bits
	__u32 pad;
	struct vma vma;
};

// One mremap call, as submitted to the ring buffer.
struct event {
	__u64 enter_ns; // bpf_ktime_get_ns (CLOCK_MONOTONIC) at entry
	__u64 exit_ns;
	__u64 old_address;
	__u64 old_size;
	__u64 new_size;
	__u64 flags;
	__u64 new_address;
	__s64 ret;
	__u32 tgid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	// The classification of the call (classify.bpf.h).
	__u16 err;   // errno of a failed call, 0 for success
	__u8 resize; // enum resize
	__u8 move;   // enum move
	// The process's number of mappings (mm->map_count) at exit.
	__u32 map_count;
	char comm[TASK_COMM_LEN];
	// The process's start time (its thread group leader's, in ns since
	// boot): with tgid, it names the process even after its pid is reused.
	__u64 start_time;
	__u16 signals; // enum call_signal bits
	__u8 pad[6];
	struct vma vma;
};

// The record's five arguments are in the order of inflight's args, which
// are copied into them at once.
_Static_assert(__builtin_offsetof(struct event, new_address) -
			       __builtin_offsetof(struct event, old_address) ==
		       4 * sizeof(__u64),
	       "struct event's arguments follow inflight's args");

// A record whose mapping has no path is submitted without it.
#define EVENT_SIZE_NO_PATH __builtin_offsetof(struct event, vma.path)

// With capture_stack, a record carries the calling thread's user stack after
// its fixed part (after the path when it has one, else where the path would
// start): the frame-pointer walk of bpf_get_stack, one frame more than
// STACK_FRAMES to tell a stack cut short, and what the caller of a leaf
// stub (glibc's mremap(), Go's Syscall6) is recovered from: the top of the
// user stack (x86) or the link register (arm64).
#define STACK_FRAMES 64
#define STACK_WORDS 32

enum stack_flag {
	// The stack had more than STACK_FRAMES frames: the deeper ones are
	// not in ips.
	STACK_TRUNCATED = 1,
	// words holds the top of the user stack, from its stack pointer up.
	STACK_WORDS_READ = 2,
	// A 32-bit (ia32) caller: words holds 4-byte words, the walk followed
	// its 32-bit frames.
	STACK_COMPAT = 4,
};

struct stack_tail {
	// The process's start (its thread group leader's start_boottime, ns
	// since boot): what /proc/PID/stat shows, so that user space tells a
	// reused pid.
	__u64 start_boottime;
	__u64 link_register; // x30 at the syscall (arm64), else 0
	__s32 err;           // bpf_get_stack's error, 0 when it walked the stack
	__u16 frames;        // how many of ips are set (at most STACK_FRAMES)
	__u8 flags;          // enum stack_flag bits
	__u8 pad;
	__u64 words[STACK_WORDS];
	// The user instruction pointer at the syscall, then the return
	// addresses, innermost first.
	__u64 ips[STACK_FRAMES + 1];
};

// The sizes of a record with a stack, without and with a path.
#define EVENT_SIZE_STACK_NO_PATH (EVENT_SIZE_NO_PATH + sizeof(struct stack_tail))
#define EVENT_SIZE_STACK (sizeof(struct event) + sizeof(struct stack_tail))

// A call and its outcome, for the classify_call test program.
struct classify_test {
	__u64 args[5]; // old_address, old_size, new_size, flags, new_address
	__s64 ret;
	__u64 delta;
	__u16 err;
	__u8 resize;
	__u8 move;
	__u8 ok;
	__u8 pad[3];
};

struct call_key {
	struct comm comm;
	__u8 resize; // enum resize
	__u8 move;   // enum move
	__u16 err;   // errno, 0 for success
};

// The aggregate of the calls of one call_key: how many, the latest one's
// map count, and the log2 histograms of their durations (ns) and, for
// successful calls that grew or shrank a mapping, of abs(new_size -
// old_size).
struct call_agg {
	__u64 count;
	__u64 map_count; // mm->map_count of the process at the latest call's exit
	__u64 size_sum;
	__u64 duration_sum;
	__u64 size_slots[SIZE_SLOTS];
	__u64 duration_slots[DURATION_SLOTS];
};

// The calls of one process name that raised one signal.
struct signal_key {
	struct comm comm;
	__u32 signal; // the bit's index in enum call_signal
};

// A 32-bit program started (ia32_starts).
struct ia32_start {
	__u32 tgid;
	__u32 pad;
	__u64 exec_ns; // bpf_ktime_get_ns at its exec
};

// What user space tells the programs while they run (the limits array).
struct limits {
	__u32 max_map_count; // vm.max_map_count
	__u32 pad;
};

struct rate_window {
	__u64 start_ns;
	__u64 count;
};

#endif
