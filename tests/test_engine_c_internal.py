"""Tests specific to the C engine (``uid2fast._engine_c``), at the engine level.

The shared conformance and differential suites run the public API on both engines; this file covers what
only the C layer can get wrong: the status list in ``csrc/uid2_engine.h`` against the Python table, tokens
crafted with arbitrary (short, oversized, inconsistent) payloads behind valid crypto, the base64 decoder
against CPython's, timestamp and lifetime arithmetic at its edges, every batch input kind, thread
splitting, and the GIL being released. Everything is compared with ``_engine_py``, the semantic reference.
"""
import base64
import os
import pathlib
import random
import re
import sys
import threading
import time

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uid2fast import _codes
from uid2fast import _engine_py as P

C = pytest.importorskip("uid2fast._engine_c", reason="C engine not built")
np = pytest.importorskip("numpy")

pytestmark = pytest.mark.c_engine

HEADER = pathlib.Path(__file__).resolve().parent.parent / "csrc" / "uid2_engine.h"
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))

NOW_MS = 1_780_315_200_000
NOW_US = NOW_MS * 1000
DAY_MS = 86_400_000
MASTER_ID, SITE_KEY_ID, OTHER_ID = 164, 165, 166
SECRETS = {MASTER_ID: bytes(range(32)), SITE_KEY_ID: bytes(range(100, 132)), OTHER_ID: bytes(range(16))}
SITE_ID = 9000
RAW = bytes(range(32))


def table_args(**over):
    far = (NOW_MS + 365 * DAY_MS) * 1000
    args = dict(
        keys=[
            (MASTER_ID, -1, 1, 0, far, SECRETS[MASTER_ID]),
            (SITE_KEY_ID, SITE_ID, 99, 0, far, SECRETS[SITE_KEY_ID]),
            (OTHER_ID, 7, None, 0, far, SECRETS[OTHER_ID]),
        ],
        identity_scope=0, caller_site_id=SITE_ID, master_keyset_id=1, default_keyset_id=99,
        token_expiry_seconds=2_592_000, max_sharing_lifetime_seconds=2_592_000,
        max_bidstream_lifetime_seconds=259_200, allow_clock_skew_seconds=1800,
        site_domains={SITE_ID: ["example.com", "app.example"]}, latest_expires_us=far,
    )
    args.update(over)
    return args


def tables(**over):
    args = table_args(**over)
    return C.KeyTable(**args), P.KeyTable(**args)


TC, TP = tables()


def both(token, now_us=NOW_US, client=P.CLIENT_BIDSTREAM, domain=None, tc=None, tp=None):
    """Decrypt on both engines and assert the results are identical; returns the result."""
    a = C.decrypt_token(TC if tc is None else tc, token, now_us, client, domain)
    b = P.decrypt_token(TP if tp is None else tp, token, now_us, client, domain)
    assert a == b, (token, now_us, client, domain)
    return a


# --- token crafting (valid crypto around arbitrary payloads) -------------------------------------

def gcm(secret, plaintext, nonce=None):
    nonce = os.urandom(12) if nonce is None else nonce
    return nonce + AESGCM(secret).encrypt(nonce, plaintext, None)


def cbc(secret, plaintext, pad=True, iv=None):
    iv = os.urandom(16) if iv is None else iv
    if pad:
        n = 16 - len(plaintext) % 16
        plaintext += bytes([n]) * n
    enc = Cipher(algorithms.AES(secret), modes.CBC(iv)).encryptor()
    return iv + enc.update(plaintext) + enc.finalize()


def be(v, n):
    return (v % (1 << (8 * n))).to_bytes(n, "big")


def site_payload(site_id=SITE_ID, privacy=0, established=NOW_MS - DAY_MS, refreshed=NOW_MS, raw=RAW):
    return be(site_id, 4) + bytes(8) + bytes(4) + be(privacy, 4) + be(established, 8) + be(refreshed, 8) + raw


def master_payload(site_blob, expires=NOW_MS + 3_600_000, generated=NOW_MS - 60_000, site_key_id=SITE_KEY_ID):
    return be(expires, 8) + be(generated, 8) + bytes(4) + b"\x01" + bytes(4) + bytes(4) + be(site_key_id, 4) + site_blob


def v3_bytes(master=None, prefix=0x03, version=128, master_id=MASTER_ID, **site):
    if master is None:
        master = master_payload(gcm(SECRETS[SITE_KEY_ID], site_payload(**site)))
    return bytes([prefix, version]) + be(master_id, 4) + gcm(SECRETS[master_id], master)


