#!/usr/bin/env bash
# suite.sh - the real-kernel tests inside QEMU on Debian's kernels, amd64 and
# arm64, whose kprobes the host may lack. `make test-vm` runs it (and `make
# test` runs that).
#
# usage: test/vm/suite.sh [NAME...]
#
# NAME selects lines of test/vm/kernels.conf by name (a glob: '*-arm64'),
# or is a Debian kernel package (or pattern) of its own, run with the full
# set; none: every line. `make test-vm KERNELS="6.12-cloud-amd64 6.1-rt-amd64"`
# passes them.
#
# 1. Builds a payload per architecture into a directory of its own,
#    .cache/vm/payload.XXXXXX/<arch> (removed at exit; the cache may be
#    shared by worktrees whose suites run at once): the test binaries of
#    ./internal/tracer, ./receiver/mremapreceiver (with its metadata.yaml and
#    testdata/, which its tests read from their working directory) and
#    ./test/e2e, the helper and the collector, all with CGO_ENABLED=0 (the
#    VM has no libc). amd64 takes bin/otelcol-mremap, bin/mremap-helper
#    and bin/mremap-cstack from `make build`, and the 32-bit helpers; arm64
#    cross-builds them (GOARCH=arm64; the collector from ocb's sources in
#    build/otelcol-mremap; the static C helper with clang, make
#    build/arm64/mremap-cstack).
# 2. Boots each kernel with test/vm/run.sh and runs, as one labelled command
#    each, with MREMAP_REQUIRE_PROBES=1 (kprobe subtests fail, not skip,
#    without kprobes), MREMAP_HELPER and OTELCOL_MREMAP set:
#      tracer          ./internal/tracer tests
#      mremapreceiver  ./receiver/mremapreceiver tests
#      e2e             ./test/e2e tests (TestCollectorAutoSaysWhich: auto picks kprobe),
#                      less the gateway outage and bad-input tests: minutes of
#                      waiting on the network, the same on every kernel (the
#                      host runs them)
#      ia32            (amd64) the kprobe and tracepoint subtests again with the
#                      32-bit Go helper, and TestIa32GlibcCaller with the
#                      gcc -m32 one (guest/ia32.sh)
#      kprobe-profile  the collector with probe: auto must choose kprobe, and
#                      say its pairing (MREMAP_EXPECT_PAIRING: "LRU hash
#                      (PREEMPT_RT kernel)" on *-rt-* kernels, else "task
#                      storage"); our kretprobes in kprobe_events/kprobe_profile
#                      (guest/kprobe-profile.sh)
#    The quick set runs only the tests named in quick_run below.
# 3. Prints each command's test verdicts, the full output of every failed
#    command (from the console log), and a kernel x command table; records
#    each kernel that passed in test/vm/results.tsv and regenerates
#    docs/kernels-tested.md from it (test/vm/kernels-tested.sh).
#
# Env: VMTEST_SET=full|quick overrides kernels.conf's set for every kernel;
# VMTEST_SUITE_TIMEOUT hard limit per VM in seconds (default 2400);
# GO_TEST_TIMEOUT per test binary (default 10m); VMTEST_VERBOSE=1 streams
# the console live; VMTEST_RESULTS=0 leaves results.tsv alone; run.sh's
# VMTEST_ACCEL / VMTEST_CACHE / VMTEST_TCG_THREAD are honoured.
#
# Exit: 0 if every command passed on every kernel; 1 otherwise; 2 if the
# payload could not be built or a NAME is unknown.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${VMTEST_CACHE:-$repo/.cache/vm}
cd "$repo"

vm_timeout=${VMTEST_SUITE_TIMEOUT:-2400}
go_timeout=${GO_TEST_TIMEOUT:-10m}
GO=${GO:-go}

t0=$(date +%s)
say() { echo "suite: $*"; }
die() { echo "suite: $*" >&2; exit 2; }

