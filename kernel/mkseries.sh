#!/bin/bash
# Regenerate kernel/patches/ from the development tree kernel/build/linux
# (a git repository of the unpacked Debian tree, tag "base", one commit per
# patch), fill in the cover letter from kernel/cover.txt, and run
# checkpatch --strict on every patch (summary in kernel/patches/checkpatch.txt).
#
# usage: kernel/mkseries.sh [--init] [TREE]
#   --init  first (re)create TREE (default kernel/build/linux) from Debian's
#           tarball: commit it as tag "base", then "git am" the current
#           kernel/patches, so the series can be edited as commits.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
INIT=0
if [ "${1:-}" = --init ]; then INIT=1; shift; fi
SRC=${1:-$HERE/build/linux}
OUT=$HERE/patches
if [ "$INIT" = 1 ]; then
	rm -rf "$SRC" "$SRC.tmp"
	mkdir -p "$SRC.tmp"
	timeout 300 tar -C "$SRC.tmp" -xf /usr/src/linux-source-6.12.tar.xz
	mv "$SRC.tmp/linux-source-6.12" "$SRC"
	rmdir "$SRC.tmp"
	# Debian's .gitignore ignores the whole top level: add with -f.
	git -C "$SRC" init -q
	git -C "$SRC" add -A -f
	git -C "$SRC" -c user.name=base -c user.email=base@localhost commit -q \
		-m "Debian linux-source-6.12 $(dpkg-query -W -f='${Version}' linux-source-6.12)"
	git -C "$SRC" tag base
	for p in "$OUT"/[0-9]*.patch; do
		[ "${p##*/}" = 0000-cover-letter.patch ] || git -C "$SRC" am -q "$p"
	done
	git -C "$SRC" log --oneline base~1..HEAD 2>/dev/null || git -C "$SRC" log --oneline
	exit 0
fi
rm -f "$OUT"/*.patch
git -C "$SRC" format-patch -q --cover-letter --base=base -o "$OUT" base..HEAD
cover=$(ls "$OUT"/0000-cover-letter.patch)
python3 - "$cover" "$HERE/cover.txt" <<'PY'
import sys
cover, text = sys.argv[1], open(sys.argv[2]).read().split('\n', 2)
subject, body = text[0], text[2]
s = open(cover).read()
s = s.replace('*** SUBJECT HERE ***', subject)
s = s.replace('*** BLURB HERE ***', body.rstrip('\n'))
open(cover, 'w').write(s)
PY
: > "$OUT/checkpatch.txt"
for p in "$OUT"/*.patch; do
	case "$p" in *0000-cover-letter.patch) continue ;; esac
	echo "== $(basename "$p")" >> "$OUT/checkpatch.txt"
	(cd "$SRC" && { ./scripts/checkpatch.pl --strict --no-tree "$p" 2>&1 || true; }) |
		grep -E "^(ERROR|WARNING|CHECK|total:)" >> "$OUT/checkpatch.txt"
done
cat "$OUT/checkpatch.txt"