def encode(raw, version):
    if version == 128:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return base64.b64encode(raw).decode()


def v2_identity(uid=b"A" * 44, site_id=SITE_ID, established=NOW_MS - DAY_MS, id_len=None):
    return be(site_id, 4) + be(len(uid) if id_len is None else id_len, 4) + uid + bytes(4) + be(established, 8)


def v2_token(identity=None, expires=NOW_MS + 3_600_000, site_key_id=SITE_KEY_ID, master=None, pad=True):
    if identity is None:
        identity = v2_identity()
    if master is None:
        master = be(expires, 8) + be(site_key_id, 4) + cbc(SECRETS[site_key_id], identity, pad)
    return base64.b64encode(b"\x02" + be(MASTER_ID, 4) + cbc(SECRETS[MASTER_ID], master, pad)).decode()


# --- the header and the module surface ---------------------------------------------------------

def _header_enum(prefix):
    text = HEADER.read_text()
    return {m.group(1): int(m.group(2)) for m in re.finditer(rf"\b{prefix}([A-Z0-9_]+) = (\d+),", text)}


def test_header_status_codes_match_python_tables():
    dec = _header_enum("UID2_STATUS_")
    enc = _header_enum("UID2_ENC_")
    cli = _header_enum("UID2_CLIENT_")
    assert len(dec) == 14 and len(enc) == 6 and len(cli) == 3
    for name, value in dec.items():
        assert getattr(P, name) == value == getattr(C, name), name
    for name, value in enc.items():
        assert getattr(P, "ENC_" + name) == value == getattr(C, "ENC_" + name), name
    for name, value in cli.items():
        assert getattr(P, "CLIENT_" + name) == value == getattr(C, "CLIENT_" + name), name
    # and the Python table has no code the header lacks
    py_dec = {n for n in dir(P) if n.isupper() and isinstance(getattr(P, n), int) and n in dec}
    assert py_dec == set(dec)


def test_module_surface_matches_twin():
    for name in P.__all__:
        value = getattr(P, name)
        if name.isupper() and not isinstance(value, (int, str)):
            continue  # imported names (AESGCM) that the twin's __all__ picks up
        assert hasattr(C, name), name
        if isinstance(value, int) and name.isupper():
            assert getattr(C, name) == value, name
    assert C.NAME == "c" and P.NAME == "python"
    assert C.ascii_lower("ExAmPle.COM\u00c9") == P.ascii_lower("ExAmPle.COM\u00c9")
    assert C.max_threads() >= 1


# --- decryption: crafted tokens ----------------------------------------------------------------

@pytest.mark.parametrize("version", [112, 128])
@pytest.mark.parametrize("client", [1, 2, 3])
def test_valid_v3_v4(version, client):
    r = both(encode(v3_bytes(version=version), version), client=client, domain="example.com")
    assert r[0] == P.SUCCESS and r[1] == base64.b64encode(RAW).decode()
    assert r[3] == SITE_ID and r[4] == SITE_ID and r[6] == version and r[7] is False


def test_valid_v2():
    r = both(v2_token(), client=P.CLIENT_SHARING)
    assert r[0] == P.SUCCESS and r[1] == "A" * 44 and r[6] == 2


@pytest.mark.parametrize("cut", range(0, 170))
def test_every_truncation_of_a_v4_token(cut):
    raw = v3_bytes()
    both(encode(raw[:cut], 128))
    both(encode(raw[:cut], 112))


@pytest.mark.parametrize("master_len", [0, 1, 7, 8, 9, 15, 16, 17, 28, 29, 30, 32, 33, 34, 40, 60, 61, 62, 100])
def test_short_master_payloads(master_len):
    full = master_payload(gcm(SECRETS[SITE_KEY_ID], site_payload()))
    both(encode(v3_bytes(master=full[:master_len]), 128))
    # expired vs not-yet: expires reads 0 for an empty payload; try a far-future prefix too
    m = (be(NOW_MS + DAY_MS, 8) + full[8:])[:master_len]
    both(encode(v3_bytes(master=m), 128))


@pytest.mark.parametrize("site_len", [0, 3, 4, 15, 16, 19, 20, 21, 27, 28, 35, 36, 37, 67, 68, 69, 80, 200])
def test_short_and_long_site_payloads(site_len):
    sp = site_payload(raw=bytes(range(256))[:max(0, site_len - 36)])[:site_len]
    master = master_payload(gcm(SECRETS[SITE_KEY_ID], sp))
    r = both(encode(v3_bytes(master=master), 128), client=P.CLIENT_LEGACY)
    if site_len >= 28:
        assert r[0] == P.SUCCESS


