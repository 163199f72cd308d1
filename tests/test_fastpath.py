"""The C engine's optional fast paths (the SIMD base64 codecs, the batch's one-pass rows) inside the engine.

AES always runs on the hardware kernel; the kernels themselves are tested in test_gcm_ni.py (NIST CAVP, a
differential against OpenSSL); here:

* ``backend_features`` and ``KeyTable.fastpath`` follow the CPU and ``UID2FAST_NO_FASTPATH`` (read once per
  process, so each setting runs in a subprocess);
* hypothesis draws tokens (v2/v3/v4 around random payloads, 16/24/32-byte keys mixed in one table, bit
  flips, truncation, the other base64 alphabet, stray padding and junk characters that make the fast
  decoder decline) and checks C with the fast paths == C without them (``fastpath=False``, the same key
  table on the exact codecs and the general path) == the pure-Python twin (on ``cryptography``), scalar and
  batch, decrypt and encrypt.

The whole suite also runs with ``UID2FAST_NO_FASTPATH=1`` (see csrc/README.md).
"""
import base64
import json
import os
import pathlib
import platform
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import uid2fast
from uid2fast import _engine_py as P

C = pytest.importorskip("uid2fast._engine_c", reason="C engine not built")
np = pytest.importorskip("numpy")

pytestmark = pytest.mark.c_engine

ROOT = pathlib.Path(__file__).resolve().parent.parent
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

NOW_MS = 1_780_315_200_000
NOW_US = NOW_MS * 1000
DAY_MS = 86_400_000
SITE_ID = 9000
# key id -> secret: 16-, 24- and 32-byte keys (all on the hardware kernel; the one-pass row takes 32 only)
SECRETS = {
    164: bytes(range(32)), 165: bytes(range(100, 132)), 166: bytes(range(16)), 167: bytes(range(50, 74)),
    168: bytes(range(200, 232)),
}
MASTER_IDS = [164, 166, 167]  # keyset 1
SITE_IDS = [165, 168, 166]    # site keys: keyset 99 (165, 168) and no keyset (166 is also a master key)


def _cpu_has_ni():
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in flags.splitlines():
        if line.startswith("flags"):
            f = set(line.split(":", 1)[1].split())
            return {"aes", "pclmulqdq", "ssse3", "sse4_1"} <= f
    return None


def table_args(**over):
    far = (NOW_MS + 365 * DAY_MS) * 1000
    keys = [(164, -1, 1, 0, far, SECRETS[164]), (165, SITE_ID, 99, 0, far, SECRETS[165]),
            (166, 7, None, 0, far, SECRETS[166]), (167, -1, 1, 1, far, SECRETS[167]),
            (168, SITE_ID, 99, 1, far, SECRETS[168])]
    args = dict(
        keys=keys, identity_scope=0, caller_site_id=SITE_ID, master_keyset_id=1, default_keyset_id=99,
        token_expiry_seconds=2_592_000, max_sharing_lifetime_seconds=2_592_000,
        max_bidstream_lifetime_seconds=259_200, allow_clock_skew_seconds=1800,
        site_domains={SITE_ID: ["example.com"]}, latest_expires_us=far,
    )
    args.update(over)
    return args


FAST = C.KeyTable(**table_args())
SLOW = C.KeyTable(**table_args(), fastpath=False)
TWIN = P.KeyTable(**table_args())


# --- the switch ------------------------------------------------------------------------------------

def _cpu_has_vbmi():
    """Whether this CPU has AVX-512 VBMI (and F/BW/VL) with the OS saving the ZMM state, as the engine probes it
    (Linux: the kernel lists the flags only when it enables the state); the test skips where it cannot tell."""
    try:
        flags = set(pathlib.Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split())
    except (OSError, IndexError):
        pytest.skip("no /proc/cpuinfo to tell whether the CPU has AVX-512 VBMI")
    return {"avx512f", "avx512bw", "avx512vl", "avx512vbmi"} <= flags


