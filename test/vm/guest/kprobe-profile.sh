#!/bin/sh
# Runs inside the VM (busybox sh, cwd /payload), from test/vm/suite.sh.
#
# Starts the collector with `probe: auto` and checks that it chose kprobe and
# said why, and which pairing it chose (MREMAP_EXPECT_PAIRING, if set). While its probes are attached, makes the helper's calls from a
# 64-bit and a 32-bit process, prints <tracefs>/kprobe_events and
# kprobe_profile, and checks that our kretprobes are there: created through
# tracefs with maxactive 4096 (r4096:<group>/<event>), named the way
# internal/tracer's kprobe_profile reader expects (cilium/ebpf turns
# __x64_sys_mremap into the event name _x64_sys_mremap, __arm64_sys_mremap
# into _arm64_sys_mremap), with hits counted.
# That is where the tracer reads missed kretprobes on kernels before 6.6.
# Finally it stops the collector with SIGTERM and checks the events are gone.
set -u
tracefs=/sys/kernel/tracing
calls=9 # calls per helper run (internal/mremaptest.Expected)
bad=0
fail() { echo "FAIL: $*"; bad=1; }

dir=$(mktemp -d)
cat >"$dir/config.yaml" <<EOC
receivers:
  mremap:
    probe: auto
    collection_interval: 200ms
    filter: {comms: [mremap-helper]}
exporters:
  file: {path: $dir/metrics.json, flush_interval: 100ms}
service:
  pipelines:
    metrics: {receivers: [mremap], exporters: [file]}
  telemetry: {metrics: {level: none}}
EOC

# kprobe events that are not ours (a collector killed without a shutdown
# leaves its tracefs events behind).
cp "$tracefs/kprobe_events" "$dir/events.before"

"${OTELCOL_MREMAP:-/payload/otelcol-mremap}" --config "$dir/config.yaml" >"$dir/collector.log" 2>&1 &
pid=$!
i=0
until grep -q "Everything is ready" "$dir/collector.log"; do
	i=$((i + 1))
	if [ $i -gt 1200 ] || ! kill -0 $pid 2>/dev/null; then
		echo "FAIL: the collector did not become ready; its output:"
		cat "$dir/collector.log"
		kill -KILL $pid 2>/dev/null
		exit 1
	fi
	sleep 0.1
done

echo "--- startup log, probe choice:"
grep -E 'probe auto chose|"probe":' "$dir/collector.log" | head -5
grep -q '"probe": "kprobe"' "$dir/collector.log" || fail 'probe: auto did not attach in kprobe mode'
grep -q 'probe auto chose kprobe' "$dir/collector.log" || fail 'the startup log does not say why auto chose kprobe'
# Where calls in flight are kept: test/vm/suite.sh expects the LRU hash on
# PREEMPT_RT kernels, task storage elsewhere.
if [ -n "${MREMAP_EXPECT_PAIRING:-}" ]; then
	if grep -qF "pairing: $MREMAP_EXPECT_PAIRING" "$dir/collector.log"; then
		echo "ok: the startup reason says pairing: $MREMAP_EXPECT_PAIRING"
	else
		fail "the startup reason does not say 'pairing: $MREMAP_EXPECT_PAIRING'"
	fi
fi

"${MREMAP_HELPER:-/payload/mremap-helper}" >/dev/null || fail "the 64-bit helper failed"
if [ -x /payload/ia32/mremap-helper ]; then
	/payload/ia32/mremap-helper >/dev/null || fail "the 32-bit helper failed"
fi

cat "$tracefs/kprobe_events" >"$dir/events.now"
cat "$tracefs/kprobe_profile" >"$dir/profile.now"
echo "--- $tracefs/kprobe_events"
cat "$dir/events.now"
echo "--- $tracefs/kprobe_profile (event, hits, missed)"
cat "$dir/profile.now"

# kprobe_events and kprobe_profile list the same kprobe events in the same
# order; kprobe_profile names an event without its group. Pair them up by
# line and keep the events created since the collector started.
awk 'NR == FNR { n = split($1, a, ":"); ev[FNR] = a[n]; def[FNR] = $0; next }
	{ print ev[FNR], $1, $2, $3, "|", def[FNR] }' "$dir/events.now" "$dir/profile.now" |
	while read -r ge name hits missed _ def; do
		grep -qxF "$def" "$dir/events.before" || echo "$ge $name $hits $missed $def"
	done >"$dir/ours"
echo "--- our events: group/event, kprobe_profile name, hits, missed, definition"
cat "$dir/ours"

# check EVENT SYMBOL MIN-HITS
check() {
	line=$(awk -v ev="$1" '$2 == ev' "$dir/ours")
	if [ -z "$line" ]; then
		fail "no kretprobe event $1 of ours in kprobe_profile"
		return
	fi
	set -- $line "$@"
	# $1 group/event  $2 name  $3 hits  $4 missed  $5.. definition  then EVENT SYMBOL MIN
	ge=$1 hits=$3 missed=$4 def="$5 $6"
	shift $(($# - 3))
	[ "${ge#*/}" = "$1" ] || fail "kprobe_profile name $1 is not kprobe_events' ${ge#*/}: files out of step"
	case $def in
	"r4096:$ge $2") ;;
	*) fail "$1: definition '$def', want 'r4096:$ge $2' (a kretprobe with maxactive 4096)" ;;
	esac
	if [ "$hits" -ge "$3" ] 2>/dev/null; then
		echo "ok: $1 on $2: hits=$hits (>= $3) missed=$missed"
	else
		fail "$1 on $2: hits=$hits, want >= $3"
	fi
}
case $(uname -m) in
x86_64) check _x64_sys_mremap __x64_sys_mremap $calls ;;
aarch64) check _arm64_sys_mremap __arm64_sys_mremap $calls ;;
*) fail "no kprobe symbol known for $(uname -m)" ;;
esac
if grep -qE ' __ia32_sys_mremap$' /proc/kallsyms && [ -x /payload/ia32/mremap-helper ]; then
	check _ia32_sys_mremap __ia32_sys_mremap $calls
fi

sleep 1 # one more emission with the calls
kill -TERM $pid
wait $pid
rc=$?
[ $rc = 0 ] || fail "collector exited with $rc after SIGTERM"
if grep -E '	(error|warn)	' "$dir/collector.log"; then
	fail "the collector logged errors or warnings (above)"
fi
if grep -q '"reason","value":{"stringValue":"probe_missed"' "$dir/metrics.json"; then
	echo "ok: mremap.events.dropped{reason=probe_missed} was emitted"
else
	fail "no mremap.events.dropped{reason=probe_missed} point in the metrics"
fi
if ! cmp -s "$dir/events.before" "$tracefs/kprobe_events"; then
	fail "the collector left kprobe events behind after its shutdown:"
	cat "$tracefs/kprobe_events"
fi
[ $bad = 0 ] && echo "kprobe-profile: all checks passed"
exit $bad
