#!/usr/bin/env bash
# Linux wheels without a system OpenSSL, built here against an old glibc with zig's C compiler:
#   1. x86_64-linux-gnu.2.17: a wheel whose extension's `readelf -d` NEEDED lists only libc-family
#      libraries, which `auditwheel show` accepts as manylinux_2_17 (manylinux2014); installed into a fresh
#      venv, the suite runs against the installed wheel (a subset by default, the whole suite with --full);
#   2. x86_64-linux-musl: the extension builds (-Werror) and needs only libc (musllinux).
# Usage: scripts/platform_linux.sh [--full] [pytest args...]
# Needs: python3 with setuptools, wheel, Cython, ziglang, auditwheel (the [test] extras go into the fresh venv).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python3}
full=0
if [ "${1:-}" = "--full" ]; then full=1; shift; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# a copy of the working tree without build products (the in-place extension, build/, CI venvs)
tar -C "$root" --exclude=./build --exclude='./.venv*' --exclude='*.so' --exclude=./.git --exclude='*.egg-info' \
    --exclude=./src/uid2fast/_engine_c.c -cf - . | (mkdir "$work/tree" && tar -C "$work/tree" -xf -)
ZIG="$py -m ziglang cc"
LIBC_FAMILY='^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|ld-linux-x86-64\.so\.2|libc\.musl-x86_64\.so\.1|libc\.so)$'

needed_only_libc() { # extension .so
    local libs
    libs=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    echo "NEEDED: $(echo "$libs" | tr '\n' ' ')"
    if echo "$libs" | grep -Ev "$LIBC_FAMILY" | grep -q .; then
        echo "FAIL: a library outside the libc family" >&2
        return 1
    fi
}

echo "== manylinux: wheel with zig cc -target x86_64-linux-gnu.2.17"
(cd "$work/tree" && CC="$ZIG -target x86_64-linux-gnu.2.17" LDSHARED="$ZIG -target x86_64-linux-gnu.2.17 -shared" \
    UID2FAST_REQUIRE_EXTENSIONS=1 "$py" -m pip wheel -q --no-build-isolation --no-deps -w "$work/dist" . )
whl=$(ls "$work"/dist/uid2fast-*.whl)
echo "built: $(basename "$whl")"
mkdir "$work/unz" && (cd "$work/unz" && "$py" -m zipfile -e "$whl" .)
so=$(ls "$work"/unz/uid2fast/_engine_c*.so)
needed_only_libc "$so"
show=$("$py" -m auditwheel show "$whl")
echo "$show" | sed 's/^/    /'
echo "$show" | tr -s ' \n' ' ' | grep -q 'consistent with the following platform tag: "manylinux_2_17_x86_64"' \
    || { echo "FAIL: auditwheel does not accept the wheel as manylinux_2_17" >&2; exit 1; }
# nothing to graft (only libc-family libraries): the platform tag is all auditwheel repair would change
"$py" -m wheel tags --remove --platform-tag manylinux_2_17_x86_64 "$whl" >/dev/null
wheel=$(ls "$work"/dist/uid2fast-*manylinux_2_17_x86_64*.whl)
echo "tagged: $(basename "$wheel")"

echo "== install into a fresh venv and test from the installed wheel"
"$py" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$wheel[test]"
mkdir "$work/run"
for d in tests benchmarks docs csrc; do cp -r "$root/$d" "$work/run/$d"; done
cp "$root/README.md" "$root/pyproject.toml" "$root/setup.py" "$work/run/"
cd "$work/run"
UID2FAST_REQUIRE_EXTENSIONS=1 "$work/venv/bin/python" -c \
    "import uid2fast; assert uid2fast.backend == 'c'; print('installed:', uid2fast.__file__, uid2fast.backend_features)"
if [ $# -gt 0 ]; then
    targets=("$@")
elif [ $full = 1 ]; then
    targets=(tests)
else
    targets=(tests/test_vectors.py tests/test_fastpath.py tests/test_nonces.py tests/test_batch.py)
fi
UID2FAST_REQUIRE_EXTENSIONS=1 "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "${targets[@]}"

echo "== musllinux: the extension with zig cc -target x86_64-linux-musl"
cd "$work/tree"
rm -rf build
CC="$ZIG -target x86_64-linux-musl" LDSHARED="$ZIG -target x86_64-linux-musl -shared" \
    UID2FAST_REQUIRE_EXTENSIONS=1 "$py" setup.py -q build_ext -b "$work/musl" -t "$work/musl-tmp" >/dev/null
so=$(ls "$work"/musl/uid2fast/_engine_c*.so)
needed_only_libc "$so"
echo "musl build ok: $(basename "$so")"
