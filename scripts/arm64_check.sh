#!/usr/bin/env bash
# The aarch64 build, checked on an x86-64 Linux host: the C sources cross-compiled with Debian's
# aarch64-linux-gnu-gcc (-Werror) and run under qemu-aarch64 with the ARMv8 kernels active (qemu's `max` CPU
# has AES, PMULL and ASIMD; the tests fail if the kernels are not in use, they do not skip).
#
#   scripts/arm64_check.sh            the CI run (a few minutes)
#   ARM64_CASES=1000000 scripts/arm64_check.sh    a longer differential
#
# 1. csrc/tests/test_arm.c: NIST CAVP AES-GCM (gcmDecrypt*, gcmEncryptExtIV*) and AES-CBC vectors from the
#    cryptography_vectors package; ARM64_CASES (default 100,000) random GCM cases and as many CBC cases
#    against arm64 OpenSSL (random keys of 16/24/32 bytes, lengths 0..600, AAD, in place, one flipped bit in
#    every 4th GCM case rejected); the NEON base64 codecs against OpenSSL's encoder and a scalar decoder.
# 2. csrc/tests/engine_vectors.c: tests/vectors/decrypt.json (converted by scripts/arm64_vectors.py)
#    through the engine built for aarch64, with the fast paths required on; the same with them off; and the
#    same driver built natively: the three outputs (every field of every result) must be identical.
#    The kernel tests run a second time under AddressSanitizer + UBSan (ARM64_ASAN_CASES, default 10,000).
# 3. fuzz/fuzz_decrypt.c (its oracles compare the fast paths with the reference paths, and encryption with
#    decryption) built for aarch64 with ASan + UBSan and a plain main (fuzz/replay_main.c, no libFuzzer for a
#    cross build): the seed corpus and fuzz/regressions, plus ARM64_FUZZ_MUTATIONS (default 30) random
#    mutations of each.
# 4. The kernel sources compile with -Werror for aarch64-macos too (zig cc), when ziglang is installed.
#
# Installs what it needs with apt-get when it is missing (as root): gcc-aarch64-linux-gnu with
# libc6-dev-arm64-cross, qemu-user, libssl-dev:arm64 (multiarch). Python (PYTHON, default python3) needs cryptography-vectors and the
# project's dependencies (the vector conversion imports uid2fast from src/).
# Emulation measures correctness only: nothing here says anything about speed on real arm64 hardware.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
py=${PYTHON:-python3}
cases=${ARM64_CASES:-100000}
mutations=${ARM64_FUZZ_MUTATIONS:-30}
asan_cases=${ARM64_ASAN_CASES:-10000}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log() { printf '== %s\n' "$*"; }

# ---- toolchain -----------------------------------------------------------------------------------------
missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
dpkg -s libc6-dev-arm64-cross >/dev/null 2>&1 || missing+=(libc6-dev-arm64-cross)  # only recommended by the gcc
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
dpkg -s libssl-dev:arm64 >/dev/null 2>&1 || missing+=(libssl-dev:arm64)
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "missing ${missing[*]} (run as root to install them)" >&2; exit 2; }
    log "apt-get install ${missing[*]}"
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q "${missing[@]}" >/dev/null
fi
CC=aarch64-linux-gnu-gcc
QEMU=(qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu)
vectors=$("$py" -c 'import cryptography_vectors, os; print(os.path.dirname(cryptography_vectors.__file__))') ||
    { echo "$py cannot import cryptography_vectors (pip install cryptography-vectors)" >&2; exit 2; }

# The engine's sources: the ones setup.py compiles ("csrc/uid2_*.c" literals there).
mapfile -t SOURCES < <(grep -o '"csrc/uid2_[a-z0-9_]*\.c"' setup.py | tr -d '"' | sort -u)
for f in csrc/uid2_gcm_arm.c csrc/uid2_b64_neon.c; do
    case " ${SOURCES[*]} " in *" $f "*) ;; *) SOURCES+=("$f") ;; esac
