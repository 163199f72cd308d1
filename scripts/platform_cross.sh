#!/usr/bin/env bash
# Cross-builds the C engine and its portable self-test (csrc/tests/test_portable.c) for every platform the
# wheels cover, with -Werror, and runs what this machine can run:
#   x86_64-linux-musl        zig cc, static; run natively
#   x86_64-windows-gnu       zig cc and (if installed) mingw-w64 gcc; run under wine64 when installed
#   aarch64-linux-musl       zig cc, static; run under qemu-aarch64 -cpu max when installed (the ARMv8
#                            kernels active; scripts/arm64_check.sh tests them in depth)
#   aarch64-macos, x86_64-macos   zig cc: compile and link only (nothing runs them here)
# Usage: scripts/platform_cross.sh [--no-run]     (needs the ziglang package: pip install ziglang)
# Exit status: non-zero if any build or run fails. A missing runner (wine64, qemu-aarch64) is reported, not
# failed: install them with apt-get install wine64 qemu-user mingw-w64.
set -uo pipefail
cd "$(dirname "$0")/.."
run=1
[ "${1:-}" = "--no-run" ] && run=0
PY=${PYTHON:-python3}
"$PY" -m ziglang version >/dev/null 2>&1 || { echo "ziglang is missing: $PY -m pip install ziglang" >&2; exit 2; }
mapfile -t SOURCES < <(grep -o '"csrc/uid2_[a-z0-9_]*\.c"' setup.py | tr -d '"' | sort -u)
FLAGS=(-O2 -std=c11 -Wall -Wextra -Werror -Icsrc)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail=0

build() { # name, compiler command..., then the extra link flags after --
    local name=$1; shift
    local cc=() libs=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do cc+=("$1"); shift; done
    [ "${1:-}" = "--" ] && shift
    libs=("$@")
    if "${cc[@]}" "${FLAGS[@]}" csrc/tests/test_portable.c "${SOURCES[@]}" "${libs[@]}" -o "$out/$name" \
        >"$out/$name.log" 2>&1; then
        echo "build ok    $name"
    else
        echo "build FAIL  $name"; sed 's/^/    /' "$out/$name.log" | head -20; fail=1; return 1
    fi
}

runit() { # name, runner...
    local name=$1; shift
    [ $run = 1 ] || return 0
    if [ $# -gt 0 ] && ! command -v "$1" >/dev/null 2>&1; then
        echo "run  skip   $name ($1 is not installed)"; return 0
    fi
    if "$@" "$out/$name" >"$out/$name.run" 2>&1; then
        echo "run  ok     $name: $(grep -c '^ok ' "$out/$name.run") checks, $(grep -E 'failures|SKIP|kernels' "$out/$name.run" | tr '\n' ' ')"
    else
        echo "run  FAIL   $name"; sed 's/^/    /' "$out/$name.run" | tail -20; fail=1
    fi
}

Z=("$PY" -m ziglang cc)
# Debian's wine64 package puts its runner in /usr/lib/wine, on nobody's PATH (the `wine` package links it)
WINE=$(command -v wine64 || command -v wine || { [ -x /usr/lib/wine/wine64 ] && echo /usr/lib/wine/wine64; } ||
    echo wine64)
export WINEDEBUG=-all
build linux-musl-x86_64 "${Z[@]}" -target x86_64-linux-musl -static -- -lm && runit linux-musl-x86_64
build windows-x86_64-zig.exe "${Z[@]}" -target x86_64-windows-gnu -- -lbcrypt \
    && runit windows-x86_64-zig.exe "$WINE"
if command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
    build windows-x86_64-mingw.exe x86_64-w64-mingw32-gcc -static -- -lbcrypt && runit windows-x86_64-mingw.exe "$WINE"
else
    echo "build skip  windows-x86_64-mingw.exe (mingw-w64 is not installed)"
fi
build linux-musl-aarch64 "${Z[@]}" -target aarch64-linux-musl -static -- -lm && runit linux-musl-aarch64 qemu-aarch64 -cpu max
build macos-arm64 "${Z[@]}" -target aarch64-macos --
build macos-x86_64 "${Z[@]}" -target x86_64-macos --
exit $fail
