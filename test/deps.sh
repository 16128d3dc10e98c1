#!/usr/bin/env bash
# deps.sh - install what `make test` needs and this machine lacks, saying what
# it installs. `make test` runs it first; `.ci/run` too. Debian's packages
# only (apt-get), plus Go tools through the Go module proxy.
#
# usage: test/deps.sh            install what is missing (needs root)
#        test/deps.sh -n         only say what is missing (exit 1 if anything)
#
# Each line of the table below is "command package why": a package is
# installed when its command is missing. Add a line where a test needs a
# new program.
set -euo pipefail

dry=0
[[ ${1:-} == -n ]] && dry=1

table=(
	"prometheus prometheus the dashboard queries run against a real Prometheus"
	"promtool prometheus the alerting rules are unit-tested with promtool"
	"qemu-system-x86_64 qemu-system-x86 the kernel VM suite boots Debian's amd64 kernels"
	"qemu-system-aarch64 qemu-system-arm the kernel VM suite boots Debian's arm64 kernels"
	"busybox busybox-static the VM's initramfs is busybox"
	"cpio cpio the VM's initramfs is a cpio archive"
	"systemd-analyze systemd systemd-analyze verify checks the shipped unit"
	"openssl openssl the TLS tests make a CA and certificates"
	"nsenter util-linux the agent and gateway tests run collectors in network namespaces of their own"
	"chromium chromium the dashboards are drawn in a headless browser"
	"strace strace the bodies are compared with strace's"
	"clang-format-19 clang-format-19 make lint checks the C sources' formatting"
)

missing_pkgs=()
say() { echo "deps: $*"; }
for row in "${table[@]}"; do
	read -r cmd pkg why <<<"$row"
	if ! command -v "$cmd" >/dev/null 2>&1; then
		say "$cmd is missing ($why): package $pkg"
		[[ " ${missing_pkgs[*]-} " == *" $pkg "* ]] || missing_pkgs+=("$pkg")
	fi
done
# gcc -m32 -static builds the 32-bit C helper (cmd/mremap-helper32).
if ! echo 'int main(void) { return 0; }' | gcc -m32 -static -x c -o /dev/null - >/dev/null 2>&1; then
	say "gcc cannot build static 32-bit programs (the 32-bit C helper): package gcc-multilib"
	missing_pkgs+=(gcc-multilib)
fi

# clang and lld cross-build the static arm64 C helper of the call-stack
# tests (cmd/mremap-cstack) for the arm64 VM, with Debian's arm64 sysroot.
for row in "clang-19 clang-19" "ld.lld-19 lld-19"; do
	read -r cmd pkg <<<"$row"
	if ! command -v "$cmd" >/dev/null 2>&1; then
		say "$cmd is missing (the arm64 VM's C helper is cross-built with it): package $pkg"
		missing_pkgs+=("$pkg")
	fi
done
if command -v clang-19 >/dev/null 2>&1 && command -v ld.lld-19 >/dev/null 2>&1 &&
	! echo 'int main(void) { return 0; }' | clang-19 --target=aarch64-linux-gnu -fuse-ld=lld -static -x c -o /dev/null - >/dev/null 2>&1; then
	say "clang cannot build static arm64 programs (the arm64 VM's C helper): packages libc6-dev-arm64-cross libgcc-12-dev-arm64-cross"
	missing_pkgs+=(libc6-dev-arm64-cross libgcc-12-dev-arm64-cross)
fi

if [[ ${#missing_pkgs[@]} -eq 0 ]]; then
	exit 0
fi
if [[ $dry == 1 ]]; then
	exit 1
fi
if [[ $(id -u) != 0 ]]; then
	say "run as root to install: apt-get update && apt-get install ${missing_pkgs[*]}" >&2
	exit 1
fi
say "installing ${missing_pkgs[*]} (apt-get update, then apt-get install)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
say "installed ${missing_pkgs[*]}"
