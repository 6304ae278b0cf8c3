#!/bin/bash
# Boot a kernel from kernel/build.sh in QEMU (TCG, emulated SVM: the real
# kvm_amd runs inside) with an initramfs that runs the pci_hole_test selftest
# and then every extra binary given after "--", and exit non-zero unless all
# of them passed.
#
# usage: kernel/boot.sh [--kernel stock|patched|PATH] [--expect pci-hole|readonly]
#                       [--append "kernel args"] [--timeout SECONDS]
#                       [--log FILE] [--no-selftest] [-- BINARY [ARGS...] [-- BINARY ...]]
#
# Each extra binary runs as its own step; separate several with "--", e.g.
#   kernel/boot.sh --kernel patched --expect pci-hole -- \
#       build/tests/test_kvm_backend -- build/examples/pcihole-launch --bench
# Each binary and its shared libraries (found with ldd) and the dynamic
# loader are copied into the initramfs.  --expect sets PCIHOLE_EXPECT_MODE
# for the extra binaries (default: pci-hole for the patched kernel, readonly
# for stock).  The selftest must PASS on the patched kernel and SKIP on
# stock.  Serial output goes to the log (default kernel/build/boot-<kernel>.log).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
B="$HERE/build"
KERNEL=patched
EXPECT=""
APPEND=""
TIMEOUT=600
LOG=""
SELFTEST=1
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) KERNEL="$2"; shift 2 ;;
	--expect) EXPECT="$2"; shift 2 ;;
	--append) APPEND="$2"; shift 2 ;;
	--timeout) TIMEOUT="$2"; shift 2 ;;
	--log) LOG="$2"; shift 2 ;;
	--no-selftest) SELFTEST=0; shift ;;
	--) shift; break ;;
	-h|--help) sed -n '2,19p' "$0"; exit 0 ;;
	*) echo "boot.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

case "$KERNEL" in
stock|patched) BZ="$B/bzImage-$KERNEL"; KNAME=$KERNEL ;;
*) BZ="$KERNEL"; KNAME=custom ;;
esac
[ -f "$BZ" ] || { echo "boot.sh: no kernel $BZ (run kernel/build.sh)" >&2; exit 1; }
if [ -z "$EXPECT" ]; then
	case "$KNAME" in stock) EXPECT="readonly" ;; *) EXPECT="pci-hole" ;; esac
fi
LOG=${LOG:-$B/boot-$KNAME.log}
for p in busybox-static qemu-system-x86 cpio; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		{ DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -q "$p" >/dev/null; }
done

T0=$(date +%s.%N)
W=$(mktemp -d "$B/initramfs.XXXXXX")
trap 'rm -rf "$W"' EXIT
R="$W/root"
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,run,lib,lib64,usr/lib,opt/steps}
cp /bin/busybox "$R/bin/busybox"
for a in sh mount umount mkdir cat echo poweroff sleep dmesg grep ls date env \
	 uname free head tail; do
	ln -sf busybox "$R/bin/$a"
done

copy_with_libs() {	# $1 = binary; copies it and its libraries into $R
	local bin=$1 lib
	cp -L "$bin" "$R/opt/$(basename "$bin")"
	if ldd "$bin" >/dev/null 2>&1; then
		for lib in $(ldd "$bin" | grep -oE '/[^ ]+' | sort -u); do
			[ -f "$lib" ] || continue
			# at its own path (RUNPATH, the loader) and in /opt/lib
			mkdir -p "$R$(dirname "$lib")" "$R/opt/lib"
			cp -L "$lib" "$R$lib"
			cp -L "$lib" "$R/opt/lib/"
		done
	fi
}

nstep=0
add_step() {	# $1 = name, rest = command line (inside the guest)
	local name=$1; shift
	nstep=$((nstep + 1))
	printf '%s\n' "$name" > "$R/opt/steps/$nstep.name"
	printf '%s\n' "$*" > "$R/opt/steps/$nstep.cmd"
}

if [ "$SELFTEST" = 1 ]; then
	[ -x "$B/pci_hole_test" ] || { echo "boot.sh: no $B/pci_hole_test" >&2; exit 1; }
	cp "$B/pci_hole_test" "$R/opt/pci_hole_test"
	add_step pci_hole_test /opt/pci_hole_test