def _features_in_subprocess(**env):
    code = ("import json, uid2fast; from uid2fast import _engine\n"
            "c = _engine.c_engine\n"
            f"fp = sorted(c.KeyTable(**{table_args()!r}).fastpath) if c is not None else None\n"
            "print(json.dumps([uid2fast.backend, uid2fast.backend_features, fp]))")
    # The uid2fast this test imported (the source tree, or site-packages when installed), not ROOT/src.
    full = dict(os.environ, PYTHONPATH=str(pathlib.Path(uid2fast.__file__).resolve().parent.parent))
    for k, v in env.items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    out = subprocess.run([sys.executable, "-c", code], env=full, cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("value", ["1", "yes", "0", "", None])
def test_backend_features_follow_the_switch(value):
    backend, features, table_fp = _features_in_subprocess(UID2FAST_NO_FASTPATH=value, UID2FAST_NO_EXTENSIONS=None,
                                                          UID2FAST_NO_VBMI=None)
    off = value not in (None, "", "0")
    ni = _cpu_has_ni()
    if ni is False:  # no AES instructions: the package must have chosen the twin
        assert backend == "python" and features == {"engine": "python"}
        return
    assert backend == "c"
    # AES is always the hardware kernel; the switch turns off only the SIMD base64 and the one-pass rows
    x86 = platform.machine().lower() in ("x86_64", "amd64")
    family = "aesni" if x86 else "armv8"
    assert features["engine"] == "c" and features["kernels"] == family
    assert features["aes"] == f"{family}-gcm" and features["cbc"] == f"{family}-cbc"
    assert features["base64"] == ("exact" if off else "b64fast")
    assert features["fastpath"] is (not off)
    assert table_fp == ([] if off else ["b64fast", "onepass"])
    if off:
        assert features["base64_kernel"] is None
    elif x86:
        assert features["base64_kernel"] == ("avx512vbmi" if _cpu_has_vbmi() else "ssse3")
    else:
        assert features["base64_kernel"] == "neon"


@pytest.mark.parametrize("value", ["1", "0", None])
def test_the_vbmi_switch_steps_the_base64_codecs_down(value):
    backend, features, _ = _features_in_subprocess(UID2FAST_NO_VBMI=value, UID2FAST_NO_FASTPATH=None,
                                                   UID2FAST_NO_EXTENSIONS=None)
    if backend != "c":
        pytest.skip("the C engine does not run here")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("AVX-512 VBMI is x86-64")
    off = value not in (None, "", "0")
    assert features["base64_kernel"] == ("avx512vbmi" if _cpu_has_vbmi() and not off else "ssse3")


def test_backend_features_of_the_twin():
    backend, features, table_fp = _features_in_subprocess(UID2FAST_NO_EXTENSIONS="1",
                                                          UID2FAST_REQUIRE_EXTENSIONS=None)
    assert backend == "python" and features == {"engine": "python"} and table_fp is None


def test_in_process_tables():
    assert SLOW.fastpath == frozenset()
    features = C.features()
    expect = {"b64fast", "onepass"} if features["fastpath"] else set()
    assert FAST.fastpath == expect
    # every AES key size is on the kernel now: a table of 16/24-byte keys has the same paths
    far = (NOW_MS + DAY_MS) * 1000
    small = C.KeyTable(**table_args(keys=[(166, -1, 1, 0, far, SECRETS[166]), (167, 1, 99, 0, far, SECRETS[167])]))
    assert small.fastpath == expect


# --- token building ------------------------------------------------------------------------------

def be(v, n):
    return (v % (1 << (8 * n))).to_bytes(n, "big")


def gcm(secret, plaintext, nonce):
    return nonce + AESGCM(secret).encrypt(nonce, plaintext, None)


def cbc(secret, plaintext, iv, pad=True):
    if pad:
        n = 16 - len(plaintext) % 16
        plaintext += bytes([n]) * n
    enc = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    return iv + enc.update(plaintext) + enc.finalize()


@st.composite
def raw_tokens(draw):
    """(version, token bytes before base64)."""
    version = draw(st.sampled_from([2, 112, 128, 128]))
    master_id = draw(st.sampled_from(MASTER_IDS * 3 + [999]))
    site_key_id = draw(st.sampled_from(SITE_IDS * 3 + [999]))
    expires = NOW_MS + draw(st.sampled_from([3_600_000] * 4 + [-1000, 4 * DAY_MS]))
    established = NOW_MS - draw(st.integers(0, 400 * DAY_MS))
    m_secret = SECRETS.get(master_id, bytes(32))
    s_secret = SECRETS.get(site_key_id, bytes(32))
    if version == 2:
        uid = draw(st.sampled_from([b"A" * 44, "ü".encode() * 3, b""]))
        identity = be(SITE_ID, 4) + be(len(uid), 4) + uid + bytes(4) + be(established, 8)
        iv1, iv2 = draw(st.binary(min_size=16, max_size=16)), draw(st.binary(min_size=16, max_size=16))
        master = be(expires, 8) + be(site_key_id, 4) + cbc(s_secret, identity, iv1)
        raw = b"\x02" + be(master_id, 4) + cbc(m_secret, master, iv2)
        return version, raw
    uid_raw = draw(st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=48)))
    privacy = draw(st.sampled_from([0, 0, 0, 0, 2, 4, 6]))
    site = (be(SITE_ID, 4) + bytes(8) + bytes(4) + be(privacy, 4) + be(established, 8) + be(NOW_MS, 8) + uid_raw)
    site_blob = gcm(s_secret, site, draw(st.binary(min_size=12, max_size=12)))
    generated = NOW_MS - draw(st.sampled_from([60_000, 60_000, 0, -3_600_000]))
    master = (be(expires, 8) + be(generated, 8) + bytes(4) + b"\x01" + bytes(4) + bytes(4) + be(site_key_id, 4)
              + site_blob)
    prefix = draw(st.sampled_from([0x03] * 4 + [0x07, 0x13]))
    raw = bytes([prefix, version]) + be(master_id, 4) + gcm(m_secret, master, draw(st.binary(min_size=12,
                                                                                             max_size=12)))
    return version, raw


def encode(raw, version, url_safe=None):
    if url_safe is None:
        url_safe = version == 128
    if url_safe:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return base64.b64encode(raw).decode()


