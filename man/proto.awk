# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Used by check.sh to compare man pages with the header they document.
#
#   awk -v mode=header -f proto.awk pcihole.h
#   awk -v mode=page -f proto.awk page.3
#
# prints one "key<TAB>text" line, whitespace-normalised and without comments,
# for every
#   function prototype       key = its name          (header; page SYNOPSIS)
#   #define with a value     key = define:NAME       (header; page SYNOPSIS)
#   struct/enum pcihole_*    key = struct:NAME       (header; page .EX blocks)
#                            (or enum:NAME), text = its members
function norm(s) {
	gsub(/[ \t\n]+/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s)
	gsub(/\( /, "(", s); gsub(/ \)/, ")", s); gsub(/ ,/, ",", s)
	gsub(/\* /, "*", s); sub(/;$/, "", s); sub(/ $/, "", s)
	return s
}
function emit(s,   n) {
	s = norm(s)
	if (s ~ /^typedef/ || s !~ /pcihole_[a-z0-9_]+\(/) return
	n = s; sub(/\(.*/, "", n); sub(/.*[ *]/, "", n)
	print n "\t" s
}
# "#define NAME ..." with its continuations joined.
function emitdef(s,   n) {
	gsub(/\\[ \t]/, " ", s); sub(/\\$/, "", s)
	sub(/^[ \t]*#[ \t]*define[ \t]+/, "#define ", s); s = norm(s)
	n = s; sub(/^#define /, "", n); sub(/[( ].*/, "", n)
	if (s != "#define " n) print "define:" n "\t" s
}
# Remove C comments from one line; a comment may span lines.
function strip(line,   out, i) {
	out = ""
	while (line != "") {
		if (incomment) {
			i = index(line, "*/"); if (!i) return out
			line = substr(line, i + 2); incomment = 0
		} else {
			i = index(line, "/*"); if (!i) return out line
			out = out substr(line, 1, i - 1) " "; line = substr(line, i + 2); incomment = 1
		}
	}
	return out
}
# Collect "struct pcihole_x {" ... "};" (comment-free lines).
function structline(s,   kw) {
	if (!instruct && match(s, /^[ \t]*(struct|enum)[ \t]+pcihole_[a-z0-9_]+[ \t]*\{/)) {
		kw = substr(s, RSTART, RLENGTH); sub(/^[ \t]*/, "", kw); sub(/[ \t]*\{$/, "", kw)
		split(kw, parts, /[ \t]+/); sname = parts[1] ":" parts[2]; members = ""
		instruct = 1; return
	}
	if (!instruct) return
	if (s ~ /^[ \t]*\};/) { print sname "\t" norm(members); instruct = 0; return }
	members = members " " s
}
function unroff(s) {
	gsub(/\\-/, "-", s); gsub(/\\e/, "\\", s); gsub(/\\~/, " ", s); gsub(/\\&/, "", s)
	return s
}
# The arguments of a .B/.BI line, joined as they render.
function roffargs(line, join,   out, tok, first, i) {
	sub(/^\.[A-Z]+[ \t]*/, "", line); out = ""; first = 1
	while (line != "") {
		if (substr(line, 1, 1) == "\"") {
			line = substr(line, 2); i = index(line, "\"")
			if (!i) { tok = line; line = "" }
			else { tok = substr(line, 1, i - 1); line = substr(line, i + 1) }
		} else {
			i = match(line, /[ \t]/)
			if (!i) { tok = line; line = "" }
			else { tok = substr(line, 1, i - 1); line = substr(line, i) }
		}
		sub(/^[ \t]+/, "", line)
		out = out (first || !join ? "" : " ") tok; first = 0
	}
	return unroff(out)
}
mode == "header" {
	out = strip($0)
	if (cont) {
		def = def " " out; cont = (out ~ /\\$/)
		if (!cont) emitdef(def)
		next
	}
	if (out ~ /^[ \t]*#[ \t]*define[ \t]/) {
		def = out; cont = (out ~ /\\$/)
		if (!cont) emitdef(def)
		next
	}
	if (out ~ /^[ \t]*#/) next
	structline(out)
	buf = buf " " out
	while (match(buf, /[;{}]/)) {
		emit(substr(buf, 1, RSTART - 1)); buf = substr(buf, RSTART + 1)
	}
	next
}
mode == "page" {
	if ($0 == ".EX") { inex = 1; incomment = 0; next }
	if ($0 == ".EE") { inex = 0; instruct = 0; next }
	if (inex) { structline(strip(unroff($0))); next }
	if ($0 ~ /^\.SH /) { insyn = ($0 ~ /^\.SH "?SYNOPSIS"?$/); next }
	if (!insyn) next
	if ($0 == ".nf") { nf = 1; next }
	if ($0 == ".fi") { nf = 0; next }
	if (!nf) next
	if ($0 ~ /^\.BI /) acc = acc roffargs($0, 0) " "
	else if ($0 ~ /^\.B /) acc = acc roffargs($0, 1) " "
	else if ($0 == ".PP") { acc = ""; next }
	else next
	if (acc ~ /;[ ]*$/ && acc !~ /^#/) { emit(acc); acc = "" }
	if (acc ~ /^#/ && acc !~ /\\ *$/) {
		if (acc ~ /^#define /) emitdef(acc)
		acc = ""
	}
}
