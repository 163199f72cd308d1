#!/usr/bin/env bash
# Coverage-guided fuzzing of the C engine (fuzz/fuzz_decrypt.c) under AddressSanitizer + UBSan + LeakSanitizer.
#
#   scripts/fuzz.sh [SECONDS]          build, seed from tests/vectors, fuzz for SECONDS (default 600)
#   scripts/fuzz.sh --repro FILE...    build, then run the harness once on each FILE (a kept crasher)
#   scripts/fuzz.sh --coverage         line/branch coverage of csrc/ by the kept corpus and the seeds
#
# Installs clang and libFuzzer (Debian: clang, libclang-rt-N-dev) and libssl-dev if missing. Exits non-zero
# on any finding: a crash, an ASan/UBSan report, a leak, an oracle failure, a timeout or running out of
# memory. Crashers are kept in $UID2FAST_FUZZ_DIR/crashes (default build/fuzz/crashes); the growing corpus in
# $UID2FAST_FUZZ_DIR/corpus is kept between runs. One fuzzing process only (the machines have 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_DIR=${UID2FAST_FUZZ_DIR:-build/fuzz}
BIN="$FUZZ_DIR/fuzz_decrypt"
mkdir -p "$FUZZ_DIR/crashes" "$FUZZ_DIR/corpus"

repro=0
coverage=0
if [ "${1:-}" = "--coverage" ]; then
    coverage=1
elif [ "${1:-}" = "--repro" ]; then
    repro=1
    shift
    [ $# -gt 0 ] || { echo "usage: $0 --repro FILE..." >&2; exit 2; }
else
    duration=${1:-600}
    case "$duration" in ''|*[!0-9]*) echo "usage: $0 [SECONDS] | --repro FILE... | --coverage" >&2; exit 2 ;; esac
fi

# ---- toolchain -----------------------------------------------------------------------------------------
have_libfuzzer() {
    command -v clang >/dev/null 2>&1 || return 1
    local tmp
    tmp=$(mktemp -d)
    cat >"$tmp/t.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOF
    clang -fsanitize=fuzzer,address,undefined "$tmp/t.c" -o "$tmp/t" >/dev/null 2>&1
    local rc=$?
    rm -rf "$tmp"
    return $rc
}
have_openssl() { echo '#include <openssl/evp.h>' | ${CC:-cc} -E -x c - >/dev/null 2>&1; }

if ! have_libfuzzer || ! have_openssl; then
    t0=$(date +%s)
    echo "== installing clang / libFuzzer / libssl-dev (apt)"
    export DEBIAN_FRONTEND=noninteractive
    quiet() { "$@" > /dev/null 2> >(grep -v '^debconf: delaying' >&2); }
    quiet apt-get update -qq
    quiet apt-get install -y -qq --no-install-recommends clang libssl-dev
    # libFuzzer and the sanitizer runtimes are in compiler-rt: libclang-rt-<major>-dev on Debian 12+.
    major=$(clang -dumpversion | cut -d. -f1)
    quiet apt-get install -y -qq --no-install-recommends "libclang-rt-${major}-dev"
    echo "== installed in $(( $(date +%s) - t0 )) s"
    have_libfuzzer || { echo "clang cannot build a -fsanitize=fuzzer binary" >&2; exit 1; }
fi