@st.composite
def tokens(draw):
    version, raw = draw(raw_tokens())
    raw = bytearray(raw)
    if draw(st.integers(0, 3)) == 0:
        for f in draw(st.lists(st.integers(0, 8 * len(raw) - 1), min_size=1, max_size=2)):
            raw[f // 8] ^= 1 << (f % 8)  # bit flips: fast and slow must reject them the same way
    if draw(st.integers(0, 9)) == 0:
        raw = raw[: draw(st.integers(0, len(raw)))]
    url_safe = version == 128 if draw(st.integers(0, 4)) else version != 128  # the other alphabet now and then
    tok = encode(bytes(raw), version, url_safe)
    how = draw(st.integers(0, 11))
    if how == 0 and tok:  # junk the fast decoder declines and CPython skips (or fails on)
        pos = draw(st.integers(0, len(tok)))
        tok = tok[:pos] + draw(st.sampled_from([" ", "\n", ".", "=", "==", "*", "-", "+", "\u00e9"])) + tok[pos:]
    elif how == 1:
        tok += draw(st.sampled_from(["=", "==", "===", "A", "AA"]))
    elif how == 2:
        tok = tok.encode()
    elif how == 3 and tok:  # bytes with a non-ASCII byte: the scalar decoder skips it, a batch row is invalid
        pos = draw(st.integers(0, len(tok)))
        tok = tok[:pos].encode() + draw(st.sampled_from([b"\x80", b"\xff", b"\xc3\xa9"])) + tok[pos:].encode()
    return tok


# --- differential: fast == slow == twin ---------------------------------------------------------------

def _decrypt_all(tok, client, domain, now_us=NOW_US):
    a = C.decrypt_token(FAST, tok, now_us, client, domain)
    b = C.decrypt_token(SLOW, tok, now_us, client, domain)
    c = P.decrypt_token(TWIN, tok, now_us, client, domain)
    assert a == b == c, (tok, client, domain)
    return a


@given(tok=tokens(), client=st.sampled_from([P.CLIENT_SHARING, P.CLIENT_BIDSTREAM, P.CLIENT_LEGACY]),
       domain=st.sampled_from([None, "example.com", "other.org"]))
@SETTINGS
def test_decrypt_fast_equals_slow_equals_twin(tok, client, domain):
    _decrypt_all(tok, client, domain)


def test_clean_tokens_succeed_on_the_fast_path():
    # the differential above must not only agree on failures: a clean valid token of each version succeeds
    rnd = np.random.default_rng(3)
    for version in (2, 112, 128):
        for master_id in MASTER_IDS:
            for site_key_id in SITE_IDS:
                r = bytes(rnd.integers(0, 256, 32, dtype=np.uint8))
                if version == 2:
                    identity = be(SITE_ID, 4) + be(44, 4) + b"B" * 44 + bytes(4) + be(NOW_MS - DAY_MS, 8)
                    master = (be(NOW_MS + 3_600_000, 8) + be(site_key_id, 4)
                              + cbc(SECRETS[site_key_id], identity, r[:16]))
                    raw = b"\x02" + be(master_id, 4) + cbc(SECRETS[master_id], master, r[16:])
                else:
                    site = be(SITE_ID, 4) + bytes(16) + be(NOW_MS - DAY_MS, 8) + be(NOW_MS, 8) + r
                    master = (be(NOW_MS + 3_600_000, 8) + be(NOW_MS - 60_000, 8) + bytes(4) + b"\x01" + bytes(8)
                              + be(site_key_id, 4) + gcm(SECRETS[site_key_id], site, r[:12]))
                    raw = bytes([3, version]) + be(master_id, 4) + gcm(SECRETS[master_id], master, r[12:24])
                res = _decrypt_all(encode(raw, version), P.CLIENT_BIDSTREAM, None)
                assert res[0] == P.SUCCESS, (version, master_id, site_key_id, res)


@given(toks=st.lists(tokens(), max_size=40), client=st.sampled_from([P.CLIENT_SHARING, P.CLIENT_BIDSTREAM]),
       threads=st.sampled_from([1, 2]))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_batch_fast_equals_slow_equals_twin(toks, client, threads):
    a = C.decrypt_tokens(FAST, toks, NOW_US, client, "example.com", threads)
    b = C.decrypt_tokens(SLOW, toks, NOW_US, client, "example.com", threads)
    c = P.decrypt_tokens(TWIN, toks, NOW_US, client, "example.com", threads)
    for col in ("status", "uid", "established_ms", "expiry_ms", "site_id", "site_key_site_id", "identity_type",
                "version", "is_client_side_generated"):
        assert np.array_equal(a[col], b[col]) and np.array_equal(a[col], c[col]), col
    assert a["uid_overflow"] == b["uid_overflow"] == c["uid_overflow"]


def test_non_ascii_batch_rows_are_invalid_even_when_they_would_decode():
    """A batch row with a non-ASCII byte is INVALID_PAYLOAD (after the table checks), even where the scalar
    path decodes it by skipping that byte, as CPython's decoder does."""
    good = _v3().encode()
    bad = [good[:10] + b"\x80" + good[10:], b"\xff" + good, good + b"\xc3\xa9", b"\x80\x80\x80\x80"]
    for table in (FAST, SLOW):
        assert C.decrypt_token(table, bad[0], NOW_US, P.CLIENT_SHARING, None)[0] == P.SUCCESS
    assert P.decrypt_token(TWIN, bad[0], NOW_US, P.CLIENT_SHARING, None)[0] == P.SUCCESS
    for m, t in ((C, FAST), (C, SLOW), (P, TWIN)):
        got = m.decrypt_tokens(t, [good] + bad, NOW_US, P.CLIENT_SHARING, None, 1)["status"]
        assert list(got) == [P.SUCCESS] + [P.INVALID_PAYLOAD] * len(bad), m
    unsynced = table_args(latest_expires_us=NOW_US - 1)
    for m, t in ((C, C.KeyTable(**unsynced)), (C, C.KeyTable(**unsynced, fastpath=False)), (P, P.KeyTable(**unsynced))):
        assert list(m.decrypt_tokens(t, bad, NOW_US, P.CLIENT_SHARING, None, 1)["status"]) == \
            [P.KEYS_NOT_SYNCED] * len(bad)


def _v4(expires=3_600_000, generated=-60_000, privacy=0, raw=bytes(range(32)), prefix=3, master_id=164,
        site_key_id=165, site_id=SITE_ID, tail=b"", master_tail=b"", tag_flip=False, version=128):
    """A v4 token (or with ``version=112`` a v3 one: the same bytes but the version, in padded standard
    base64)."""
    site = be(site_id, 4) + bytes(12) + be(privacy, 4) + be(NOW_MS - DAY_MS, 8) + be(NOW_MS, 8) + raw + tail
    master = (be(NOW_MS + expires, 8) + be(NOW_MS + generated, 8) + bytes(4) + b"\x01" + bytes(8)
              + be(site_key_id, 4) + gcm(SECRETS.get(site_key_id, bytes(32)), site, bytes(12)) + master_tail)
    blob = bytearray(gcm(SECRETS.get(master_id, bytes(32)), master, bytes(range(12))))
    if tag_flip:
        blob[-1] ^= 1
    return encode(bytes([prefix, version]) + be(master_id, 4) + bytes(blob), version)


def _v3(**kw):
    return _v4(version=112, **kw)


# Each v3/v4 row the batch's one-pass path (uid2_decrypt_fast) must hand back to the general path, beside rows
# it takes: every field of every row must still be what the scalar engine and the twin say.
NEAR_MISSES = {
    "ok": _v4(), "ok-csg": _v4(privacy=2), "ok-phone": _v4(prefix=3 | 4), "ok-key-168": _v4(site_key_id=168),
    "expired": _v4(expires=-1000), "opted-out": _v4(privacy=4), "csg-opted-out": _v4(privacy=6),
    "csg-other-site": _v4(privacy=2, site_id=SITE_ID + 1), "too-long-lived": _v4(expires=4 * DAY_MS),
    "generated-in-future": _v4(generated=3_600_000), "scope-euid": _v4(prefix=0x13),
    "uid-31": _v4(raw=bytes(31)), "uid-33": _v4(raw=bytes(33)), "site-tail": _v4(tail=b"x"),
    # 33-byte raw UIDs as the operator mints them (metadata byte first: v3 scope<<4 | type<<2; v4 adds
    # env<<6 | 1<<5): the one-pass path takes them too, with the same answers
    "uid-33-v3-phone": _v4(raw=bytes([1 << 2]) + bytes(range(1, 33)), prefix=3 | 4),
    "uid-33-v4-email": _v4(raw=bytes([2 << 6 | 1 << 5]) + bytes(range(40, 72))),
    "uid-33-v4-csg": _v4(raw=bytes([2 << 6 | 1 << 5 | 1 << 2]) + bytes(range(7, 39)), prefix=3 | 4, privacy=2),
    "master-tail": _v4(master_tail=b"y"), "bad-tag": _v4(tag_flip=True), "unknown-master": _v4(master_id=999),
    "unknown-site": _v4(site_key_id=999), "aes192-master": _v4(master_id=167), "aes128-site": _v4(site_key_id=166),
    "padded": _v4() + "==", "std-alphabet": base64.b64encode(base64.urlsafe_b64decode(_v4() + "==")).decode(),
    "short": _v4()[:150], "empty": "",
    # v3 tokens: the same bytes in padded standard base64 (220 characters), taken by the one-pass path too
    "v3": _v3(), "v3-uid-33": _v3(raw=bytes([1 << 2]) + bytes(range(1, 33)), prefix=3 | 4),
    "v3-csg-other-site": _v3(privacy=2, site_id=SITE_ID + 1), "v3-opted-out": _v3(privacy=4),
    "v3-expired": _v3(expires=-1000), "v3-aes128-site": _v3(site_key_id=166), "v3-bad-tag": _v3(tag_flip=True),
    "v3-url-alphabet": base64.urlsafe_b64encode(base64.b64decode(_v3())).decode().rstrip("="),
    "v3-unpadded": _v3(raw=bytes(33)).rstrip("="), "v3-uid-31": _v3(raw=bytes(31)),
}

# The rows of NEAR_MISSES the one-pass path answers itself (every other row it hands to the general path): a v3
# or v4 token in its own alphabet (v4 base64url unpadded, v3 standard padded), whose two payloads open with a
# 32- or 33-byte raw UID (site-tail's byte after 32 makes it a 33-byte one), whatever the checks after the site
# payload then say.
ONE_PASS = {
    "ok", "ok-csg", "ok-phone", "ok-key-168", "opted-out", "csg-opted-out", "csg-other-site", "too-long-lived",
    "generated-in-future", "uid-33", "site-tail", "uid-33-v3-phone", "uid-33-v4-email", "uid-33-v4-csg",
    "aes192-master", "aes128-site", "v3", "v3-uid-33", "v3-csg-other-site", "v3-opted-out", "v3-aes128-site",
}


@pytest.mark.parametrize("client", [P.CLIENT_SHARING, P.CLIENT_BIDSTREAM, P.CLIENT_LEGACY])
@pytest.mark.parametrize("domain", [None, "example.com", "EXAMPLE.COM", "other.org"])
def test_batch_one_pass_rows_equal_the_general_path(client, domain):
    names = list(NEAR_MISSES)
    toks = [NEAR_MISSES[k] for k in names]
    want = [C.decrypt_token(SLOW, t, NOW_US, client, domain) for t in toks]
    assert want == [P.decrypt_token(TWIN, t, NOW_US, client, domain) for t in toks]
    # the rows really exercise both paths: every way out of the one-pass path, and successes it declines
    seen = {w[0] for w in want}
    assert {P.SUCCESS, P.EXPIRED_TOKEN, P.INVALID_IDENTITY_SCOPE, P.MALFORMED, P.NOT_AUTHORIZED_FOR_MASTER_KEY,
            P.NOT_AUTHORIZED_FOR_KEY, P.INVALID_PAYLOAD} <= seen
    if client == P.CLIENT_BIDSTREAM:
        assert {P.USER_OPTED_OUT, P.INVALID_TOKEN_LIFETIME} <= seen
        assert P.DOMAIN_NAME_CHECK_FAILED in seen  # csg-other-site, whatever the domain
    for name in ("ok", "uid-31", "uid-33", "uid-33-v3-phone", "uid-33-v4-email",
                 "site-tail", "aes192-master", "aes128-site", "padded", "std-alphabet", "v3", "v3-uid-33",
                 "v3-aes128-site", "v3-uid-31"):
        assert want[names.index(name)][0] == P.SUCCESS, name
    for table in (FAST, SLOW):
        for threads in (1, 2):
            got = C.decrypt_tokens(table, toks, NOW_US, client, domain, threads)
            twin = P.decrypt_tokens(TWIN, toks, NOW_US, client, domain, threads)
            for col in ("status", "uid", "established_ms", "expiry_ms", "site_id", "site_key_site_id",
                        "identity_type", "version", "is_client_side_generated"):
                assert np.array_equal(got[col], twin[col]), (col, table is FAST, threads)
            for i, name in enumerate(names):
                st_ = P.INVALID_PAYLOAD if want[i][0] == P.MALFORMED else want[i][0]
                assert got["status"][i] == st_, name
                assert got["uid"][i].decode() == (want[i][1] or "") or i in got["uid_overflow"], name


@pytest.mark.parametrize("client", [P.CLIENT_SHARING, P.CLIENT_BIDSTREAM])
@pytest.mark.parametrize("domain", [None, "example.com"])
def test_one_pass_rows_are_the_expected_ones(client, domain):
    """The rows the one-pass path takes, row by row and in groups of 8 (the multi-buffer kernel): exactly
    ONE_PASS, v3 and v4 alike, on a table with the fast paths; none on a table without them. In a list
    long enough that each group mixes taken and declined rows."""
    names = list(NEAR_MISSES) * 2
    toks = [NEAR_MISSES[k] for k in names]
    single, group = C.one_pass_rows(FAST, toks, NOW_US, client, domain)
    if not C.features()["fastpath"]:
        assert not any(single) and (group is None or not any(group))
        return
    assert {k for k, took in zip(names, single) if took} == ONE_PASS
    assert [took for took in single] == [k in ONE_PASS for k in names]
    if group is not None:
        assert group == single
    slow_single, slow_group = C.one_pass_rows(SLOW, toks, NOW_US, client, domain)
    assert not any(slow_single) and (slow_group is None or not any(slow_group))


def test_one_pass_rows_checks_its_input():
    with pytest.raises(TypeError):
        C.one_pass_rows(FAST, [_v4().encode()], NOW_US, P.CLIENT_SHARING)
    with pytest.raises(TypeError):
        C.one_pass_rows(FAST, [_v4() + "\u00e9"], NOW_US, P.CLIENT_SHARING)
    with pytest.raises(ValueError):
        C.one_pass_rows(None, [_v4()], NOW_US, P.CLIENT_SHARING)
    assert C.one_pass_rows(FAST, [], NOW_US, P.CLIENT_SHARING)[0] == []


@pytest.mark.parametrize("client", [P.CLIENT_SHARING, P.CLIENT_BIDSTREAM])
@pytest.mark.parametrize("with_domains", [False, True])
def test_engine_times_answers_as_the_batch_does(client, with_domains):
    """The benchmarks' engine-alone timer decrypts the rows it is given, as decrypt_tokens does, whatever
    their mix (its copy of the rows must not shift, truncate or drop one)."""
    names = list(NEAR_MISSES) * 3
    toks = [NEAR_MISSES[k] for k in names]
    doms = [("example.com", "other.org", "EXAMPLE.COM", "")[i % 4] for i in range(len(toks))] if with_domains else None
    times, cols = C.engine_times(FAST, toks, doms, NOW_US, client, 2)
    assert len(times) == 2 and all(t > 0 for t in times)
    want = C.decrypt_tokens(FAST, toks, NOW_US, client, doms, 1)
    for col in ("status", "uid", "established_ms", "expiry_ms", "site_id", "site_key_site_id", "identity_type",
                "version", "is_client_side_generated"):
        assert np.array_equal(cols[col], want[col]), col
    assert len(set(cols["status"].tolist())) > 3


def test_engine_times_checks_its_input():
    tok = _v4()
    with pytest.raises(ValueError):
        C.engine_times(None, [tok], None, NOW_US, P.CLIENT_SHARING, 1)
    with pytest.raises(ValueError):
        C.engine_times(FAST, [tok], None, NOW_US, P.CLIENT_SHARING, 0)
    with pytest.raises(ValueError):
        C.engine_times(FAST, [tok], ["a.com", "b.com"], NOW_US, P.CLIENT_SHARING, 1)
    with pytest.raises(TypeError):
        C.engine_times(FAST, [tok.encode()], None, NOW_US, P.CLIENT_SHARING, 1)
    with pytest.raises(TypeError):
        C.engine_times(FAST, [tok], ["\u00e9.com"], NOW_US, P.CLIENT_SHARING, 1)
    times, cols = C.engine_times(FAST, [], None, NOW_US, P.CLIENT_SHARING, 1)
    assert len(times) == 1 and len(cols["status"]) == 0


def _mixed_rows(n, seed):
    """n rows, v4 and a third v3: 32- and 33-byte raw UIDs in runs and interleaved, two site keys, csg rows, and
    now and then a near miss, so groups of the batch's multi-buffer path hold every mix of versions, lengths,
    keys and declined rows."""
    rnd = np.random.default_rng(seed)
    names = list(NEAR_MISSES)
    rows = []
    for i in range(n):
        if rnd.integers(0, 9) == 0:
            rows.append(NEAR_MISSES[names[int(rnd.integers(0, len(names)))]])
            continue
        raw_len = 32 + int(rnd.integers(0, 2)) if (i // 24) % 2 else 32 + (i // 8) % 2
        rows.append(_v4(raw=bytes(rnd.integers(0, 256, raw_len, dtype=np.uint8)),
                        site_key_id=(165, 168)[int(rnd.integers(0, 2))], privacy=(0, 2)[int(rnd.integers(0, 4)) == 0],
                        version=(128, 128, 112)[int(rnd.integers(0, 3))]))
    return rows


@pytest.mark.parametrize("client", [P.CLIENT_SHARING, P.CLIENT_BIDSTREAM])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 17, 300])
def test_batch_groups_of_32_and_33_byte_uids_equal_the_general_path(client, n):
    """The batch's one-pass rows come in groups (uid2_decrypt_fast_group: 8 rows, their GCM payloads opened
    side by side by the multi-buffer kernel, 129- and 130-byte payloads in one pass): every group size and
    remainder, 32- and 33-byte raw UIDs mixed, a row the group declines between rows it takes; every column
    equals the general path (a table without the fast paths) and the twin, on one and two threads."""
    toks = _mixed_rows(n, n)
    want = P.decrypt_tokens(TWIN, toks, NOW_US, client, "example.com", 1)
    assert (want["status"] == P.SUCCESS).sum() >= n * 2 // 3
    uids = {len(base64.b64decode(u)) for u, st_ in zip(want["uid"], want["status"]) if st_ == P.SUCCESS}
    assert uids >= ({32, 33} if n >= 17 else set()) and uids <= {32, 33, 31, 0}
    for table in (FAST, SLOW):
        for threads in (1, 2):
            got = C.decrypt_tokens(table, toks, NOW_US, client, "example.com", threads)
            for col in ("status", "uid", "established_ms", "expiry_ms", "site_id", "site_key_site_id",
                        "identity_type", "version", "is_client_side_generated"):
                assert np.array_equal(got[col], want[col]), (col, table is FAST, threads)
            assert got["uid_overflow"] == want["uid_overflow"]


