#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# examples/bench.sh: the side-by-side benchmark.  Runs pcihole-launch in
# every mode (mmio = what QEMU, Cloud Hypervisor and Firecracker do today,
# naive-readonly, readonly, pci-hole, auto), each in a fresh VM, on the same
# q35-like layout: segment 0 at 0xb0000000, 6 functions on bus 0 (00:00.0
# 00:01.0 00:02.0 00:1f.0 multifunction 00:1f.2 00:1f.3), and prints one
# table: slots, all-ones memory, setup, first-scan and repeat-scan time, hole
# exits, and each time against mmio.  A second table gives the config exits
# by class (hole / present / shadowed, read / write) of mmio, holes only
# (readonly) and holes + shadow (readonly --shadow) under the linux and
# firmware scans, and the share of mmio's exits each removes.
#
#   examples/bench.sh [--buses N] [--repeat N] [--scan linux|firmware|brute]
#                     [--plot FILE.png] [--json] [--launcher PATH]
#
# The tables come from `pcihole-launch --bench` (which needs no shell, for
# minimal initramfs runs such as kernel/boot.sh); this script picks the
# layout, finds the launcher and draws the --plot with gnuplot.  Exit 0 when
# every mode the kernel offers found exactly the configured functions (a mode
# the kernel lacks is shown as n/a), 1 otherwise, 2 for bad arguments, 77
# without a usable /dev/kvm.
set -eu

buses=256
repeat=3
scan=linux
plot=
json=
launcher=${PCIHOLE_LAUNCH:-}

usage_error() { echo "bench.sh: $* (see --help)" >&2; exit 2; }

while [ $# -gt 0 ]; do
	case $1 in
	--buses) [ $# -ge 2 ] || usage_error "--buses needs a number"; buses=$2; shift 2 ;;
	--repeat) [ $# -ge 2 ] || usage_error "--repeat needs a number"; repeat=$2; shift 2 ;;
	--scan) [ $# -ge 2 ] || usage_error "--scan needs linux, firmware or brute"; scan=$2; shift 2 ;;
	--plot) [ $# -ge 2 ] || usage_error "--plot needs a file name"; plot=$2; shift 2 ;;
	--json) json=--json; shift ;;
	--launcher) [ $# -ge 2 ] || usage_error "--launcher needs a path"; launcher=$2; shift 2 ;;
	-h|--help) sed -n '4,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) usage_error "$1: unknown argument" ;;
	esac
done
case $buses in ''|*[!0-9]*) usage_error "--buses $buses: want 1 to 256" ;; esac
if [ "$buses" -lt 1 ] || [ "$buses" -gt 256 ]; then usage_error "--buses $buses: want 1 to 256"; fi
case $repeat in ''|*[!0-9]*) usage_error "--repeat $repeat: want 2 or more" ;; esac
[ "$repeat" -ge 2 ] || usage_error "--repeat $repeat: want 2 or more (first and repeat scans)"

# The launcher: --launcher, $PCIHOLE_LAUNCH, next to this script (installed),
# the newest build tree of this source tree, then $PATH.
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "$launcher" ]; then
	if [ -x "$here/pcihole-launch" ]; then
		launcher=$here/pcihole-launch
	else
		# shellcheck disable=SC2012 # newest first; build directory names are plain
		launcher=$(ls -t "$here"/../build*/examples/pcihole-launch 2>/dev/null | head -n 1 || true)
		[ -n "$launcher" ] || launcher=$(command -v pcihole-launch || true)
	fi
fi
if [ -z "$launcher" ] || ! [ -x "$launcher" ]; then
	usage_error "pcihole-launch not found: build it, or pass --launcher PATH"
fi

if ! [ -r /dev/kvm ] || ! [ -w /dev/kvm ]; then
	echo "bench.sh: /dev/kvm is not usable here: nothing to measure" >&2
	exit 77
fi

if [ -n "$plot" ] && ! command -v gnuplot >/dev/null 2>&1; then
	# CI machines are throw-away: install it there; elsewhere say what to do.
	if [ "$(id -u)" = 0 ] && [ -n "${CI:-}" ] && command -v apt-get >/dev/null 2>&1; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			gnuplot-nox >&2 || true
	fi
	command -v gnuplot >/dev/null 2>&1 ||
		{ echo "bench.sh: --plot needs gnuplot (apt-get install gnuplot-nox)" >&2; exit 1; }
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

status=0
# shellcheck disable=SC2086 # $json is empty or one word
"$launcher" --bench --scan "$scan" --repeat "$repeat" $json \
	${plot:+--plot-data "$tmp/plot.dat"} \
	--segment "0:0xb0000000:0-$((buses - 1))" \
	--device 00:00.0 --device 00:01.0 --device 00:02.0 \
	--device 00:1f.0,multifunction --device 00:1f.2 --device 00:1f.3 || status=$?
[ -z "$plot" ] || [ -s "$tmp/plot.dat" ] || exit "$status"

if [ -n "$plot" ]; then
	# Three panels: scan times (log scale: they span orders of magnitude where
	# guest code runs natively), hole exits, all-ones memory.
	gnuplot <<EOF
set terminal pngcairo size 1260,440 noenhanced font ",9"
set output "$plot"
set multiplot layout 1,3 title "libpcihole: $buses buses, 6 functions, --scan $scan, $(uname -r) (times: see the table's note)"
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
unset logscale y
set yrange [0:*]
set title "exits to userspace for holes, first scan"
plot "$tmp/plot.dat" using 4:xtic(1) title "hole exits" lc 3, \
	"" using 0:4:(sprintf("%d", \$4)) with labels offset 0,0.7 notitle
set title "all-ones memory (MiB)"
plot "$tmp/plot.dat" using 5:xtic(1) title "memory" lc 4, \
	"" using 0:5:(sprintf("%.1f", \$5)) with labels offset 0,0.7 notitle
unset multiplot
EOF
	[ -n "$json" ] || echo "plot: $plot"
fi
exit "$status"
