/*
 * mremap-helper32: a real 32-bit C program that makes known mremap(2) calls
 * through glibc, for the real-kernel tests of 32-bit callers on x86-64.
 *
 * Built with `gcc -m32 -static -O2` (gcc-multilib; `make build` writes
 * bin/mremap-helper32). The Go 386 helper enters the kernel with int $0x80;
 * a glibc program instead calls mremap() in libc, whose i386 system calls
 * jump to the vDSO's __kernel_vsyscall (sysenter or syscall, the kernel's
 * fast compat entry), also in a static binary (_dl_sysinfo comes from
 * AT_SYSINFO). Both reach __ia32_sys_mremap and the raw_syscalls
 * tracepoints with the ia32 syscall number 163.
 *
 * It names itself "mremap-c32" (prctl PR_SET_NAME), whatever its file is
 * called, and prints one JSON line per call, in the form of
 * internal/mremaptest.Made: the arguments, the kernel's raw return value (the
 * address, or -errno), the errno name ("" when the call succeeded), its pid
 * and tid, and the mapping /proc/self/maps showed at the old address just
 * before the call (omitted when there is none). The call names are those of
 * mremaptest.Expected, whose expectations apply as they are.
 *
 * usage: mremap-helper32 [-linger SECONDS[s]]
 *   -linger  stay alive this long after the calls, so /proc still shows the process
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define COMM "mremap-c32"
#define PAGE 4096UL

struct mapping {
	int found;
	int count; /* the mappings [addr, addr+size) spans, this one the first */
	char perms[8];
	char path[512];
};

/*
 * mapping_at reads /proc/self/maps for the mapping that contains addr, and
 * counts the mappings [addr, addr+size) spans (lines are in address order), with
 * read(2) into a static buffer: nothing is allocated, so no mapping appears
 * or moves between the read and the call.
 */
static char maps_buf[1 << 16];

static int mapping_at(uintptr_t addr, size_t size, struct mapping *m)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r = 0;

	memset(m, 0, sizeof(*m));
	if (fd < 0)
		return -1;
	while (n < sizeof(maps_buf) - 1 &&
	       (r = read(fd, maps_buf + n, sizeof(maps_buf) - 1 - n)) > 0)
		n += r;
	close(fd);
	if (r < 0 || n == sizeof(maps_buf) - 1)
		return -1;
	maps_buf[n] = 0;
	for (char *line = maps_buf, *next; *line; line = next) {
		unsigned long lo, hi;
		char perms[sizeof(m->perms)];
		int off = 0;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		else
			next = line + strlen(line);
		/* start-end perms offset dev inode<spaces>path */
		if (sscanf(line, "%lx-%lx %7s %*s %*s %*s%n", &lo, &hi, perms, &off) != 3 ||
		    off == 0)
			continue;
		if (m->found) {
			if (lo > addr && lo < addr + size)
				m->count++;
			continue;
		}
		if (addr < lo || addr >= hi)
			continue;
		char *path = line + off;
		while (*path == ' ')
			path++;
		snprintf(m->path, sizeof(m->path), "%s", path);
		memcpy(m->perms, perms, sizeof(perms));
		m->found = 1;
		m->count = 1;
	}
	if (!m->found)
		memset(m, 0, sizeof(*m));
	return 0;
}

/* json_string prints s as a JSON string (paths here are plain ASCII). */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static const char *errno_name(int e)
{
	switch (e) {
	case 0: return "";
	case EINVAL: return "EINVAL";
	case EFAULT: return "EFAULT";
	case ENOMEM: return "ENOMEM";
	default: return "other";
	}
}

static int failed;
static int last_err; /* the errno of the last call, 0 if it succeeded */

/*
 * call makes one mremap through glibc and prints it. maps is the mapping at
 * addr read before the call, or NULL to read it now.
 */