done
FLAGS=(-O3 -std=gnu11 -pthread -ffp-contract=off -D_GNU_SOURCE -Wall -Wextra -Werror -Icsrc)
LIBS=(-lcrypto -lm)
# LeakSanitizer does not work under qemu-user (it needs ptrace): detect_leaks=0 wherever ASan runs.
SAN=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)

# ---- 1. kernels ------------------------------------------------------------------------------------------
log "kernels: cross-build ($($CC --version | head -1))"
$CC "${FLAGS[@]}" csrc/tests/test_arm.c "${SOURCES[@]}" "${LIBS[@]}" -o "$work/test_arm"
log "kernels: CAVP vectors, $cases differential cases, base64 (qemu-aarch64 -cpu max)"
"${QEMU[@]}" "$work/test_arm" "$vectors" "$cases"
log "kernels: again under AddressSanitizer + UBSan ($asan_cases differential cases)"
$CC "${FLAGS[@]}" -O1 -g "${SAN[@]}" csrc/tests/test_arm.c "${SOURCES[@]}" "${LIBS[@]}" -o "$work/test_arm_san"
ASAN_OPTIONS=detect_leaks=0 "${QEMU[@]}" "$work/test_arm_san" "$vectors" "$asan_cases" 7

# ---- 2. the decrypt vectors through the engine -------------------------------------------------------------
log "engine: decrypt vectors"
PYTHONPATH="$root/src:$root" UID2FAST_NO_EXTENSIONS=1 UID2FAST_REQUIRE_EXTENSIONS=0 "$py" scripts/arm64_vectors.py "$work/vectors.txt"
$CC "${FLAGS[@]}" csrc/tests/engine_vectors.c "${SOURCES[@]}" "${LIBS[@]}" -o "$work/engine_arm"
${HOST_CC:-cc} "${FLAGS[@]}" csrc/tests/engine_vectors.c "${SOURCES[@]}" "${LIBS[@]}" -o "$work/engine_host"
"${QEMU[@]}" "$work/engine_arm" "$work/vectors.txt" --require-fast >"$work/arm_fast.out"
"${QEMU[@]}" "$work/engine_arm" "$work/vectors.txt" --no-fastpath >"$work/arm_ref.out"
"$work/engine_host" "$work/vectors.txt" >"$work/host.out"
cmp "$work/arm_fast.out" "$work/arm_ref.out" || { echo "aarch64: fast paths and reference paths differ" >&2; exit 1; }
cmp "$work/arm_fast.out" "$work/host.out" || { echo "aarch64 and $(uname -m) results differ" >&2; exit 1; }
log "engine: $(wc -l <"$work/host.out") results identical on aarch64 (kernels on, kernels off) and $(uname -m)"

# ---- 3. the fuzz harness's oracles on aarch64 ----------------------------------------------------------------
log "fuzz harness: aarch64 build (ASan + UBSan), seeds + regressions + $mutations mutations each"
PYTHONPATH="$root/src" UID2FAST_NO_EXTENSIONS=1 UID2FAST_REQUIRE_EXTENSIONS=0 "$py" fuzz/make_corpus.py "$work/seeds" >/dev/null
$CC "${FLAGS[@]}" -O1 -g "${SAN[@]}" fuzz/fuzz_decrypt.c fuzz/replay_main.c "${SOURCES[@]}" "${LIBS[@]}" \
    -o "$work/fuzz_replay"
(cd "$work" && ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "${QEMU[@]}" "$work/fuzz_replay" \
    -mutations "$mutations" "$work/seeds" "$root/fuzz/regressions")

# ---- 4. macOS arm64 compile check ------------------------------------------------------------------------------
if "$py" -c 'import ziglang' 2>/dev/null; then
    log "aarch64-macos: the kernels compile with -Werror (zig cc; nothing runs them here)"
    for f in csrc/uid2_gcm_arm.c csrc/uid2_b64_neon.c; do
        "$py" -m ziglang cc -target aarch64-macos "${FLAGS[@]}" -c "$f" -o "$work/mac.o"
    done
else
    log "aarch64-macos compile check skipped (no ziglang)"
fi
log "arm64 check passed (correctness under emulation only; emulation says nothing of speed)"
