#!/usr/bin/env bash
# fetch-kernel.sh [--arch ARCH] NAME
# fetch-kernel.sh [--arch ARCH] --resolve NAME
# fetch-kernel.sh --busybox ARCH
#
# Download a Debian kernel image package (e.g. linux-image-6.1.0-50-cloud-amd64)
# with apt-get and unpack the boot files to
#   <repo>/.cache/vm/<package>/{vmlinuz,config,System.map,version}
# NAME may be a pattern with * (e.g. 'linux-image-6.12.*+deb12-cloud-arm64',
# as test/vm/kernels.conf writes them): it stands for the newest package
# (by version) of that name that apt serves, so that a point release that
# Debian has superseded and dropped from its archive does not break the
# suite. If apt can serve none (no network), the newest matching package
# already in the cache is used. --resolve prints the package name only.
# ARCH is the package's architecture (default: the host's, dpkg
# --print-architecture); a foreign one (arm64 on amd64) is added to dpkg
# (dpkg --add-architecture, apt-get update) when apt does not know it yet.
# Idempotent: does nothing if .cache/vm/<package>/vmlinuz already exists.
#
# --busybox ARCH downloads busybox-static:ARCH into .cache/vm/busybox-ARCH/
# and prints the path of its static busybox (the initramfs of an arm64 VM).
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
#                  BPF, kprobes, tracefs, BTF, the serial console, initrd --
#                  is built in to Debian's cloud and rt kernels)
set -euo pipefail

EXIT_UNAVAILABLE=3

usage() {
	echo "usage: $0 [--arch amd64|arm64] [--resolve] linux-image-<version>-<flavour> (e.g. linux-image-6.1.0-50-cloud-amd64, or 'linux-image-6.12.*+deb12-cloud-amd64')" >&2
	echo "       $0 --busybox amd64|arm64" >&2
	exit 2
}

arch=
resolve_only=0
busybox=
while [[ $# -gt 0 ]]; do
	case $1 in
	--arch) arch=${2:-}; shift 2 || usage ;;
	--resolve) resolve_only=1; shift ;;
	--busybox) busybox=${2:-}; shift 2 || usage ;;
	-*) usage ;;
	*) break ;;
	esac
done

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${VMTEST_CACHE:-$repo/.cache/vm}

command -v apt-get >/dev/null || { echo "fetch-kernel: apt-get not found" >&2; exit $EXIT_UNAVAILABLE; }
command -v dpkg >/dev/null || { echo "fetch-kernel: dpkg not found" >&2; exit 1; }
native=$(dpkg --print-architecture)
[[ -n $busybox ]] && arch=$busybox
arch=${arch:-$native}
[[ $arch =~ ^(amd64|arm64)$ ]] || usage

mkdir -p "$cache"

# ensure_arch makes apt know packages of arch: a foreign architecture is
# added to dpkg and the lists are updated.
ensure_arch() {
	[[ $arch == "$native" ]] && return 0
	dpkg --print-foreign-architectures | grep -qx "$arch" && return 0
	if [[ $(id -u) != 0 ]]; then
		echo "fetch-kernel: apt does not know $arch packages: as root, dpkg --add-architecture $arch && apt-get update" >&2
		exit $EXIT_UNAVAILABLE
	fi
	echo "fetch-kernel: dpkg --add-architecture $arch; apt-get update" >&2
	dpkg --add-architecture "$arch"
	apt-get update -q >/dev/null 2>&1 || echo "fetch-kernel: apt-get update failed" >&2
}

# download PKG DIR: apt-get download PKG for arch into DIR.
download() {
	local spec=$1
	[[ $arch == "$native" ]] || spec+=":$arch"
	(cd "$2" && apt-get download "$spec") >"$2/apt.log" 2>&1
}

# download_retry PKG DIR: download, after an apt-get update if the first try fails.
download_retry() {
	download "$1" "$2" && return 0
	echo "fetch-kernel: 'apt-get download $1' ($arch) failed; running apt-get update and retrying" >&2
	apt-get update -q >"$2/update.log" 2>&1 || { tail -5 "$2/update.log" >&2; echo "fetch-kernel: apt-get update failed" >&2; }
	download "$1" "$2"
}

ensure_arch

if [[ -n $busybox ]]; then
	dest=$cache/busybox-$arch
	if [[ ! -x $dest/busybox ]]; then
		work=$(mktemp -d "$cache/.fetch-busybox.XXXXXX")
		trap 'rm -rf "$work"' EXIT
		chmod 0777 "$work"
		download_retry busybox-static "$work" || { sed 's/^/  apt: /' "$work/apt.log" | tail -5 >&2; exit $EXIT_UNAVAILABLE; }
		dpkg -x "$work"/busybox-static_*.deb "$work/x"
		mkdir -p "$dest"
		cp "$work/x/bin/busybox" "$dest/busybox.new"
		mv "$dest/busybox.new" "$dest/busybox"
	fi
	echo "$dest/busybox"
	exit 0
fi

