"""The multi-buffer AES-256-GCM kernel (csrc/uid2_gcm_mb.c) on its own, for each instruction set this CPU has
(AES-NI with 128-bit registers, VAES/VPCLMULQDQ with 256- and 512-bit ones).

A fixture compiles it with the C harness csrc/tests/test_gcm_mb.c into a shared library (gcc, -lcrypto) and
drives it through ctypes:

* NIST CAVP AES-256-GCM decryption vectors (gcmDecrypt256.rsp: 96-bit IVs, no AAD, 128-bit tags, FAIL cases
  included) from ``cryptography-vectors``, each vector in every lane position of a pass, beside other vectors;
* differential tests against OpenSSL EVP run in C: random keys (each lane its own, or all one), lane counts
  1..32, lengths 0..144 (and longer, which go one by one), random lanes corrupted, in place or not; for a
  sample of cases every single-bit flip of every lane's nonce, ciphertext and tag is rejected for that lane
  alone (output zeroed) while the other lanes still decrypt;
* the same loops as an AddressSanitizer/UBSan executable;
* the switches: ``UID2FAST_NO_MULTIBUF=1`` and ``UID2FAST_NO_FASTPATH=1`` turn the kernel off.
"""
import ctypes
import os
import pathlib
import platform
import shutil
import subprocess
import sys

import pytest

from .helpers import cavp_gcm_cases, sanitizer_runtime_missing

pytestmark = [
    pytest.mark.engine_path,
    # the multi-buffer kernels are x86-64 code (AES-NI, VAES); aarch64 has its own kernels and tests
    pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                       reason="the multi-buffer AES-GCM kernels are x86-64 only"),
]

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SOURCES = [CSRC / "tests" / "test_gcm_mb.c", CSRC / "uid2_gcm_mb.c", CSRC / "uid2_gcm_ni.c", CSRC / "uid2_kernels.c",
           CSRC / "uid2_gcm_arm.c"]
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread", "-D_GNU_SOURCE", f"-I{CSRC}"]
IMPLS = {1: "aesni", 2: "vaes256", 3: "vaes512"}


