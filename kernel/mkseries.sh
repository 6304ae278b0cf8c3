#!/bin/bash
# Regenerate kernel/patches/ from the development tree kernel/build/linux
# (a git repository of the unpacked Debian tree, tag "base", one commit per
# patch), fill in the cover letter from kernel/cover.txt, and run
# checkpatch --strict on every patch (summary in kernel/patches/checkpatch.txt).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=${1:-$HERE/build/linux}
OUT=$HERE/patches
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
	(cd "$SRC" && ./scripts/checkpatch.pl --strict --no-tree "$p" 2>&1 || true) |
		grep -E "^(ERROR|WARNING|CHECK|total:)" >> "$OUT/checkpatch.txt"
done
cat "$OUT/checkpatch.txt"