# ------------------------------------------------------------------ kernels
# sel: "name|package|arch|set" for each kernel to run, in kernels.conf's order.
conf=()
while read -r name pkg arch set _; do
	[[ -z $name || $name == \#* ]] && continue
	conf+=("$name|$pkg|$arch|$set")
done <"$here/kernels.conf"
sel=()
if [[ $# -eq 0 ]]; then
	sel=("${conf[@]}")
else
	for want in "$@"; do
		found=0
		for line in "${conf[@]}"; do
			# shellcheck disable=SC2053 # a glob on purpose
			if [[ ${line%%|*} == $want ]]; then
				[[ " ${sel[*]-} " == *" $line "* ]] || sel+=("$line")
				found=1
			fi
		done
		if [[ $found == 0 ]]; then
			[[ $want == linux-image-* ]] || die "unknown kernel '$want': names in test/vm/kernels.conf are $(printf '%s ' "${conf[@]%%|*}")(or give a linux-image-... package)"
			arch=amd64
			[[ $want == *-arm64 ]] && arch=arm64
			sel+=("$want|$want|$arch|full")
		fi
	done
fi
archs=()
for line in "${sel[@]}"; do
	IFS='|' read -r _ _ arch set <<<"$line"
	[[ $arch =~ ^(amd64|arm64)$ ]] || die "kernels.conf: bad arch '$arch' in '$line'"
	set=${VMTEST_SET:-$set}
	[[ $set =~ ^(full|quick)$ ]] || die "kernels.conf: bad set '$set' in '$line' (full or quick)"
	[[ " ${archs[*]-} " == *" $arch "* ]] || archs+=("$arch")
done

# ------------------------------------------------------------------ payload
mkdir -p "$cache"
payloads=$(mktemp -d "$cache/payload.XXXXXX")
trap 'rm -rf "$payloads"' EXIT
make --no-print-directory build >/dev/null || die "make build failed"
for b in bin/otelcol-mremap bin/mremap-helper; do
	[[ -x $b ]] || die "$b missing after make build"
	# The initramfs has no libc: the binaries must not use cgo.
	if ! "$GO" version -m "$b" | grep -qx $'\tbuild\tCGO_ENABLED=0'; then
		die "$b was not built with CGO_ENABLED=0, so it cannot run in the VM (ocb: keep dist.cgo_enabled off)"
	fi
done

# build_payload ARCH: the test binaries, the helper and the collector for ARCH.
build_payload() {
	local arch=$1 p=$payloads/$1 t=$(date +%s)
	say "building the $arch payload in $p"
	mkdir -p "$p/mremapreceiver"
	build_test() { # package output
		CGO_ENABLED=0 GOARCH=$arch "$GO" test -c -ldflags='-s -w' -o "$2" "$1" || die "GOARCH=$arch go test -c $1 failed"
	}
	build_test ./internal/tracer "$p/tracer.test"
	build_test ./receiver/mremapreceiver "$p/mremapreceiver/receiver.test"
	build_test ./test/e2e "$p/e2e.test"
	if [[ $arch == amd64 ]]; then
		# The helper's file name is its comm, which the tests filter on.
		cp bin/mremap-helper "$p/mremap-helper"
		cp bin/otelcol-mremap "$p/otelcol-mremap"
		mkdir -p "$p/ia32"
		GOARCH=386 CGO_ENABLED=0 "$GO" build -ldflags='-s -w' -o "$p/ia32/mremap-helper" ./cmd/mremap-helper ||
			die "GOARCH=386 go build ./cmd/mremap-helper failed"
		if [[ -x bin/mremap-helper32 ]]; then
			cp bin/mremap-helper32 "$p/ia32/mremap-helper32"
		else
			say "note: no bin/mremap-helper32 (gcc -m32 needs gcc-multilib): the glibc 32-bit caller is not tested"
		fi
		cp bin/mremap-cstack "$p/mremap-cstack"
	else
		CGO_ENABLED=0 GOARCH=$arch "$GO" build -ldflags='-s -w' -o "$p/mremap-helper" ./cmd/mremap-helper ||
			die "GOARCH=$arch go build ./cmd/mremap-helper failed"
		# ocb generated the distribution's sources for make build; the same
		# sources, cross-built, are the collector ocb would build for arch.
		(cd build/otelcol-mremap && CGO_ENABLED=0 GOARCH=$arch "$GO" build -trimpath -ldflags='-s -w' -o "$p/otelcol-mremap" .) ||
			die "GOARCH=$arch go build in build/otelcol-mremap failed"
		if make --no-print-directory "build/$arch/mremap-cstack" >/dev/null; then
			cp "build/$arch/mremap-cstack" "$p/mremap-cstack"
		else
			say "note: cmd/mremap-cstack could not be cross-built for $arch (clang-19, lld-19, libc6-dev-arm64-cross): the C helper's call stacks are not tested there"
		fi
	fi
	cp receiver/mremapreceiver/metadata.yaml "$p/mremapreceiver/"
	if [[ -d receiver/mremapreceiver/testdata ]]; then
		cp -a receiver/mremapreceiver/testdata "$p/mremapreceiver/"
	fi
	cp test/vm/guest/*.sh "$p/"
	# Tests that find repository files by their source path (runtime.Caller),
	# such as test/e2e's shipped-config check, look under $repo: the VM gets
	# a copy of those files, linked there by the setup command.
	mkdir -p "$p/repo"
	cp -a config docs "$p/repo/"
	# The fleet's certificates for test/e2e's agent and gateway tests, made
	# here with config/tls/make-certs.sh (the VM has no openssl).
	config/tls/make-certs.sh "$p/certs" >/dev/null || die "config/tls/make-certs.sh failed"
	say "$arch payload: $(du -sh "$p" | cut -f1) ($(( $(date +%s) - t ))s)"
}
# The host's payload first; a foreign one (arm64) is cross-built in the
# background while the host's kernels boot (TCG runs a VM on one core).
host_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
declare -A building # arch -> pid of its background build
for arch in "${archs[@]}"; do
	if [[ $arch == "$host_arch" || ${#archs[@]} == 1 ]]; then
		build_payload "$arch"
	fi
done
for arch in "${archs[@]}"; do
	[[ -d $payloads/$arch ]] && continue
	build_payload "$arch" >"$payloads/build-$arch.log" 2>&1 &
	building[$arch]=$!
done
# payload_ready ARCH: waits for ARCH's background build, if any.
payload_ready() {
	local pid=${building[$1]:-}
	[[ -n $pid ]] || return 0
	unset "building[$1]"
	if ! wait "$pid"; then
		cat "$payloads/build-$1.log" >&2
		die "the $1 payload could not be built"
	fi
	cat "$payloads/build-$1.log"
}

# ------------------------------------------------------------------ VM runs
labels=(tracer mremapreceiver e2e ia32 kprobe-profile)
declare -A title=(
	[tracer]=./internal/tracer
	[mremapreceiver]=./receiver/mremapreceiver
	[e2e]=./test/e2e
	[ia32]="ia32 kprobe+tracepoint"
	[kprobe-profile]=kprobe_profile
)
# The quick set: every field of the helper's calls through the tracer, the
# receiver (logs and metrics) and the built collector, each in kprobe and
# tracepoint mode; probe: auto choosing kprobe and saying why (tracer,
# collector, kprobe-profile); the kernel features the choice reads; the
# call stacks the kernel captures (the verifier accepts the capture).
declare -A quick_run=(
	[tracer]='^(TestCallsAndAggregates|TestAutoSaysWhy|TestProbeKernelHere|TestSyscallTracepoints|TestMoveAcrossTwoMappings|TestCallStackCapture)$'
	[mremapreceiver]='^(TestReceiverLogsAndMetrics)$'
	[e2e]='^(TestCollectorFileExporter|TestCollectorAutoSaysWhich)$'
)
# Left out of the full set too: the gateway outage and bad-input tests,
# minutes of waiting on the network, the same on every kernel (the host
# runs them).
declare -A full_skip=(
	[e2e]='^(TestAgentQueueOutage|TestGatewayBadInput)$'
)

# commands ARCH SET: the labelled commands for run.sh.
commands() {
	local arch=$1 set=$2 gotest="-test.v -test.count=1 -test.timeout=$go_timeout" syms=" __arm64_sys_mremap"
	[[ $arch == amd64 ]] && syms=" (__x64|__ia32)_sys_mremap"
	run() { # label
		if [[ $set == quick ]]; then
			printf '%s -test.run %q' "$gotest" "${quick_run[$1]}"
		else
			printf '%s' "$gotest"
			[[ -z ${full_skip[$1]:-} ]] || printf ' -test.skip %q' "${full_skip[$1]}"
		fi
	}
	cmds=(
		"setup::mkdir -p $(printf %q "$(dirname "$repo")") && ln -sfn /payload/repo $(printf %q "$repo") && ls $(printf %q "$repo")/"
		"info::uname -a; echo; grep -E '$syms\$' /proc/kallsyms | cut -d' ' -f2-; ls /sys/bus/event_source/devices/"
		"tracer::./tracer.test $(run tracer)"
		"mremapreceiver::cd mremapreceiver && ./receiver.test $(run mremapreceiver)"
		"e2e::./e2e.test $(run e2e)"
	)
	[[ $arch == amd64 ]] && cmds+=("ia32::GO_TEST_TIMEOUT=$go_timeout MREMAP_SET=$set sh ./ia32.sh")
	cmds+=("kprobe-profile::sh ./kprobe-profile.sh")
}

logdir=$cache/logs/suite-$(date +%Y%m%d-%H%M%S)
mkdir -p "$logdir"
declare -A result # "<name>|<label>" -> PASS / FAIL ... / SKIP
declare -A vm     # "<name>" -> ok / FAIL (...): how the VM itself went
declare -A secs   # "<name>" -> wall time of its VM, fetch included
declare -A pkgof  # "<name>" -> the package that ran
kernels=()
passed=() # "name|package|release|arch|set" of each kernel whose every command passed
failed=0

# section LOG LABEL: the console output of one command.
section() {
	tr -d '\r' <"$1" | awk -v b="VMTEST BEGIN $2" -v e="VMTEST END $2 " '
		$0 == b { on = 1; next }
		on && index($0, e) == 1 { exit }
		on { print }'
}

run_kernel() { # name package arch set
	local name=$1 pkg=$2 arch=$3 set=$4 log=$logdir/$1.log out=$logdir/$1.out rc label line t
	t=$(date +%s)
	# Where calls in flight are kept: the startup reason must say so
	# (guest/kprobe-profile.sh checks it).
	local pairing="task storage"
	[[ $pkg == *-rt-* ]] && pairing="LRU hash (PREEMPT_RT kernel)"
	kernels+=("$name")
	echo
	local resolved
	resolved=$("$here/fetch-kernel.sh" --arch "$arch" --resolve "$pkg" 2>/dev/null) || resolved="$pkg (apt serves none)"
	say "===== $name: $resolved ($arch, $set set)"
	commands "$arch" "$set"
	envs=(-e MREMAP_REQUIRE_PROBES=1 -e MREMAP_HELPER=/payload/mremap-helper -e MREMAP_START_SHUTDOWN_CYCLES=10
		-e OTELCOL_MREMAP=/payload/otelcol-mremap -e MREMAP_TEST_CERTS=/payload/certs -e GOTRACEBACK=all -e "MREMAP_EXPECT_PAIRING=$pairing")
	[[ -x $payloads/$arch/mremap-cstack ]] && envs+=(-e MREMAP_CSTACK=/payload/mremap-cstack)
	if [[ $arch == amd64 ]]; then
		envs+=(-e MREMAP_HELPER_386=/payload/ia32/mremap-helper)
		[[ -x $payloads/amd64/ia32/mremap-helper32 ]] && envs+=(-e MREMAP_HELPER_GCC32=/payload/ia32/mremap-helper32)
	fi
	set +e
	if [[ ${VMTEST_VERBOSE:-0} == 1 ]]; then
		"$here/run.sh" -t "$vm_timeout" -l "$log" --arch "$arch" "${envs[@]}" "$pkg" "$payloads/$arch" -- "${cmds[@]}" 2>&1 | tee "$out"
		rc=${PIPESTATUS[0]}
	else
		"$here/run.sh" -t "$vm_timeout" -l "$log" --arch "$arch" "${envs[@]}" "$pkg" "$payloads/$arch" -- "${cmds[@]}" >"$out" 2>&1
		rc=$?
		cat "$out"
	fi
	set -e
	secs[$name]=$(( $(date +%s) - t ))
	pkgof[$name]=$(sed -n 's/^vmtest: kernel=\([^ ]*\) .*/\1/p' "$out" | head -1)
	pkgof[$name]=${pkgof[$name]:-$pkg}
	if [[ $rc == 3 ]]; then
		vm[$name]="FAIL (no kernel)"
		say "FAIL: $name: apt cannot serve $pkg ($arch)"
		for label in "${labels[@]}"; do result[$name|$label]="FAIL (no kernel)"; done
		failed=1
		return
	fi
	for label in "${labels[@]}"; do
		if [[ $label == ia32 && $arch != amd64 ]]; then
			# AArch32 tasks enter through __arm64_sys_mremap too, but the
			# syscalls tracepoints skip compat syscalls and no raw
			# tracepoint program catches them on arm64: see README.md.
			result[$name|$label]="SKIP (no ia32)"
			continue
		fi
		line=$(grep -E "^(PASS|FAIL) $label( |$)" "$out" | tail -1 || true)
		case $line in
		PASS*) result[$name|$label]=PASS ;;
		FAIL*"did not finish"*) result[$name|$label]="FAIL (hung)" ;;
		FAIL*"not started"*) result[$name|$label]="FAIL (not run)" ;;
		FAIL*) result[$name|$label]=FAIL ;;
		*) result[$name|$label]="FAIL (no VM)" ;;
		esac
	done
	[[ $rc == 4 ]] && say "FAIL: $name: the VM hit the ${vm_timeout}s timeout and was killed"
	vm[$name]=ok
	if grep -qE '^FAIL (setup|info)( |$)' "$out"; then
		say "FAIL: $name: a setup command failed (see the console log $log)"
		vm[$name]="FAIL (setup)"
	fi
	grep -q '^FAIL kernel-log' "$out" && vm[$name]="FAIL (kernel log)"
	grep -q 'VM stopped without' "$out" && vm[$name]="FAIL (crashed)"
	[[ $rc == 4 ]] && vm[$name]="FAIL (timeout)"
	[[ $rc == 2 ]] && vm[$name]="FAIL (run.sh)"
	if [[ $rc == 0 ]]; then
		local release
		release=$(sed -n 's/^kernelrelease=//p' "$cache/${pkgof[$name]}/version" 2>/dev/null || true)
		passed+=("$name|${pkgof[$name]}|${release:-?}|$arch|$set")
	else
		failed=1
	fi
	[[ -s $log ]] || return 0
	report_kernel "$name" "$log"
}