def test_uid_overflow_lengths_in_batches():
    toks = []
    for n in range(0, 40):
        master = master_payload(gcm(SECRETS[SITE_KEY_ID], site_payload(raw=bytes(range(n)))))
        toks.append(encode(v3_bytes(master=master), 128))
    for uid in (b"", b"x" * 43, b"x" * 44, b"x" * 45, "\u00e9t\u00e9".encode() * 11, b"\xe2\x82\xac" * 15):
        toks.append(v2_token(v2_identity(uid=uid)))
    _same_batch(toks, client=P.CLIENT_LEGACY)


def test_v2_identity_lengths_and_utf8():
    for uid in (b"", b"a", "h\u00e9llo".encode(), b"\xff", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80",
                b"\xf0\x9f\x98\x80", b"\xe2\x82", b"\x00" * 44):
        both(v2_token(v2_identity(uid=uid)), client=P.CLIENT_LEGACY)
    for id_len in (0, 1, 43, 45, 60, 64, 2**31, 2**32 - 1):
        both(v2_token(v2_identity(id_len=id_len)), client=P.CLIENT_LEGACY)
    for n in range(0, 40):  # identities shorter than their own header
        both(v2_token(v2_identity()[:n]), client=P.CLIENT_LEGACY)


def test_v2_padding_and_lengths():
    ident = v2_identity()
    master = be(NOW_MS + 3_600_000, 8) + be(SITE_KEY_ID, 4) + cbc(SECRETS[SITE_KEY_ID], ident)
    for bad_pad in (b"\x00", b"\x11", b"\x02\x03", bytes([16]) * 15 + b"\x10"):
        body = master + bad_pad
        raw = b"\x02" + be(MASTER_ID, 4) + cbc(SECRETS[MASTER_ID], body + bytes(-len(body) % 16), pad=False)
        both(base64.b64encode(raw).decode())
    for n in range(0, 60):
        raw = b"\x02" + be(MASTER_ID, 4) + cbc(SECRETS[MASTER_ID], master)
        both(base64.b64encode(raw[:n]).decode())
    # exactly one block of padding, full blocks of pad 16
    both(v2_token(master=be(NOW_MS + 3_600_000, 8) + bytes(4)))


@pytest.mark.parametrize("prefix", [0x00, 0x03, 0x07, 0x13, 0x17, 0xFF, 0x10, 0x0C])
def test_prefix_scope_and_type(prefix):
    r = both(encode(v3_bytes(prefix=prefix), 128), client=P.CLIENT_SHARING)
    assert (r[0] == P.INVALID_IDENTITY_SCOPE) == bool(prefix & 0x10)
    tc, tp = tables(identity_scope=1)
    both(encode(v3_bytes(prefix=prefix), 128), tc=tc, tp=tp)


def test_privacy_bits_and_domains():
    for privacy in (0, 1, 2, 3, 4, 6, 8, 0x40000000, 0xFFFFFFFF):
        tok = encode(v3_bytes(privacy=privacy), 128)
        for client in (1, 2, 3):
            for domain in (None, "example.com", "EXAMPLE.COM", "Example.Com", "example.co", "app.example",
                           "\u00e9xample.com", "\ud800", "", 5):
                both(tok, client=client, domain=domain)
    tok = encode(v3_bytes(privacy=2, site_id=123), 128)
    assert both(tok, domain="example.com")[0] == P.DOMAIN_NAME_CHECK_FAILED
    tc, tp = tables(site_domains={"123": ["\u00e9xample.com", "a\ud800b"], 2**40: ["x"], -1: ["x"]})
    for domain in ("\u00e9xample.com", "\u00c9xample.com", "a\ud800b", "x"):
        both(tok, domain=domain, tc=tc, tp=tp)


