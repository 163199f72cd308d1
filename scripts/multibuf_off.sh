#!/usr/bin/env bash
# The test suite with the multi-buffer AES-GCM kernel switched off (UID2FAST_NO_MULTIBUF=1, csrc/README.md):
# batch rows then take the one-row fast path (uid2_decrypt_fast) instead of groups of eight. The AVX-512 VBMI
# base64 codecs are off as well (UID2FAST_NO_VBMI=1): the SSSE3 ones run instead, and so is the VAES keystream
# of the one-message kernel (UID2FAST_NO_VAES=1): 128-bit AES-NI, one block an instruction. Run after the default
# suite, which runs with both on wherever the CPU has them, so both ways are covered (the tests-nomultibuf
# stage of .ci/run).
#
# Usage: scripts/multibuf_off.sh [pytest args...]      (default: the whole suite)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== the suite with the multi-buffer GCM kernel, the VAES keystream and the VBMI base64 codecs off (UID2FAST_NO_MULTIBUF=1 UID2FAST_NO_VAES=1 UID2FAST_NO_VBMI=1)"
UID2FAST_NO_MULTIBUF=1 UID2FAST_NO_VAES=1 UID2FAST_NO_VBMI=1 python -m pytest -q -p no:cacheprovider --durations=15 "$@"
