#!/bin/bash
# Boot a kernel from kernel/build.sh in QEMU (TCG, emulated SVM: the real
# kvm_amd runs inside) with an initramfs that runs the pci_hole_test selftest,
# optionally upstream's memslot/MMU selftests, then every extra binary given
# after "--", and exit non-zero unless all of them passed and the kernel log
# has no splat (BUG, WARNING, KASAN, lockdep, RCU).
#
# usage: kernel/boot.sh [--kernel NAME|PATH] [--expect pci-hole|readonly]
#                       [--append "kernel args"] [--timeout SECONDS] [--mem MIB]
#                       [--log FILE] [--no-selftest] [--upstream|--upstream-extra]
#                       [--env VAR=VALUE]...
#                       [-- BINARY [ARGS...] [-- BINARY ...]]
#
# NAME is stock, patched, patched-debug (7.2) or stock-6.12, patched-6.12:
# kernel/build/bzImage-NAME.  The selftest is kernel/build/pci_hole_test
# (pci_hole_test-6.12 for the 6.12 kernels); --upstream adds the tests in
# kernel/build/selftests/ (built by build.sh for 7.2), each as its own step;
# --upstream-extra also mmu_stress_test (1 GiB in 4 KiB pages: ~3.5 min
# under TCG on the non-debug kernel).
# Each extra binary runs as its own step; separate several with "--", e.g.
#   kernel/boot.sh --kernel patched --expect pci-hole -- \
#       build/tests/test_kvm_backend -- build/examples/pcihole-launch --bench
# Each binary and its shared libraries (found with ldd) and the dynamic
# loader are copied into the initramfs.  --expect sets PCIHOLE_EXPECT_MODE
# for the extra binaries (default: pci-hole for patched kernels, readonly
# for stock).  The selftest must PASS on a patched kernel and SKIP on stock;
# an upstream selftest may SKIP (exit 4, reported as such).  Serial output
# goes to the log (default kernel/build/boot-NAME.log).
#
# L1 is booted with tsc_early_khz=<host TSC kHz> and kvm.tsc_tolerance_ppm=1000:
# under host load L1's own early TSC calibration comes out a few hundred ppm
# low, and then its KVM refuses QEMU's KVM_SET_TSC_KHZ and L2 guests with a
# TSC-deadline timer stop getting timer interrupts (REFERENCES.md).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
B="$HERE/build"
KERNEL=patched
EXPECT=""
APPEND=""
TIMEOUT=600
MEM=768
LOG=""
SELFTEST=1
UPSTREAM=0
ENVS=""
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) KERNEL="$2"; shift 2 ;;
	--expect) EXPECT="$2"; shift 2 ;;
	--append) APPEND="$2"; shift 2 ;;
	--timeout) TIMEOUT="$2"; shift 2 ;;
	--mem) MEM="$2"; shift 2 ;;
	--log) LOG="$2"; shift 2 ;;
	--no-selftest) SELFTEST=0; shift ;;
	--upstream) UPSTREAM=1; shift ;;
	--upstream-extra) UPSTREAM=2; shift ;;
	--env)	# goes into /init as is: a plain word only
		[[ "${2:-}" =~ ^[A-Z_][A-Z0-9_]*=[A-Za-z0-9_.,:/-]*$ ]] ||
			{ echo "boot.sh: --env wants VAR=VALUE (plain characters), not '${2:-}'" >&2; exit 2; }
		ENVS="$ENVS
export $2"
		shift 2 ;;
	--) shift; break ;;
	-h|--help) sed -n '2,30p' "$0"; exit 0 ;;
	*) echo "boot.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

