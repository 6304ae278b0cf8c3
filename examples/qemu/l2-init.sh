#!/bin/sh
# /init of the L2 guest (busybox): report what Linux found on PCI, optionally
# follow a hotplug, then idle until L1 has read QEMU's counters and quits it.
# Never powers off: an L2 power-off is where the TSC-deadline hang bites.
#
# Kernel command line (unknown key=value pairs reach /init as variables):
#   l2ecam=ADDR           ECAM window base (for the hole reads below)
#   l2hotplug=VVVV:DDDD   wait for a device with these IDs to appear and go
#   l2dump=1              also dump every function's config space (od)
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "L2-INIT uptime=$(cut -d' ' -f1 /proc/uptime)"

devlist() {	# $1 = marker
	echo "$1-BEGIN"
	for d in /sys/bus/pci/devices/*; do
		[ -e "$d" ] || continue
		echo "$1 ${d##*/} $(cat "$d/vendor") $(cat "$d/device") $(cat "$d/class")"
	done
	echo "$1-END"
}
devlist L2-DEV
# Every function's config space as the guest reads it (sysfs reads all of
# it as root: 256 or 4096 bytes), read once: a sha256 each, and with
# l2dump one dump of all (od folds repeated lines, so the mostly empty
# extended spaces stay short).
mkdir -p /tmp
for d in /sys/bus/pci/devices/*; do
	[ -e "$d/config" ] || continue
	cat "$d/config" > "/tmp/cfg-${d##*/}"
	echo "L2-CFG ${d##*/} $(wc -c < "/tmp/cfg-${d##*/}") $(sha256sum < "/tmp/cfg-${d##*/}" | cut -d' ' -f1)"
	[ -z "$l2dump" ] || od -Ax -tx4 "/tmp/cfg-${d##*/}" | sed "s/^/L2-CFGDUMP ${d##*/} /"
done
# quiet keeps these off the console (each character is an exit); dmesg has them
dmesg | grep -E 'initcall (acpi_init|pci_subsys_init|pci_arch_init|pcie_portdrv_init)\+' |
	sed 's/^/L2-KMSG /'
dmesg | grep -E 'ECAM|MMCONFIG|VMM|configuration access|lastbus' | sed 's/^/L2-KMSG /'

bad=0
checks=0
hole() {	# read config dword at ECAM address $1 (decimal), expect all-ones
	v=$(devmem "$1" 32)
	checks=$((checks + 1))
	[ "$v" = 0xFFFFFFFF ] || { echo "L2-HOLE-BAD $1 $v"; bad=$((bad + 1)); }
}
find_dev() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/vendor"):$(cat "$d/device")" = "$l2hotplug" ] &&
			{ echo "${d##*/}"; return 0; }
	done
	return 1
}
if [ -n "$l2hotplug" ] && [ -n "$l2ecam" ]; then
	# the first PCIe root port's secondary bus, where the device will land
	sec=""
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = 0x060400 ] || continue
		sec=$(cat "$d/secondary_bus_number"); break
	done
	if [ -z "$sec" ]; then
		echo "L2-HOTPLUG-NO-PORT"
	else
		b=$((l2ecam + (sec << 20)))
		# dev 0 fn 1 and dev 1 fn 0 stay holes whatever happens
		always="$((b + (1 << 12))) $((b + (1 << 15)))"
		for a in $always $b; do hole "$a"; done
		echo "L2-HOTPLUG-READY bus=$sec"
		i=0
		while ! bdf=$(find_dev); do
			for a in $always; do hole "$a"; done
			sleep 0.2; i=$((i + 1))
			[ $i -lt 600 ] || { echo "L2-HOTPLUG-TIMEOUT add"; break; }
		done
		if [ -n "$bdf" ]; then
			echo "L2-HOTPLUG-FOUND $bdf"
			devlist L2-HPDEV
			i=0
			while find_dev >/dev/null; do
				for a in $always; do hole "$a"; done
				sleep 0.2; i=$((i + 1))
				[ $i -lt 600 ] || { echo "L2-HOTPLUG-TIMEOUT del"; break; }
			done
			echo "L2-HOTPLUG-GONE"
			sleep 0.5
			for a in $always $b; do hole "$a"; done
		fi
	fi
	echo "L2-HOLE-CHECKS reads=$checks bad=$bad"
fi
echo "L2-DONE uptime=$(cut -d' ' -f1 /proc/uptime)"
while :; do sleep 1000; done
