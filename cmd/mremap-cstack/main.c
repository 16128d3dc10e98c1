/*
 * mremap-cstack: a C program that makes one mremap(2) call from known nested
 * functions, main -> stack_outer -> stack_middle -> stack_inner, for the
 * call-stack tests (two pages of anonymous memory shrunk to one, in place): the record's code.stacktrace lists them in order, and
 * code.function.name is stack_inner.
 *
 * Built with `gcc -static -O2 -fno-omit-frame-pointer
 * -fno-optimize-sibling-calls` (`make build` writes bin/mremap-cstack), so
 * that each function keeps its frame and none is a tail call; static, so it
 * runs where there is no C library (the kernel VM suite). glibc's mremap()
 * and syscall() are leaf stubs with no frame of their own: the kernel's
 * frame-pointer walk skips stack_inner, and the collector recovers it from
 * the return address on top of the user stack (x86-64) or the link register
 * (arm64).
 *
 * It prints the call as a JSON line in the form of internal/mremaptest.Made
 * (its name is the mode), then stays alive LINGER milliseconds, so that
 * /proc still shows it while the stack is symbolized (0: it exits at once).
 *
 * usage: mremap-cstack mremap|syscall [LINGER]
 *   mremap   stack_inner calls glibc's mremap()
 *   syscall  stack_inner calls syscall(SYS_mremap, ...)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
#define PAGE 4096UL

static volatile int sink;

NOINLINE static long stack_inner(const char *mode, void *p)
{
	void *q;

	/* syscall() gets all five arguments: the kernel reads new_address
	 * whatever the flags, and the record shows what it read. */
	if (strcmp(mode, "syscall") == 0)
		q = (void *)syscall(SYS_mremap, p, 2 * PAGE, PAGE, 0, NULL);
	else
		q = mremap(p, 2 * PAGE, PAGE, 0);
	sink++;
	return (long)q;
}

NOINLINE static long stack_middle(const char *mode, void *p)
{
	long r = stack_inner(mode, p);
	sink++;
	return r;
}

NOINLINE static long stack_outer(const char *mode, void *p)
{
	long r = stack_middle(mode, p);
	sink++;
	return r;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	long linger = argc > 2 ? atol(argv[2]) : 0;
	void *p;
	long r;

	if (strcmp(mode, "mremap") != 0 && strcmp(mode, "syscall") != 0) {
		fprintf(stderr, "usage: mremap-cstack mremap|syscall [LINGER_MS]\n");
		return 2;
	}
	p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	r = stack_outer(mode, p);
	/* The kernel's raw return value: the address, or -errno. */
	if (r == (long)MAP_FAILED)
		r = -errno;
	printf("{\"name\":\"%s\",\"pid\":%d,\"tid\":%d,\"old_address\":%" PRIuPTR
	       ",\"old_size\":%lu,\"new_size\":%lu,\"flags\":0,\"new_address\":0,\"return\":%ld}\n",
	       mode, getpid(), gettid(), (uintptr_t)p, 2 * PAGE, PAGE, r);
	fflush(stdout);
	if (linger > 0) {
		struct timespec ts = { .tv_sec = linger / 1000,
				       .tv_nsec = (linger % 1000) * 1000000 };
		nanosleep(&ts, NULL);
	}
	return sink == 0;
}
