#!/usr/bin/env bash
# suite.sh - the real-kernel tests inside QEMU on Debian's 6.1 kernels, whose
# kprobes the host may lack. `make test-vm` runs it (and `make test` runs that).
#
# usage: test/vm/suite.sh
#
# 1. Builds the payload into a directory of its own, .cache/vm/payload.XXXXXX
#    (removed at exit; the cache may be shared by worktrees whose suites run
#    at once, and each VM boots from the payload later): the test binaries of
#    ./internal/tracer, ./receiver/mremapreceiver (with its metadata.yaml and
#    testdata/, which its tests read from their working directory) and
#    ./test/e2e, all with CGO_ENABLED=0; bin/otelcol-mremap and
#    bin/mremap-helper (`make build`; both must be static, as the VM has no
#    libc); a GOARCH=386 helper for the ia32 entry (int $0x80);
#    bin/mremap-helper32, the gcc -m32 -static C helper whose glibc mremap()
#    enters through the vDSO (`make build` skips it, with a note, without
#    gcc-multilib; the suite then says so and does not run its test);
#    test/vm/guest/*.sh.
# 2. Boots each kernel with test/vm/run.sh and runs, as one labelled command
#    each, with MREMAP_REQUIRE_PROBES=1 (kprobe subtests fail, not skip,
#    without kprobes), MREMAP_HELPER and OTELCOL_MREMAP set:
#      tracer          ./internal/tracer tests
#      mremapreceiver  ./receiver/mremapreceiver tests
#      e2e             ./test/e2e tests (TestCollectorAutoSaysWhich: auto picks kprobe)
#      ia32            the kprobe and tracepoint subtests again with the 32-bit
#                      Go helper, and TestIa32GlibcCaller with the gcc -m32
#                      one (guest/ia32.sh)
#      kprobe-profile  the collector with probe: auto must choose kprobe, and
#                      say its pairing (MREMAP_EXPECT_PAIRING: "LRU hash
#                      (PREEMPT_RT kernel)" on *-rt-* kernels, else "task
#                      storage"); our kretprobes in kprobe_events/kprobe_profile
#                      (guest/kprobe-profile.sh)
# 3. Prints each command's test verdicts, the full output of every failed
#    command (from the console log), and a kernel x command table.
#
# Kernels: VMTEST_REQUIRED_KERNELS (default linux-image-6.1.0-50-cloud-amd64)
# must run; VMTEST_OPTIONAL_KERNELS (default linux-image-6.1.0-50-rt-amd64)
# are SKIPped if apt cannot serve them (run.sh exit 3).
# Env: VMTEST_SUITE_TIMEOUT hard limit per VM in seconds (default 2400),
# GO_TEST_TIMEOUT per test binary (default 10m), VMTEST_VERBOSE=1 streams the
# console live; run.sh's VMTEST_ACCEL / VMTEST_CACHE are honoured.
#
# Exit: 0 if every command passed on every kernel that ran (and every
# required kernel ran); 1 otherwise; 2 if the payload could not be built.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${VMTEST_CACHE:-$repo/.cache/vm}
cd "$repo"

read -r -a required <<<"${VMTEST_REQUIRED_KERNELS-linux-image-6.1.0-50-cloud-amd64}"
read -r -a optional <<<"${VMTEST_OPTIONAL_KERNELS-linux-image-6.1.0-50-rt-amd64}"
vm_timeout=${VMTEST_SUITE_TIMEOUT:-2400}
go_timeout=${GO_TEST_TIMEOUT:-10m}
GO=${GO:-go}

t0=$(date +%s)
say() { echo "suite: $*"; }
die() { echo "suite: $*" >&2; exit 2; }

# ------------------------------------------------------------------ payload
mkdir -p "$cache"
payload=$(mktemp -d "$cache/payload.XXXXXX")
trap 'rm -rf "$payload"' EXIT
say "building the payload in $payload"
make --no-print-directory build >/dev/null || die "make build failed"
for b in bin/otelcol-mremap bin/mremap-helper; do
	[[ -x $b ]] || die "$b missing after make build"
	# The initramfs has no libc: the binaries must not use cgo.
	if ! "$GO" version -m "$b" | grep -qx $'\tbuild\tCGO_ENABLED=0'; then
		die "$b was not built with CGO_ENABLED=0, so it cannot run in the VM (ocb: keep dist.cgo_enabled off)"
	fi
done

