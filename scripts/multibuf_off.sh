#!/usr/bin/env bash
# The test suite with the multi-buffer AES-GCM kernel switched off (UID2FAST_NO_MULTIBUF=1, csrc/README.md):
# batch rows then take the one-row fast path (uid2_decrypt_fast) instead of groups of eight. Run after the
# default suite, which runs with the kernel on wherever the CPU has AES-NI, so both ways are covered
# (the tests-nomultibuf stage of .ci/run).
#
# Usage: scripts/multibuf_off.sh [pytest args...]      (default: the whole suite)
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== the suite with the multi-buffer GCM kernel off (UID2FAST_NO_MULTIBUF=1)"
UID2FAST_NO_MULTIBUF=1 python -m pytest -q -p no:cacheprovider --durations=15 "$@"