def test_33_byte_uids_on_the_scalar_paths():
    """A 33-byte raw UID (the operator's current form: a metadata byte, then 32 hash bytes) is 44 characters
    without padding, through the scalar engine call and the batch alike."""
    raw = bytes([0x0C]) + bytes(range(1, 33))
    tok = _v4(raw=raw)
    a = _decrypt_all(tok, P.CLIENT_BIDSTREAM, None)
    assert a[0] == P.SUCCESS and a[1] == base64.b64encode(raw).decode() and len(a[1]) == 44 and "=" not in a[1]
    got = C.decrypt_tokens(FAST, [tok] * 9, NOW_US, P.CLIENT_BIDSTREAM, None, 1)
    assert [u.decode() for u in got["uid"]] == [a[1]] * 9 and not got["uid_overflow"]


@pytest.mark.parametrize("threads", [1, 2])
def test_33_byte_raw_uid_batches_equal_the_general_path_and_the_twin(threads):
    """A production-shaped batch: 33-byte raw UIDs (v3 and v4 metadata, emails and phones) mixed with legacy
    32-byte ones; C with its fast paths == C without them == the twin, column by column."""
    rnd = np.random.default_rng(33)
    toks = []
    for i in range(600):
        phone = i % 3 == 0
        meta = (2 << 6 | 1 << 5 if i % 2 else 0) | (phone << 2)
        body = bytes(rnd.integers(0, 256, 32, dtype=np.uint8))
        raw = body if i % 5 == 0 else bytes([meta]) + body
        toks.append(_v4(raw=raw, prefix=3 | (phone << 2), site_key_id=(165, 168)[i % 2],
                        privacy=2 if i % 4 == 1 else 0))
    for client in (P.CLIENT_SHARING, P.CLIENT_BIDSTREAM):
        a = C.decrypt_tokens(FAST, toks, NOW_US, client, "example.com", threads)
        b = C.decrypt_tokens(SLOW, toks, NOW_US, client, "example.com", threads)
        c = P.decrypt_tokens(TWIN, toks, NOW_US, client, "example.com", threads)
        for col in ("status", "uid", "established_ms", "expiry_ms", "site_id", "site_key_site_id", "identity_type",
                    "version", "is_client_side_generated"):
            assert np.array_equal(a[col], b[col]) and np.array_equal(a[col], c[col]), col
        assert a["uid_overflow"] == b["uid_overflow"] == c["uid_overflow"]
        assert not a["uid_overflow"]
        assert (a["status"] == P.SUCCESS).all()
        for i in (0, 1, 2, 3):
            assert a["uid"][i].decode() == P.decrypt_token(TWIN, toks[i], NOW_US, client, "example.com")[1]