# report_kernel NAME LOG: each command's verdicts, the kprobe-profile
# output, and the full output of each failed command.
report_kernel() {
	local name=$1 log=$2 label n
	for label in "${labels[@]}"; do
		[[ ${result[$name|$label]} == SKIP* ]] && continue
		echo "----- $label [$name]: ${result[$name|$label]}"
		section "$log" "$label" | grep -E '^ *--- (PASS|FAIL|SKIP)|^(PASS|FAIL|ok)$|^panic:|^FAIL:|^ok: |^note: ' || true
	done
	echo "----- kprobe-profile output [$name]"
	section "$log" kprobe-profile
	for label in "${labels[@]}"; do
		[[ ${result[$name|$label]} == PASS || ${result[$name|$label]} == SKIP* ]] && continue
		n=$(section "$log" "$label" | wc -l)
		echo "===== output of failed command $label [$name] ($n lines; console log $log)"
		if [[ $n -le 4000 ]]; then
			section "$log" "$label"
		else
			section "$log" "$label" | grep -n -B 5 -A 60 -E -- '--- FAIL|^panic:' | head -2000
			echo "... last 300 lines:"
			section "$log" "$label" | tail -300
		fi
		echo "===== end of $label [$name]"
	done
}

for line in "${sel[@]}"; do
	IFS='|' read -r name pkg arch set <<<"$line"
	payload_ready "$arch"
	run_kernel "$name" "$pkg" "$arch" "${VMTEST_SET:-$set}"
