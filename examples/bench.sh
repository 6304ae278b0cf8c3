#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# examples/bench.sh: run pcihole-launch in every mode side by side on the
# same q35-like layout and print one table (exits, slots, memory, times, and
# each mode against mmio, which is what QEMU, Cloud Hypervisor and
# Firecracker do today).
#
#   examples/bench.sh [--buses N] [--repeat N] [--scan linux|firmware|brute]
#                     [--plot FILE.png] [--json] [--launcher PATH]
#
# POSIX sh + awk + sed only, so it also runs in a busybox initramfs next to
# the launcher.  Exit 0 when every mode the kernel offers ran and found
# exactly the configured functions; 1 if one failed; 2 for bad arguments;
# 77 without /dev/kvm (the test suite's "skipped").
set -eu

buses=256
repeat=3
scan=linux
plot=
json=0
launcher=${PCIHOLE_LAUNCH:-}

die() { echo "bench.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	--buses) [ $# -ge 2 ] || die "--buses needs a number"; buses=$2; shift 2 ;;
	--repeat) [ $# -ge 2 ] || die "--repeat needs a number"; repeat=$2; shift 2 ;;
	--scan) [ $# -ge 2 ] || die "--scan needs linux, firmware or brute"; scan=$2; shift 2 ;;
	--plot) [ $# -ge 2 ] || die "--plot needs a file name"; plot=$2; shift 2 ;;
	--json) json=1; shift ;;
	--launcher) [ $# -ge 2 ] || die "--launcher needs a path"; launcher=$2; shift 2 ;;
	-h|--help) sed -n '4,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) die "$1: unknown argument (see --help)" ;;
	esac
done
case $buses in ''|*[!0-9]*) die "--buses $buses: want 1 to 256" ;; esac
[ "$buses" -ge 1 ] && [ "$buses" -le 256 ] || die "--buses $buses: want 1 to 256"
case $repeat in ''|*[!0-9]*) die "--repeat $repeat: want 2 or more" ;; esac
[ "$repeat" -ge 2 ] || die "--repeat $repeat: want 2 or more (first and repeat scans)"
case $scan in linux|firmware|brute) ;; *) die "--scan $scan: want linux, firmware or brute" ;; esac

# The launcher: --launcher, $PCIHOLE_LAUNCH, next to this script (installed),
# the newest build tree of this source tree, then $PATH.
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$launcher" ]; then
	if [ -x "$here/pcihole-launch" ]; then
		launcher=$here/pcihole-launch
	else
		launcher=$(ls -t "$here"/../build*/examples/pcihole-launch 2>/dev/null | head -n 1 || true)
		[ -n "$launcher" ] || launcher=$(command -v pcihole-launch || true)
	fi
fi
[ -n "$launcher" ] && [ -x "$launcher" ] ||
	die "pcihole-launch not found: build it, or pass --launcher PATH"

if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	echo "bench.sh: /dev/kvm is not usable here: nothing to measure" >&2
	exit 77
fi

if [ -n "$plot" ] && ! command -v gnuplot >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && [ -n "${CI:-}" ] && command -v apt-get >/dev/null 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			gnuplot-nox >&2 || true
	fi
	command -v gnuplot >/dev/null 2>&1 ||
		{ echo "bench.sh: --plot needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

last=$((buses - 1))
layout="--segment 0:0xb0000000:0-$last --device 00:00.0 --device 00:01.0 --device 00:02.0
	--device 00:1f.0,multifunction --device 00:1f.2 --device 00:1f.3"

# One top-level JSON key of a launcher report (the launcher prints one per line).
get() { sed -n "s/^  \"$1\": \(.*\)$/\1/p" "$2" | sed 's/,$//; s/"//g'; }

# name, then launcher arguments.  Every mode runs even when an earlier one
# failed, so one table shows them all.
modes="mmio naive-readonly readonly pci-hole auto"
status=0
for m in $modes; do
	# shellcheck disable=SC2086 # $layout is a word list on purpose
	if "$launcher" --mode "$m" --scan "$scan" --repeat "$repeat" --json $layout \
		>"$tmp/$m.json" 2>"$tmp/$m.err"; then
		echo ok >"$tmp/$m.rc"
	else
		rc=$?
		echo "$rc" >"$tmp/$m.rc"
		# 3: the kernel cannot do this mode; anything else is a failure.
		[ "$rc" = 3 ] || status=1
	fi
done

# Numbers to compare against.
mmio_first=$(get first_scan_us "$tmp/mmio.json" 2>/dev/null || true)
mmio_repeat=$(get repeat_scan_us "$tmp/mmio.json" 2>/dev/null || true)

header() {
	echo "libpcihole side-by-side: segment 0:0xb0000000:0-$last ($buses buses), 6 functions on bus 0"
	echo "(00:00.0 00:01.0 00:02.0 00:1f.0 multifunction 00:1f.2 00:1f.3), --scan $scan, $repeat scans per mode"
	echo "kernel $(uname -r), launcher $launcher"
	echo "NOTE: times are host wall clock per guest scan.  Where /dev/kvm runs guest code through KVM's"
	echo "instruction emulator (the machine this was written on: ~1 us per guest instruction) they are"
	echo "NOT representative; exit counts, slots and memory are exact everywhere.  Representative times"
	echo "come from a KVM with hardware execution (kernel/ runs the same launcher in a QEMU-booted kernel)."
}

# "x" factor of $1 over $2 (how many times faster than mmio), or "-".
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b != "" && b != "null") printf "%.1fx", b / a; else printf "-" }'; }
ms() { awk -v v="$1" 'BEGIN { if (v == "" || v == "null") printf "-"; else printf "%.3f", v / 1000 }'; }
mib() { awk -v v="$1" 'BEGIN { if (v == "") printf "-"; else if (v >= 1048576) printf "%.1f MiB", v / 1048576; else printf "%d KiB", v / 1024 }'; }
kib() { awk -v v="$1" 'BEGIN { if (v == "") printf "-"; else if (v >= 1024 || v <= -1024) printf "%+.1f MiB", v / 1024; else printf "%+d KiB", v }'; }

