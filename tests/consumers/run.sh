#!/bin/bash
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
#
# tests/consumers/run.sh BUILD_DIR
#
# Install BUILD_DIR into a temporary prefix (cmake --install --prefix) and use
# the library the way an outside project does:
#   1. the installed shared object: SONAME libpcihole.so.1, only pcihole_*
#      symbols exported (nm -D --defined-only), the header compiles on its own;
#   2. a plain pkg-config consumer (cc $(pkg-config --cflags --libs libpcihole));
#   3. a CMake consumer (find_package(pcihole) + pcihole::pcihole, and the static
#      pcihole::pcihole_static);
#   4. the Rust consumer examples/rust-vmm with Debian's cargo/rustc, offline,
#      from Debian's packaged crates: cargo test (FFI mirrors vs the C headers),
#      then the program (a KVM guest; it reports SKIPPED without /dev/kvm).
# Both C consumers plan the q35 layout and check 5 runs / 65,530 hole pages.
#
# Exit status: 0 if nothing failed (skips are reported but allowed), 1 if a
# check failed, 2 on bad usage.  Every step is bounded by `timeout`.
#
# Environment:
#   PCIHOLE_CARGO / PCIHOLE_RUSTC / PCIHOLE_RUSTDOC  toolchain for step 4
#       (default /usr/bin/cargo, /usr/bin/rustc, /usr/bin/rustdoc: Debian's, the
#       one CI has; a rustup cargo earlier on PATH is deliberately not used)
#   PCIHOLE_SKIP_RUST=1      skip step 4
#   PCIHOLE_REQUIRE_RUST=1   a missing Rust toolchain is a failure, not a skip
#   PCIHOLE_KEEP_TMP=1       keep the temporary directory (printed) for debugging
#   CC                       C compiler (default cc)

set -u -o pipefail

