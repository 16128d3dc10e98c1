#!/usr/bin/env bash
# Side-by-side: what observing mremap(2) adds to each call of a tight loop.
#
# bin/mremap-helper -loop N makes N shrink/grow pairs of mremap(2) calls on
# one thread (flags 0, a 2-page anonymous mapping shrunk to 1 page and grown
# back in place) and prints the ns per call. It runs RUNS times in each setup:
#
#   none                    nothing attached
#   bpftrace                tracepoint:syscalls:sys_{enter,exit}_mremap paired
#                           per tid: a count by comm and result, a hist of
#                           durations (what our kernel side does for metrics)
#   otelcol metrics         bin/otelcol-mremap, the mremap receiver in a
#                           metrics pipeline to the debug exporter (basic)
#   otelcol logs+metrics    the same, plus a logs pipeline to the file
#                           exporter: one record per call
#
# and the table gives the median. For the logs run it also checks that every
# call the loop made was written as a log record, or counted in
# mremap.events.dropped: nothing is lost silently.
#
# Needs root, bpftrace (installed with apt if missing), jq, and `make build`.
# Run it with `make bench-bpftrace`. PAIRS and RUNS override the defaults.
set -euo pipefail

cd "$(dirname "$0")/../.."
PAIRS=${PAIRS:-100000}
RUNS=${RUNS:-5}
HELPER=${MREMAP_HELPER:-bin/mremap-helper}
COLLECTOR=${OTELCOL_MREMAP:-bin/otelcol-mremap}
INTERVAL=1s # the receiver's collection_interval

if [[ $(id -u) != 0 ]]; then
	echo "bpftrace.sh: needs root (eBPF)" >&2
	exit 1
fi
for f in "$HELPER" "$COLLECTOR"; do
	[[ -x $f ]] || { echo "bpftrace.sh: $f missing; run make build" >&2; exit 1; }
done
if ! command -v bpftrace >/dev/null; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bpftrace >/dev/null
fi
command -v jq >/dev/null || { echo "bpftrace.sh: needs jq" >&2; exit 1; }