@pytest.mark.parametrize("ms", [
    0, 1, 999, 4294967295999, 4294967296000, 4294967296001, 2**42 + 1, 2**52 + 3, 2**53 + 1, 2**60 + 12345,
    253402300799999, 253402300800000, 253402300799999 + 1, 2**63 - 1, 2**63, 2**64 - 1,
    123456789012345678, 9007199254740993000,
])
def test_timestamp_edges(ms):
    for field in ("expires", "generated", "established"):
        kw = {"expires": 2**50, "generated": NOW_MS, "established": NOW_MS}
        kw[field] = ms
        sp = site_payload(established=kw["established"])
        master = master_payload(gcm(SECRETS[SITE_KEY_ID], sp), expires=kw["expires"], generated=kw["generated"])
        tok = encode(v3_bytes(master=master), 128)
        for now_us in (NOW_US, ms * 1000 if ms < 2**62 // 1000 else NOW_US, -62135596800000000):
            for client in (1, 2, 3):
                both(tok, now_us=now_us, client=client)
    both(v2_token(v2_identity(established=ms), expires=max(ms, NOW_MS + 1)), client=1)


@given(expires=st.integers(0, 2**64 - 1), generated=st.integers(0, 2**64 - 1),
       now_us=st.integers(-62135596800000000, 253402300799999999),
       max_life=st.one_of(st.integers(-10, 2**40), st.just(sys.maxsize), st.integers(-2**70, 2**70)),
       skew=st.one_of(st.integers(-10, 10**6), st.just(sys.maxsize)))
@SETTINGS
def test_lifetime_arithmetic_matches(expires, generated, now_us, max_life, skew):
    tc, tp = tables(max_sharing_lifetime_seconds=max_life, max_bidstream_lifetime_seconds=max_life,
                    allow_clock_skew_seconds=skew)
    master = master_payload(gcm(SECRETS[SITE_KEY_ID], site_payload()), expires=expires, generated=generated)
    tok = encode(v3_bytes(master=master), 128)
    for client in (1, 2):
        both(tok, now_us=now_us, client=client, tc=tc, tp=tp)


def test_lifetime_quotient_rounding_near_limits():
    # diffs above 2**53 us: the quotient must be the correctly rounded int / int, as Python computes it
    for generated in (0, 1, 999, 2**40 + 7):
        for expires in (2**53 // 1000 + 1, 253402300799999, 250000000000000 + 17, 9007199254741):
            q = ((expires - generated) * 1000) / 1_000_000
            for max_life in (int(q) - 1, int(q), int(q) + 1):
                tc, tp = tables(max_sharing_lifetime_seconds=max_life)
                master = master_payload(gcm(SECRETS[SITE_KEY_ID], site_payload()), expires=expires,
                                        generated=generated)
                both(encode(v3_bytes(master=master), 128), now_us=0, client=P.CLIENT_SHARING, tc=tc, tp=tp)


ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ .!\n\u00e9"


@given(body=st.text(ALPHABET, max_size=80), head=st.sampled_from(["", "Ag", "AgAA", "A4", "AHAA", "AIAA", "A3", "B4",
                                                                   "AIA", "-IAA", "AI_A", "A=AA", "AA==", "===="]))
@SETTINGS
def test_base64_decoder_matches_cpython(body, head):
    # The token text reaches CPython's non-validating binascii.a2b_base64 in the twin.
    for tok in (head + body, head + body + "=", head + body + "==", body):
        for client in (1, 2):
            both(tok, client=client)
    try:
        a = base64.b64decode(head + body)
    except Exception:
        a = None
    assert a is None or isinstance(a, bytes)


@given(data=st.binary(min_size=0, max_size=200), flips=st.lists(st.integers(0, 10_000), max_size=3),
       version=st.sampled_from([112, 128]))
@SETTINGS
def test_random_corruption_of_a_valid_token(data, flips, version):
    raw = bytearray(v3_bytes(version=version))
    for f in flips:
        raw[f % len(raw)] ^= 1 << (f % 8)
    tok = encode(bytes(raw) + data[:3], version)
    both(tok)
    both(tok[: len(data) % len(tok)])


def test_non_str_tokens_match_twin():
    good = encode(v3_bytes(version=112), 112)
    for tok in (good.encode(), bytearray(good.encode()), memoryview(good.encode()), b"AgAA", b"ab",
                encode(v3_bytes(), 128).encode(), "\u00e9\u00e9\u00e9\u00e9", "AHAA\u00e9" + good, "AAAA\u00e9xyz",
                "A\u00e9", None, 12345, ["A", "g", "A", "A"], ("x",)):
        both(tok)
        both(tok, client=3)


@pytest.mark.parametrize("ids", [
    list(range(1, 19)), list(range(1000, 1600)), list(range(5, 3005, 3)), [2**32 - 1 - i for i in range(64)],
    [i << 20 for i in range(1, 200)], random.Random(7).sample(range(1, 2**32), 500), [0, 1, 2**31, 2**32 - 1],
])
def test_key_lookup_finds_every_id_and_nothing_else(ids):
    """The open-addressing key table (Fibonacci hashing) over consecutive, strided, high, shifted and random
    ids: every key is found at its own index, ids that are not keys are not."""
    far = (NOW_MS + DAY_MS) * 1000
    keys = [(k, -1, None, 0, far, SECRETS[MASTER_ID]) for k in ids]
    tc = C.KeyTable(**table_args(keys=keys))
    assert [tc.key_index(k) for k in ids] == list(range(len(ids)))
    present = set(ids)
    rng = random.Random(len(ids))
    absent = [k for k in (rng.randrange(2**32) for _ in range(2000)) if k not in present]
    absent += [k + 1 for k in ids if k + 1 < 2**32 and k + 1 not in present]
    assert all(tc.key_index(k) is None for k in absent)


def test_table_edge_cases():
    far = (NOW_MS + DAY_MS) * 1000
    secret = SECRETS[SITE_KEY_ID]
    keys = [
        (MASTER_ID, -1, 1, 0, far, SECRETS[MASTER_ID]),
        (SITE_KEY_ID, 1, 99, 0, far, b"short"),        # overwritten below (dict semantics: last wins)
        (SITE_KEY_ID, 2**40, 99, 0, far, secret),
        (2**32 + SITE_KEY_ID, 5, 99, 0, far, secret),  # can never match a token
        (-1, 5, None, 0, far, secret),
        (7, 5, None, 0, far, b"x" * 20),                # not an AES key length
    ]
    tc, tp = tables(keys=keys)
    r = both(encode(v3_bytes(), 128), tc=tc, tp=tp)
    assert r[0] == P.SUCCESS and r[4] == 2**40
    assert tc.key_index(SITE_KEY_ID) is not None and tc.key_index(2**32 + SITE_KEY_ID) is None
    both(encode(v3_bytes(master_id=MASTER_ID), 128), tc=C.KeyTable(**table_args(keys=[])),
         tp=P.KeyTable(**table_args(keys=[])))
    for latest in (None, NOW_US, NOW_US + 1, 2**80):
        tc, tp = tables(latest_expires_us=latest)
        both(encode(v3_bytes(), 128), tc=tc, tp=tp)
    assert C.decrypt_token(None, "AAAA", NOW_US, 2, None) == P.decrypt_token(None, "AAAA", NOW_US, 2, None)


def test_bad_secret_lengths_are_malformed():
    for n in (0, 15, 17, 31, 33, 64):
        keys = [(MASTER_ID, -1, 1, 0, 2**62, b"k" * n)]
        tc, tp = tables(keys=keys)
        assert both(encode(v3_bytes(), 128), tc=tc, tp=tp)[0] == P.MALFORMED
    for n in (16, 24):  # AES-128 / AES-192 keys work like pycryptodome's
        secrets = {MASTER_ID: os.urandom(n), SITE_KEY_ID: os.urandom(n)}
        keys = [(MASTER_ID, -1, 1, 0, 2**62, secrets[MASTER_ID]), (SITE_KEY_ID, 3, 99, 0, 2**62, secrets[SITE_KEY_ID])]
        tc, tp = tables(keys=keys)
        sp = gcm(secrets[SITE_KEY_ID], site_payload())
        raw = bytes([3, 128]) + be(MASTER_ID, 4) + gcm(secrets[MASTER_ID], master_payload(sp))
        assert both(encode(raw, 128), tc=tc, tp=tp)[0] == P.SUCCESS
        st_, tok = C.encrypt_token(tc, base64.b64encode(RAW).decode(), NOW_US, None, None, NOW_MS)
        assert st_ == 0 and both(tok, tc=tc, tp=tp, client=1)[0] == P.SUCCESS


# --- batches ------------------------------------------------------------------------------------

COLUMNS = ("status", "uid", "established_ms", "expiry_ms", "site_id", "site_key_site_id", "identity_type",
           "version", "is_client_side_generated")


def _same_columns(a, b):
    for col in COLUMNS:
        assert a[col].dtype == b[col].dtype, col
        assert np.array_equal(a[col], b[col]), col
    assert a["uid_overflow"] == b["uid_overflow"]


def _same_batch(tokens, client=P.CLIENT_BIDSTREAM, domains=None, threads=None, now_us=NOW_US, tc=None, tp=None):
    a = C.decrypt_tokens(TC if tc is None else tc, tokens, now_us, client, domains, threads)
    b = P.decrypt_tokens(TP if tp is None else tp, tokens, now_us, client, domains, threads)
    _same_columns(a, b)
    return a


def _mixed_tokens(n=300):
    good4 = encode(v3_bytes(), 128)
    good3 = encode(v3_bytes(version=112), 112)
    csg = encode(v3_bytes(privacy=2), 128)
    out = []
    for i in range(n):
        out.append([good4, good3, v2_token(), csg, good4[:100], "", "AAAA", None, good4.encode(), 7,
                    encode(v3_bytes(raw=b"\x01" * 40), 128), "t\u00e9st" * 50][i % 12])
    return out


def test_batch_equals_twin_on_mixed_input():
    toks = _mixed_tokens()
    for client in (1, 2, 3):
        for domains in (None, "example.com", ["example.com", None, b"EXAMPLE.COM", 5] * 75):
            _same_batch(toks, client=client, domains=domains)


@pytest.mark.parametrize("threads", [None, 0, 1, 2, 3, 8, 1000])
def test_thread_splitting_gives_the_same_columns(threads):
    toks = _mixed_tokens(5000)
    ref = C.decrypt_tokens(TC, toks, NOW_US, 2, "example.com", 1)
    out = C.decrypt_tokens(TC, toks, NOW_US, 2, "example.com", threads)
    _same_columns(out, ref)


def test_batch_pre_checks():
    toks = _mixed_tokens(24)
    a = C.decrypt_tokens(None, toks, NOW_US, 2, None, 2)
    b = P.decrypt_tokens(None, toks, NOW_US, 2, None, 2)
    _same_columns(a, b)
    tc, tp = tables(latest_expires_us=None)
    _same_batch(toks, tc=tc, tp=tp)


def test_batch_input_kinds():
    pa = pytest.importorskip("pyarrow")
    good = encode(v3_bytes(), 128)
    items = [good, "", "AgAA", "t\u00e9st" * 60, good[:-1], good + "\x00", "\x00" + good]
    _same_batch(items)
    _same_batch(tuple(items))
    _same_batch(np.array(items))                                  # U, trailing NULs stripped like tolist()
    _same_batch(np.array(items).astype(">U300"))                  # non-native byte order
    _same_batch(np.array([s.encode("utf-8") for s in items]))     # S
    _same_batch(np.array(items + [None, 3], dtype=object))
    _same_batch(np.array(items)[::2])                             # non-contiguous
    _same_batch(np.array([[good, good]]))                         # 2-D: rows are lists -> INVALID_PAYLOAD
    _same_batch(np.array([1, 2, 3]))
    for typ in (pa.string(), pa.large_string()):
        arr = pa.array(items + [None], type=typ)
        _same_batch(arr)
        _same_batch(arr.slice(2, 4))
        _same_batch(pa.chunked_array([arr, arr.slice(1), pa.array([], type=typ)]))
    for typ in (pa.binary(), pa.large_binary()):
        _same_batch(pa.array([s.encode("utf-8") for s in items] + [None, b"\xff" * 300], type=typ))
    if hasattr(pa, "string_view"):
        _same_batch(pa.array(items + [None], type=pa.string_view()))
    _same_batch(pa.array([1, None, 3]))
    _same_batch([])
    _same_batch(np.array([], dtype="U5"))
    _same_batch(pa.array([], type=pa.string()))


def test_batch_domains_argument():
    toks = [encode(v3_bytes(privacy=2), 128)] * 6
    doms = ["example.com", "EXAMPLE.com", None, b"app.example", "nope", 1]
    _same_batch(toks, domains=doms)
    _same_batch(toks, domains=np.array(doms, dtype=object))
    _same_batch(toks, domains=tuple(doms))
    with pytest.raises(ValueError, match="domain_names"):
        C.decrypt_tokens(TC, toks, NOW_US, 2, doms[:3], 1)


def test_batch_input_is_snapshotted():
    toks = _mixed_tokens(2000)
    expected = C.decrypt_tokens(TC, list(toks), NOW_US, 2, None, 2)
    mutable = list(toks)
    out = {}

    def run():
        out["r"] = C.decrypt_tokens(TC, mutable, NOW_US, 2, None, 2)

    th = threading.Thread(target=run)
    th.start()
    mutable[:] = ["x"] * 10  # frees the originals unless the engine kept them alive
    th.join()
    r = out["r"]
    assert len(r["status"]) in (2000, 10)
    if len(r["status"]) == 2000:  # the call began before the list was emptied: the answer is the original one
        assert np.array_equal(r["status"], expected["status"]) and np.array_equal(r["uid"], expected["uid"])


def test_gil_is_released_during_batches():
    toks = [encode(v3_bytes(), 128)] * 200_000
    done = threading.Event()
    counter = [0]

    def spin():
        while not done.is_set():
            counter[0] += 1

    th = threading.Thread(target=spin)
    C.decrypt_tokens(TC, toks[:1000], NOW_US, 2, None, 1)  # warm up
    t0 = time.perf_counter()
    th.start()
    time.sleep(0.01)
    before = counter[0]
    start = time.perf_counter()
    C.decrypt_tokens(TC, toks, NOW_US, 2, None, 1)
    elapsed = time.perf_counter() - start
    during = counter[0] - before
    done.set()
    th.join()
    assert time.perf_counter() - t0 > 0
    # With the GIL held for the whole call the spinner could not run at all (beyond a switch interval
    # or two while the input is collected).
    assert elapsed > 0.02
    assert during > 1000, (during, elapsed)


# --- encryption ---------------------------------------------------------------------------------

def test_encrypt_round_trip_and_fresh_nonces():
    uid = base64.b64encode(RAW).decode()
    seen = set()
    for _ in range(50):
        st_, tok = C.encrypt_token(TC, uid, NOW_US, None, None, NOW_MS - 5)
        assert st_ == 0 and len(tok) == 218 and tok.startswith("A4")
        raw = base64.urlsafe_b64decode(tok + "==")
        seen.add(raw[6:18])
        r = both(tok, client=P.CLIENT_SHARING)
        assert r[0] == 0 and r[1] == uid and r[2] == NOW_MS - 5 and r[8] == NOW_MS + 2_592_000_000
    assert len(seen) == 50
    st_, tok = C.encrypt_token(TC, "B" + uid[1:], NOW_US, None, 1, NOW_MS)
    assert st_ == 0 and tok[:2] == "F4"  # prefix 0x17: EUID phone


@pytest.mark.parametrize("case", [
    dict(), dict(keyset_id=99), dict(keyset_id=1), dict(keyset_id=12345), dict(keyset_id=None, scope=1),
    dict(scope=15), dict(scope=16), dict(scope=-1), dict(established=-1), dict(established=2**64),
    dict(established=2**64 - 1), dict(now_us=-5), dict(now_us=0), dict(now_us=2**62),
])
@pytest.mark.parametrize("uid", ["", "=", "AAAA", "A", "Fxyz", "B" * 44, "AA==AA", "*", "\u00e9", b"AAAA", b"",
                                 None, base64.b64encode(RAW).decode()])
def test_encrypt_statuses_match_twin(case, uid):
    now_us = case.get("now_us", NOW_US)
    args = (uid, now_us, case.get("keyset_id"), case.get("scope"), case.get("established", NOW_MS))
    a = C.encrypt_token(TC, *args)
    b = P.encrypt_token(TP, *args)
    assert a[0] == b[0], (case, uid, a, b)
    if a[0] == 0:
        assert both(a[1], now_us=now_us, client=3)[1] == both(b[1], now_us=now_us, client=3)[1]


@pytest.mark.parametrize("over", [
    dict(caller_site_id=None), dict(caller_site_id=2**32), dict(caller_site_id=-1), dict(master_keyset_id=None),
    dict(master_keyset_id=5), dict(default_keyset_id=None), dict(latest_expires_us=None),
    dict(token_expiry_seconds=2**70), dict(token_expiry_seconds=-(2**70)), dict(token_expiry_seconds=1),
    dict(keys=[(2**32, -1, 1, 0, 2**62, SECRETS[MASTER_ID]), (SITE_KEY_ID, 3, 99, 0, 2**62, SECRETS[SITE_KEY_ID])]),
    dict(keys=[(MASTER_ID, -1, 1, 0, 2**62, b"bad"), (SITE_KEY_ID, 3, 99, 0, 2**62, SECRETS[SITE_KEY_ID])]),
    dict(keys=[(MASTER_ID, -1, 1, NOW_US + 1, 2**62, SECRETS[MASTER_ID]),
               (SITE_KEY_ID, 3, 99, 0, 2**62, SECRETS[SITE_KEY_ID])]),
])
def test_encrypt_table_edge_cases(over):
    tc, tp = tables(**over)
    uid = base64.b64encode(RAW).decode()
    a = C.encrypt_token(tc, uid, NOW_US, None, None, NOW_MS)
    b = P.encrypt_token(tp, uid, NOW_US, None, None, NOW_MS)
    assert a[0] == b[0]
    sa, ta = C.encrypt_tokens(tc, [uid, None, "", b"AAAA"], NOW_US, None, None, NOW_MS, 2)
    sb, tb = P.encrypt_tokens(tp, [uid, None, "", b"AAAA"], NOW_US, None, None, NOW_MS, 2)
    assert sa.tolist() == sb.tolist() and [t is None for t in ta] == [t is None for t in tb]


def test_encrypt_key_selection_is_latest_activated():
    far = 2**62
    keys = [(MASTER_ID, -1, 1, 0, far, SECRETS[MASTER_ID])]
    # same keyset, JSON order scrambled: the latest-activated active key wins; ties keep input order
    for kid, act, exp in ((200, 10, far), (201, 30, far), (202, 20, far), (203, NOW_US + 1, far),
                          (204, 30, far), (205, 40, 50), (200, 35, far), (201, 1, 2)):  # repeated ids too
        keys.append((kid, 3, 99, act, exp, os.urandom(32)))
    tc, tp = tables(keys=keys)
    for now in (0, 10, 25, 35, 45, NOW_US, NOW_US + 1):
        ic = tc.active_keyset_key_index(99, now)
        kp = tp.active_keyset_key(99, now)
        assert (None if ic is None else keys[ic][3:5]) == (None if kp is None else (kp.activates_us, kp.expires_us))
    # decryption finds the last key with a repeated id
    assert keys[tc.key_index(200)][3] == 35 and tp.key(200).activates_us == 35


def test_encrypt_batch_matches_scalar_statuses():
    uids = [base64.b64encode(os.urandom(32)).decode() for _ in range(3000)] + [None, "", "\u00e9", 3]
    for threads in (1, 2, 5):
        st_, toks = C.encrypt_tokens(TC, uids, NOW_US, None, None, NOW_MS, threads)
        assert st_.dtype == np.uint8 and st_.tolist() == [0] * 3000 + [5] * 4
        out = C.decrypt_tokens(TC, toks[:3000], NOW_US, 1, None, threads)
        assert out["status"].tolist() == [0] * 3000
        assert [u.decode() for u in out["uid"]] == uids[:3000]
        assert len({t[8:30] for t in toks[:3000]}) == 3000  # fresh nonces
    assert C.encrypt_tokens(None, uids[:3], NOW_US, None, None, NOW_MS, 1)[0].tolist() == [3, 3, 3]


@pytest.mark.parametrize("over", [dict(), dict(caller_site_id=None), dict(master_keyset_id=5),
                                  dict(default_keyset_id=12345), dict(latest_expires_us=NOW_US - 1)])
@pytest.mark.parametrize("keyset_id", [None, 99, 99.0, True, 5, [1], {}, "x"])
@pytest.mark.parametrize("scope", [None, 0, 1, 1.5, "1", "x", [1], object()])
def test_encrypt_odd_argument_types_answer_like_twin(over, keyset_id, scope):
    """An unhashable keyset id or a scope int() rejects: the same status, or the same exception type, as the
    twin, whose status checks come first (the C engine takes every input; there is no fallback to the twin)."""
    tc, tp = tables(**over)
    uid = base64.b64encode(RAW).decode()

    def outcome(engine, table):
        try:
            st_, tok = engine.encrypt_token(table, uid, NOW_US, keyset_id, scope, NOW_MS)
        except Exception as exc:  # noqa: BLE001 - the type is what is compared
            return type(exc)
        return st_, tok is None

    assert outcome(C, tc) == outcome(P, tp)


def test_batch_columns_match_the_c_struct():
    """_results.COLUMNS (the one column spec: the Cython batch, the twin and batch.py read it) names the members
    of uid2_columns_t in csrc/uid2_engine.h, with their element sizes."""
    from uid2fast import _results

    text = HEADER.read_text()
    body = re.search(r"typedef struct \{([^}]*)\}\s*uid2_columns_t;", text).group(1)
    members = re.findall(r"\b(u?int\d+_t|char)\s*\*\s*(\w+);", body)
    sizes = {"char": _codes.UID_WIDTH, "uint8_t": 1, "int8_t": 1, "int16_t": 2, "int64_t": 8}
    assert sorted((name, sizes[ctype]) for ctype, name in members) == sorted(
        (name, width) for name, _, width in _results.COLUMNS)
    for name, dtype, width in _results.COLUMNS:
        assert np.dtype(dtype).itemsize == width, name
    cols = C.decrypt_tokens(TC, ["x"], NOW_US, 2, None, 1)
    twin = P.decrypt_tokens(TP, ["x"], NOW_US, 2, None, 1)
    assert set(cols) == set(twin) == {name for name, _, _ in _results.COLUMNS}
    for name, dtype, _ in _results.COLUMNS:
        if name != "uid_overflow":
            assert cols[name].dtype == twin[name].dtype == np.dtype(dtype), name
