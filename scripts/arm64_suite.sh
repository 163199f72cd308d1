#!/usr/bin/env bash
# The whole Python test suite in an emulated arm64 Debian (bookworm): the C engine is built and tested as
# arm64 code under qemu, so the ARMv8 kernels (uid2_gcm_arm.c, uid2_b64neon.c) run inside the suite
# (qemu's default arm64 CPU model has AES, PMULL and ASIMD).
#
# NOT part of the default CI path: it needs root (debootstrap, chroot, binfmt_misc) and takes a long time
# (the emulated guest runs 10-20x slower than native; expect an hour or more for the suite). The quick
# aarch64 check for CI is scripts/arm64_check.sh. Speed measured here means nothing.
#
# Usage (as root):  scripts/arm64_suite.sh [pytest args...]        (default: the whole suite, tests/)
# Environment:
#   ARM64_ROOT=/var/tmp/uid2fast-arm64     where the guest lives (created once, reused afterwards)
#   ARM64_MIRROR=http://deb.debian.org/debian
#   ARM64_SETUP_ONLY=1                     stop after the guest is ready (packages installed)
#
# How: debootstrap --foreign, then qemu-aarch64-static registered with binfmt_misc with the F flag (the
# kernel opens the interpreter when it is registered, so it also works inside the chroot), then
# `chroot ROOT …` runs arm64 programs (gcc included). If binfmt_misc cannot be used (no privileges to
# mount or register it), the fallback is proot -q qemu-aarch64-static: the guest's gcc does not work under
# proot (it cannot find cc1), so the extension is then cross-compiled on the host with
# aarch64-linux-gnu-gcc against the guest's Python headers and only pytest runs under proot.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
ROOT=${ARM64_ROOT:-/var/tmp/uid2fast-arm64}
MIRROR=${ARM64_MIRROR:-http://deb.debian.org/debian}
QEMU=/usr/bin/qemu-aarch64-static
GUEST_PKGS="python3,python3-venv,python3-pip,python3-dev,gcc,libc6-dev,libssl-dev,ca-certificates"
# The test extras that have arm64 wheels and need no JVM (pyspark's tests skip without it).
PIP_PKGS="setuptools>=77 wheel Cython>=3.0 numpy cryptography requests pytest hypothesis pytest-benchmark
uid2-client==2.9.0 cryptography-vectors pyarrow pandas tqdm httpx prometheus_client duckdb"

log() { printf '== %s\n' "$*"; }

need() {
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        log "apt-get install ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
    fi
}

[ "$(id -u)" = 0 ] || { echo "arm64_suite.sh needs root (debootstrap, chroot)" >&2; exit 2; }
need debootstrap qemu-user-static

# ---- binfmt_misc with the F flag, or proot ------------------------------------------------------------
use_binfmt=0
register_binfmt() {
    local d=/proc/sys/fs/binfmt_misc
    [ -e "$d/register" ] || mount -t binfmt_misc binfmt_misc "$d" 2>/dev/null || return 1
    if [ -e "$d/qemu-aarch64" ]; then
        # an existing entry without F would look for the interpreter inside the chroot: replace it
        if grep -q '^flags:.*F' "$d/qemu-aarch64" && grep -q "^interpreter $QEMU" "$d/qemu-aarch64"; then
            return 0
        fi
        echo -1 > "$d/qemu-aarch64" || return 1
    fi
    local magic mask
    magic=$(sed -n 's/^magic //p' /usr/share/binfmts/qemu-aarch64)
    mask=$(sed -n 's/^mask //p' /usr/share/binfmts/qemu-aarch64)
    printf ':qemu-aarch64:M::%s:%s:%s:F' "$magic" "$mask" "$QEMU" > "$d/register" 2>/dev/null || return 1
}
if register_binfmt; then
    use_binfmt=1
    log "binfmt_misc: qemu-aarch64 registered (F flag)"
else
    log "binfmt_misc unavailable: falling back to proot (extension cross-compiled on the host)"
    need proot gcc-aarch64-linux-gnu
fi

run_guest() { # run_guest CMD... : a shell command line inside the guest
    if [ $use_binfmt = 1 ]; then
        chroot "$ROOT" /usr/bin/env -i HOME=/root PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 /bin/sh -c "$*"
    else
        proot -q "$QEMU" -r "$ROOT" -b /proc -b /dev -w / /usr/bin/env -i HOME=/root \
            PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 /bin/sh -c "$*"
    fi
}

mounted=()
cleanup() {
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" || true; done
}
trap cleanup EXIT
bind() { # bind SRC DST (inside ROOT), unmounted on exit
    mkdir -p "$ROOT$2"
    mountpoint -q "$ROOT$2" || { mount --bind "$1" "$ROOT$2"; mounted+=("$ROOT$2"); }
}

# ---- the guest (once) -------------------------------------------------------------------------------
if [ ! -e "$ROOT/.uid2fast-bootstrapped" ]; then
    log "debootstrap arm64 bookworm into $ROOT (a few minutes)"
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    debootstrap --arch=arm64 --foreign --variant=minbase --include="$GUEST_PKGS" bookworm "$ROOT" "$MIRROR" >/dev/null
    install -m 755 "$QEMU" "$ROOT$QEMU"
    if [ $use_binfmt = 1 ]; then
        chroot "$ROOT" /debootstrap/debootstrap --second-stage >/dev/null
    else
        proot -q "$QEMU" -0 -r "$ROOT" -b /proc -b /dev /debootstrap/debootstrap --second-stage >/dev/null
    fi
    touch "$ROOT/.uid2fast-bootstrapped"
fi
install -m 755 "$QEMU" "$ROOT$QEMU"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/ca-certificates.crt"
if [ $use_binfmt = 1 ]; then
    bind /proc /proc
    bind /dev /dev
fi
[ "$(run_guest uname -m)" = aarch64 ] || { echo "the guest does not run as aarch64" >&2; exit 1; }

if [ -e "$ROOT/.uid2fast-venv" ] && ! cmp -s <(echo "$PIP_PKGS") "$ROOT/.uid2fast-venv"; then
    log "the guest's test dependencies changed: installing the list again"
    rm -f "$ROOT/.uid2fast-venv"
fi
if [ ! -e "$ROOT/.uid2fast-venv" ]; then
    log "guest venv + test dependencies (pip, arm64 wheels)"
    run_guest "python3 -m venv /opt/venv && /opt/venv/bin/pip install -q --upgrade pip && /opt/venv/bin/pip install -q $(echo $PIP_PKGS | sed 's/\([^ ]*[<>=][^ ]*\)/"\1"/g')"
    echo "$PIP_PKGS" > "$ROOT/.uid2fast-venv"
fi
[ "${ARM64_SETUP_ONLY:-0}" = 1 ] && { log "guest ready at $ROOT"; exit 0; }

# ---- the project: a clean copy of the working tree (tracked files), built inside the guest --------------
log "copy the project into the guest"
rm -rf "$ROOT/src-uid2fast"
mkdir -p "$ROOT/src-uid2fast"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 tar cf - 2>/dev/null) | tar xf - -C "$ROOT/src-uid2fast"
if [ $use_binfmt = 1 ]; then
    log "build the C engine inside the guest (arm64 gcc under qemu)"
    run_guest "cd /src-uid2fast && UID2FAST_REQUIRE_EXTENSIONS=1 /opt/venv/bin/python setup.py -q build_ext --inplace"
