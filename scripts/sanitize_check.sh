#!/usr/bin/env bash
# Build the C engine with AddressSanitizer + UndefinedBehaviorSanitizer in a copy of the tree (so the
# checkout's release module is untouched) and run the test suite against it.
#
# CPython is not instrumented, so the sanitizer runtimes are preloaded. The whole default suite runs, both
# engines and the official SDK's tests included, except tests marked ``no_sanitizer`` (each says why; see
# the marker in pyproject.toml). pycryptodome (the official SDK's AES) opens its C libraries with
# RTLD_DEEPBIND, which the ASan runtime refuses; PYCRYPTODOME_DISABLE_DEEPBIND=1 makes it open them plainly.
#
# Usage: scripts/sanitize_check.sh [pytest args...]      (default: the engine_path tests minus no_sanitizer ones)
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
export PYTHONMALLOC=malloc PYTHONPATH="$work/src" UID2FAST_REQUIRE_EXTENSIONS=1 PYCRYPTODOME_DISABLE_DEEPBIND=1

"$py" -c "import uid2fast; assert uid2fast.backend == 'c'; print('sanitized engine:', uid2fast._engine.__file__)"

if [ $# -eq 0 ]; then
    set -- tests -p no:cacheprovider -q -m "engine_path and not slow and not no_sanitizer"
fi
echo "== pytest $*"
"$py" -m pytest "$@"