table() {
	header
	echo
	printf '%-15s %5s %-8s %10s %10s %10s %10s %10s %8s %9s %9s\n' \
		mode slots backing all-ones PSS-delta setup-ms first-ms repeat-ms hole-ex first-x repeat-x
	for m in $modes; do
		rc=$(cat "$tmp/$m.rc")
		if [ "$rc" != ok ] && [ "$rc" != 1 ]; then
			printf '%-15s n/a: %s\n' "$m" "$(head -n 1 "$tmp/$m.err" | sed 's/^pcihole-launch: //')"
			continue
		fi
		f=$tmp/$m.json
		name=$m
		[ "$m" = auto ] && name="auto=$(get mode "$f")"
		first=$(get first_scan_us "$f")
		rep=$(get repeat_scan_us "$f")
		printf '%-15s %5s %-8s %10s %10s %10s %10s %10s %8s %9s %9s\n' \
			"$name" "$(get slots "$f")" "$(get backing "$f")" \
			"$(mib "$(get allones_bytes "$f")")" "$(kib "$(get pss_delta_kib "$f")")" \
			"$(ms "$(get setup_us "$f")")" "$(ms "$first")" "$(ms "$rep")" \
			"$(get hole_exits_first "$f")" "$(ratio "$first" "$mmio_first")" \
			"$(ratio "$rep" "$mmio_repeat")"
		[ "$rc" = ok ] || printf '%-15s FAILED: %s\n' "" "$(head -n 1 "$tmp/$m.err")"
	done
	echo
	echo "hole-ex: exits to userspace for hole accesses in the first scan; first-x/repeat-x: mmio time / mode time."
	echo "all-ones: memory holding the 0xff pages (memfd or, for naive-readonly, private pages); PSS-delta:"
	echo "the launcher's proportional set size after the scans minus before the backend (counts shared pages once)."
	if [ -s "$tmp/readonly.json" ]; then
		pf=$(get prefault "$tmp/readonly.json")
		[ "$pf" != done ] || pf="done, $(ms "$(get prefault_us "$tmp/readonly.json")") ms for $(mib "$(get prefault_bytes "$tmp/readonly.json")") at setup"
		echo "readonly: all-ones backing $(get backing "$tmp/readonly.json"), KVM_PRE_FAULT_MEMORY $pf."
	fi
}

json_escape() { sed 's/\\/\\\\/g; s/"/\\"/g' | tr -d '\n'; }

if [ "$json" = 1 ]; then
	printf '{\n"note": "%s",\n' "$(header | tr '\n' ' ' | json_escape)"
	printf '"buses": %s, "scan": "%s", "repeat": %s,\n"results": [\n' "$buses" "$scan" "$repeat"
	sep=
	for m in $modes; do
		rc=$(cat "$tmp/$m.rc")
		printf '%s' "$sep"
		sep=",
"
		if [ "$rc" = ok ] || [ "$rc" = 1 ]; then
			cat "$tmp/$m.json"
		else
			printf '{"mode": "%s", "available": false, "exit": %s, "error": "%s"}' \
				"$m" "$rc" "$(head -n 1 "$tmp/$m.err" | json_escape)"
		fi
	done
	printf '\n]\n}\n'
else
	table
fi

if [ -n "$plot" ]; then
	# One row per mode that ran: first ms, repeat ms, hole exits, all-ones MiB.
	: >"$tmp/plot.dat"
	for m in $modes; do
		[ "$(cat "$tmp/$m.rc")" = ok ] || continue
		f=$tmp/$m.json
		printf '"%s" %s %s %s %s\n' "$m" \
			"$(awk -v v="$(get first_scan_us "$f")" 'BEGIN { printf "%.4f", v / 1000 }')" \
			"$(awk -v v="$(get repeat_scan_us "$f")" 'BEGIN { printf "%.4f", v / 1000 }')" \
			"$(get hole_exits_first "$f")" \
			"$(awk -v v="$(get allones_bytes "$f")" 'BEGIN { printf "%.4f", v / 1048576 }')" \
			>>"$tmp/plot.dat"
	done
	gnuplot <<EOF
set terminal pngcairo size 1200,420 noenhanced font ",9"
set output "$plot"
set multiplot layout 1,3 title "libpcihole: $buses buses, 6 functions, --scan $scan (times: see the table's note)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30
set grid ytics
set key top right
set title "guest scan time (ms)"
set logscale y
plot "$tmp/plot.dat" using 2:xtic(1) title "first scan", "" using 3 title "repeat scan"
set title "hole exits to userspace, first scan"
unset logscale y
set yrange [0:*]
plot "$tmp/plot.dat" using 4:xtic(1) title "hole exits" lc 3
set title "all-ones memory (MiB)"
plot "$tmp/plot.dat" using 5:xtic(1) title "memory" lc 4
unset multiplot
EOF
	[ "$json" = 1 ] || echo "plot: $plot"
fi
exit $status
