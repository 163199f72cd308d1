#!/usr/bin/env bash
# Build the C engine with AddressSanitizer + UndefinedBehaviorSanitizer in a copy of the tree (so the
# checkout's release module is untouched) and run the test suite against it.
#
# CPython is not instrumented, so the sanitizer runtimes are preloaded. Left out: modules that import the
# official SDK (pycryptodome's cffi libraries abort under the ASan preload: tests/compat, test_compat,
# test_differential, test_normalization, test_cli, and the demo test of test_secrets, whose demo times
# uid2-client), Spark (a JVM under the preload) and test_memory (ASan's quarantine keeps freed memory,
# so RSS says nothing there; the release build runs it). Everything else, both engines, runs.
#
# Usage: scripts/sanitize_check.sh [pytest args...]      (default: the suite minus the modules above)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== copy the tree and build with UID2FAST_SANITIZE=1"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work" 2>/dev/null) \
    || cp -r "$root"/. "$work"
cd "$work"
rm -f src/uid2fast/_engine_c*.so
# An in-place build runs setup.py directly (no build isolation): it needs the build requirements here.
"$py" -c "import Cython, setuptools, sys; sys.exit(int(setuptools.__version__.split('.')[0]) < 77)" 2>/dev/null \
    || "$py" -m pip install -q "Cython>=3.0" "setuptools>=77" wheel
UID2FAST_SANITIZE=1 UID2FAST_REQUIRE_EXTENSIONS=1 "$py" setup.py -q build_ext --inplace --force >/dev/null

asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
export LD_PRELOAD="$asan $ubsan"
# detect_leaks=0: CPython keeps interned objects alive at exit, which LeakSanitizer would report.
export ASAN_OPTIONS=detect_leaks=0,abort_on_error=1,strict_string_checks=1,detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1,halt_on_error=1
export PYTHONMALLOC=malloc PYTHONPATH="$work/src" UID2FAST_REQUIRE_EXTENSIONS=1

"$py" -c "import uid2fast; assert uid2fast.backend == 'c'; print('sanitized engine:', uid2fast._engine.__file__)"

if [ $# -eq 0 ]; then
    set -- tests -p no:cacheprovider -q \
        --ignore=tests/compat --ignore=tests/test_compat.py --ignore=tests/test_differential.py \
        --ignore=tests/test_normalization.py --ignore=tests/test_cli.py --ignore=tests/test_spark.py \
        --ignore=tests/test_memory.py \
        --deselect tests/test_secrets.py::test_cli_demo_prints_no_credentials_or_key_secrets
fi
echo "== pytest $*"
"$py" -m pytest "$@"