case "$KERNEL" in
*/*) BZ="$KERNEL"; KNAME=custom ;;
*) BZ="$B/bzImage-$KERNEL"; KNAME=$KERNEL ;;
esac
[ -f "$BZ" ] || { echo "boot.sh: no kernel $BZ (run kernel/build.sh)" >&2; exit 1; }
case "$KNAME" in
*-6.12) SUF=-6.12 ;;
*) SUF="" ;;
esac
case "$KNAME" in stock*) STOCK=1 ;; *) STOCK=0 ;; esac
if [ -z "$EXPECT" ]; then
	if [ "$STOCK" = 1 ]; then EXPECT="readonly"; else EXPECT="pci-hole"; fi
fi
LOG=${LOG:-$B/boot-$KNAME.log}
for p in busybox-static qemu-system-x86 cpio; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		{ DEBIAN_FRONTEND=noninteractive timeout 1200 apt-get install -y -q "$p" >/dev/null; }
done

# L1's TSC under TCG is the host's: tell L1 its rate instead of letting it
# calibrate against an emulated PIT under load.
TSC_KHZ=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
TSC_ARGS="kvm.tsc_tolerance_ppm=1000"
[ -n "$TSC_KHZ" ] && [ "$TSC_KHZ" -gt 0 ] && TSC_ARGS="tsc_early_khz=$TSC_KHZ $TSC_ARGS"

T0=$(date +%s.%N)
mkdir -p "$B"
W=$(mktemp -d "$B/initramfs.XXXXXX")
trap 'rm -rf "$W"' EXIT
R="$W/root"
mkdir -p "$R"/{bin,sbin,dev,proc,sys,tmp,run,lib,lib64,usr/lib,opt/steps}
cp /bin/busybox "$R/bin/busybox"
for a in sh mount umount mkdir cat echo poweroff sleep dmesg grep ls date env \
	 uname free head tail wc sed; do
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
add_step() {	# $1 = name, $2 = kind (selftest|upstream|extra), rest = command line
	local name=$1 kind=$2; shift 2
	nstep=$((nstep + 1))
	printf '%s\n' "$name" > "$R/opt/steps/$nstep.name"
	printf '%s\n' "$kind" > "$R/opt/steps/$nstep.kind"
	printf '%s\n' "$*" > "$R/opt/steps/$nstep.cmd"
}

if [ "$SELFTEST" = 1 ]; then
	st="$B/pci_hole_test$SUF"
	[ -x "$st" ] || { echo "boot.sh: no $st (run kernel/build.sh)" >&2; exit 1; }
	cp "$st" "$R/opt/pci_hole_test"
	add_step pci_hole_test selftest /opt/pci_hole_test
fi
if [ "$UPSTREAM" -ge 1 ]; then
	U="$B/selftests$SUF"
	[ -d "$U" ] || { echo "boot.sh: no $U (run kernel/build.sh)" >&2; exit 1; }
	mkdir -p "$R/opt/upstream"
	# Sized for a nested TCG L1 (one vCPU fault costs tens of us): small
	# memory, short runs.  memslot_perf_test stops before its RW test
	# (-e 4), which alone outlasts its 120 s alarm here; mmu_stress_test
	# needs a 1 GiB slot touched in 4 KiB pages several times (its smallest
	# size), ~3.5 min: --upstream-extra.
	while read -r t args; do
		[ -n "$t" ] || continue
		[ -x "$U/$t" ] || { echo "boot.sh: no $U/$t" >&2; exit 1; }
		cp "$U/$t" "$R/opt/upstream/$t"
		# shellcheck disable=SC2086
		add_step "$t" upstream "/opt/upstream/$t" $args
	done <<'TESTS'
set_memory_region_test
memslot_modification_stress_test -i 100 -b 64M
memslot_perf_test -e 4 -l 1 -r 1 -s 512 -t 120
kvm_page_table_test -b 128M
pre_fault_memory_test
dirty_log_test -i 4
guest_memfd_test
private_mem_kvm_exits_test
TESTS
	if [ "$UPSTREAM" = 2 ]; then
		cp "$U/mmu_stress_test" "$R/opt/upstream/mmu_stress_test"
		add_step mmu_stress_test upstream /opt/upstream/mmu_stress_test -c 1 -m 1 -s 1
	fi
fi
# Extra binaries: groups separated by "--".
cmd=()
flush() {
	[ ${#cmd[@]} -gt 0 ] || return 0
	[ -x "${cmd[0]}" ] || { echo "boot.sh: ${cmd[0]} is not executable" >&2; exit 1; }
	copy_with_libs "${cmd[0]}"
	local rest=("${cmd[@]:1}")
	add_step "$(basename "${cmd[0]}")" extra "/opt/$(basename "${cmd[0]}")" "${rest[@]}"
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
echo "BOOT: \$(uname -r) kvm=\$(ls /dev/kvm 2>/dev/null) pci_hole_huge=\$(cat /sys/module/kvm/parameters/pci_hole_huge 2>/dev/null) tsc_tolerance=\$(cat /sys/module/kvm/parameters/tsc_tolerance_ppm 2>/dev/null)"
export LD_LIBRARY_PATH=/opt/lib
export PCIHOLE_EXPECT_MODE=$EXPECT
export PCIHOLE_KERNEL=$KNAME$ENVS
pass=0; fail=0; skip=0
i=1
while [ -f /opt/steps/\$i.cmd ]; do
	name=\$(cat /opt/steps/\$i.name)
	kind=\$(cat /opt/steps/\$i.kind)
	echo "=== RUN \$name"
	t0=\$(cat /proc/uptime)
	sh -c "cd /tmp && exec \$(cat /opt/steps/\$i.cmd)"
	rc=\$?
	t1=\$(cat /proc/uptime)
	echo "=== \$name rc=\$rc uptime \${t0%% *} -> \${t1%% *}"
	if [ \$rc -eq 0 ]; then
		echo "STEP-PASS: \$name"; pass=\$((pass + 1))
	elif [ \$rc -eq 4 ] && [ "\$kind" = selftest ] && [ $STOCK = 1 ]; then
		echo "STEP-SKIP: \$name (expected on the stock kernel)"; skip=\$((skip + 1))
	elif [ \$rc -eq 4 ] && [ "\$kind" = upstream ]; then
		echo "STEP-SKIP: \$name (KSFT_SKIP)"; skip=\$((skip + 1))
	else
		echo "STEP-FAIL: \$name (rc=\$rc)"; fail=\$((fail + 1))
	fi
	i=\$((i + 1))
done
# Splats: what a debug kernel (KASAN, lockdep, PROVE_RCU, DEBUG_VM) reports.
dmesg | grep -E "BUG:|WARNING:|BUG: KASAN|UBSAN:|possible (recursive|circular) locking|inconsistent lock state|suspicious RCU usage|Oops|general protection|kernel BUG|refcount_t:|list_(add|del) corruption|INFO: task .* blocked" > /tmp/splat
nsplat=\$(wc -l < /tmp/splat)
sed 's/^/DMESG-SPLAT: /' /tmp/splat
echo "PCIHOLE-KERNEL-SUMMARY: kernel=$KNAME expect=$EXPECT \$pass passed, \$fail failed, \$skip skipped, \$nsplat splat lines"
poweroff -f
EOF
chmod +x "$R/init"
(cd "$R" && find . | cpio -o -H newc --quiet | gzip -1) > "$W/initramfs.cpio.gz"
T1=$(date +%s.%N)
printf '[boot.sh] initramfs: %d steps, %s, %.1f s\n' "$nstep" \
	"$(du -h "$W/initramfs.cpio.gz" | cut -f1)" "$(echo "$T1 - $T0" | bc)"

set +e
timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu EPYC,+svm -M q35 -m "$MEM" \
	-nographic -no-reboot -kernel "$BZ" -initrd "$W/initramfs.cpio.gz" \
	-append "console=ttyS0 panic=-1 log_buf_len=4M $TSC_ARGS $APPEND" < /dev/null > "$LOG" 2>&1
qrc=$?
set -e
T2=$(date +%s.%N)
printf '[boot.sh] qemu: rc=%d, %.1f s, log %s\n' "$qrc" "$(echo "$T2 - $T1" | bc)" "$LOG"
grep -aE "^(=== |STEP-|PCIHOLE-KERNEL-SUMMARY|BOOT:|DMESG-SPLAT|# |ok |not ok )" "$LOG" | tr -d '\r' || true

summary=$(grep -a "PCIHOLE-KERNEL-SUMMARY" "$LOG" | tr -d '\r' | tail -1)
[ "$qrc" -eq 0 ] || { echo "boot.sh: FAIL: qemu exited $qrc (timeout is 124)"; exit 1; }
[ -n "$summary" ] || { echo "boot.sh: FAIL: no summary line in $LOG"; exit 1; }
echo "$summary" | grep -q " 0 failed" || { echo "boot.sh: FAIL ($KNAME)"; exit 1; }
echo "$summary" | grep -q " 0 splat lines" ||
	{ echo "boot.sh: FAIL ($KNAME): kernel log has splats (DMESG-SPLAT lines above)"; exit 1; }
echo "$summary" | grep -q " 0 passed, 0 failed, 0 skipped" &&
	{ echo "boot.sh: FAIL: nothing ran"; exit 1; }
echo "boot.sh: PASS ($KNAME)"
