#!/usr/bin/env bash
# The C engine built for, and tested on, the other CPython versions this machine has (3.12 and newer), beside
# the CI venv's own. Part of the extension depends on the interpreter it is compiled for: the clock check reads
# the dict version tag of `time` on 3.11 to 3.13 and looks `time_ns` up on every call from 3.14 and on
# free-threaded builds; recycled results and slot reads check the object layout (docs/design.md). Those branches
# run only on an interpreter they were compiled for, so each one found gets its own venv, a build of this tree,
# and the tests of the scalar result, the client methods, the fast paths and the engine's internals, plus the
# official SDK's own tests.
#
# Usage: scripts/other_pythons.sh [pytest args...]
# Interpreters: python3.N on PATH, else under pyenv's versions (PYENV_ROOT, default ~/.pyenv), for N = 12, 13,
# 14; UID2FAST_PYTHONS="/path/to/python ..." names them instead. Finding none is not a failure (this machine
# then has only the CI venv's Python, which every other stage tests): the script says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

pythons=()
if [ -n "${UID2FAST_PYTHONS:-}" ]; then
    read -r -a pythons <<<"$UID2FAST_PYTHONS"
else
    runs() { [ -n "$1" ] && "$1" -c 'import sys' >/dev/null 2>&1; }  # (a pyenv shim is on PATH but may not run)
    for minor in 12 13 14; do
        py=$(command -v "python3.$minor" || true)
        runs "$py" || py=""
        for d in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3."$minor".*; do
            [ -z "$py" ] && runs "$d/bin/python3.$minor" && py="$d/bin/python3.$minor"
        done
        [ -n "$py" ] && pythons+=("$py")
    done
fi
if [ ${#pythons[@]} -eq 0 ]; then
    echo "== no CPython 3.12 or newer on this machine: nothing to build (the CI venv's Python is tested everywhere else)"
    exit 0
fi

tests=(tests/test_scalar_result.py tests/test_client_methods.py tests/test_fastpath.py tests/test_engine_c_internal.py
       tests/test_compat.py)
work="$root/build/other-pythons"
mkdir -p "$work"
for py in "${pythons[@]}"; do
    ver=$("$py" -c 'import sys, sysconfig; print("%d.%d%s" % (sys.version_info[:2] + ("t" if sysconfig.get_config_var("Py_GIL_DISABLED") else "",)))')
    venv="$work/venv-$ver"
    echo "== CPython $ver ($py): a venv, this tree built into it, and its tests"
    if [ ! -x "$venv/bin/python" ]; then
        "$py" -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install -q --upgrade pip "setuptools>=77" wheel "Cython>=3.0"
    # what those tests import: the runtime dependencies, the test tools and the official SDK (no extras)
    "$venv/bin/python" -m pip install -q numpy cryptography requests "pytest>=7" "hypothesis>=6" "uid2-client==2.9.0"
    "$venv/bin/python" -m pip install -q --no-deps --no-build-isolation --force-reinstall "$root"
    # from the repository root the tests import the installed package: the src/ layout keeps the tree off the path
    UID2FAST_REQUIRE_EXTENSIONS=1 "$venv/bin/python" -c \
        "import sys, uid2fast; from uid2fast import _engine_c; assert uid2fast.backend == 'c', uid2fast.backend; print('CPython', sys.version.split()[0], uid2fast.__file__, 'recycled results:', _engine_c.result_recycling())"
    UID2FAST_REQUIRE_EXTENSIONS=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider "${@:-${tests[@]}}"
done