tmp=$(mktemp -d /tmp/mremap-bench.XXXXXX)
bg_pid=""
cleanup() {
	if [[ -n $bg_pid ]] && kill -0 "$bg_pid" 2>/dev/null; then
		kill -INT "$bg_pid" 2>/dev/null || true
		wait "$bg_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# wait_for FILE PATTERN: until FILE holds PATTERN (the tracer attached), or
# fail if the background process exits or 60 s pass.
wait_for() {
	local file=$1 pattern=$2 i
	for ((i = 0; i < 600; i++)); do
		grep -q "$pattern" "$file" 2>/dev/null && return 0
		if ! kill -0 "$bg_pid" 2>/dev/null; then
			echo "bpftrace.sh: the tracer exited before \"$pattern\":" >&2
			cat "$file" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "bpftrace.sh: no \"$pattern\" in $file after 60 s" >&2
	cat "$file" >&2
	exit 1
}

# stop_bg: SIGINT the tracer and wait for it to finish (the collector shuts
# down gracefully, delivering what is left in the ring buffer).
stop_bg() {
	kill -INT "$bg_pid"
	wait "$bg_pid" || true
	bg_pid=""
}

declare -A median runs
order=()
calls_made=0 # calls of the current setup, all runs
tids=()      # the loop's thread ids of the current setup

# measure NAME: RUNS loops; keeps the median ns per call.
measure() {
	local name=$1 i out ns all=()
	calls_made=0
	tids=()
	for ((i = 0; i < RUNS; i++)); do
		out=$("$HELPER" -loop "$PAIRS")
		ns=$(sed -n 's/.*ns_per_call=\([0-9.]*\).*/\1/p' <<<"$out")
		calls_made=$((calls_made + $(sed -n 's/.*calls=\([0-9]*\).*/\1/p' <<<"$out")))
		tids+=("$(sed -n 's/.*tid=\([0-9]*\).*/\1/p' <<<"$out")")
		all+=("$ns")
	done
	median[$name]=$(printf '%s\n' "${all[@]}" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
	runs[$name]=${all[*]}
	order+=("$name")
	echo "  $name: ${all[*]} ns/call" >&2
}

echo "mremap loop: $PAIRS shrink/grow pairs ($((2 * PAIRS)) calls) x $RUNS runs per setup" >&2

# 1. Nothing attached.
measure "none"

# 2. bpftrace.
cat >"$tmp/mremap.bt" <<'EOF'
tracepoint:syscalls:sys_enter_mremap
{
	@start[tid] = nsecs;
}

tracepoint:syscalls:sys_exit_mremap
/@start[tid]/
{
	@calls[comm, args->ret < 0] = count();
	@dur = hist(nsecs - @start[tid]);
	delete(@start[tid]);
}
EOF
bpftrace "$tmp/mremap.bt" >"$tmp/bpftrace.out" 2>&1 &
bg_pid=$!
wait_for "$tmp/bpftrace.out" "Attaching"
measure "bpftrace"
stop_bg
bt_calls=$(awk '/^@calls\[mremap-helper, 0\]/ {print $NF}' "$tmp/bpftrace.out")
echo "  bpftrace counted ${bt_calls:-0} calls of mremap-helper (the loop made $calls_made)" >&2

# 3. The collector, metrics only.
cat >"$tmp/metrics.yaml" <<EOF
receivers:
  mremap:
    collection_interval: $INTERVAL
exporters:
  debug:
    verbosity: basic
service:
  pipelines:
    metrics:
      receivers: [mremap]
      exporters: [debug]
  telemetry:
    metrics:
      level: none
EOF
"$COLLECTOR" --config "$tmp/metrics.yaml" >"$tmp/collector-metrics.log" 2>&1 &
bg_pid=$!
wait_for "$tmp/collector-metrics.log" "Everything is ready"
measure "otelcol-mremap metrics"
stop_bg

# 4. The collector, logs and metrics. The metrics also go to a file, once per
# collection interval, to read mremap.events.dropped.
cat >"$tmp/logs.yaml" <<EOF
receivers:
  mremap:
    collection_interval: $INTERVAL
    ring_buffer_size: 4194304
exporters:
  debug:
    verbosity: basic
  file/logs:
    path: $tmp/logs.json
  file/metrics:
    path: $tmp/metrics.json
service:
  pipelines:
    logs:
      receivers: [mremap]
      exporters: [file/logs]
    metrics:
      receivers: [mremap]
      exporters: [debug, file/metrics]
  telemetry:
    metrics:
      level: none
EOF
"$COLLECTOR" --config "$tmp/logs.yaml" >"$tmp/collector-logs.log" 2>&1 &
bg_pid=$!
wait_for "$tmp/collector-logs.log" "Everything is ready"
measure "otelcol-mremap logs+metrics"
# Drops are counted when a record is submitted, so they are final once the
# loop ends; wait for two metric emissions after it, then shut down (which
# writes every record still in the ring buffer).
sleep 2.5
stop_bg

written=0
for tid in "${tids[@]}"; do
	n=$({ grep -oF "{\"key\":\"thread.id\",\"value\":{\"intValue\":\"$tid\"}}" "$tmp/logs.json" || true; } | wc -l)
	written=$((written + n))
done
# The last emission's data points of mremap.events.dropped, by reason.
dropped_json=$(tail -n 1 "$tmp/metrics.json" | jq -c '[.resourceMetrics[].scopeMetrics[].metrics[]
	| select(.name == "mremap.events.dropped") | .sum.dataPoints[]
	| {(.attributes[] | select(.key == "reason") | .value.stringValue): (.asInt | tonumber)}] | add')
rb_full=$(jq '.ring_buffer_full // 0' <<<"$dropped_json")
rate_limited=$(jq '.rate_limited // 0' <<<"$dropped_json")
missing=$((calls_made - written))

echo
echo "| setup | median ns/call | added ns/call | runs (ns/call) |"
echo "| --- | ---: | ---: | --- |"
base=${median[none]}
for name in "${order[@]}"; do
	added=$(awk -v m="${median[$name]}" -v b="$base" 'BEGIN {printf "%+.0f", m - b}')
	[[ $name == none ]] && added="—"
	echo "| $name | ${median[$name]} | $added | ${runs[$name]} |"
done
echo
echo "otelcol-mremap logs+metrics: the loop made $calls_made calls; $written log records of them were written;" \
	"$missing missing; mremap.events.dropped: $dropped_json (ring_buffer_full $rb_full, all processes)."
if ((missing > rb_full + rate_limited)); then
	echo "LOST SILENTLY: $((missing - rb_full - rate_limited)) calls are neither written nor counted as dropped" >&2
	exit 1
fi
echo "Nothing lost silently: missing ($missing) <= ring_buffer_full + rate_limited ($((rb_full + rate_limited)))."