[[ $# -eq 1 ]] || usage
NAME=$1
[[ $NAME =~ ^linux-image-[A-Za-z0-9*][A-Za-z0-9.+~*-]*$ ]] || usage

# candidates PATTERN: the package names apt knows that match, newest first.
candidates() {
	apt-cache pkgnames linux-image- 2>/dev/null | while read -r n; do
		# shellcheck disable=SC2053 # $1 is a glob on purpose
		if [[ $n == $1 ]]; then echo "$n"; fi
	done | sort -Vr
}

# cached PATTERN: the newest matching package already unpacked in the cache.
cached() {
	local d n
	for d in "$cache"/linux-image-*/; do
		n=$(basename "$d")
		# shellcheck disable=SC2053
		if [[ $n == $1 && -s $d/vmlinuz ]]; then echo "$n"; fi
	done | sort -Vr | head -1
}

if [[ $NAME == *'*'* ]]; then
	names=$(candidates "$NAME")
	if [[ -z $names ]]; then
		apt-get update -q >/dev/null 2>&1 || true
		names=$(candidates "$NAME")
	fi
	pattern=$NAME
else
	names=$NAME
	pattern=
fi

# fetch PKG: unpack PKG into the cache (unless it is there); 3 if apt cannot serve it.
fetch() {
	local pkg=$1 dest=$cache/$1 work deb vmlinuz stage
	[[ -s $dest/vmlinuz ]] && return 0
	work=$(mktemp -d "$cache/.fetch-$pkg.XXXXXX")
	# Let apt's sandbox user write here (avoids a harmless "unsandboxed" warning).
	chmod 0777 "$work"
	if ! download_retry "$pkg" "$work"; then
		sed 's/^/  apt: /' "$work/apt.log" | tail -5 >&2
		rm -rf "$work"
		return $EXIT_UNAVAILABLE
	fi
	deb=$(ls "$work"/*.deb 2>/dev/null | head -1)
	[[ -n $deb ]] || { echo "fetch-kernel: no .deb downloaded for $pkg" >&2; rm -rf "$work"; return $EXIT_UNAVAILABLE; }

	dpkg -x "$deb" "$work/x"
	vmlinuz=$(ls "$work"/x/boot/vmlinuz-* 2>/dev/null | head -1)
	[[ -n $vmlinuz ]] || { echo "fetch-kernel: $deb has no /boot/vmlinuz-*" >&2; rm -rf "$work"; return 1; }

	stage=$work/out
	mkdir -p "$stage"
	cp "$vmlinuz" "$stage/vmlinuz"
	cp "$work"/x/boot/config-* "$stage/config" 2>/dev/null || true
	cp "$work"/x/boot/System.map-* "$stage/System.map" 2>/dev/null || true
	if [[ ${KEEP_MODULES:-0} == 1 && -d $work/x/lib/modules ]]; then
		mv "$work/x/lib/modules" "$stage/modules"
	fi
	{
		echo "package=$pkg"
		echo "arch=$(dpkg-deb -f "$deb" Architecture)"
		echo "version=$(dpkg-deb -f "$deb" Version)"
		echo "kernelrelease=${vmlinuz##*/vmlinuz-}"
	} >"$stage/version"

	# Config sanity check: warn (don't fail) if something we rely on is not built in.
	if [[ -s $stage/config ]]; then
		local want=(CONFIG_BPF_SYSCALL CONFIG_KPROBES CONFIG_KPROBE_EVENTS CONFIG_BPF_EVENTS
			CONFIG_DEBUG_INFO_BTF CONFIG_FTRACE_SYSCALLS CONFIG_BLK_DEV_INITRD CONFIG_RD_GZIP
			CONFIG_DEVTMPFS CONFIG_TMPFS CONFIG_DEBUG_FS) opt
		case $arch in
		amd64) want+=(CONFIG_SERIAL_8250_CONSOLE) ;;
		arm64) want+=(CONFIG_SERIAL_AMBA_PL011_CONSOLE) ;;
		esac
		for opt in "${want[@]}"; do
			grep -qx "$opt=y" "$stage/config" || echo "fetch-kernel: WARNING: $pkg: $opt is not =y" >&2
		done
	fi

	rm -rf "$dest"
	mv "$stage" "$dest"
	rm -rf "$work"
}

if [[ $resolve_only == 1 && -z $pattern ]]; then
	echo "$NAME"
	exit 0
fi

# The newest candidate apt serves; a listed one it cannot download (the
# lists are older than the archive) gives way to the next, up to three.
rc=$EXIT_UNAVAILABLE
tries=0
for pkg in $names; do
	tries=$((tries + 1))
	[[ $tries -gt 3 ]] && break
	if [[ $resolve_only == 1 && -n $pattern ]]; then
		# Resolving only: the first that apt can tell a candidate for.
		policy=$(apt-cache policy "$pkg:$arch" 2>/dev/null)
		if [[ $policy == *'Candidate: '[0-9]* ]]; then
			echo "$pkg"
			exit 0
		fi
		continue
	fi
	set +e
	fetch "$pkg"
	rc=$?
	set -e
	if [[ $rc == 0 ]]; then
		if [[ $resolve_only == 1 ]]; then echo "$pkg"; else echo "$cache/$pkg/vmlinuz"; fi
		exit 0
	fi
	[[ $rc == "$EXIT_UNAVAILABLE" ]] || exit "$rc"
done

if [[ -n $pattern ]]; then
	pkg=$(cached "$pattern")
	if [[ -n $pkg ]]; then
		echo "fetch-kernel: apt serves no '$pattern' ($arch) now; using $pkg from the cache" >&2
		if [[ $resolve_only == 1 ]]; then echo "$pkg"; else echo "$cache/$pkg/vmlinuz"; fi
		exit 0
	fi
fi
echo "fetch-kernel: SKIP: apt cannot serve package '$NAME' ($arch; not in the configured Debian archives?)" >&2
exit $EXIT_UNAVAILABLE