else
    log "cross-compile the C engine on the host for the guest's Python"
    pyver=$(run_guest "/opt/venv/bin/python -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
    suffix=$(run_guest "/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_config_var(\"EXT_SUFFIX\"))'")
    (cd "$ROOT/src-uid2fast" && python3 -m cython -3 -X boundscheck=False -X wraparound=False \
        -o /tmp/uid2fast_engine_c.c src/uid2fast/_engine_c.pyx)
    aarch64-linux-gnu-gcc -O2 -std=gnu11 -pthread -fPIC -shared -D_GNU_SOURCE -ffp-contract=off \
        -I "$ROOT/src-uid2fast/csrc" -I "$ROOT/usr/include/python$pyver" -I "$ROOT/usr/include" \
        "$ROOT"/src-uid2fast/csrc/*.c \
        /tmp/uid2fast_engine_c.c -o "$ROOT/src-uid2fast/src/uid2fast/_engine_c$suffix" \
        -L "$ROOT/usr/lib/aarch64-linux-gnu" -lcrypto
fi

log "the suite (arm64, emulated): pytest ${*:-tests}"
# UID2FAST_EMULATED: the RSS tests skip (the emulator's own translation cache grows the process's RSS)
run_guest "cd /src-uid2fast && export PYTHONPATH=src UID2FAST_EMULATED=1 && /opt/venv/bin/python -c 'import platform, uid2fast; print(platform.machine(), uid2fast.backend, uid2fast.backend_features)' && /opt/venv/bin/python -m pytest -q -p no:cacheprovider ${*:-tests}"
