#!/bin/bash
# Regenerate a series from its development tree (a git repository of the
# unpacked Debian tree, tag "base", one commit per patch), fill in the cover
# letter from the cover text, and run checkpatch --strict on every patch
# (kept in full in <series>/checkpatch.txt).
#
# usage: kernel/mkseries.sh [--version 7.2|6.12] [--init] [TREE]
#   7.2  (default): TREE kernel/build/linux72, series kernel/patches,       cover kernel/cover.txt
#   6.12:           TREE kernel/build/linux,   series kernel/patches-6.12,  cover kernel/cover-6.12.txt
#   --init  first (re)create TREE from Debian's tarball: commit it as tag
#           "base", then "git am" the current series, so it can be edited
#           as commits.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=7.2
INIT=0
while [ $# -gt 0 ]; do
	case "$1" in
	--version) VERSION="$2"; shift 2 ;;
	--init) INIT=1; shift ;;
	-h|--help) sed -n '2,13p' "$0"; exit 0 ;;
	*) break ;;
	esac
done
case "$VERSION" in
7.2) SRC=${1:-$HERE/build/linux72}; OUT=$HERE/patches; COVER=$HERE/cover.txt ;;
6.12) SRC=${1:-$HERE/build/linux}; OUT=$HERE/patches-6.12; COVER=$HERE/cover-6.12.txt ;;
*) echo "mkseries.sh: bad --version $VERSION" >&2; exit 2 ;;
esac
if [ "$INIT" = 1 ]; then
	"$HERE/get-source.sh" --version "$VERSION" --unpack "$SRC"
	# Debian's .gitignore ignores the whole top level: add with -f.
	git -C "$SRC" init -q
	git -C "$SRC" add -A -f
	git -C "$SRC" -c user.name=base -c user.email=base@localhost commit -q \
		-m "Debian linux-source-$VERSION $(dpkg-query -W -f='${Version}' "linux-source-$VERSION")"
	git -C "$SRC" tag base
	for p in "$OUT"/[0-9]*.patch; do
		[ "${p##*/}" = 0000-cover-letter.patch ] || git -C "$SRC" am -q "$p"
	done
	git -C "$SRC" log --oneline base~1..HEAD 2>/dev/null || git -C "$SRC" log --oneline
	exit 0
fi
mkdir -p "$OUT"
rm -f "$OUT"/*.patch
git -C "$SRC" format-patch -q --cover-letter --base=base -o "$OUT" base..HEAD
cover=$(ls "$OUT"/0000-cover-letter.patch)
python3 - "$cover" "$COVER" <<'PY'
import sys
cover, text = sys.argv[1], open(sys.argv[2]).read().split('\n', 2)
subject, body = text[0], text[2]
s = open(cover).read()
s = s.replace('*** SUBJECT HERE ***', subject)
s = s.replace('*** BLURB HERE ***', body.rstrip('\n'))
open(cover, 'w').write(s)
PY
{
	echo "scripts/checkpatch.pl --strict on each patch of $(basename "$OUT")/ ($(date -u +%F))"
	for p in "$OUT"/*.patch; do
		case "$p" in *0000-cover-letter.patch) continue ;; esac
		echo
		echo "== $(basename "$p")"
		(cd "$SRC" && { PATH=/usr/bin:$PATH ./scripts/checkpatch.pl --strict "$p" 2>&1 || true; })
	done
} > "$OUT/checkpatch.txt"
grep -E "^(==|total:)" "$OUT/checkpatch.txt"