mkdir -p "$payload/mremapreceiver" "$payload/ia32"
export CGO_ENABLED=0
build_test() { # package output
	"$GO" test -c -ldflags='-s -w' -o "$2" "$1" || die "go test -c $1 failed"
}
build_test ./internal/tracer "$payload/tracer.test"
build_test ./receiver/mremapreceiver "$payload/mremapreceiver/receiver.test"
build_test ./test/e2e "$payload/e2e.test"
GOARCH=386 "$GO" build -ldflags='-s -w' -o "$payload/ia32/mremap-helper" ./cmd/mremap-helper ||
	die "GOARCH=386 go build ./cmd/mremap-helper failed"
if [[ -x bin/mremap-helper32 ]]; then
	cp bin/mremap-helper32 "$payload/ia32/mremap-helper32"
else
	say "note: no bin/mremap-helper32 (gcc -m32 needs gcc-multilib): the glibc 32-bit caller is not tested"
fi
cp receiver/mremapreceiver/metadata.yaml "$payload/mremapreceiver/"
if [[ -d receiver/mremapreceiver/testdata ]]; then
	cp -a receiver/mremapreceiver/testdata "$payload/mremapreceiver/"
fi
# The helper's file name is its comm, which the tests filter on.
cp bin/mremap-helper "$payload/mremap-helper"
cp bin/otelcol-mremap "$payload/otelcol-mremap"
cp test/vm/guest/*.sh "$payload/"
# Tests that find repository files by their source path (runtime.Caller), such
# as test/e2e's shipped-config check, look under $repo: the VM gets a copy of
# those files, linked there by the setup command.
mkdir -p "$payload/repo"
cp -a config "$payload/repo/"
say "payload: $(du -sh "$payload" | cut -f1) ($(( $(date +%s) - t0 ))s)"

# ------------------------------------------------------------------ VM runs
labels=(tracer mremapreceiver e2e ia32 kprobe-profile)
declare -A title=(
	[tracer]=./internal/tracer
	[mremapreceiver]=./receiver/mremapreceiver
	[e2e]=./test/e2e
	[ia32]="ia32 kprobe+tracepoint"
	[kprobe-profile]=kprobe_profile
)
gotest="-test.v -test.count=1 -test.timeout=$go_timeout"
cmds=(
	"setup::mkdir -p $(printf %q "$(dirname "$repo")") && ln -sfn /payload/repo $(printf %q "$repo") && ls $(printf %q "$repo")/"
	"info::uname -a; echo; grep -E ' (__x64|__ia32)_sys_mremap\$' /proc/kallsyms | cut -d' ' -f2-; ls /sys/bus/event_source/devices/"
	"tracer::./tracer.test $gotest"
	"mremapreceiver::cd mremapreceiver && ./receiver.test $gotest"
	"e2e::./e2e.test $gotest"
	"ia32::GO_TEST_TIMEOUT=$go_timeout sh ./ia32.sh"
	"kprobe-profile::sh ./kprobe-profile.sh"
)
envs=(-e MREMAP_REQUIRE_PROBES=1 -e MREMAP_HELPER=/payload/mremap-helper -e MREMAP_HELPER_386=/payload/ia32/mremap-helper
	-e OTELCOL_MREMAP=/payload/otelcol-mremap -e GOTRACEBACK=all)
if [[ -x $payload/ia32/mremap-helper32 ]]; then
	envs+=(-e MREMAP_HELPER_GCC32=/payload/ia32/mremap-helper32)
fi

logdir=$cache/logs/suite-$(date +%Y%m%d-%H%M%S)
mkdir -p "$logdir"
declare -A result # "<kernel>|<label>" -> PASS / FAIL ... / SKIP
declare -A vm     # "<kernel>" -> ok / SKIP / FAIL (...): how the VM itself went
kernels=()
failed=0

# section LOG LABEL: the console output of one command.
section() {
	tr -d '\r' <"$1" | awk -v b="VMTEST BEGIN $2" -v e="VMTEST END $2 " '
		$0 == b { on = 1; next }
		on && index($0, e) == 1 { exit }
		on { print }'
}

run_kernel() { # kernel required(0/1)
	local k=$1 req=$2 log=$logdir/$1.log out=$logdir/$1.out rc label line
	# Where calls in flight are kept: the startup reason must say so
	# (guest/kprobe-profile.sh checks it).
	local pairing="task storage"
	[[ $k == *-rt-* ]] && pairing="LRU hash (PREEMPT_RT kernel)"
	kernels+=("$k")
	echo
	say "===== $k"
	set +e
	if [[ ${VMTEST_VERBOSE:-0} == 1 ]]; then
		"$here/run.sh" -t "$vm_timeout" -l "$log" "${envs[@]}" -e "MREMAP_EXPECT_PAIRING=$pairing" "$k" "$payload" -- "${cmds[@]}" 2>&1 | tee "$out"
		rc=${PIPESTATUS[0]}
	else
		"$here/run.sh" -t "$vm_timeout" -l "$log" "${envs[@]}" -e "MREMAP_EXPECT_PAIRING=$pairing" "$k" "$payload" -- "${cmds[@]}" >"$out" 2>&1
		rc=$?
		cat "$out"
	fi
	set -e
	if [[ $rc == 3 ]]; then
		vm[$k]=SKIP
		if [[ $req == 1 ]]; then
			say "FAIL: $k is required, but apt cannot serve it"
			for label in "${labels[@]}"; do result[$k|$label]="FAIL (no kernel)"; done
			failed=1
		else
			say "SKIP: $k: apt cannot serve this kernel package; its tests were not run"
			for label in "${labels[@]}"; do result[$k|$label]=SKIP; done
		fi
		return
	fi
	for label in "${labels[@]}"; do
		line=$(grep -E "^(PASS|FAIL) $label( |$)" "$out" | tail -1 || true)
		case $line in
		PASS*) result[$k|$label]=PASS ;;
		FAIL*"did not finish"*) result[$k|$label]="FAIL (hung)" ;;
		FAIL*"not started"*) result[$k|$label]="FAIL (not run)" ;;
		FAIL*) result[$k|$label]=FAIL ;;
		*) result[$k|$label]="FAIL (no VM)" ;;
		esac
	done
	[[ $rc == 4 ]] && say "FAIL: $k: the VM hit the ${vm_timeout}s timeout and was killed"
	vm[$k]=ok
	if grep -qE '^FAIL (setup|info)( |$)' "$out"; then
		say "FAIL: $k: a setup command failed (see the console log $log)"
		vm[$k]="FAIL (setup)"
	fi
	grep -q '^FAIL kernel-log' "$out" && vm[$k]="FAIL (kernel log)"
	grep -q 'VM stopped without' "$out" && vm[$k]="FAIL (crashed)"
	[[ $rc == 4 ]] && vm[$k]="FAIL (timeout)"
	[[ $rc == 2 ]] && vm[$k]="FAIL (run.sh)"
	[[ $rc == 0 ]] || failed=1
	[[ -s $log ]] || return 0

	# The verdict of every test, for every command.
	for label in "${labels[@]}"; do
		echo "----- $label [$k]: ${result[$k|$label]}"
		section "$log" "$label" | grep -E '^ *--- (PASS|FAIL|SKIP)|^(PASS|FAIL|ok)$|^panic:|^FAIL:|^ok: |^note: ' || true
	done
	echo "----- kprobe-profile output [$k]"
	section "$log" kprobe-profile
	# The full output of each failed command.
	for label in "${labels[@]}"; do
		[[ ${result[$k|$label]} == PASS ]] && continue
		local n
		n=$(section "$log" "$label" | wc -l)
		echo "===== output of failed command $label [$k] ($n lines; console log $log)"
		if [[ $n -le 4000 ]]; then
			section "$log" "$label"
		else
			section "$log" "$label" | grep -n -B 5 -A 60 -E -- '--- FAIL|^panic:' | head -2000
			echo "... last 300 lines:"
			section "$log" "$label" | tail -300
		fi
		echo "===== end of $label [$k]"
	done
}

for k in "${required[@]}"; do run_kernel "$k" 1; done
for k in "${optional[@]}"; do run_kernel "$k" 0; done

# ------------------------------------------------------------------ summary
echo
say "summary (logs in $logdir)"
w=0
for k in "${kernels[@]}"; do (( ${#k} > w )) && w=${#k}; done
printf "%-${w}s  %-14s" kernel vm
for label in "${labels[@]}"; do printf "  %-26s" "${title[$label]}"; done
echo
for k in "${kernels[@]}"; do
	printf "%-${w}s  %-14s" "$k" "${vm[$k]:-FAIL}"
	for label in "${labels[@]}"; do printf "  %-26s" "${result[$k|$label]}"; done
	echo
done
say "total wall time $(( $(date +%s) - t0 ))s"
if [[ $failed != 0 ]]; then
	say "FAIL"
	exit 1
fi
say "PASS"