@pytest.mark.parametrize("threads", [1, 2])
def test_a_long_row_between_one_pass_rows(threads):
    """A row long enough that the general path grows (moves) the worker's scratch, between rows the one-pass
    path takes: those rows must use the new scratch (under AddressSanitizer, scripts/sanitize_check.sh, a
    stale pointer is a use after free)."""
    good = NEAR_MISSES["ok"]
    huge = good[:8] + "A" * 6000  # a v4 header and a 4.5 kB payload: MALFORMED, after a 13 kB scratch
    toks = [good] * 3 + [huge] + [good] * 3000 + [huge + "AAAA"] + [good] * 3
    for data in (toks, np.array(toks, dtype=object)):
        got = C.decrypt_tokens(FAST, data, NOW_US, P.CLIENT_SHARING, None, threads)
        want = P.decrypt_tokens(TWIN, toks, NOW_US, P.CLIENT_SHARING, None, threads)
        for col in ("status", "uid", "established_ms", "expiry_ms", "site_id", "site_key_site_id"):
            assert np.array_equal(got[col], want[col]), col
        assert (got["status"] == P.SUCCESS).sum() == len(toks) - 2


def test_str_list_batch_in_chunks_drops_every_reference():
    """One thread over a list of str decrypts in chunks of rows and drops each chunk's references as it goes:
    many chunks (and a short last one) give the columns of the multi-thread path and the twin, and every
    item's reference count is back where it was."""
    import sys as _sys

    names = list(NEAR_MISSES)
    toks = [NEAR_MISSES[names[i % len(names)]][:] + "" for i in range(5_003)]
    toks = [t[:-1] + t[-1:] if t else t for t in toks]  # distinct objects where possible
    before = [_sys.getrefcount(t) for t in toks[:64]]
    one = C.decrypt_tokens(FAST, toks, NOW_US, P.CLIENT_BIDSTREAM, "example.com", 1)
    two = C.decrypt_tokens(FAST, toks, NOW_US, P.CLIENT_BIDSTREAM, "example.com", 2)
    twin = P.decrypt_tokens(TWIN, toks, NOW_US, P.CLIENT_BIDSTREAM, "example.com", 1)
    for col in ("status", "uid", "established_ms", "expiry_ms", "site_id", "site_key_site_id", "identity_type",
                "version", "is_client_side_generated"):
        assert np.array_equal(one[col], two[col]) and np.array_equal(one[col], twin[col]), col
    assert one["uid_overflow"] == two["uid_overflow"] == twin["uid_overflow"]
    assert (one["status"] == P.SUCCESS).sum() >= 5_003 // len(names) * 4
    assert [_sys.getrefcount(t) for t in toks[:64]] == before
    # no table: every row NOT_INITIALIZED, references dropped all the same
    none = C.decrypt_tokens(None, toks, NOW_US, P.CLIENT_BIDSTREAM, None, 1)
    assert (none["status"] == P.NOT_INITIALIZED).all()
    assert [_sys.getrefcount(t) for t in toks[:64]] == before