done

# ------------------------------------------------------------------ results
# Each kernel that passed, in both modes: test/vm/results.tsv keeps the
# date each kernel line last passed, and docs/kernels-tested.md shows it.
if [[ ${VMTEST_RESULTS:-1} == 1 && ${#passed[@]} -gt 0 ]]; then
	today=$(date -u +%F)
	for p in "${passed[@]}"; do
		IFS='|' read -r name pkg release arch set <<<"$p"
		for mode in kprobe tracepoint; do
			echo "$name	$mode	$release	$arch	$set	$today"
		done
	done | "$here/kernels-tested.sh" --record
fi

# ------------------------------------------------------------------ summary
echo
say "summary (logs in $logdir)"
w=6
for k in "${kernels[@]}"; do (( ${#k} > w )) && w=${#k}; done
printf "%-${w}s  %-42s  %-5s  %-16s  %6s" kernel package set vm secs
for label in "${labels[@]}"; do printf "  %-24s" "${title[$label]}"; done
echo
for line in "${sel[@]}"; do
	IFS='|' read -r k _ _ set <<<"$line"
	printf "%-${w}s  %-42s  %-5s  %-16s  %6s" "$k" "${pkgof[$k]:-?}" "${VMTEST_SET:-$set}" "${vm[$k]:-FAIL}" "${secs[$k]:-?}"
	for label in "${labels[@]}"; do printf "  %-24s" "${result[$k|$label]:-?}"; done
	echo
done
say "total wall time $(( $(date +%s) - t0 ))s"
if [[ $failed != 0 ]]; then
	say "FAIL"
	exit 1
fi
say "PASS"
