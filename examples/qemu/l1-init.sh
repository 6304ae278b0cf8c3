#!/bin/sh
# /init of the L1 guest (busybox): run each case of /opt/cases with the
# patched QEMU and -accel kvm, talk to it over QMP (a pipe chardev), and
# print everything with prefixes on the console; examples/qemu/check.py
# judges it on the host.  A case line is
#   NAME|MACHINE|APPEND|DEVICES|HOTPLUG|L1S
# with HOTPLUG "-" or the device_add arguments as JSON, and L1S the L1
# kernels (l1kernel= on this kernel's command line) that run it, or "all".
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo always > /sys/kernel/mm/transparent_hugepage/shmem_enabled 2>/dev/null
echo "L1-BOOT $(uname -r) kvm=$(ls /dev/kvm 2>/dev/null) tsc=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
export LD_LIBRARY_PATH=/opt/lib
l1kernel=""
for a in $(cat /proc/cmdline); do
	case "$a" in l1kernel=*) l1kernel=${a#l1kernel=} ;; esac
done

now() { cut -d' ' -f1 /proc/uptime; }
# quiet keeps the L2 console short (each character is an exit to QEMU)
l2base="quiet initcall_debug"
[ -f /opt/l2-base ] && l2base=$(cat /opt/l2-base)
# L1's KVM (nested under TCG) reports XSAVE CPUID leaves a 7.2 guest rejects
# ("x86/fpu: XSAVE disabled"), and that guest then oopses right after
# mounting rootfs; without XSAVE it uses FXSAVE and boots.
l2cpu=host,-xsave
[ -f /opt/l2-cpu ] && l2cpu=$(cat /opt/l2-cpu)

# wait_for DIR PATTERN SECONDS: until PATTERN shows in the L2 console log
wait_for() {
	i=0
	while ! grep -q "$2" "$1/serial.log" 2>/dev/null; do
		kill -0 "$qpid" 2>/dev/null || { echo "L1-NOTE $name qemu exited waiting for $2"; return 1; }
		i=$((i + 1))
		[ $i -le $(($3 * 10)) ] || { echo "L1-NOTE $name timeout waiting for $2"; return 1; }
		sleep 0.1
	done
}

# qmp JSON: send one command and wait for its answer
qmp() {
	nq=$((nq + 1))
	echo "$1" >&3
	i=0
	while [ "$(grep -c -E '^\{"(return|error)"' "$d/qmp.log")" -lt "$nq" ]; do
		kill -0 "$qpid" 2>/dev/null || { echo "L1-NOTE $name qemu gone before answering $1"; return 1; }
		i=$((i + 1))
		[ $i -le 300 ] || { echo "L1-NOTE $name no QMP answer to $1"; return 1; }
		sleep 0.1
	done
}
hmp() { qmp "{\"execute\":\"human-monitor-command\",\"arguments\":{\"command-line\":\"$1\"}}"; }

run_case() {
	d=/tmp/case-$name
	mkdir -p "$d"
	mkfifo "$d/qmp.in" "$d/qmp.out"
	: > "$d/qmp.log"
	t0=$(now)
	# shellcheck disable=SC2086 # DEVICES is a list of words
	/opt/qemu-system-x86_64 -L /opt/share -accel kvm -cpu "$l2cpu" -m 256 -smp 1 \
		-display none -nodefaults -no-reboot -M "$machine" \
		-kernel /opt/l2/bzImage -initrd /opt/l2/initrd.gz \
		-append "console=ttyS0 $l2base panic=-1 $append" \
		-serial "file:$d/serial.log" -qmp "pipe:$d/qmp" $devices \
		< /dev/null > "$d/qemu.out" 2>&1 &
	qpid=$!
	cat "$d/qmp.out" >> "$d/qmp.log" &
	cpid=$!
	exec 3> "$d/qmp.in"
	nq=0
	qmp '{"execute":"qmp_capabilities"}'
	if [ "$hotplug" != "-" ]; then
		if wait_for "$d" L2-HOTPLUG-READY 120; then
			hmp "info pcihole"
			echo "L1-HOTPLUG $name device_add $(now)"
			qmp "{\"execute\":\"device_add\",\"arguments\":$hotplug}"
			hmp "info pcihole"
			if wait_for "$d" L2-HOTPLUG-FOUND 60; then
				qmp '{"execute":"query-pci"}'
				echo "L1-HOTPLUG $name device_del $(now)"
				qmp '{"execute":"device_del","arguments":{"id":"hp1"}}'
				wait_for "$d" L2-HOTPLUG-GONE 60
				i=0
				while ! grep -q DEVICE_DELETED "$d/qmp.log" && [ $i -lt 100 ]; do
					sleep 0.1; i=$((i + 1))
				done
				hmp "info pcihole"
			fi
		fi
	fi
	wait_for "$d" L2-DONE 120
	t1=$(now)
	hmp "info pcihole"
	qmp '{"execute":"query-pci"}'
	qmp '{"execute":"quit"}'
	i=0
	while kill -0 "$qpid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	kill -9 "$qpid" 2>/dev/null
	wait "$qpid"
	rc=$?
	exec 3>&-
	kill "$cpid" 2>/dev/null
	echo "L1-CASE-BEGIN $name start=$t0 done=$t1"
	sed "s/^/L1-SERIAL $name /" "$d/serial.log"
	sed "s/^/L1-QMP $name /" "$d/qmp.log"
	sed "s/^/L1-QEMUOUT $name /" "$d/qemu.out"
	echo "L1-CASE-END $name rc=$rc"
}

while IFS='|' read -r name machine append devices hotplug l1s; do
	case "$name" in ''|'#'*) continue ;; esac
	case ",$l1s," in *",all,"*|*",$l1kernel,"*) ;; *) continue ;; esac
	run_case
done < /opt/cases
echo "L1-ALL-DONE"
poweroff -f
