#!/usr/bin/env bash
# run.sh - run commands inside a throw-away QEMU VM booting a Debian kernel.
#
# usage: test/vm/run.sh [options] KERNEL PAYLOAD_DIR [--] CMD [CMD...]
#
#   KERNEL       Debian kernel package name, e.g. linux-image-6.1.0-50-cloud-amd64,
#                or a pattern such as 'linux-image-6.12.*+deb12-cloud-arm64'
#                (resolved and fetched on demand by fetch-kernel.sh into
#                .cache/vm/<package>/), or a path to a bzImage/Image file.
#   PAYLOAD_DIR  directory copied to /payload in the VM (static binaries, data);
#                "-" for none.
#   CMD          shell command line run by busybox sh in /payload, in order.
#                Optionally "LABEL::command" to name it (default cmd1, cmd2, ...).
#                PATH inside is /payload:/bin:/sbin:/usr/bin:/usr/sbin.
#
# options:
#   -t, --timeout SECS   hard wall-clock limit for the whole VM (default 600,
#                        env VMTEST_TIMEOUT)
#   -m, --mem MB         guest memory (default 2048)
#   -s, --smp N          guest CPUs (default 2)
#   -l, --log FILE       console log file (default .cache/vm/logs/<kernel>-<time>.log)
#   -a, --append ARGS    extra kernel command line
#   -e, --env K=V        export K=V for the commands (repeatable)
#   -v, --verbose        also stream the console to stdout while the VM runs
#   -z, --compress C     initramfs compression: gzip (default) or none
#       --arch A         the guest's architecture: amd64 (qemu-system-x86_64)
#                        or arm64 (qemu-system-aarch64 -M virt); default: arm64
#                        if KERNEL ends in -arm64, else amd64
#       --accel A        auto (default; KVM only if /dev/kvm is usable and the
#                        CPU has vmx/svm), kvm, or tcg (env VMTEST_ACCEL)
#       --cpu MODEL      QEMU -cpu model (default: host with KVM, max with TCG)
#       --tcg-thread T   TCG threading: single (default) or multi (env
#                        VMTEST_TCG_THREAD); see "TCG and kernel text patching"
#                        in test/vm/README.md for why multi is not the default
#       --keep           keep the staging dir and initramfs (path printed)
#   -h, --help
#
# Console protocol (all lines on ttyS0, captured to the log):
#   VMTEST BOOTED uptime=<s>            init started
#   VMTEST BEGIN <label>
#   ... command stdout+stderr ...
#   VMTEST END <label> rc=<rc> secs=<s>
#   VMTEST KERNEL LOG BEGIN / END       the kernel log (dmesg), only if it
#                                       has a BUG: or WARNING: line
#   VMTEST DONE
#
# The console shows only errors and worse (printk level 3), so after the
# commands the guest prints its whole kernel log if it holds a BUG: or
# WARNING:. A BUG: (e.g. "BUG: sleeping function called from invalid
# context", which PREEMPT_RT kernels print for what RT forbids), or a
# WARNING whose report names a bpf function or file, fails the run: it is
# reported as "FAIL kernel-log".
#
# Exit codes: 0 all commands passed; 1 a command failed, the kernel log
# showed a BUG or a bpf WARNING, or the VM died before VMTEST DONE; 2 usage / setup error; 3 kernel package not available from apt
# (caller should skip this kernel); 4 VM timed out.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${VMTEST_CACHE:-$repo/.cache/vm}

timeout_s=${VMTEST_TIMEOUT:-600}
mem=2048
smp=2
log=
append_extra=
verbose=${VMTEST_VERBOSE:-0}
compress=gzip
cpu=
accel_mode=${VMTEST_ACCEL:-auto}
tcg_thread=${VMTEST_TCG_THREAD:-single}
arch=
keep=0
envs=()

die() { echo "vmtest: $*" >&2; exit 2; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
	case $1 in
	-t|--timeout) timeout_s=$2; shift 2 ;;
	-m|--mem) mem=$2; shift 2 ;;
	-s|--smp) smp=$2; shift 2 ;;
	-l|--log) log=$2; shift 2 ;;
	-a|--append) append_extra=$2; shift 2 ;;
	-e|--env) [[ $2 == *=* ]] || die "--env wants K=V"; envs+=("$2"); shift 2 ;;
	-v|--verbose) verbose=1; shift ;;
	-z|--compress) compress=$2; shift 2 ;;
	--cpu) cpu=$2; shift 2 ;;
	--accel) accel_mode=$2; shift 2 ;;
	--tcg-thread) tcg_thread=$2; shift 2 ;;
	--arch) arch=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	-h|--help) usage ;;
	--) shift; break ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) break ;;
	esac
