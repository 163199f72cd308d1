"""The fast kernels on their own: the AES-NI/PCLMULQDQ AES-GCM (csrc/uid2_gcm_ni.c) and the clean-case base64
decoder (csrc/uid2_b64fast.c).

A fixture compiles them with the C harness csrc/tests/test_kernels.c into a shared library (gcc, -lcrypto)
and drives it through ctypes:

Every GCM test below runs at each keystream width this CPU has (``uid2_gcm_ni_use_width``): 128-bit AES-NI,
and VAES on 256- and 512-bit registers, two and four counter blocks to an instruction.

* NIST CAVP AES-GCM vectors (gcmDecrypt*.rsp with the FAIL cases, gcmEncryptExtIV*.rsp) from the
  ``cryptography-vectors`` package: every case with a 96-bit IV, all AAD and tag lengths. The other IV
  lengths are skipped: the kernel takes the 12-byte nonce only (GHASH-derived IVs are not used by UID2).
* differential tests against OpenSSL EVP run in C (20,000 random cases here, a million in the slow test),
  with every single-bit flip of nonce, ciphertext and tag rejected for a sample of cases;
* the base64 fast decoder against Python's ``base64`` on random clean and dirty inputs, and the fast encoder
  against Python's ``base64`` and the engine's scalar encoders.
"""
import base64
import ctypes
import os
import pathlib
import platform
import random
import shutil
import subprocess
import sys

import pytest

from .helpers import cavp_gcm_cases, sanitizer_runtime_missing

pytestmark = pytest.mark.engine_path

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
KERNELS = [CSRC / "uid2_gcm_ni.c", CSRC / "uid2_b64fast.c", CSRC / "uid2_base64.c", CSRC / "uid2_kernels.c",
           CSRC / "uid2_gcm_arm.c", CSRC / "uid2_b64_neon.c"]
HARNESS = CSRC / "tests" / "test_kernels.c"
CFLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-pthread", "-D_GNU_SOURCE", f"-I{CSRC}"]


