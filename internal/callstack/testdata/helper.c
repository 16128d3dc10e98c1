// helper.c: the C program the callstack tests symbolize. Its calls come from
// known nested functions: main -> stack_outer -> stack_middle -> stack_inner.
// Built with -fno-omit-frame-pointer -fno-optimize-sibling-calls.
//
//   helper mremap     stack_inner calls glibc's mremap() (a leaf stub)
//   helper syscall    stack_inner calls syscall(SYS_mremap, ...)
//   helper realloc    stack_inner grows a 1 MiB block with realloc()
//   helper print [N]  stack_inner prints its own frame-pointer walk (after N
//                     extra stack_deep frames), then waits for stdin to close
//   helper exit       the same, then exits at once
//   helper map FILE   maps FILE executable, prints its address, waits
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static volatile int sink;
static const char *mode;
static int depth;

static void wait_stdin(void) {
	char c;
	while (read(0, &c, 1) > 0) {
	}
}

NOINLINE static void print_stack(void) {
	uintptr_t *fp = __builtin_frame_address(0);
	// The first line is an address inside stack_inner: its return address.
	// Like the kernel's walk, but it stops where the next frame pointer
	// does not lead up the stack (it cannot fault the way the kernel's
	// reads may).
	for (int i = 0; fp != NULL && i < 64; i++) {
		uintptr_t *next = (uintptr_t *)fp[0];
		printf("%#lx\n", (unsigned long)fp[1]);
		if (next <= fp || (uintptr_t)next - (uintptr_t)fp > (1 << 20))
			break;
		fp = next;
	}
	printf("ready\n");
	fflush(stdout);
}

NOINLINE void stack_inner(void) {
	if (strcmp(mode, "mremap") == 0 || strcmp(mode, "syscall") == 0) {
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		void *q = strcmp(mode, "mremap") == 0
			? mremap(p, 4096, 8192, MREMAP_MAYMOVE)
			: (void *)syscall(SYS_mremap, p, 4096, 8192, MREMAP_MAYMOVE);
		sink += q != MAP_FAILED;
	} else if (strcmp(mode, "realloc") == 0) {
		char *p = malloc(1 << 20);
		p[0] = 1;
		p = realloc(p, 2 << 20);
		sink += p[0];
		free(p);
	} else {
		print_stack();
		if (strcmp(mode, "exit") == 0)
			exit(0);
		wait_stdin();
	}
	sink++;
}

NOINLINE void stack_deep(int n) {
	if (n > 0)
		stack_deep(n - 1);
	else
		stack_inner();
	sink++;
}

NOINLINE void stack_middle(void) {
	stack_deep(depth);
	sink++;
}

NOINLINE void stack_outer(void) {
	stack_middle();
	sink++;
}

int main(int argc, char **argv) {
	if (argc < 2)
		return 2;
	mode = argv[1];
	if (strcmp(mode, "map") == 0 && argc == 3) {
		int fd = open(argv[2], O_RDONLY);
		void *p = fd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED)
			return 1;
		printf("%#lx\nready\n", (unsigned long)p);
		fflush(stdout);
		wait_stdin();
		return 0;
	}
	if (argc == 3)
		depth = atoi(argv[2]);
	stack_outer();
	return sink == 0;
}