def test_str_list_batch_keeps_its_items_alive():
    """The list-of-str fast path takes a reference to every item instead of copying the list: a list emptied
    by another thread while the GIL is released must neither free the tokens under the engine nor change
    the answer (the batch sees the list as it was when the call began)."""
    import threading

    base = _v4()
    expected = None
    for _ in range(20):
        mutable = [base[:-1] + base[-1] for _ in range(4000)]  # distinct objects, owned by the list only
        if expected is None:
            expected = C.decrypt_tokens(FAST, list(mutable), NOW_US, P.CLIENT_SHARING, None, 1)
        out = {}
        th = threading.Thread(target=lambda out=out, mutable=mutable: out.update(
            r=C.decrypt_tokens(FAST, mutable, NOW_US, P.CLIENT_SHARING, None, 1)))
        th.start()
        mutable[:] = ["x"] * 10
        th.join()
        r = out["r"]
        if len(r["status"]) == 4000:
            assert np.array_equal(r["uid"], expected["uid"]) and (r["status"] == P.SUCCESS).all()
        else:
            assert len(r["status"]) == 10
    # an item of another kind part-way falls back to the snapshot path with the same answers
    mixed = [base] * 100 + [base.encode(), None, 7] + [base] * 100
    a = C.decrypt_tokens(FAST, mixed, NOW_US, P.CLIENT_SHARING, None, 1)
    b = P.decrypt_tokens(TWIN, mixed, NOW_US, P.CLIENT_SHARING, None, 1)
    assert np.array_equal(a["status"], b["status"]) and np.array_equal(a["uid"], b["uid"])