done
[[ $# -ge 3 ]] || usage
kernel=$1 payload=$2
shift 2
[[ ${1:-} == -- ]] && shift
[[ $# -ge 1 ]] || usage
[[ $timeout_s =~ ^[0-9]+$ && $timeout_s -gt 0 ]] || die "bad timeout '$timeout_s'"
[[ $compress == gzip || $compress == none ]] || die "bad --compress '$compress'"
[[ $accel_mode =~ ^(auto|kvm|tcg)$ ]] || die "bad --accel '$accel_mode'"
[[ $tcg_thread =~ ^(single|multi)$ ]] || die "bad --tcg-thread '$tcg_thread'"
[[ $payload == - || -d $payload ]] || die "payload dir '$payload' not found"
if [[ -z $arch ]]; then
	arch=amd64
	[[ $kernel == *-arm64 ]] && arch=arm64
fi
[[ $arch =~ ^(amd64|arm64)$ ]] || die "bad --arch '$arch' (amd64 or arm64)"
host_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)

# ---------------------------------------------------------------- host deps
need_pkgs=()
if [[ $arch == amd64 ]]; then
	qemu_bin=qemu-system-x86_64
	command -v $qemu_bin >/dev/null || need_pkgs+=(qemu-system-x86)
else
	qemu_bin=qemu-system-aarch64
	command -v $qemu_bin >/dev/null || need_pkgs+=(qemu-system-arm)
fi
command -v cpio >/dev/null || need_pkgs+=(cpio)
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
	need_pkgs+=(busybox-static)
fi
if [[ ${#need_pkgs[@]} -gt 0 ]]; then
	[[ $(id -u) == 0 ]] || die "missing packages: ${need_pkgs[*]} (apt-get install them)"
	echo "vmtest: installing ${need_pkgs[*]}" >&2
	for try in $(seq 1 30); do
		if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >/dev/null 2>&1; then
			break
		fi
		# dpkg may be locked by a concurrent install, or lists may be stale.
		[[ $try == 2 ]] && apt-get update -q >/dev/null 2>&1 || true
		[[ $try == 30 ]] && die "apt-get install ${need_pkgs[*]} failed"
		sleep 10
	done
fi
busybox=/bin/busybox
[[ -x $busybox ]] || die "$busybox missing (apt-get install busybox-static)"
# The host's busybox lists the applets; the guest gets one of its own
# architecture (busybox-static:arm64, unpacked into the cache).
guest_busybox=$busybox
if [[ $arch != "$host_arch" ]]; then
	guest_busybox=$("$here/fetch-kernel.sh" --busybox "$arch") || die "cannot fetch busybox-static:$arch"
fi

# ---------------------------------------------------------------- kernel
if [[ -f $kernel ]]; then
	vmlinuz=$kernel
	kname=$(basename "$kernel")
else
	set +e
	vmlinuz=$("$here/fetch-kernel.sh" --arch "$arch" "$kernel")
	rc=$?
	set -e
	if [[ $rc == 3 ]]; then
		echo "vmtest: SKIP $kernel: kernel package not available from apt" >&2
		exit 3
	fi
	[[ $rc == 0 ]] || die "fetch-kernel.sh $kernel failed (rc=$rc)"
	kname=$(sed -n 's/^package=//p' "$(dirname "$vmlinuz")/version")
	kname=${kname:-$kernel}
fi

# ---------------------------------------------------------------- initramfs
stage=$(mktemp -d "${TMPDIR:-/tmp}/vmtest.XXXXXX")
# qpid is a `timeout` wrapper around QEMU: TERM to it is forwarded to QEMU, and
# it KILLs QEMU by itself if this script dies without cleaning up.
kill_vm() {
	kill -TERM "$qpid" 2>/dev/null || return 0
	for _ in $(seq 1 25); do kill -0 "$qpid" 2>/dev/null || return 0; sleep 0.2; done
	kill -KILL "$qpid" 2>/dev/null || true
}
cleanup() {
	[[ -n ${qpid:-} ]] && kill_vm
	[[ -n ${tpid:-} ]] && kill "$tpid" 2>/dev/null || true
	if [[ $keep == 1 ]]; then echo "vmtest: kept $stage" >&2; else rm -rf "$stage"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
root=$stage/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,root,payload,vmtest/cmds}
cp "$guest_busybox" "$root/bin/busybox"
# Applet symlinks at build time (busybox --install needs /proc; this is cheaper).
while read -r applet; do
	applet=${applet#/}
	[[ -z $applet || -e $root/$applet || -L $root/$applet ]] && continue
	mkdir -p "$root/$(dirname "$applet")"
	ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)
[[ -L $root/bin/sh ]] || ln -sf /bin/busybox "$root/bin/sh"
# Initial console for init's stdio (needs root for mknod; init re-opens
# /dev/console after mounting devtmpfs anyway).
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
mknod -m 666 "$root/dev/null" c 1 3 2>/dev/null || true

echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "127.0.0.1 localhost vmtest" >"$root/etc/hosts"
echo "vmtest" >"$root/etc/hostname"

[[ $payload == - ]] || cp -a "$payload/." "$root/payload/"

{
	echo "export PATH=/payload:/bin:/sbin:/usr/bin:/usr/sbin"
	echo "export HOME=/root TMPDIR=/tmp"
	for kv in ${envs[@]+"${envs[@]}"}; do printf 'export %q\n' "$kv"; done
} >"$root/vmtest/env"

labels=()
i=0
for c in "$@"; do
	i=$((i + 1))
	if [[ $c =~ ^([A-Za-z0-9_.+/-]+)::(.*)$ ]]; then
		label=${BASH_REMATCH[1]} c=${BASH_REMATCH[2]}
	else
		label=cmd$i
	fi
	label=${label//\//_}
	labels+=("$label")
	n=$(printf '%03d' "$i")
	printf '%s\n' "$label" >"$root/vmtest/cmds/$n.label"
	printf '%s\n' "$c" >"$root/vmtest/cmds/$n.sh"
done

cat >"$root/init" <<'EOF'
#!/bin/sh
# vmtest init (PID 1)
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
# Keep kernel chatter off the console while commands run (errors and worse only).
echo 3 >/proc/sys/kernel/printk 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing || echo "vmtest: WARN: tracefs mount failed"
mount -t debugfs debugfs /sys/kernel/debug || echo "vmtest: WARN: debugfs mount failed"
mkdir -p /sys/fs/bpf
mount -t bpf bpf /sys/fs/bpf || echo "vmtest: WARN: bpffs mount failed"
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
hostname vmtest
ulimit -l unlimited 2>/dev/null
. /vmtest/env
read up _ </proc/uptime
echo
echo "VMTEST BOOTED uptime=$up"
for f in /vmtest/cmds/*.sh; do
	label=$(cat "${f%.sh}.label")
	echo "VMTEST BEGIN $label"
	t0=$(date +%s)
	(cd /payload && exec /bin/sh "$f") </dev/null
	rc=$?
	t1=$(date +%s)
	echo
	echo "VMTEST END $label rc=$rc secs=$((t1 - t0))"
done
if dmesg | grep -qE 'BUG:|WARNING:'; then
	echo "VMTEST KERNEL LOG BEGIN"
	dmesg
	echo "VMTEST KERNEL LOG END"
fi
read up _ </proc/uptime
echo "VMTEST DONE uptime=$up"
sync
poweroff -f
# poweroff failed? PID 1 exiting panics, and panic=-1 + -no-reboot stops QEMU.
exit 1
EOF
chmod 755 "$root/init"

initrd=$stage/initramfs.cpio
if [[ $compress == gzip ]]; then
	initrd+=.gz
	(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet | gzip -1 >"$initrd")
else
	(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet >"$initrd")
fi

# ---------------------------------------------------------------- boot
if [[ -z $log ]]; then
	mkdir -p "$cache/logs"
	log=$cache/logs/$kname-$(date +%Y%m%d-%H%M%S)-$$.log
	# keep the 50 newest default logs
	ls -1t "$cache"/logs/*.log 2>/dev/null | tail -n +50 | xargs -r rm -f
fi
mkdir -p "$(dirname "$log")"
: >"$log"

# KVM only when it can really work: /dev/kvm alone is not enough (e.g. inside
# a VM without nested virtualisation /dev/kvm exists but guests hang or abort).
if [[ $accel_mode == auto ]]; then
	accel_mode=tcg
	if [[ $arch == "$host_arch" && -w /dev/kvm ]]; then
		# x86: only with vmx/svm; arm64 hosts show no such flag.
		if [[ $arch == arm64 ]] || grep -qwE 'vmx|svm' /proc/cpuinfo; then accel_mode=kvm; fi
	fi
fi
if [[ $accel_mode == kvm ]]; then
	accel=(-accel kvm)
	cpu=${cpu:-host}
else
	accel=(-accel "tcg,thread=$tcg_thread")
	accel_mode=tcg,thread=$tcg_thread
	# arm64's max CPU signs pointers with QARMA, which costs TCG dearly on
	# every function return; pauth-impdef keeps pointer authentication but
	# with QEMU's cheap hash.
	cpu=${cpu:-max}
	[[ $arch == arm64 && $cpu == max ]] && cpu=max,pauth-impdef=on
fi

cmdline="panic=-1 oops=panic quiet loglevel=3 rdinit=/init mitigations=off random.trust_cpu=on"
if [[ $arch == amd64 ]]; then
	cmdline="console=ttyS0,115200 $cmdline tsc=reliable no_timer_check"
	machine=()
else
	# -M virt: a PL011 UART (ttyAMA0), PSCI for poweroff; the kernel finds
	# the initramfs through the device tree QEMU writes.
	cmdline="console=ttyAMA0 $cmdline"
	machine=(-M virt)
fi
[[ -n $append_extra ]] && cmdline+=" $append_extra"

qemu=(timeout -s KILL $((timeout_s + 60)) "$qemu_bin" "${machine[@]}" "${accel[@]}" -cpu "$cpu" -m "$mem" -smp "$smp"
	-kernel "$vmlinuz" -initrd "$initrd" -append "$cmdline"
	-nodefaults -no-user-config -display none -serial stdio -monitor none
	-no-reboot)

echo "vmtest: kernel=$kname arch=$arch accel=$accel_mode cpu=$cpu payload=$payload commands=${#labels[@]} timeout=${timeout_s}s log=$log"
t_start=$(date +%s.%N)
"${qemu[@]}" </dev/null >>"$log" 2>&1 &
qpid=$!
if [[ $verbose == 1 ]]; then
	# tail exits by itself (within ~1s) once QEMU is gone.
	tail -n +1 -F --pid="$qpid" "$log" 2>/dev/null | sed -u 's/\r$//' &
	tpid=$!
fi

timed_out=0
deadline=$(( $(date +%s) + timeout_s ))
while kill -0 "$qpid" 2>/dev/null; do
	if [[ $(date +%s) -ge $deadline ]]; then
		timed_out=1
		kill_vm
		break
	fi
	sleep 0.2
done
wait "$qpid" 2>/dev/null || true
qpid=
if [[ -n ${tpid:-} ]]; then wait "$tpid" 2>/dev/null || true; tpid=; fi
t_end=$(date +%s.%N)
total=$(awk -v a="$t_start" -v b="$t_end" 'BEGIN{printf "%.1f", b-a}')

# ---------------------------------------------------------------- report
clean=$stage/console.txt
tr -d '\r' <"$log" >"$clean"
tail_console() {
	echo "----- console tail ($log) -----"
	tail -n "${1:-60}" "$clean"
	echo "----- end console tail -----"
}

booted=$(sed -n 's/^VMTEST BOOTED uptime=\([0-9.]*\).*/\1/p' "$clean" | head -1)
done_up=$(sed -n 's/^VMTEST DONE uptime=\([0-9.]*\).*/\1/p' "$clean" | head -1)

fail=0
for label in "${labels[@]}"; do
	line=$(grep -E "^VMTEST END $(printf '%s' "$label" | sed 's/[.+]/\\&/g') rc=[0-9]+" "$clean" | tail -1 || true)
	if [[ -z $line ]]; then
		if grep -qx "VMTEST BEGIN $label" "$clean"; then
			echo "FAIL $label (did not finish) [$kname]"
		else
			echo "FAIL $label (not started) [$kname]"
		fi
		fail=1
		continue
	fi
	rc=$(sed -n 's/.* rc=\([0-9]*\).*/\1/p' <<<"$line")
	secs=$(sed -n 's/.* secs=\([0-9]*\).*/\1/p' <<<"$line")
	if [[ $rc == 0 ]]; then
		echo "PASS $label (${secs}s) [$kname]"
	else
		echo "FAIL $label rc=$rc (${secs}s) [$kname]"
		fail=1
	fi
done

# A BUG, or a WARNING whose report (up to its end-of-trace line) names bpf.
klog=$(awk '
	/^VMTEST KERNEL LOG BEGIN$/ { on = 1; next }
	/^VMTEST KERNEL LOG END$/ { on = 0 }
	!on { next }
	/BUG:|sleeping function called from invalid context/ { print; next }
	/WARNING:/ { w = $0 "\n"; inw = 1; bpf = /bpf/; n = 0; next }
	inw {
		w = w $0 "\n"; n++
		if (/bpf/) bpf = 1
		if (/---\[ end trace/ || n > 80) { if (bpf) printf "%s", w; inw = 0 }
	}
	END { if (inw && bpf) printf "%s", w }' "$clean")
if [[ -n $klog ]]; then
	echo "FAIL kernel-log (a BUG, or a WARNING in bpf code) [$kname]:"
	echo "$klog" | head -120
	fail=1
fi

echo "vmtest: kernel boot to init: ${booted:-?}s (guest clock), total wall time: ${total}s"
if [[ $timed_out == 1 ]]; then
	echo "vmtest: VM timed out after ${timeout_s}s [$kname]"
	tail_console 60
	exit 4
fi
if [[ -z $done_up ]]; then
	echo "vmtest: FAIL: VM stopped without 'VMTEST DONE' (crash/panic?) [$kname]"
	tail_console 60
	exit 1
fi
if [[ $fail != 0 ]]; then
	tail_console 60
	exit 1
fi
echo "vmtest: OK (${#labels[@]} commands) [$kname]"
