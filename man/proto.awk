# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
# Used by check.sh: prints "name<TAB>prototype", whitespace-normalised, for
# every function declared in a C header (-v mode=header) or in the SYNOPSIS
# of a man page (-v mode=page), so that the two can be compared.
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
# "#define NAME ..." as "define:NAME<TAB>#define NAME ...", continuations joined.
function emitdef(s,   n) {
	gsub(/\\[ \t]/, " ", s); sub(/\\$/, "", s)
	sub(/^[ \t]*#[ \t]*define[ \t]+/, "#define ", s); s = norm(s)
	n = s; sub(/^#define /, "", n); sub(/[( ].*/, "", n)
	if (s != "#define " n) print "define:" n "\t" s
}
# roff arguments of a .B/.BI line, joined as they render
function roffargs(line, join,   out, tok, first) {
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
	gsub(/\\-/, "-", out); gsub(/\\e/, "\\", out); gsub(/\\~/, " ", out); gsub(/\\&/, "", out)
	return out
}
mode == "header" {
	line = $0; out = ""
	while (line != "") {
		if (incomment) {
			i = index(line, "*/"); if (!i) { line = ""; break }
			line = substr(line, i + 2); incomment = 0
		} else {
			i = index(line, "/*"); if (!i) { out = out line; line = ""; break }
			out = out substr(line, 1, i - 1) " "; line = substr(line, i + 2); incomment = 1
		}
	}
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
	buf = buf " " out
	while (match(buf, /[;{}]/)) {
		emit(substr(buf, 1, RSTART - 1)); buf = substr(buf, RSTART + 1)
	}
	next
}
mode == "page" {
	if ($0 ~ /^\.SH /) { insyn = ($0 ~ /^\.SH "?SYNOPSIS"?$/); next }
	if (!insyn) next
	if ($0 == ".nf") { nf = 1; next }
	if ($0 == ".fi") { nf = 0; next }
	if (!nf) next
	if ($0 ~ /^\.BI /) acc = acc roffargs($0, 0) " "
	else if ($0 ~ /^\.B /) acc = acc roffargs($0, 1) " "
	else if ($0 == ".PP") { acc = "" ; next }
	else next
	if (acc ~ /;[ ]*$/ && acc !~ /^#/) { emit(acc); acc = "" }
	if (acc ~ /^#/ && acc !~ /\\ *$/) {
		if (acc ~ /^#define /) emitdef(acc)
		acc = ""
	}
}
