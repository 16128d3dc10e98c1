#!/usr/bin/env bash
# fetch-kernel.sh NAME
#
# Download a Debian kernel image package (e.g. linux-image-6.1.0-50-cloud-amd64
# or linux-image-6.1.0-50-rt-amd64) with apt-get and unpack the boot files to
#   <repo>/.cache/vm/NAME/{vmlinuz,config,System.map,version}
# Idempotent: does nothing if .cache/vm/NAME/vmlinuz already exists.
#
# Exit codes:
#   0  kernel available (cached or freshly fetched); path printed on stdout
#   2  usage error
#   3  apt cannot serve the package (caller should SKIP this kernel)
#   1  any other error
#
# Env:
#   VMTEST_CACHE   cache root (default <repo>/.cache/vm)
#   KEEP_MODULES=1 also keep lib/modules/ (not needed: everything we use --
#                  BPF, kprobes, tracefs, BTF, 8250 serial console, initrd --
#                  is built in to Debian's cloud and rt kernels)
set -euo pipefail

EXIT_UNAVAILABLE=3

usage() {
	echo "usage: $0 linux-image-<version>-<flavour> (e.g. linux-image-6.1.0-50-cloud-amd64)" >&2
	exit 2
}

[[ $# -eq 1 ]] || usage
NAME=$1
[[ $NAME =~ ^linux-image-[A-Za-z0-9][A-Za-z0-9.+~-]*$ ]] || usage

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${VMTEST_CACHE:-$repo/.cache/vm}
dest=$cache/$NAME

if [[ -s $dest/vmlinuz ]]; then
	echo "$dest/vmlinuz"
	exit 0
fi

command -v apt-get >/dev/null || { echo "fetch-kernel: apt-get not found; cannot fetch $NAME" >&2; exit $EXIT_UNAVAILABLE; }
command -v dpkg >/dev/null || { echo "fetch-kernel: dpkg not found" >&2; exit 1; }

mkdir -p "$cache"
work=$(mktemp -d "$cache/.fetch-$NAME.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Let apt's sandbox user write here (avoids a harmless "unsandboxed" warning).
chmod 0777 "$work"

download() {
	(cd "$work" && apt-get download "$NAME") >"$work/apt.log" 2>&1
}

if ! download; then
	echo "fetch-kernel: 'apt-get download $NAME' failed; running apt-get update and retrying" >&2
	if ! apt-get update >"$work/update.log" 2>&1; then
		tail -5 "$work/update.log" >&2 || true
		echo "fetch-kernel: apt-get update failed" >&2
	fi
	if ! download; then
		sed 's/^/  apt: /' "$work/apt.log" | tail -5 >&2
		echo "fetch-kernel: SKIP: apt cannot serve package '$NAME' (not in the configured Debian archives?)" >&2
		exit $EXIT_UNAVAILABLE
	fi
fi

deb=$(ls "$work"/*.deb 2>/dev/null | head -1)
[[ -n $deb ]] || { echo "fetch-kernel: no .deb downloaded for $NAME" >&2; exit $EXIT_UNAVAILABLE; }

dpkg -x "$deb" "$work/x"
vmlinuz=$(ls "$work"/x/boot/vmlinuz-* 2>/dev/null | head -1)
[[ -n $vmlinuz ]] || { echo "fetch-kernel: $deb has no /boot/vmlinuz-*" >&2; exit 1; }

stage=$work/out
mkdir -p "$stage"
cp "$vmlinuz" "$stage/vmlinuz"
cp "$work"/x/boot/config-* "$stage/config" 2>/dev/null || true
cp "$work"/x/boot/System.map-* "$stage/System.map" 2>/dev/null || true
if [[ ${KEEP_MODULES:-0} == 1 && -d $work/x/lib/modules ]]; then
	mv "$work/x/lib/modules" "$stage/modules"
fi
{
	echo "package=$NAME"
	echo "version=$(dpkg-deb -f "$deb" Version)"
	echo "kernelrelease=${vmlinuz##*/vmlinuz-}"
} >"$stage/version"

# Config sanity check: warn (don't fail) if something we rely on is not built in.
if [[ -s $stage/config ]]; then
	want=(CONFIG_BPF_SYSCALL CONFIG_KPROBES CONFIG_KPROBE_EVENTS CONFIG_BPF_EVENTS
		CONFIG_DEBUG_INFO_BTF CONFIG_FTRACE_SYSCALLS CONFIG_BLK_DEV_INITRD CONFIG_RD_GZIP
		CONFIG_SERIAL_8250_CONSOLE CONFIG_DEVTMPFS CONFIG_TMPFS CONFIG_DEBUG_FS)
	for opt in "${want[@]}"; do
		grep -qx "$opt=y" "$stage/config" || echo "fetch-kernel: WARNING: $NAME: $opt is not =y" >&2
	done
fi

rm -rf "$dest"
mv "$stage" "$dest"
echo "$dest/vmlinuz"