def _compile(out, extra=(), shared=True):
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc})")
    cmd = [cc, *CFLAGS, *extra, *(["-shared", "-fPIC"] if shared else []), "-o", str(out),
           str(HARNESS), *map(str, KERNELS), "-lcrypto"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        if "openssl/evp.h" in proc.stderr or "-lcrypto" in proc.stderr:
            pytest.skip("OpenSSL development files are missing")
        raise AssertionError(f"compiling the kernels failed:\n{' '.join(cmd)}\n{proc.stderr}")
    return out


def _load(path):
    lib = ctypes.CDLL(str(path))
    u8p, sz = ctypes.c_char_p, ctypes.c_size_t
    lib.t_key_new.restype = ctypes.c_void_p
    lib.t_key_free.argtypes = [ctypes.c_void_p]
    lib.t_cpu_has_ni.restype = ctypes.c_int
    lib.uid2_gcm_ni_available.restype = ctypes.c_int
    lib.uid2_gcm_ni_use_width.argtypes = [ctypes.c_int]
    lib.uid2_gcm_ni_use_width.restype = ctypes.c_int
    lib.uid2_gcm_ni_width.restype = ctypes.c_int
    lib.uid2_gcm_ni_key_init.argtypes = [ctypes.c_void_p, u8p, sz]
    lib.uid2_gcm_ni_decrypt.argtypes = [ctypes.c_void_p, u8p, u8p, sz, u8p, ctypes.c_void_p]
    lib.uid2_gcm_ni_encrypt.argtypes = [ctypes.c_void_p, u8p, u8p, sz, ctypes.c_void_p, ctypes.c_void_p]
    lib.uid2_gcm_ni_decrypt_ex.argtypes = [ctypes.c_void_p, u8p, u8p, sz, u8p, sz, u8p, sz, ctypes.c_void_p]
    lib.uid2_gcm_ni_encrypt_ex.argtypes = [ctypes.c_void_p, u8p, u8p, sz, u8p, sz, ctypes.c_void_p,
                                           ctypes.c_void_p]
    lib.t_gcm_differential.argtypes = [ctypes.c_uint64, ctypes.c_long, sz, sz, ctypes.c_long,
                                       ctypes.POINTER(ctypes.c_long), ctypes.c_char_p, sz]
    lib.t_gcm_differential.restype = ctypes.c_long
    lib.uid2_cbc_ni_decrypt.argtypes = [ctypes.c_void_p, u8p, u8p, sz, ctypes.c_void_p]
    lib.t_cbc_differential.argtypes = [ctypes.c_uint64, ctypes.c_long, sz, ctypes.c_char_p, sz]
    lib.t_cbc_differential.restype = ctypes.c_long
    lib.uid2_b64fast_kernel.restype = ctypes.c_char_p
    lib.uid2_cpu_features.restype = ctypes.c_uint
    lib.t_b64_differential.argtypes = [ctypes.c_uint64, ctypes.c_long, sz, ctypes.c_char_p, sz]
    lib.t_b64_differential.restype = ctypes.c_long
    lib.uid2_b64fast_decode.argtypes = [u8p, sz, ctypes.c_void_p, ctypes.POINTER(sz), ctypes.c_int]
    lib.uid2_b64fast_encode.argtypes = [u8p, sz, ctypes.c_void_p, ctypes.c_int]
    lib.uid2_b64fast_encode.restype = sz
    lib.uid2_b64fast_encode32.argtypes = [u8p, ctypes.c_void_p]
    lib.uid2_b64fast_encode32.restype = None
    lib.t_b64_encode_differential.argtypes = [ctypes.c_uint64, ctypes.c_long, sz, ctypes.c_char_p, sz]
    lib.t_b64_encode_differential.restype = ctypes.c_long
    lib.path = path
    return lib


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    return _load(_compile(tmp_path_factory.mktemp("kernels") / "libuid2kernels.so"))


@pytest.fixture(scope="module", params=["best", "ssse3"])
def b64lib(request, tmp_path_factory, lib):
    """The base64 codecs at each level this CPU runs: the best (AVX-512 VBMI where the CPU has it) and SSSE3,
    the latter a copy of the library loaded with UID2FAST_NO_VBMI=1 in force when it first chooses (the
    choice is made once per loaded library, as the engine makes it once per process)."""
    if request.param == "best":
        chosen = lib
    else:
        path = _compile(tmp_path_factory.mktemp("b64") / "libuid2kernels_novbmi.so")
        old = os.environ.get("UID2FAST_NO_VBMI")
        os.environ["UID2FAST_NO_VBMI"] = "1"
        try:
            chosen = _load(path)
            chosen.uid2_b64fast_kernel()
        finally:
            if old is None:
                del os.environ["UID2FAST_NO_VBMI"]
            else:
                os.environ["UID2FAST_NO_VBMI"] = old
    kernel = chosen.uid2_b64fast_kernel().decode()
    vbmi = bool(chosen.uid2_cpu_features() & (1 << 7)) and os.environ.get("UID2FAST_NO_VBMI", "") in ("", "0")
    if request.param == "best":
        assert kernel == ("avx512vbmi" if vbmi else "ssse3" if platform.machine() in ("x86_64", "AMD64")
                          else kernel)
    elif kernel != "ssse3":
        pytest.skip(f"no SSSE3 codec to step down to here ({kernel})")
    return chosen


@pytest.fixture(scope="module")
def generic_lib(tmp_path_factory):
    """The portable build (what non-x86 platforms get): scalar base64, no GCM kernel."""
    path = tmp_path_factory.mktemp("generic") / "libuid2kernels_generic.so"
    return _load(_compile(path, ["-DUID2_FASTPATH_GENERIC"]))


@pytest.fixture(params=[1, 2, 4], ids=["aesni", "vaes256", "vaes512"])
def ni(lib, request):
    """The kernel with its keystream ``request.param`` blocks to an AES instruction (skipped where the CPU has
    no such width); the process's own choice is put back afterwards."""
    if not lib.t_cpu_has_ni():
        pytest.skip("this CPU has no AES-NI/PCLMULQDQ: the kernel cannot run here")
    before = lib.uid2_gcm_ni_width()
    if lib.uid2_gcm_ni_use_width(request.param) != 0:
        pytest.skip(f"this CPU cannot run the kernel {request.param} blocks to an instruction")
    assert lib.uid2_gcm_ni_width() == request.param
    yield lib
    assert lib.uid2_gcm_ni_use_width(before) == 0


class Key:
    def __init__(self, lib, key):
        self.lib = lib
        self.ptr = lib.t_key_new()
        assert lib.uid2_gcm_ni_key_init(self.ptr, key, len(key)) == 0

    def __enter__(self):
        return self.ptr

    def __exit__(self, *exc):
        self.lib.t_key_free(self.ptr)


def open_(lib, k, nonce, ct, tag, aad=b""):
    """(rc, plaintext or the zeroed output)."""
    out = ctypes.create_string_buffer(b"\xaa" * max(len(ct), 1), max(len(ct), 1))
    if aad or len(tag) != 16:
        rc = lib.uid2_gcm_ni_decrypt_ex(k, nonce, aad, len(aad), ct, len(ct), tag, len(tag), out)
    else:
        rc = lib.uid2_gcm_ni_decrypt(k, nonce, ct, len(ct), tag, out)
    return rc, out.raw[: len(ct)]


def seal(lib, k, nonce, pt, aad=b""):
    out = ctypes.create_string_buffer(max(len(pt), 1))
    tag = ctypes.create_string_buffer(16)
    if aad:
        rc = lib.uid2_gcm_ni_encrypt_ex(k, nonce, aad, len(aad), pt, len(pt), out, tag)
    else:
        rc = lib.uid2_gcm_ni_encrypt(k, nonce, pt, len(pt), out, tag)
    assert rc == 0
    return out.raw[: len(pt)], tag.raw


# ---- NIST CAVP ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_cavp_decrypt(ni, bits):
    cases = cavp_gcm_cases(f"gcmDecrypt{bits}.rsp")
    ran = fails = 0
    for c in cases:
        if c["IVlen"] != 96:
            continue  # the API takes a 12-byte nonce only
        with Key(ni, c["Key"]) as k:
            rc, pt = open_(ni, k, c["IV"], c["CT"], c["Tag"], c["AAD"])
        if c.get("FAIL"):
            fails += 1
            assert rc == -1 and pt == bytes(len(c["CT"])), f"FAIL case accepted: {c}"
        else:
            assert rc == 0 and pt == c["PT"], f"decrypt mismatch: {c}"
        ran += 1
    assert ran >= 1000 and fails >= 100, (ran, fails)


@pytest.mark.parametrize("bits", [128, 192, 256])
def test_cavp_encrypt(ni, bits):
    ran = 0
    for c in cavp_gcm_cases(f"gcmEncryptExtIV{bits}.rsp"):
        if c["IVlen"] != 96:
            continue
        with Key(ni, c["Key"]) as k:
            ct, tag = seal(ni, k, c["IV"], c["PT"], c["AAD"])
        assert ct == c["CT"] and tag[: len(c["Tag"])] == c["Tag"], c
        ran += 1
    assert ran >= 1000


def test_key_lengths_and_tag_lengths(ni):
    k = ni.t_key_new()
    try:
        for n in range(0, 40):
            assert ni.uid2_gcm_ni_key_init(k, b"k" * n, n) == (0 if n in (16, 24, 32) else -1)
        assert ni.uid2_gcm_ni_key_init(k, bytes(32), 32) == 0
        ct, tag = seal(ni, k, bytes(12), b"hello world")
        for tl in range(0, 18):
            out = ctypes.create_string_buffer(11)
            rc = ni.uid2_gcm_ni_decrypt_ex(k, bytes(12), b"", 0, ct, len(ct), tag, min(tl, 16), out)
            assert rc == (0 if min(tl, 16) in (4, 8, 12, 13, 14, 15, 16) else -1), tl
            assert out.raw == (b"hello world" if rc == 0 else bytes(11))
    finally:
        ni.t_key_free(k)


def test_against_pycryptography_aesgcm(ni):
    """A second, independent reference (pyca/cryptography's AESGCM) on a few hundred Python-side cases."""
    aead = pytest.importorskip("cryptography.hazmat.primitives.ciphers.aead")
    rng = random.Random(5)
    for i in range(300):
        key = rng.randbytes(rng.choice((16, 24, 32)))
        nonce, pt = rng.randbytes(12), rng.randbytes(rng.randrange(0, 300))
        aad = rng.randbytes(rng.randrange(0, 40)) if i % 3 == 0 else b""
        ref = aead.AESGCM(key).encrypt(nonce, pt, aad or None)
        with Key(ni, key) as k:
            assert seal(ni, k, nonce, pt, aad) == (ref[:-16], ref[-16:])
            assert open_(ni, k, nonce, ref[:-16], ref[-16:], aad) == (0, pt)


# ---- differential against OpenSSL EVP (the loops run in C) -------------------------------------------


def _differential(lib, seed, n, lo, hi, flip_every):
    err = ctypes.create_string_buffer(512)
    flipped = ctypes.c_long(0)
    failures = lib.t_gcm_differential(seed, n, lo, hi, flip_every, ctypes.byref(flipped), err, 512)
    assert failures == 0, err.value.decode()
    return flipped.value


def test_differential_evp(ni):
    flipped = _differential(ni, 20240601, 20_000, 0, 300, 100)
    assert flipped == 200


@pytest.mark.parametrize("lo,hi,n,flip_every", [(301, 5000, 300, 100), (4096, 4096, 20, 10), (65536, 65553, 4, 0)])
def test_differential_evp_large(ni, lo, hi, n, flip_every):
    _differential(ni, lo * 7919 + hi, n, lo, hi, flip_every)


@pytest.mark.slow
def test_differential_evp_million(ni):
    flipped = _differential(ni, 77, 1_000_000, 0, 300, 1000)
    assert flipped == 1000


def test_differential_under_sanitizers(tmp_path):
    """The same loops as an executable under AddressSanitizer/UBSan, with exact-size heap buffers."""
    exe = tmp_path / "test_kernels_asan"
    try:
        _compile(exe, ["-O1", "-g", "-fsanitize=address,undefined", "-fno-omit-frame-pointer",
                       "-fno-sanitize-recover=undefined", "-DUID2_KERNELS_MAIN"], shared=False)
    except AssertionError as exc:
        if sanitizer_runtime_missing(exc):
            pytest.skip("the compiler has no sanitizer runtime")
        raise
    proc = subprocess.run([str(exe), "2000"], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and "LeakSanitizer does not work under ptrace" in proc.stderr:
        # under a user-mode emulator or a debugger: the leak checker cannot start, ASan/UBSan still can
        proc = subprocess.run([str(exe), "2000"], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " 0 failures" in proc.stdout


def test_fastpath_switch(lib):
    """UID2FAST_NO_FASTPATH=1 turns the SIMD base64 off for the engine (read once per process); the AES
    kernel stays (the engine has no other AES), available exactly when the CPU has the instructions."""
    code = ("import ctypes, sys; l = ctypes.CDLL(sys.argv[1]); "
            "print(l.uid2_gcm_ni_available(), l.uid2_b64fast_enabled(), l.t_cpu_has_ni())")
    for value, expect_on in (("1", False), ("0", True), ("", True)):
        env = dict(os.environ, UID2FAST_NO_FASTPATH=value)
        out = subprocess.run([sys.executable, "-c", code, str(lib.path)], env=env, capture_output=True,
                             text=True, check=True).stdout.split()
        avail, b64, cpu = map(int, out)
        assert b64 == int(expect_on)
        assert avail == cpu


def test_vaes_switch(lib):
    """UID2FAST_NO_VAES=1 keeps the keystream on 128-bit AES-NI (read once per process); otherwise the widest the
    CPU has is chosen."""
    code = ("import ctypes, sys; l = ctypes.CDLL(sys.argv[1]); "
            "print(l.uid2_gcm_ni_width(), *(l.uid2_gcm_ni_use_width(w) for w in (4, 2)))")
    full = {k: v for k, v in os.environ.items() if k != "UID2FAST_NO_VAES"}
    widest = None
    for value in ("1", "0", "", None):
        env = dict(full) if value is None else dict(full, UID2FAST_NO_VAES=value)
        width, has4, has2 = map(int, subprocess.run([sys.executable, "-c", code, str(lib.path)], env=env,
                                                    capture_output=True, text=True, check=True).stdout.split())
        best = 4 if has4 == 0 else 2 if has2 == 0 else 1
        assert width == (1 if value == "1" else best), (value, width, best)
        widest = best
    if platform.machine() in ("x86_64", "AMD64") and lib.t_cpu_has_ni():
        flags = pathlib.Path("/proc/cpuinfo").read_text() if pathlib.Path("/proc/cpuinfo").exists() else ""
        if " vaes " in flags and " avx512f " in flags:
            assert widest == 4
        elif " vaes " in flags:
            assert widest == 2


# ---- AES-CBC decryption (the legacy v2 tokens) -----------------------------------------------------------


def _cavp_cbc():
    vectors = pytest.importorskip("cryptography_vectors", reason="needs the cryptography-vectors package")
    base = pathlib.Path(vectors.__file__).parent / "ciphers" / "AES" / "CBC"
    cases = []
    for path in sorted(base.glob("CBC*.rsp")):
        section, cur = None, {}
        for line in path.read_text().splitlines():
            line = line.strip()
            if line in ("[ENCRYPT]", "[DECRYPT]"):
                section = line
            elif " = " in line:
                k, v = line.split(" = ")
                cur[k] = v
                if k in ("CIPHERTEXT", "PLAINTEXT") and {"KEY", "IV", "CIPHERTEXT", "PLAINTEXT"} <= cur.keys():
                    cases.append((path.name, section, bytes.fromhex(cur["KEY"]), bytes.fromhex(cur["IV"]),
                                  bytes.fromhex(cur["CIPHERTEXT"]), bytes.fromhex(cur["PLAINTEXT"])))
                    cur = {}
    return cases


def test_cavp_cbc_decrypt(ni):
    """Every NIST CAVP AES-CBC case (GFSbox, KeySbox, VarKey, VarTxt, MMT; 128/192/256, both sections) through
    the AES-NI decryption: ciphertext -> plaintext, out of place and in place."""
    cases = _cavp_cbc()
    assert len(cases) > 1000
    sizes = set()
    for name, _section, key, iv, ct, pt in cases:
        sizes.add(len(key))
        with Key(ni, key) as k:
            out = ctypes.create_string_buffer(len(ct))
            assert ni.uid2_cbc_ni_decrypt(k, iv, ct, len(ct), out) == 0, name
            assert out.raw == pt, name
            buf = ctypes.create_string_buffer(ct, len(ct))
            assert ni.uid2_cbc_ni_decrypt(k, iv, buf, len(ct), buf) == 0
            assert buf.raw == pt, name
    assert sizes == {16, 24, 32}


def test_cbc_differential(ni):
    err = ctypes.create_string_buffer(512)
    failures = ni.t_cbc_differential(11, 20000, 40, err, len(err))
    assert failures == 0, err.value.decode()


# ---- base64 -------------------------------------------------------------------------------------------


def fast_b64(lib, s: bytes, url: bool):
    cap = len(s) // 4 * 3 + (len(s) % 4 * 3) // 4
    out = ctypes.create_string_buffer(max(cap, 1))
    n = ctypes.c_size_t(0)
    rc = lib.uid2_b64fast_decode(s, len(s), out, ctypes.byref(n), int(url))
    assert rc in (0, -1)
    return out.raw[: n.value] if rc == 0 else None


def python_b64(s: bytes, url: bool):
    """What the SDK gets: b64decode(s), or for url tokens Uid2Base64UrlCoder.decode (pad, then decode)."""
    try:
        if url:
            return base64.urlsafe_b64decode(s + b"=" * (-len(s) % 4))
        return base64.b64decode(s)
    except ValueError:
        return None


def _clean(rng, url):
    raw = rng.randbytes(rng.randrange(0, 300))
    enc = base64.urlsafe_b64encode(raw).rstrip(b"=") if url else base64.b64encode(raw)
    return raw, enc


@pytest.mark.parametrize("url", [False, True])
def test_b64_clean(b64lib, url):
    rng = random.Random(11 + url)
    for _ in range(5000):
        raw, enc = _clean(rng, url)
        assert fast_b64(b64lib, enc, url) == raw, enc


@pytest.mark.parametrize("url", [False, True])
def test_b64_dirty(b64lib, url):
    """Anything the fast decoder accepts decodes exactly as Python does; the rest returns -1 (fallback)."""
    rng = random.Random(23 + url)
    junk = b"=+/-_ \n\t.*\x00\x80\xff@[`{AQ"
    accepted = rejected = 0
    for _ in range(20000):
        _, enc = _clean(rng, url)
        s = bytearray(enc)
        for _ in range(rng.randrange(1, 3)):
            pos = rng.randrange(0, len(s) + 1)
            op = rng.randrange(3)
            if op == 0 and pos < len(s):
                s[pos] = rng.choice(junk)
            elif op == 1:
                s.insert(pos, rng.choice(junk))
            elif pos < len(s):
                del s[pos]
        got = fast_b64(b64lib, bytes(s), url)
        if got is None:
            rejected += 1
        else:
            accepted += 1
            assert got == python_b64(bytes(s), url), bytes(s)
    assert accepted > 1000 and rejected > 1000


@pytest.mark.parametrize(
    "s,url,expect",
    [
        (b"", False, b""), (b"", True, b""), (b"QQ==", False, b"A"), (b"QUI=", False, b"AB"),
        (b"QUJD", False, b"ABC"), (b"QR==", False, b"A"), (b"QQ", True, b"A"), (b"QUI", True, b"AB"),
        (b"Q===", False, None), (b"====", False, None), (b"QQ=", False, None), (b"QQ", False, None),
        (b"Q", True, None), (b"QQ==", True, None), (b"QQ=A", False, None), (b"-_-_", False, None),
        (b"+/+/", True, None), (b"QU JD", False, None), (b"-_-_", True, b"\xfb\xff\xbf"),
        (b"+/+/", False, b"\xfb\xff\xbf"),
    ],
)
def test_b64_edges(b64lib, s, url, expect):
    assert fast_b64(b64lib, s, url) == expect
    if expect is not None:
        assert python_b64(s, url) == expect


@pytest.mark.parametrize("url", [False, True])
def test_b64_bytes_over_0x7f_never_pass_for_characters(b64lib, url):
    """A byte >= 0x80 whose low 7 bits are an alphabet character (0xC1 is 'A' | 0x80) is not that character:
    at every position of short and long inputs (the last, partial step and the full 64-character ones)."""
    rng = random.Random(5 + url)
    for n in (4, 8, 60, 64, 68, 128, 200, 220):
        enc = bytearray(_clean_of_length(rng, n, url))
        for pos in range(len(enc)):
            s = bytearray(enc)
            s[pos] |= 0x80
            assert fast_b64(b64lib, bytes(s), url) is None, (n, pos)


def _clean_of_length(rng, n, url):
    """n characters of clean input (n a multiple of 4)."""
    raw = rng.randbytes(n // 4 * 3)
    return base64.urlsafe_b64encode(raw) if url else base64.b64encode(raw)


def test_b64_differential_in_c(b64lib):
    err = ctypes.create_string_buffer(512)
    assert b64lib.t_b64_differential(99, 50_000, 400, err, 512) == 0, err.value.decode()


def fast_b64_encode(lib, raw: bytes, url: bool) -> bytes:
    out = ctypes.create_string_buffer(len(raw) * 4 // 3 + 4)
    n = lib.uid2_b64fast_encode(raw, len(raw), out, int(url))
    return out.raw[:n]


@pytest.mark.parametrize("url", [False, True])
def test_b64_encode(b64lib, url):
    """The fast encoder against Python's base64 (url: the SDK's unpadded url-safe form)."""
    rng = random.Random(31 + url)
    for raw in [b"", b"\x00", b"\xff" * 2, bytes(range(256)), b"\xfb\xff\xbf" * 5] + [
            rng.randbytes(rng.randrange(0, 200)) for _ in range(3000)]:
        want = base64.urlsafe_b64encode(raw).rstrip(b"=") if url else base64.b64encode(raw)
        assert fast_b64_encode(b64lib, raw, url) == want, raw


def test_b64_encode32_is_the_padded_encoding_of_a_raw_uid(b64lib):
    """The batch's raw-UID shortcut: 32 bytes -> the 44 characters of base64.b64encode, nothing written
    beyond them (the next row's uid follows in the column)."""
    rng = random.Random(44)
    for raw in [bytes(32), b"\xff" * 32, bytes(range(32)), b"\xfb\xff\xbf" * 10 + b"\xfe\xff"] + [
            rng.randbytes(32) for _ in range(5000)]:
        out = ctypes.create_string_buffer(b"\xaa" * 64, 64)
        b64lib.uid2_b64fast_encode32(raw, out)
        assert out.raw[:44] == base64.b64encode(raw), raw
        assert out.raw[44:] == b"\xaa" * 20


def test_b64_encode_differential_in_c(b64lib):
    err = ctypes.create_string_buffer(512)
    assert b64lib.t_b64_encode_differential(97, 50_000, 400, err, 512) == 0, err.value.decode()


def test_generic_build(generic_lib):
    """Without the x86 kernels: GCM reports unavailable and refuses; base64 takes the scalar path."""
    g = generic_lib
    assert g.uid2_gcm_ni_available() == 0
    k = g.t_key_new()
    try:
        assert g.uid2_gcm_ni_key_init(k, bytes(32), 32) == -1
        out = ctypes.create_string_buffer(b"\xaa" * 4, 4)
        assert g.uid2_gcm_ni_decrypt(k, bytes(12), b"abcd", 4, bytes(16), out) == -1
        assert out.raw == bytes(4)
    finally:
        g.t_key_free(k)
    err = ctypes.create_string_buffer(512)
    assert g.t_b64_differential(98, 20_000, 400, err, 512) == 0, err.value.decode()
    assert g.t_b64_encode_differential(96, 5_000, 400, err, 512) == 0, err.value.decode()
    rng = random.Random(3)
    for url in (False, True):
        for _ in range(500):
            raw, enc = _clean(rng, url)
            assert fast_b64(g, enc, url) == raw
