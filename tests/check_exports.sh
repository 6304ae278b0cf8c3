#!/bin/sh
# Every dynamic symbol the library defines must be public API (pcihole_*),
# and every function the header declares must be exported.  The static
# archive (second argument) must define no other global symbol either: the
# internal ph_* functions and the test-only fault-injection seam stay out of
# both shipped libraries.
set -eu
so=$1
ar=${2:-}
hdr=$(dirname "$0")/../include/pcihole.h
syms=$(nm -D --defined-only "$so" | awk '{print $3}' | sed 's/@.*//' | sort -u)
[ -n "$syms" ] || { echo "no symbols exported from $so"; exit 1; }
bad=$(printf '%s\n' "$syms" | grep -v '^pcihole_' | grep -v '^LIBPCIHOLE_' || true)
if [ -n "$bad" ]; then echo "non-API symbols exported:"; echo "$bad"; exit 1; fi
missing=0
# Every "pcihole_name(" in the header, declarations and comments alike, is a function.
declared=$(grep -oE 'pcihole_[a-z0-9_]+\(' "$hdr" | tr -d '(' | sort -u)
for f in $declared; do
  printf '%s\n' "$syms" | grep -qx "$f" || { echo "declared but not exported: $f"; missing=1; }
done
for s in $syms; do
  case $s in LIBPCIHOLE_*) continue;; esac
  printf '%s\n' "$declared" | grep -qx "$s" || { echo "exported but not declared in pcihole.h: $s"; missing=1; }
done
if [ -n "$ar" ]; then
  arsyms=$(nm -g --defined-only "$ar" | awk 'NF == 3 {print $3}' | sort -u)
  badar=$(printf '%s\n' "$arsyms" | grep -v '^pcihole_' || true)
  if [ -n "$badar" ]; then echo "non-API global symbols in $ar:"; echo "$badar"; missing=1; fi
  if [ "$(printf '%s\n' "$arsyms" | grep -c .)" != "$(printf '%s\n' "$syms" | grep -vc '^LIBPCIHOLE_')" ]; then
    echo "$ar and $so define different sets of pcihole_* symbols"; missing=1
  fi
fi
[ $missing -eq 0 ] || exit 1
echo "exports ok: $(printf '%s\n' "$syms" | grep -vc '^LIBPCIHOLE_') symbols, all pcihole_*${ar:+, the same in the static archive}"