static uintptr_t call(const char *name, uintptr_t addr, size_t old_size, size_t new_size, int flags,
		      uintptr_t new_addr, const struct mapping *maps)
{
	struct mapping now;
	void *r;
	int err;
	int64_t ret;

	if (!maps) {
		if (mapping_at(addr, old_size, &now) != 0) {
			fprintf(stderr, "mremap-helper32: read /proc/self/maps: %s\n",
				strerror(errno));
			exit(1);
		}
		maps = &now;
	}
	errno = 0;
	if (flags & MREMAP_FIXED)
		r = mremap((void *)addr, old_size, new_size, flags, (void *)new_addr);
	else
		r = mremap((void *)addr, old_size, new_size, flags);
	err = r == MAP_FAILED ? errno : 0;
	last_err = err;
	ret = err ? -(int64_t)err : (int64_t)(uintptr_t)r;

	printf("{\"name\":\"%s\",\"pid\":%d,\"tid\":%d,"
	       "\"old_address\":%" PRIuPTR ",\"old_size\":%zu,\"new_size\":%zu,\"flags\":%d,"
	       "\"new_address\":%" PRIuPTR ",\"return\":%" PRId64 ",\"errno\":\"%s\"",
	       name, getpid(), gettid(), addr, old_size, new_size, flags, new_addr, ret,
	       errno_name(err));
	if (maps->found) {
		printf(",\"maps\":{\"permissions\":");
		json_string(maps->perms);
		printf(",\"path\":");
		json_string(maps->path);
		printf(",\"count\":%d}", maps->count);
	}
	printf("}\n");
	return err ? 0 : (uintptr_t)r;
}

static uintptr_t map_anon(size_t pages)
{
	void *p = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
		       0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "mremap-helper32: mmap %zu pages: %s\n", pages, strerror(errno));
		exit(1);
	}
	return (uintptr_t)p;
}

/* expect reports a call whose outcome is not the one mremaptest.Expected gives. */
static void expect(const char *name, int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "mremap-helper32: %s: %s\n", name, what);
		failed = 1;
	}
}

int main(int argc, char **argv)
{
	double linger = 0;
	struct mapping grown;
	uintptr_t a, b, c, target, r;

	for (int i = 1; i < argc; i++) {
		char *end;

		if (strcmp(argv[i], "-linger") == 0 && i + 1 < argc) {
			linger = strtod(argv[++i], &end);
			if (end == argv[i] || (*end && strcmp(end, "s") != 0) || linger < 0) {
				fprintf(stderr,
					"mremap-helper32: -linger %s: want seconds, as 2 or 2s\n",
					argv[i]);
				return 2;
			}
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "-help") == 0) {
			printf("usage: %s [-linger SECONDS[s]]\n", argv[0]);
			return 0;
		} else {
			fprintf(stderr,
				"mremap-helper32: unknown argument %s\nusage: %s [-linger SECONDS[s]]\n",
				argv[i], argv[0]);
			return 2;
		}
	}
	if (prctl(PR_SET_NAME, COMM, 0, 0, 0) != 0) {
		fprintf(stderr, "mremap-helper32: prctl PR_SET_NAME %s: %s\n", COMM,
			strerror(errno));
		return 1;
	}
	/* Lines reach a pipe whole, in order, when the program exits. */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);

	/*
	 * shrink, then grow back in place: the page the shrink frees is the
	 * one the growth takes. The mapping is read for both before the shrink.
	 */
	a = map_anon(2);
	if (mapping_at(a, PAGE, &grown) != 0) {
		fprintf(stderr, "mremap-helper32: read /proc/self/maps: %s\n", strerror(errno));
		return 1;
	}
	r = call("shrink", a, 2 * PAGE, PAGE, 0, 0, NULL);
	expect("shrink", r == a, "did not shrink in place");
	r = call("grow_in_place", a, PAGE, 2 * PAGE, 0, 0, &grown);
	expect("grow_in_place", r == a, "did not grow in place");

	/* The page after b is mapped, so growing b's first page must move it. */
	b = map_anon(2);
	r = call("maymove", b, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0, NULL);
	expect("maymove", r != 0 && r != b, "did not move");

	c = map_anon(1);
	target = map_anon(1);
	r = call("fixed", c, PAGE, PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target, NULL);
	expect("fixed", r == target, "did not move to the fixed address");

	r = call("einval_unaligned", target + 1, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0, NULL);
	expect("einval_unaligned", r == 0 && last_err == EINVAL, "did not fail with EINVAL");

	/* A page below vm.mmap_min_addr is never mapped. */
	r = call("efault_unmapped", PAGE, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0, NULL);
	expect("efault_unmapped", r == 0 && last_err == EFAULT, "did not fail with EFAULT");

	fflush(stdout);
	if (failed)
		return 1;
	if (linger > 0) {
		struct timespec ts = { (time_t)linger, (long)((linger - (time_t)linger) * 1e9) };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return 0;
}