fi
# Extra binaries: groups separated by "--".
cmd=()
flush() {
	[ ${#cmd[@]} -gt 0 ] || return 0
	[ -x "${cmd[0]}" ] || { echo "boot.sh: ${cmd[0]} is not executable" >&2; exit 1; }
	copy_with_libs "${cmd[0]}"
	local rest=("${cmd[@]:1}")
	add_step "$(basename "${cmd[0]}")" "/opt/$(basename "${cmd[0]}")" "${rest[@]}"
	cmd=()
}
for a in "$@"; do
	if [ "$a" = "--" ]; then flush; else cmd+=("$a"); fi
done
flush

cat > "$R/init" <<EOF
#!/bin/sh
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# the initramfs is already in RAM: no tmpfs over /tmp, which could hide
# libraries copied from a build directory under /tmp
mount -t tmpfs tmpfs /dev/shm 2>/dev/null || { mkdir -p /dev/shm; mount -t tmpfs tmpfs /dev/shm; }
echo always > /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null
echo "BOOT: \$(uname -r) kvm=\$(ls /dev/kvm 2>/dev/null) pci_hole_huge=\$(cat /sys/module/kvm/parameters/pci_hole_huge 2>/dev/null)"
export LD_LIBRARY_PATH=/opt/lib
export PCIHOLE_EXPECT_MODE=$EXPECT
export PCIHOLE_KERNEL=$KNAME
pass=0; fail=0; skip=0
i=1
while [ -f /opt/steps/\$i.cmd ]; do
	name=\$(cat /opt/steps/\$i.name)
	echo "=== RUN \$name"
	t0=\$(cat /proc/uptime)
	sh -c "cd /tmp && exec \$(cat /opt/steps/\$i.cmd)"
	rc=\$?
	t1=\$(cat /proc/uptime)
	echo "=== \$name rc=\$rc uptime \${t0%% *} -> \${t1%% *}"
	if [ \$rc -eq 0 ]; then
		echo "STEP-PASS: \$name"; pass=\$((pass + 1))
	elif [ \$rc -eq 4 ] && [ "\$name" = pci_hole_test ] && [ "$KNAME" = stock ]; then
		echo "STEP-SKIP: \$name (expected on the stock kernel)"; skip=\$((skip + 1))
	else
		echo "STEP-FAIL: \$name (rc=\$rc)"; fail=\$((fail + 1))
	fi
	i=\$((i + 1))
done
echo "PCIHOLE-KERNEL-SUMMARY: kernel=$KNAME expect=$EXPECT \$pass passed, \$fail failed, \$skip skipped"
poweroff -f
EOF
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$W/initramfs.cpio.gz"
T1=$(date +%s.%N)
printf '[boot.sh] initramfs: %d steps, %s, %.1f s\n' "$nstep" \
	"$(du -h "$W/initramfs.cpio.gz" | cut -f1)" "$(echo "$T1 - $T0" | bc)"

set +e
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu EPYC,+svm -M q35 -m 768 \
	-nographic -no-reboot -kernel "$BZ" -initrd "$W/initramfs.cpio.gz" \
	-append "console=ttyS0 panic=-1 $APPEND" < /dev/null > "$LOG" 2>&1
qrc=$?
set -e
T2=$(date +%s.%N)
printf '[boot.sh] qemu: rc=%d, %.1f s, log %s\n' "$qrc" "$(echo "$T2 - $T1" | bc)" "$LOG"
grep -E "^(=== |STEP-|PCIHOLE-KERNEL-SUMMARY|BOOT:|# |ok |not ok )" "$LOG" | tr -d '\r' || true

summary=$(grep -a "PCIHOLE-KERNEL-SUMMARY" "$LOG" | tr -d '\r' | tail -1)
[ "$qrc" -eq 0 ] || { echo "boot.sh: FAIL: qemu exited $qrc (timeout is 124)"; exit 1; }
[ -n "$summary" ] || { echo "boot.sh: FAIL: no summary line in $LOG"; exit 1; }
echo "$summary" | grep -q " 0 failed" || { echo "boot.sh: FAIL"; exit 1; }
echo "$summary" | grep -q " 0 passed, 0 failed, 0 skipped" &&
	{ echo "boot.sh: FAIL: nothing ran"; exit 1; }
echo "boot.sh: PASS ($KNAME)"