def test_str_list_batch_holds_long_rows_until_they_are_done_again():
    """A row whose uid is too long for the uid column is decrypted again after the batch (_redo_overflow), from
    its token and its domain name: the one-thread list path must still hold both objects then, although another
    thread replaced every item of both lists while the GIL was released (under the sanitizers' build, reading
    a freed token there is an error)."""
    import threading

    # the batch's rows carry 33-byte raw UIDs (metadata byte, then 32 hash bytes); the long one 40 bytes
    long_tok, base = _v4(raw=bytes(range(40))), _v4(raw=bytes([0x0C]) + bytes(range(32)))
    for _ in range(10):
        # distinct objects, owned by the lists only: the long row first, in the first chunk released
        toks = [long_tok[:-1] + long_tok[-1]] + [base[:-1] + base[-1] for _ in range(4095)]
        doms = ["example" + "." + "com"[: 3 - i % 2] for i in range(4096)]
        expected = C.decrypt_tokens(FAST, list(toks), NOW_US, P.CLIENT_BIDSTREAM, list(doms), 1)
        assert list(expected["uid_overflow"]) == [0] and (expected["status"] == P.SUCCESS).all()
        started, out = threading.Event(), {}

        def work(toks=toks, doms=doms, out=out, started=started):
            started.set()
            out["r"] = C.decrypt_tokens(FAST, toks, NOW_US, P.CLIENT_BIDSTREAM, doms, 1)

        th = threading.Thread(target=work)
        th.start()
        started.wait()  # then this thread runs once the batch releases the GIL: while it decrypts, as a rule
        toks[:] = ["x"] * 4096
        doms[:] = ["y"] * 4096
        th.join()
        r = out["r"]
        if r["status"][0] == P.SUCCESS:  # the batch read the lists before they changed
            assert r["uid_overflow"] == expected["uid_overflow"]
            assert np.array_equal(r["uid"], expected["uid"]) and (r["status"] == P.SUCCESS).all()
        else:
            assert not r["uid_overflow"] and (r["status"] != P.SUCCESS).all()


# --- the scalar public result straight from C (_engine_c.decrypt_result) -------------------------------

def _public_keys(engine=C):
    """A key collection of the public API over the same keys (so the hypothesis tokens decrypt), on ``engine``."""
    import datetime as dt

    from uid2fast.identity_scope import IdentityScope
    from uid2fast.keys import EncryptionKey, EncryptionKeysCollection

    utc = dt.timezone.utc
    t0 = dt.datetime(2000, 1, 1, tzinfo=utc)
    far = dt.datetime.fromtimestamp(NOW_MS / 1000 + 365 * 86400, tz=utc)
    keys = [EncryptionKey(k[0], k[1], t0, dt.datetime.fromtimestamp(k[3] / 1e6, tz=utc), far, k[5], k[2])
            for k in table_args()["keys"]]
    return EncryptionKeysCollection(keys, IdentityScope.UID2, SITE_ID, 1, 99, 2_592_000,
                                    site_data={SITE_ID: ["example.com"]}, engine=engine)


def _fields(t):
    return (t.status, t.uid, t.established, t.site_id, t.site_key_site_id, t.identity_scope, t.identity_type,
            t.advertising_token_version, t.is_client_side_generated, t.expiry, t.success, repr(t))


_PUBLIC_KEYS = _public_keys()
_PUBLIC_KEYS_TWIN = _public_keys(P)


@given(tok=tokens(), client=st.sampled_from([P.CLIENT_SHARING, P.CLIENT_BIDSTREAM, P.CLIENT_LEGACY]),
       domain=st.sampled_from([None, "example.com", "EXAMPLE.com", "other.org", "\udcff"]))
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
def test_scalar_result_builds_what_make_token_builds(tok, client, domain):
    from uid2fast import _results

    table = _PUBLIC_KEYS._table
    assert type(table) is C.KeyTable and table.public_scope is _PUBLIC_KEYS.get_identity_scope()
    t = C.decrypt_result(table, tok, client, domain, NOW_US)
    ref = _results.make_token(C.decrypt_token(table, tok, NOW_US, client, domain), table.public_scope)
    twin = P.decrypt_result(_PUBLIC_KEYS_TWIN._table, tok, client, domain, NOW_US)
    assert type(t) is _results.DecryptedToken
    assert _fields(t) == _fields(ref) == _fields(twin)
    t.extra = 1  # instances keep their __dict__
    assert t == ref or t.status != ref.status


def test_scalar_result_takes_every_input():
    """The common case (ASCII str token, str or None domain) is built in C; everything else (bytes, non-ASCII,
    a bytes domain, no table) goes through decrypt_token and make_token, with the same answer as the twin."""
    from uid2fast import _results

    table, twin = _PUBLIC_KEYS._table, _PUBLIC_KEYS_TWIN._table
    tok = _v4()
    assert C.decrypt_result(table, tok, P.CLIENT_SHARING, None, NOW_US).status.name == "SUCCESS"
    for args in ((tok, None), (tok.encode(), None), (tok + "\u00e9", None), (tok, b"example.com"), (None, None),
                 (tok[:-3], "example.com"), ("", None)):
        t = C.decrypt_result(table, args[0], P.CLIENT_BIDSTREAM, args[1], NOW_US)
        assert _fields(t) == _fields(P.decrypt_result(twin, args[0], P.CLIENT_BIDSTREAM, args[1], NOW_US)), args
    none = C.decrypt_result(None, tok, P.CLIENT_SHARING, None)
    assert none.status.name == "NOT_INITIALIZED" and none.identity_scope is None
    assert _fields(none) == _fields(P.decrypt_result(None, tok, P.CLIENT_SHARING, None))
    assert type(none) is _results.DecryptedToken


