#!/bin/bash
# "Why not KVM_MEM_READONLY over a shared memfd?": run kernel/bench/holebench
# side by side in one L1 boot of a patched kernel (default the non-debug 7.2
# one, kernel/build/bzImage-patched) and print the tables for the cover
# letter and kernel/README.md (also written to kernel/build/bench-results.md).
# Not part of CI: it takes a few minutes and its numbers are timings.
#
# usage: kernel/bench.sh [--kernel NAME] [--procs "1 10 50"]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B="$HERE/build"
KERNEL=patched
PROCS="1 10 50"
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) KERNEL="$2"; shift 2 ;;
	--procs) PROCS="$2"; shift 2 ;;
	-h|--help) sed -n '2,8p' "$0"; exit 0 ;;
	*) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
HB="$B/holebench"
[ -x "$HB" ] || { echo "bench.sh: no $HB (run kernel/build.sh)" >&2; exit 1; }

runs=()
add() { runs+=(-- "$HB" "$@"); }
# Debian's defaults first: shmem THP off, no hugetlb pages reserved.
for m in readonly pci-hole; do
	add --thp never --mode "$m" --repeat 3
	add --thp never --mode "$m" --prefault --repeat 3
done
# The best case for readonly: the memfd in one 2 MiB THP.
add --thp always --mode readonly --repeat 3
add --thp always --mode readonly --prefault --repeat 3
# One process per VM, each with its own memfd (no fd to share).
for n in $PROCS; do
	add --thp never --mode readonly --procs "$n"
	add --thp always --mode readonly --procs "$n"
	add --thp never --mode pci-hole --procs "$n"
done

LOG="$B/bench-$KERNEL.log"
timeout 3000 "$HERE/boot.sh" --kernel "$KERNEL" --no-selftest --mem 2048 \
	--timeout 2400 --log "$LOG" "${runs[@]}" || true
grep -a "^RESULT" "$LOG" | tr -d '\r' > "$B/bench-results.txt" || true
[ -s "$B/bench-results.txt" ] || { echo "bench.sh: no results in $LOG" >&2; exit 1; }

python3 - "$B/bench-results.txt" "$B/bench-results.md" "$KERNEL" "$(uname -r)" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    kv = dict(x.split('=', 1) for x in line.split()[1:])
    rows.append(kv)
out = []
thp = ['never'] * 4 + ['never'] * 0
out.append('### One VM (kernel %s)\n' % sys.argv[3])
out.append('| backing | prefault | attach (setup) | first scan | nested faults (pf_taken) / exits, first scan | repeat scan | VMAs added | host page tables (VmPTE) | KVM page tables (SecPageTables) | shmem |')
out.append('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
singles = [r for r in rows if 'procs' not in r]
labels = ['readonly, THP off', 'readonly, THP off', 'pci-hole', 'pci-hole',
          'readonly, 2 MiB THP', 'readonly, 2 MiB THP']
for i, r in enumerate(singles):
    lab = labels[i] if i < len(labels) else r['mode']
    if r.get('unavailable'):
        out.append('| %s | %s | unavailable | | | | | | | |' % (lab, 'yes' if r['prefault'] == '1' else 'no'))
        continue
    out.append('| %s | %s | %.2f ms | %.2f ms | %s / %s | %.2f ms | %s | %s KiB | %s KiB | %s KiB |' % (
        lab, 'yes' if r['prefault'] == '1' else 'no', float(r['setup_us']) / 1e3,
        float(r['first_us']) / 1e3, r['first_pf'], r['first_exits'],
        float(r['repeat_us']) / 1e3, r['vmas'], r['vmpte_kb'], r['secpt_kb'], r['shmem_kb']))
out.append('\n### N VM processes, each with its own backing\n')
out.append('| backing | N | attach per VM (avg) | Shmem | host page tables (PageTables) | KVM page tables (SecPageTables) | MemFree drop (noisy) |')
out.append('| --- | --- | --- | --- | --- | --- | --- |')
multi = [r for r in rows if 'procs' in r]
mlabels = ['readonly, THP off', 'readonly, 2 MiB THP', 'pci-hole']
for i, r in enumerate(multi):
    lab = mlabels[i % 3]
    if 'failed' in r:
        out.append('| %s | %s | failed (%s) | | | | |' % (lab, r['procs'], r['failed']))
        continue
    out.append('| %s | %s | %.2f ms | %s KiB | %s KiB | %s KiB | %s KiB |' % (
        lab, r['procs'], float(r['setup_avg_us']) / 1e3, r['shmem_kb'],
        r['pagetables_kb'], r['secpt_kb'], r['mem_used_kb']))
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
print('\n'.join(out))
PY