usage() {
	echo "usage: $0 BUILD_DIR   (a configured and built libpcihole build tree)" >&2
	exit 2
}
[ $# -eq 1 ] || usage
[ -d "$1" ] || { echo "run.sh: $1: no such directory" >&2; usage; }
BUILD_DIR=$(cd "$1" && pwd)
[ -f "$BUILD_DIR/cmake_install.cmake" ] || {
	echo "run.sh: $BUILD_DIR is not a CMake build tree (no cmake_install.cmake)" >&2
	exit 2
}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
CC=${CC:-cc}
export LC_ALL=C

TMP=$(mktemp -d "${TMPDIR:-/tmp}/pcihole-consumers.XXXXXX") || { echo "run.sh: mktemp failed" >&2; exit 1; }
# shellcheck disable=SC2317  # called by the trap
cleanup() {
	if [ "${PCIHOLE_KEEP_TMP:-0}" = 1 ]; then
		echo "run.sh: kept $TMP"
	else
		rm -rf "$TMP"
	fi
}
trap cleanup EXIT
PREFIX=$TMP/prefix

declare -a RESULTS=()
FAILS=0
pass() { echo "PASS: $*"; RESULTS+=("PASS  $*"); }
fail() { echo "FAIL: $*"; RESULTS+=("FAIL  $*"); FAILS=$((FAILS + 1)); }
skip() { echo "SKIP: $*"; RESULTS+=("SKIP  $*"); }

summary() {
	echo
	echo "== consumers summary"
	printf '  %s\n' "${RESULTS[@]}"
	if [ "$FAILS" -gt 0 ]; then
		echo "consumers: $FAILS failure(s)"
		exit 1
	fi
	echo "consumers: ok"
	exit 0
}

# step SECONDS LOGNAME CMD...: run bounded, output to a log shown on failure
# (and with VERBOSE=1).  Returns the command's status (124 on timeout).
step() {
	local secs=$1 log=$TMP/$2.log rc
	shift 2
	timeout --kill-after=10 "$secs" "$@" >"$log" 2>&1
	rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		echo "  timed out after ${secs}s: $*" >>"$log"
	fi
	if [ $rc -ne 0 ] || [ "${VERBOSE:-0}" = 1 ]; then
		echo "---- $* (exit $rc)"
		tail -n 60 "$log" | sed 's/^/  | /'
		echo "----"
	fi
	return $rc
}

need() {
	command -v "$1" >/dev/null 2>&1 || { fail "prerequisite '$1' not found ($2)"; summary; }
}
need cmake "apt-get install cmake"
need "$CC" "a C compiler; set CC"
need make "apt-get install make"
need nm "apt-get install binutils"
need readelf "apt-get install binutils"
need pkg-config "apt-get install pkg-config"
need timeout "coreutils"

# ---------------------------------------------------------------------------
echo "== install $BUILD_DIR -> $PREFIX"
if ! step 300 install cmake --install "$BUILD_DIR" --prefix "$PREFIX"; then
	fail "cmake --install $BUILD_DIR --prefix (is the build complete? cmake --build $BUILD_DIR)"
	summary
fi
pass "cmake --install --prefix $PREFIX"

PC=$(find "$PREFIX" -name libpcihole.pc -type f | head -n 1)
SO_LINK=$(find "$PREFIX" -name libpcihole.so | head -n 1)
# shellcheck disable=SC2034  # only checked for existence (the loop below)
CMAKE_CFG=$(find "$PREFIX" -name pcihole-config.cmake -type f | head -n 1)
HDR=$(find "$PREFIX" -name pcihole.h -type f | head -n 1)
for v in PC SO_LINK CMAKE_CFG HDR; do
	[ -n "${!v}" ] || fail "installed tree lacks $(case $v in PC) echo libpcihole.pc;; SO_LINK) echo libpcihole.so;; CMAKE_CFG) echo pcihole-config.cmake;; HDR) echo pcihole.h;; esac)"
done
[ "$FAILS" -eq 0 ] || summary
LIBDIR=$(dirname "$SO_LINK")
INCDIR=$(dirname "$HDR")
PCDIR=$(dirname "$PC")

# ---------------------------------------------------------------------------
echo "== installed shared object"
SO_REAL=$(readlink -f "$SO_LINK")
SONAME=$(readelf -d "$SO_REAL" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$SONAME" = libpcihole.so.1 ]; then
	pass "SONAME is libpcihole.so.1"
else
	fail "SONAME of $SO_REAL is '${SONAME:-<none>}', expected libpcihole.so.1"
fi
if [ -e "$LIBDIR/libpcihole.so.1" ] && [ "$(readlink -f "$LIBDIR/libpcihole.so.1")" = "$SO_REAL" ]; then
	pass "libpcihole.so.1 -> $(basename "$SO_REAL") installed"
else
	fail "$LIBDIR/libpcihole.so.1 missing or not the same file as libpcihole.so (the runtime linker looks for the SONAME)"
fi
SYMS=$(nm -D --defined-only "$SO_REAL" | awk '{print $3}' | sed 's/@.*//' | sort -u)
BAD=$(printf '%s\n' "$SYMS" | grep -v -e '^pcihole_' -e '^LIBPCIHOLE_' -e '^$' || true)
NSYM=$(printf '%s\n' "$SYMS" | grep -c '^pcihole_' || true)
if [ -z "$BAD" ] && [ "$NSYM" -gt 0 ]; then
	pass "exports: $NSYM symbols, all pcihole_*"
else
	fail "exports: non-API symbols in $SO_REAL: $(printf '%s' "$BAD" | tr '\n' ' ')(pcihole_* count $NSYM)"
fi
UNVERSIONED=$(nm -D --defined-only "$SO_REAL" | awk '$3 ~ /^pcihole_/ && $3 !~ /@@?LIBPCIHOLE_/ {print $3}')
if [ -z "$UNVERSIONED" ]; then
	pass "every pcihole_* symbol carries a LIBPCIHOLE_* version"
else
	fail "unversioned exports: $(printf '%s' "$UNVERSIONED" | tr '\n' ' ')"
fi
printf '#include <pcihole.h>\nint main(void) { return PCIHOLE_VERSION_MAJOR; }\n' >"$TMP/hdr.c"
if step 60 header-c "$CC" -std=c99 -pedantic -Wall -Wextra -Werror -I"$INCDIR" -fsyntax-only "$TMP/hdr.c"; then
	pass "installed pcihole.h compiles alone (C99 -pedantic -Werror)"
else
	fail "installed pcihole.h does not compile alone with -std=c99 -pedantic -Werror"
fi
if command -v c++ >/dev/null 2>&1; then
	if step 60 header-cxx c++ -x c++ -std=c++11 -Wall -Wextra -Werror -I"$INCDIR" -fsyntax-only "$TMP/hdr.c"; then
		pass "installed pcihole.h compiles as C++11"
	else
		fail "installed pcihole.h does not compile as C++11"
	fi
fi

# The consumers' sources, copied: built out of tree, nothing written to the source.
mkdir -p "$TMP/src"
cp -r "$HERE/q35_plan.c" "$HERE/pkgconfig" "$HERE/cmake" "$TMP/src/"

# ---------------------------------------------------------------------------
echo "== pkg-config consumer"
export PKG_CONFIG_PATH=$PCDIR
if ! step 30 pc-exists pkg-config --exists --print-errors libpcihole; then
	fail "pkg-config does not find libpcihole with PKG_CONFIG_PATH=$PCDIR"
	summary
fi
PC_INC=$(pkg-config --variable=includedir libpcihole)
PC_LIB=$(pkg-config --variable=libdir libpcihole)
if [ "$(readlink -f "$PC_INC")" = "$(readlink -f "$INCDIR")" ] && [ "$(readlink -f "$PC_LIB")" = "$(readlink -f "$LIBDIR")" ]; then
	pass "libpcihole.pc is relocatable (includedir, libdir follow --prefix)"
else
	echo "  installed $PC says includedir=$PC_INC libdir=$PC_LIB,"
	echo "  but the files are in $INCDIR and $LIBDIR: its paths are fixed from"
	echo "  CMAKE_INSTALL_PREFIX at configure time and 'cmake --install --prefix' does not"
	echo "  change them.  Fix in libpcihole.pc.in: prefix=\${pcfiledir}/<relative path from"
	echo "  the .pc's directory to the prefix>, libdir=\${prefix}/@CMAKE_INSTALL_LIBDIR@,"
	echo "  includedir=\${prefix}/@CMAKE_INSTALL_INCLUDEDIR@.  Continuing with a corrected"
	echo "  copy so that the other checks still run."
	fail "libpcihole.pc is not relocatable: it points at $PC_LIB, not the install prefix"
	mkdir -p "$TMP/pc"
	sed -e "s|^prefix=.*|prefix=$PREFIX|" -e "s|^libdir=.*|libdir=$LIBDIR|" \
		-e "s|^includedir=.*|includedir=$INCDIR|" "$PC" >"$TMP/pc/libpcihole.pc"
	export PKG_CONFIG_PATH=$TMP/pc
fi
if step 120 pc-build make -C "$TMP/src/pkgconfig" CC="$CC"; then
	pass "pkg-config consumer builds: $CC \$(pkg-config --cflags --libs libpcihole)"
	if step 60 pc-run env LD_LIBRARY_PATH="$LIBDIR" "$TMP/src/pkgconfig/q35-pkgconfig" &&
		grep -q '5 runs, 65530 hole pages: ok' "$TMP/pc-run.log"; then
		pass "$(cat "$TMP/pc-run.log")"
	else
		fail "pkg-config consumer run"
	fi
	# (ldd output captured first: grep -q closing the pipe early would fail it under pipefail)
	LDD=$(env LD_LIBRARY_PATH="$LIBDIR" ldd "$TMP/src/pkgconfig/q35-pkgconfig" 2>&1)
	if grep -q "libpcihole.so.1 => $LIBDIR/" <<<"$LDD"; then
		pass "pkg-config consumer loads libpcihole.so.1 from the install prefix"
	else
		fail "pkg-config consumer does not load libpcihole.so.1 from $LIBDIR: $(grep pcihole <<<"$LDD")"
	fi
else
	fail "pkg-config consumer build"
fi
# Fully static: Libs.private (pkg-config --static) must be enough.
if step 120 pc-build-static make -C "$TMP/src/pkgconfig" CC="$CC" q35-pkgconfig-static; then
	if step 60 pc-run-static "$TMP/src/pkgconfig/q35-pkgconfig-static" &&
		grep -q '5 runs, 65530 hole pages: ok' "$TMP/pc-run-static.log"; then
		pass "$(cat "$TMP/pc-run-static.log")"
	else
		fail "static pkg-config consumer run"
	fi
else
	fail "static pkg-config consumer: $CC -static ... \$(pkg-config --static --cflags --libs libpcihole)"
fi

# ---------------------------------------------------------------------------
echo "== CMake consumer"
if step 120 cm-configure cmake -S "$TMP/src/cmake" -B "$TMP/build-cmake" \
	-DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
	-DCMAKE_C_COMPILER="$(command -v "$CC")" &&
	step 300 cm-build cmake --build "$TMP/build-cmake"; then
	FOUND=$(sed -n 's/^pcihole_DIR:[A-Z]*=//p' "$TMP/build-cmake/CMakeCache.txt")
	case $(readlink -f "$FOUND") in
	"$(readlink -f "$PREFIX")"/*) pass "find_package(pcihole) found $FOUND" ;;
	*) fail "find_package(pcihole) found '$FOUND', not the install prefix $PREFIX" ;;
	esac
	for exe in q35-cmake q35-cmake-static; do
		if step 60 "cm-run-$exe" "$TMP/build-cmake/$exe" &&
			grep -q '5 runs, 65530 hole pages: ok' "$TMP/cm-run-$exe.log"; then
			pass "$(cat "$TMP/cm-run-$exe.log")"
		else
			fail "CMake consumer $exe run"
		fi
	done
	# No LD_LIBRARY_PATH: the imported target's location gives the build RPATH.
	LDD=$(ldd "$TMP/build-cmake/q35-cmake" 2>&1)
	if grep -q "libpcihole.so.1 => $LIBDIR/" <<<"$LDD"; then
		pass "CMake consumer loads libpcihole.so.1 from the install prefix"
	else
		fail "CMake consumer does not load libpcihole.so.1 from $LIBDIR"
	fi
	LDD=$(ldd "$TMP/build-cmake/q35-cmake-static" 2>&1)
	if grep -q libpcihole <<<"$LDD"; then
		fail "q35-cmake-static links libpcihole.so (pcihole::pcihole_static should be the archive)"
	else
		pass "pcihole::pcihole_static links the archive"
	fi
else
	fail "CMake consumer (find_package(pcihole) with CMAKE_PREFIX_PATH=$PREFIX)"
fi

# ---------------------------------------------------------------------------
echo "== Rust consumer (examples/rust-vmm)"
CARGO=${PCIHOLE_CARGO:-/usr/bin/cargo}
RUSTC=${PCIHOLE_RUSTC:-/usr/bin/rustc}
RUSTDOC=${PCIHOLE_RUSTDOC:-/usr/bin/rustdoc}
REGISTRY=/usr/share/cargo/registry
rust_missing() {
	if [ "${PCIHOLE_REQUIRE_RUST:-0}" = 1 ]; then fail "$*"; else skip "$*"; fi
}
if [ "${PCIHOLE_SKIP_RUST:-0}" = 1 ]; then
	skip "Rust consumer (PCIHOLE_SKIP_RUST=1)"
elif [ ! -x "$CARGO" ] || [ ! -x "$RUSTC" ]; then
	rust_missing "Rust consumer: $CARGO or $RUSTC not found (apt-get install cargo rustc librust-vm-memory-dev librust-libc-dev librust-pkg-config-dev)"
elif ! ls -d "$REGISTRY"/vm-memory-0.* "$REGISTRY"/libc-0.2.* "$REGISTRY"/pkg-config-0.3.* >/dev/null 2>&1; then
	fail "Rust consumer: Debian's crates missing from $REGISTRY (apt-get install librust-vm-memory-dev librust-libc-dev librust-pkg-config-dev)"
else
	mkdir -p "$TMP/rust-vmm"
	(cd "$TOP/examples/rust-vmm" && tar --exclude=./target --exclude=./Cargo.lock -cf - .) | (cd "$TMP/rust-vmm" && tar -xf -)
	RUST_TARGET=$BUILD_DIR/consumers-rust-target
	RENV=(env CARGO_HOME="$TMP/cargo-home" CARGO_TARGET_DIR="$RUST_TARGET" CARGO_NET_OFFLINE=true
		CARGO_TERM_COLOR=never RUSTC="$RUSTC" RUSTDOC="$RUSTDOC" PKG_CONFIG_PATH="$PKG_CONFIG_PATH" CC="$CC")
	echo "  $("$CARGO" --version 2>&1), $("$RUSTC" --version 2>&1)"
	if step 900 rs-build "${RENV[@]}" sh -c "cd '$TMP/rust-vmm' && '$CARGO' build --offline"; then
		pass "Rust consumer builds offline ($("$RUSTC" --version 2>&1 | awk '{print $1, $2}'), vm-memory from $REGISTRY, libpcihole via pkg-config)"
		if step 600 rs-test "${RENV[@]}" sh -c "cd '$TMP/rust-vmm' && '$CARGO' test --offline"; then
			pass "cargo test: $(grep -m1 -o 'test result: ok\. [0-9]* passed' "$TMP/rs-test.log"): FFI/KVM mirrors agree with pcihole.h and linux/kvm.h"
		else
			fail "cargo test (Rust FFI/KVM mirrors against pcihole.h and linux/kvm.h)"
		fi
		step 300 rs-run "$RUST_TARGET/debug/pcihole-rust-vmm"
		rc=$?
		if [ $rc -eq 0 ] || [ $rc -eq 77 ]; then sed 's/^/  | /' "$TMP/rs-run.log"; fi
		case $rc in
		0) pass "Rust consumer ran: guest saw all-ones for every hole and exactly the configured devices; 0 hole-read exits with readonly slots" ;;
		77) skip "Rust consumer run: $(grep SKIPPED "$TMP/rs-run.log" | head -n 1)" ;;
		*) fail "Rust consumer run (exit $rc)" ;;
		esac
	else
		fail "Rust consumer build (cd examples/rust-vmm && PKG_CONFIG_PATH=... $CARGO build --offline)"
	fi
fi

summary