def test_scalar_result_reads_the_clock_like_now_us(monkeypatch):
    """Without now_us the C result reads CLOCK_REALTIME while time.time_ns is the builtin, and calls a
    patched time.time_ns (freezegun, mocks) as _time.now_us does."""
    import time

    fast = C.decrypt_result
    table = _PUBLIC_KEYS._table
    tok = _v4()  # expires NOW_MS + 1 h

    def real():
        return "SUCCESS" if time.time_ns() // 1000 <= NOW_US + 3_600_000_000 else "EXPIRED_TOKEN"

    for _ in range(2):  # the real clock first, so that a patch comes after the builtin was seen (and remembered)
        assert fast(table, tok, P.CLIENT_SHARING, None).status.name == real()
        monkeypatch.setattr(time, "time_ns", lambda: NOW_US * 1000)
        assert fast(table, tok, P.CLIENT_SHARING, None).status.name == "SUCCESS"
        monkeypatch.setattr(time, "time_ns", lambda: (NOW_MS + 2 * 3_600_000) * 1_000_000)
        assert fast(table, tok, P.CLIENT_SHARING, None).status.name == "EXPIRED_TOKEN"
        monkeypatch.undo()
    assert fast(table, tok, P.CLIENT_SHARING, None).status.name == real()


UIDS = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode()),
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.text("ABCDEFabcdef0123+/=-_ \n", max_size=50),
)


@given(uid=UIDS, keyset=st.sampled_from([None, 99, 1, 5]))
@SETTINGS
def test_encrypt_fast_and_slow_tokens_decrypt_everywhere(uid, keyset):
    results = []
    for table in (FAST, SLOW):
        st_, tok = C.encrypt_token(table, uid, NOW_US, keyset, None, NOW_MS - DAY_MS)
        results.append(st_)
        if tok is None:
            continue
        back = _decrypt_all(tok, P.CLIENT_SHARING, None)
        assert back[0] == P.SUCCESS and back[1] == base64.b64encode(base64.b64decode(uid)).decode()
    twin_status, _ = P.encrypt_token(TWIN, uid, NOW_US, keyset, None, NOW_MS - DAY_MS)
    assert results[0] == results[1] == twin_status, uid


def test_every_single_bit_flip_of_a_v4_token_is_rejected():
    """All 8 * len bits of one v4 token (both GCM layers are AES-256 on the AES-NI kernel) one at a time:
    fast == slow everywhere, and every flip in the GCM blob (after the 6-byte header) is rejected."""
    st_, tok = C.encrypt_token(FAST, base64.b64encode(bytes(range(32))).decode(), NOW_US, None, None, NOW_MS)
    assert st_ == P.SUCCESS
    raw = bytearray(base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)))
    statuses = set()
    for bit in range(8 * len(raw)):
        raw[bit // 8] ^= 1 << (bit % 8)
        t = encode(bytes(raw), 128)
        a = C.decrypt_token(FAST, t, NOW_US, P.CLIENT_SHARING, None)
        assert a == C.decrypt_token(SLOW, t, NOW_US, P.CLIENT_SHARING, None), bit
        raw[bit // 8] ^= 1 << (bit % 8)
        if bit >= 48:
            assert a[0] == P.MALFORMED and a[1] is None, bit
        statuses.add(a[0])
    # header flips: some bits of the prefix are not read (SUCCESS), others change scope, version or key id
    assert {P.SUCCESS, P.MALFORMED, P.INVALID_IDENTITY_SCOPE, P.NOT_AUTHORIZED_FOR_MASTER_KEY} <= statuses


# --- the domain check ----------------------------------------------------------------------------------

DOMAIN_NAMES = ["example.com", "Mixed.Example.COM", "a", "abcdefgh", "abcdefghi", "exämple.de", "x" * 40, "",
                "www.example-with-a-longer-name.co.uk", "@[`{", "zz.example.org", "a.z"]


@given(domain=st.one_of(st.sampled_from(DOMAIN_NAMES), st.text(alphabet="aAzZ@[`{.-é\x7f", max_size=20),
                        st.sampled_from(DOMAIN_NAMES).map(str.upper),
                        st.sampled_from(DOMAIN_NAMES).map(lambda s: s.swapcase())))
@SETTINGS
def test_domain_check_lowers_ascii_capitals_of_the_domain_only(domain):
    """A client-side generated token passes when ascii_lower(domain) equals one of its site's names as given:
    names are not lowered by the table (a name with a capital never matches), non-ASCII letters are not
    lowered, and the bytes around 'A'..'Z' ('@', '[', '`', '{') stay as they are. C (fast, slow, batch) ==
    twin, for names of every length around the eight-byte steps."""
    args = table_args(site_domains={SITE_ID: DOMAIN_NAMES})
    tables = (C.KeyTable(**args), C.KeyTable(**args, fastpath=False), P.KeyTable(**args))
    tok = _v4(privacy=2)
    want = P.decrypt_token(tables[2], tok, NOW_US, P.CLIENT_BIDSTREAM, domain)[0]
    lowered = P.ascii_lower(domain)
    assert (want == P.SUCCESS) == (lowered in DOMAIN_NAMES)
    for t in tables[:2]:
        assert C.decrypt_token(t, tok, NOW_US, P.CLIENT_BIDSTREAM, domain)[0] == want, domain
        assert list(C.decrypt_tokens(t, [tok, tok], NOW_US, P.CLIENT_BIDSTREAM, [domain, domain], 1)["status"]) \
            == [want, want]
