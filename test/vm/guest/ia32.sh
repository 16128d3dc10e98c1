#!/bin/sh
# Runs inside the VM (busybox sh, cwd /payload), from test/vm/suite.sh.
#
# 32-bit processes enter mremap(2) through the kernel's ia32 entry: in
# kprobe mode through __ia32_sys_mremap, whose saved registers hold the
# arguments in the i386 convention; in tracepoint mode the syscalls
# tracepoints skip compat syscalls, so the raw_syscalls raw tracepoints
# catch them. Rerun the kprobe and the tracepoint subtests with a GOARCH=386
# build of the helper (int $0x80), so every field of its calls is checked as
# for the 64-bit one; then TestIa32GlibcCaller with the gcc -m32 -static C
# helper, whose glibc mremap() enters through the vDSO's __kernel_vsyscall
# (the fast compat entry), in both modes too. With MREMAP_SET=quick only the
# tracer's test runs with the Go helper (it checks every field of the calls).
set -u
export MREMAP_HELPER=/payload/ia32/mremap-helper
timeout=${GO_TEST_TIMEOUT:-10m}
bad=0
# dir binary test
run() {
	out=/tmp/ia32-$2-$3.out
	(cd "$1" && "./$2" -test.v -test.count=1 -test.timeout="$timeout" -test.run "^$3\$/^(kprobe|tracepoint)\$") >"$out" 2>&1
	rc=$?
	cat "$out"
	if [ $rc != 0 ]; then
		echo "FAIL: $2 $3 with the 32-bit helper: rc=$rc"
		bad=1
	fi
	for mode in kprobe tracepoint; do
		if ! grep -q -- "--- PASS: $3/$mode " "$out"; then
			echo "FAIL: $2 $3/$mode did not run or did not pass"
			bad=1
		fi
	done
}
file=$(head -c 5 "$MREMAP_HELPER" | od -An -tx1 | tr -d ' \n')
[ "$file" = 7f454c4601 ] || { echo "FAIL: $MREMAP_HELPER is not a 32-bit ELF ($file)"; exit 1; }
run /payload tracer.test TestCallsAndAggregates
if [ "${MREMAP_SET:-full}" != quick ]; then
	run /payload/mremapreceiver receiver.test TestReceiverLogsAndMetrics
	run /payload e2e.test TestCollectorFileExporter
fi
if [ -x "${MREMAP_HELPER_GCC32:-}" ]; then
	file=$(head -c 5 "$MREMAP_HELPER_GCC32" | od -An -tx1 | tr -d ' \n')
	[ "$file" = 7f454c4601 ] || { echo "FAIL: $MREMAP_HELPER_GCC32 is not a 32-bit ELF ($file)"; exit 1; }
	run /payload/mremapreceiver receiver.test TestIa32GlibcCaller
else
	echo "note: no gcc -m32 helper in the payload (gcc-multilib missing on the host): TestIa32GlibcCaller not run"
fi
exit $bad
