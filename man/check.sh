#!/bin/sh
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# usage: man/check.sh HEADER MANDIR [LIBPCIHOLE.so]
#
# Fails when a public function (declared in HEADER or exported by the
# library) has no man page, when a prototype or #define in a SYNOPSIS or
# a struct or enum listing differs from the header's, when a page or link is inconsistent (NAME
# section, .so target, references to libpcihole pages), or when mandoc (or
# groff, if installed) reports anything.
# Without mandoc the page coverage is still checked, then the test exits 77
# (SKIPPED) so that a missing linter never looks like a pass; with
# PCIHOLE_REQUIRE_MANDOC=1 (CI) a missing mandoc is a failure instead.
set -eu

hdr=${1:?usage: check.sh HEADER MANDIR [LIBPCIHOLE.so]}
mandir=${2:?usage: check.sh HEADER MANDIR [LIBPCIHOLE.so]}
so=${3:-}
fail=0
err() { printf 'manpages: %s\n' "$*" >&2; fail=1; }

[ -r "$hdr" ] || { echo "manpages: cannot read $hdr" >&2; exit 1; }
[ -d "$mandir/man3" ] || { echo "manpages: no $mandir/man3" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
hdr=$(cd "$(dirname "$hdr")" && pwd)/$(basename "$hdr")
[ -z "$so" ] || so=$(cd "$(dirname "$so")" && pwd)/$(basename "$so")
cd "$mandir"

# Functions the header declares: every "pcihole_name(" outside comments.
# A function pointer typedef, "(*pcihole_x_fn)(", does not match.
declared=$(awk '
	{
		line = $0; out = ""
		while (line != "") {
			if (incomment) {
				i = index(line, "*/")
				if (!i) { line = ""; break }
				line = substr(line, i + 2); incomment = 0
			} else {
				i = index(line, "/*")
				if (!i) { out = out line; line = ""; break }
				out = out substr(line, 1, i - 1) " "
				line = substr(line, i + 2); incomment = 1
			}
		}
		print out
	}' "$hdr" | grep -oE '(^|[^A-Za-z0-9_])pcihole_[a-z0-9_]+[[:space:]]*\(' |
	sed -E 's/^[^p]*//; s/[[:space:]]*\($//' | sort -u)
[ -n "$declared" ] || { echo "manpages: no pcihole_* function found in $hdr" >&2; exit 1; }

# The library's exports, when given: a symbol the parser above missed (a
# macro-generated declaration, say) still needs a page.
exported=
if [ -n "$so" ]; then
	if command -v nm >/dev/null 2>&1; then
		exported=$(nm -D --defined-only "$so" | awk '{print $3}' |
			sed 's/@.*//' | grep '^pcihole_' | sort -u) ||
			err "no pcihole_* symbol exported by $so"
	else
		err "nm not found: cannot read the exports of $so (apt-get install binutils)"
	fi
fi
functions=$(printf '%s\n%s\n' "$declared" "$exported" | grep . | sort -u)

# A link is a one-line file ".so man3/target.3", liburing style.
link_target() { sed -n '1s|^\.so \(man[37]/[A-Za-z0-9_.]*\)$|\1|p' "$1"; }
# The names a page's NAME section lists (comma-separated, before "\-").
page_names() {
	awk '/^\.SH /{ insec = ($0 ~ /^\.SH "?NAME"?$/); next }
	     insec { print }' "$1" | tr '\n' ' ' | sed 's/\\-.*//' |
		tr ',' '\n' | sed 's/^[[:space:]]*//; s/[[:space:]]*$//' | grep .
}

# name<TAB>prototype of every declaration, to compare with each SYNOPSIS.
protos=$(awk -v mode=header -f "$here/proto.awk" "$hdr")
tab=$(printf '\t')

pages=0 links=0
for f in man3/*.3 man7/*.7; do
	[ -e "$f" ] || continue
	name=$(basename "$f"); name=${name%.*}
	if grep -q '^\.so' "$f"; then
		links=$((links + 1))
		t=$(link_target "$f")
		if [ -z "$t" ] || [ "$(wc -l <"$f")" -ne 1 ]; then
			err "$f: a link must be the single line '.so manN/page.N'"
			continue
		fi
		[ -f "$t" ] || { err "$f: links to missing $t"; continue; }
		! grep -q '^\.so' "$t" || err "$f: links to another link, $t"
		page_names "$t" | grep -qx "$name" ||
			err "$f: $t does not list $name in its NAME section"
	else
		pages=$((pages + 1))
		grep -q "^\.TH $name " "$f" || err "$f: .TH does not name $name"
		page_names "$f" | grep -qx "$name" ||
			err "$f: NAME section does not list $name"
		for n in $(page_names "$f"); do
			[ -e "man3/$n.3" ] || [ -e "man7/$n.7" ] ||
				err "$f: lists $n, which has no page or link"
		done
		# The SYNOPSIS must show each function exactly as declared, and a
		# page's prototypes, #defines and struct/enum listings must be
		# the header's (comments and spacing aside).
		syn=$(awk -v mode=page -f "$here/proto.awk" "$f")
		for n in $(page_names "$f"); do
			case $n in pcihole_*) ;; *) continue ;; esac
			printf '%s\n' "$syn" | grep -q "^$n$tab" ||
				err "$f: SYNOPSIS lacks a prototype of $n"
		done
		printf '%s\n' "$syn" | while IFS="$tab" read -r n p; do
			[ -n "$n" ] || continue
			h=$(printf '%s\n' "$protos" | sed -n "s/^$n$tab//p")
			if [ -z "$h" ]; then
				echo "manpages: $f: shows $n, which the header does not declare" >&2
				echo fail
			elif [ "$h" != "$p" ]; then
				echo "manpages: $f: $n differs from the header:" >&2
				echo "  header: $h" >&2
				echo "  page:   $p" >&2
				echo fail
			fi
		done | grep -q fail && fail=1
	fi
	case $name in
	pcihole_*)
		printf '%s\n' "$functions" | grep -qx "$name" ||
			err "$f: $name is not a function of $(basename "$hdr") (stale page?)"
		;;
	esac
	# Every libpcihole page it refers to must exist.
	refs=$(grep -oE '^\.BR (lib)?pcihole_?[a-z0-9_]* \([37]\)' "$f" |
		sed -E 's/^\.BR ([a-z0-9_]+) \(([37])\)/man\2\/\1.\2/' | sort -u)
	for ref in $refs; do
		[ -e "$ref" ] || err "$f: refers to $ref, which does not exist"
	done
done

for fn in $functions; do
	[ -e "man3/$fn.3" ] || err "no man page for $fn (add man3/$fn.3 or a .so link)"
done

nfn=$(printf '%s\n' "$functions" | grep -c .)
if ! command -v mandoc >/dev/null 2>&1; then
	if [ "$fail" -ne 0 ]; then exit 1; fi
	if [ "${PCIHOLE_REQUIRE_MANDOC:-0}" = 1 ]; then
		echo "manpages: mandoc not installed but PCIHOLE_REQUIRE_MANDOC=1" >&2
		exit 1
	fi
	echo "manpages: SKIPPED lint: mandoc not installed (apt-get install mandoc);" \
		"$nfn functions covered by $pages pages and $links links"
	exit 77
fi

# Pages: every mandoc warning counts.  Links: mandoc's only warning for a
# .so file is its advice to use ln(1) instead, which is the liburing
# convention we follow on purpose, so links are linted for errors only
# (a .so to a missing file is an error).
for f in man3/*.3 man7/*.7; do
	[ -e "$f" ] || continue
	if grep -q '^\.so' "$f"; then level=error; else level=warning; fi
	out=$(mandoc -T lint -W "$level" "$f" 2>&1) || true
	[ -z "$out" ] || err "mandoc -T lint -W $level $f:
$out"
	if command -v groff >/dev/null 2>&1; then
		out=$(groff -ww -z -man "$f" 2>&1) || true
		[ -z "$out" ] || err "groff -ww -z -man $f:
$out"
	fi
done

[ "$fail" -eq 0 ] || exit 1
linters="mandoc"
if command -v groff >/dev/null 2>&1; then linters="mandoc and groff"; fi
echo "manpages ok: $nfn functions covered by $pages pages and $links links, prototypes, macros and structures as in the header; $linters lint clean"