# ---- build -----------------------------------------------------------------------------------------------
# The engine's sources are the ones setup.py compiles (string literals "csrc/uid2_*.c" there), so new
# kernels are fuzzed as soon as they are part of the build.
mapfile -t SOURCES < <(grep -o '"csrc/uid2_[a-z0-9_]*\.c"' setup.py | tr -d '"' | sort -u)
[ ${#SOURCES[@]} -gt 0 ] || { echo "no csrc sources found in setup.py" >&2; exit 1; }
# UID2_MIN_ROWS_PER_THREAD=256: the harness's "two threads" batches (520 rows) then really run on two threads,
# in three chunks of the shared cursor (256, 256, 8), instead of on one (the release build wants 2,048 a thread)
CFLAGS_COMMON=(-g -std=gnu11 -pthread -ffp-contract=off -D_GNU_SOURCE -DUID2_MIN_ROWS_PER_THREAD=256u -Wall -Wextra
               -Icsrc)

# Seeds are regenerated on every run (deterministic); earlier findings (fixed) in fuzz/regressions/ are
# replayed as seeds too.
make_seeds() {
    SEEDS="$FUZZ_DIR/seeds"
    rm -rf "$SEEDS"
    PYTHONPATH=src UID2FAST_NO_EXTENSIONS=1 UID2FAST_REQUIRE_EXTENSIONS=0 python3 fuzz/make_corpus.py "$SEEDS"
    corpora=("$FUZZ_DIR/corpus" "$SEEDS" fuzz/regressions)
}

if [ $coverage = 1 ]; then
    # Source-based coverage of csrc/ by everything the fuzzer kept (no sanitizers: plain -O0 counters).
    major=$(clang -dumpversion | cut -d. -f1)
    profdata=$(command -v "llvm-profdata-$major" || command -v llvm-profdata)
    llvmcov=$(command -v "llvm-cov-$major" || command -v llvm-cov)
    COV="$FUZZ_DIR/fuzz_decrypt_cov"
    echo "== building $COV (coverage)"
    clang "${CFLAGS_COMMON[@]}" -O0 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
        fuzz/fuzz_decrypt.c "${SOURCES[@]}" -lcrypto -lm -o "$COV"
    make_seeds
    rm -f "$FUZZ_DIR"/cov-*.profraw
    LLVM_PROFILE_FILE="$FUZZ_DIR/cov-%p.profraw" "$COV" -runs=0 "${corpora[@]}" >"$FUZZ_DIR/coverage.log" 2>&1
    "$profdata" merge -sparse "$FUZZ_DIR"/cov-*.profraw -o "$FUZZ_DIR/cov.profdata"
    "$llvmcov" report "$COV" -instr-profile="$FUZZ_DIR/cov.profdata" "${SOURCES[@]}"
    "$llvmcov" show "$COV" -instr-profile="$FUZZ_DIR/cov.profdata" -format=text "${SOURCES[@]}" >"$FUZZ_DIR/coverage.txt"
    echo "== annotated sources: $FUZZ_DIR/coverage.txt (a count of 0 marks a line never run)"
    exit 0
fi

echo "== building $BIN ($(clang --version | head -1)): ${SOURCES[*]}"
clang "${CFLAGS_COMMON[@]}" -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -fno-omit-frame-pointer fuzz/fuzz_decrypt.c "${SOURCES[@]}" -lcrypto -lm -o "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"

asan="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export ASAN_OPTIONS=${ASAN_OPTIONS:-$asan:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

if [ $repro = 1 ]; then
    exec "$BIN" -runs=1 "$@"
fi

# ---- fuzz ------------------------------------------------------------------------------------------------
make_seeds
LOG="$FUZZ_DIR/fuzz.log"
before=$(find "$FUZZ_DIR/crashes" -type f | wc -l)
echo "== fuzzing for ${duration} s (log: $LOG, crashers: $FUZZ_DIR/crashes/)"
set +e
"$BIN" -max_total_time="$duration" -timeout=20 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$FUZZ_DIR/crashes/" "${corpora[@]}" >"$LOG" 2>&1
rc=$?
set -e
after=$(find "$FUZZ_DIR/crashes" -type f | wc -l)
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$LOG" | tail -2 || true
grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$LOG" || true
if [ $rc -ne 0 ] || [ "$after" -ne "$before" ]; then
    echo "== FINDING (libFuzzer exit $rc, new crashers: $(( after - before ))):" >&2
    grep -E -A30 'ERROR: |runtime error|oracle failed|SUMMARY' "$LOG" | head -80 >&2 || tail -40 "$LOG" >&2
    echo "== reproduce: scripts/fuzz.sh --repro $FUZZ_DIR/crashes/<file>" >&2
    exit 1
fi
echo "== no finding in ${duration} s"
