"""The aarch64 kernels (csrc/uid2_gcm_arm.c, csrc/uid2_b64_neon.c) on an aarch64 machine.

Compiles csrc/tests/test_arm.c with the engine's C sources and runs it: the NIST CAVP AES-GCM and AES-CBC
vectors, random cases against OpenSSL (with flipped bits rejected) and the NEON base64 codecs, after
checking that the engine's dispatch layer selects the ARMv8 kernels. Runs wherever the suite runs on
aarch64 Linux (a real arm64 host, a wheel test on an arm64 runner, or scripts/arm64_suite.sh's emulated
Debian); on other machines scripts/arm64_check.sh runs the same program under qemu-aarch64.
"""
import ctypes
import os
import pathlib
import platform
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"

pytestmark = pytest.mark.skipif(
    platform.machine().lower() not in ("aarch64", "arm64") or not platform.system() == "Linux",
    reason="aarch64 Linux only (elsewhere: scripts/arm64_check.sh cross-builds it and runs it under qemu)",
)


def _cpu_has_crypto():
    """AT_HWCAP has ASIMD, AES and PMULL (what the engine's dispatch layer asks)."""
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    libc.getauxval.argtypes = [ctypes.c_ulong]
    need = (1 << 1) | (1 << 3) | (1 << 4)
    return libc.getauxval(16) & need == need  # 16: AT_HWCAP


def test_arm_kernels(tmp_path):
    if not _cpu_has_crypto():
        pytest.skip("this CPU lacks AES/PMULL/ASIMD: the engine uses the pure-Python engine here")
    vectors = pytest.importorskip("cryptography_vectors", reason="needs the cryptography-vectors package")
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc})")
    setup = (ROOT / "setup.py").read_text()
    sources = sorted(set(re.findall(r'"(csrc/uid2_[a-z0-9_]*\.c)"', setup)))
    exe = tmp_path / "test_arm"
    cmd = [cc, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread", "-D_GNU_SOURCE", f"-I{CSRC}",
           str(CSRC / "tests" / "test_arm.c"), *(str(ROOT / s) for s in sources), "-lcrypto", "-lm", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 and "openssl/evp.h" in proc.stderr:
        pytest.skip("OpenSSL development files are missing (the test's oracle)")
    assert proc.returncode == 0, proc.stderr
    run = subprocess.run([str(exe), os.path.dirname(vectors.__file__), "20000"], capture_output=True, text=True,
                         timeout=1800)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "dispatch: armv8" in run.stdout
    assert "all aarch64 kernel checks passed" in run.stdout
