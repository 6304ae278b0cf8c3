#!/bin/bash
# Install, idempotently, what the arm64 leg needs: the cross compiler, QEMU
# (system and user mode) and cmocka for arm64 (Debian multiarch:
# dpkg --add-architecture arm64, then libcmocka-dev:arm64).
set -euo pipefail

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }
apt_wait() {	# another leg's apt-get may hold the lock
	local _
	for _ in $(seq 1 240); do
		pgrep -x apt-get >/dev/null 2>&1 || pgrep -x dpkg >/dev/null 2>&1 || return 0
		sleep 5
	done
}

export DEBIAN_FRONTEND=noninteractive
updated=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	apt_wait
	dpkg --add-architecture arm64
	timeout 900 apt-get update -q >/dev/null
	updated=1
fi
missing=""
for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu \
	 qemu-system-arm qemu-user-static cmake pkg-config cpio xz-utils bc flex \
	 bison libssl-dev libelf-dev build-essential libcmocka-dev:arm64; do
	installed "$p" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	apt_wait
	if [ "$updated" = 0 ] && ! apt-cache show libcmocka-dev:arm64 >/dev/null 2>&1; then
		timeout 900 apt-get update -q >/dev/null
	fi
	# shellcheck disable=SC2086
	timeout 1800 apt-get install -y -q --no-install-recommends $missing >/dev/null ||
		{ echo "setup.sh: apt-get install$missing failed" >&2; exit 1; }
fi