def _compile(out, extra=(), shared=True):
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc})")
    cmd = [cc, *CFLAGS, *extra, *(["-shared", "-fPIC"] if shared else []), "-o", str(out), *map(str, SOURCES),
           "-lcrypto"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        if "openssl/evp.h" in proc.stderr or "-lcrypto" in proc.stderr:
            pytest.skip("OpenSSL development files are missing")
        raise AssertionError(f"compiling the kernel failed:\n{' '.join(cmd)}\n{proc.stderr}")
    return out


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    path = _compile(tmp_path_factory.mktemp("mb") / "libuid2mb.so")
    lib = ctypes.CDLL(str(path))
    sz, u8p = ctypes.c_size_t, ctypes.c_char_p
    lib.t_mb_supported.argtypes = [ctypes.c_int]
    lib.t_mb_open.argtypes = [ctypes.c_int, sz, sz, u8p, sz, u8p, ctypes.c_void_p, u8p, ctypes.c_void_p,
                              ctypes.c_int]
    lib.t_mb_open.restype = ctypes.c_uint32
    lib.t_mb_differential.argtypes = [ctypes.c_int, ctypes.c_uint64, ctypes.c_long, sz, sz, ctypes.c_long,
                                      ctypes.POINTER(ctypes.c_long), ctypes.c_char_p, sz]
    lib.t_mb_differential.restype = ctypes.c_long
    lib.path = path
    return lib


@pytest.fixture(params=sorted(IMPLS), ids=lambda i: IMPLS[i])
def impl(request, lib):
    if not lib.t_mb_supported(request.param):
        pytest.skip(f"this CPU (or OS) does not support {IMPLS[request.param]}")
    return request.param


def mb_open(lib, impl, msgs, in_place=False):
    """msgs: [(key, nonce, ct, tag)] of one length -> (failure mask, [plaintext or zeroed output])."""
    n, length = len(msgs), len(msgs[0][2])
    cts = ctypes.create_string_buffer(b"".join(m[2] for m in msgs), max(n * length, 1))
    out = ctypes.create_string_buffer(b"\xaa" * max(n * length, 1), max(n * length, 1))
    mask = lib.t_mb_open(impl, n, length, b"".join(m[0] for m in msgs), len(msgs[0][0]),
                         b"".join(m[1] for m in msgs), cts, b"".join(m[3] for m in msgs), out, int(in_place))
    assert mask != 0xFFFFFFFE, "key setup failed"
    return mask, [out.raw[i * length:(i + 1) * length] for i in range(n)]


def test_cavp_decrypt_in_every_lane(lib, impl):
    by_len = {}
    for c in cavp_gcm_cases("gcmDecrypt256.rsp"):
        if c["IVlen"] == 96 and c["AADlen"] == 0 and c["Taglen"] == 128:
            by_len.setdefault(len(c["CT"]), []).append(c)
    ran = fails = 0
    for length, cases in by_len.items():
        for start in range(0, len(cases), 8):
            chunk = cases[start:start + 8]
            for rot in range(len(chunk)):  # every vector through every lane position of the pass
                lanes = chunk[rot:] + chunk[:rot]
                mask, outs = mb_open(lib, impl, [(c["Key"], c["IV"], c["CT"], c["Tag"]) for c in lanes],
                                     in_place=rot % 2 == 1)
                for i, c in enumerate(lanes):
                    if c.get("FAIL"):
                        assert mask >> i & 1 and outs[i] == bytes(length), c
                    else:
                        assert not mask >> i & 1 and outs[i] == c["PT"], c
            ran += len(chunk)
            fails += sum(1 for c in chunk if c.get("FAIL"))
    assert ran >= 75 and fails >= 30 and len(by_len) >= 5, (ran, fails, sorted(by_len))


def test_lanes_with_other_key_sizes_go_one_by_one(lib, impl):
    """A 128-bit key among AES-256 lanes still decrypts right (the one-message kernel takes it)."""
    aead = pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead")
    msgs = []
    for i, klen in enumerate((32, 16, 32, 24, 32)):
        key, nonce, pt = bytes([i + 1]) * klen, bytes([i]) * 12, bytes(range(i, i + 70))
        sealed = aead.AESGCM(key).encrypt(nonce, pt, None)
        msgs.append((key, nonce, sealed[:-16], sealed[-16:], pt))
    for klen in (16, 24, 32):  # t_mb_open takes one key length per call
        group = [m for m in msgs if len(m[0]) == klen]
        mask, outs = mb_open(lib, impl, [m[:4] for m in group])
        assert mask == 0 and outs == [m[4] for m in group]


def _differential(lib, impl, seed, n, lo, hi, flip_every):
    err = ctypes.create_string_buffer(512)
    flipped = ctypes.c_long(0)
    failures = lib.t_mb_differential(impl, seed, n, lo, hi, flip_every, ctypes.byref(flipped), err, 512)
    assert failures == 0, err.value.decode()
    return flipped.value


def test_differential_evp(lib, impl):
    flipped = _differential(lib, impl, 20261201 + impl, 4000, 0, 144, 200)
    assert flipped == 20


@pytest.mark.parametrize("lo,hi", [(60, 72), (125, 135), (145, 400)])
def test_differential_evp_token_sizes_and_longer(lib, impl, lo, hi):
    """The lengths of v4 payloads (68/69 and 129/130 bytes) densely, and messages past the wide kernel's
    limit (one by one)."""
    _differential(lib, impl, lo * 31 + hi + impl, 1500, lo, hi, 300)


@pytest.mark.slow
def test_differential_evp_many(lib, impl):
    _differential(lib, impl, 7 + impl, 200_000, 0, 144, 2000)


# slow: the ASan build of the three kernel variants alone takes about two minutes of compiling, and the default
# run would pay it in every engine stage. The kernel still runs under ASan + UBSan by default: the sanitizers
# stage builds the whole engine that way and sends batches through it (test_fastpath, test_batch).
@pytest.mark.slow
def test_differential_under_sanitizers(tmp_path):
    exe = tmp_path / "test_gcm_mb_asan"
    try:
        _compile(exe, ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                       "-fno-sanitize-recover=undefined", "-DUID2_MB_MAIN"], shared=False)
    except AssertionError as exc:
        if sanitizer_runtime_missing(exc):
            pytest.skip("the compiler has no sanitizer runtime")
        raise
    proc = subprocess.run([str(exe), "100"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "total: 0 failures" in proc.stdout


@pytest.mark.parametrize("env,off", [({"UID2FAST_NO_MULTIBUF": "1"}, True), ({"UID2FAST_NO_FASTPATH": "1"}, True),
                                     ({"UID2FAST_NO_MULTIBUF": "0"}, False), ({}, False)])
def test_switches(lib, env, off):
    code = ("import ctypes, sys; l = ctypes.CDLL(sys.argv[1]); "
            "print(l.t_mb_impl(), max([i for i in (1, 2, 3) if l.t_mb_supported(i)] or [0]))")
    full = {k: v for k, v in os.environ.items() if k not in ("UID2FAST_NO_MULTIBUF", "UID2FAST_NO_FASTPATH")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", code, str(lib.path)], env=full, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    impl, best = map(int, out.stdout.split())
    assert impl == (0 if off else best)
