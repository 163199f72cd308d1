"""Memory stays flat: no leak in the C engine, the Cython wrapper, the Python twin or the client layer.

Two measures, each taken after a warm-up pass and a ``gc.collect()``:

- **RSS** from ``/proc/self/statm``: catches C-level leaks (a ``malloc`` not freed, a worker, an OpenSSL
  context, a result buffer);
- **``sys.getallocatedblocks()``**: the number of live blocks of CPython's allocator, exact to the object,
  so a reference leak of even one object per call shows up as one block per call.

Budgets (CI runs ``-m 'not slow'`` on two shared cores): on the C engine a million scalar decrypts, two
hundred thousand scalar encrypts, a thousand batch decrypts and a thousand batch encrypts, and ten million
tokens decrypted in chunks of 100,000. The Python twin is about twenty times slower per token, so its counts
are scaled down by ten (the thousand batch calls stay, with smaller batches); a per-call leak still shows.
"""
import base64
import datetime as dt
import gc
import json
import os
import sys

import numpy as np
import pytest

import uid2fast
from uid2fast import DecryptionStatus as S
from uid2fast import EncryptionStatus as E

from .helpers import RAW_UID, SITE_ID, keys_body, make_token

pytestmark = [
    pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc/self/statm (Linux)"),
    pytest.mark.no_sanitizer(reason="ASan's quarantine keeps freed memory, so RSS says nothing under the "
                                    "sanitizers; the release build runs these"),
    # scripts/arm64_suite.sh sets it: a user-mode emulator's RSS includes its own growing translation cache
    pytest.mark.skipif(os.environ.get("UID2FAST_EMULATED", "") not in ("", "0"),
                       reason="RSS under a user-mode emulator includes the emulator's code cache"),
]

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
DOMAIN = "example.com"
PHONE_UID = "BEOGxroPLdcY7LrSiwjY52+X05V0ryELpJmoWAyXiwbZ"
SECRET = "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="  # client credentials are not used: no HTTP here
# One object leaked per call would be 1 block per call; the allowance covers the interpreter's own
# bookkeeping (interned names, caches) between two measurements.
BLOCK_SLACK = 200


def _malloc_trim():
    try:
        import ctypes

        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return lambda pad: 0


_trim = _malloc_trim()


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


class _Meter:
    """RSS and allocated blocks now, and growth since the last ``mark()``.

    Free heap memory goes back to the system first (glibc ``malloc_trim``): otherwise a leak could fill
    pages that an earlier test freed but the allocator kept resident, and not show in RSS.
    """

    def _now(self):
        gc.collect()
        _trim(0)
        return _rss(), sys.getallocatedblocks()

    def mark(self):
        self.rss0, self.blocks0 = self._now()

    def growth(self):
        rss, blocks = self._now()
        return rss - self.rss0, blocks - self.blocks0


def _mib(n):
    return f"{n / 2**20:.2f} MiB"


@pytest.fixture
def clients(engine):
    now = dt.datetime.now(dt.timezone.utc)
    body = keys_body(now, site_data=[{"id": SITE_ID, "domain_names": [DOMAIN]}])
    payload = json.dumps({"body": body})
    bidstream = uid2fast.BidstreamClient("http://127.0.0.1:9", "api-key", SECRET, engine=engine)
    sharing = uid2fast.SharingClient("http://127.0.0.1:9", "api-key", SECRET, engine=engine)
    assert bidstream._refresh_json(payload).success and sharing._refresh_json(payload).success
    return bidstream, sharing, now


@pytest.fixture
def scalar_cases(clients):
    """(token, domain, expected status) covering every branch of the wrapper: each version, the domain
    check both ways, expiry, an unknown key, malformed input, a token long enough for the heap uid buffer,
    non-ASCII text, bytes and None."""
    bidstream, _, now = clients
    keys = bidstream.keys
    # same ids, other secrets: the tag fails
    other = uid2fast.parse_keys_json(keys_body(now)).keys._on_engine(keys._engine)
    v4 = make_token(keys, now)
    return [
        (v4, DOMAIN, S.SUCCESS),
        (make_token(keys, now, version=3), None, S.SUCCESS),
        (make_token(keys, now, version=2), None, S.SUCCESS),
        (make_token(keys, now, uid=PHONE_UID), None, S.SUCCESS),
        (make_token(keys, now, privacy_bits=0x2), DOMAIN, S.SUCCESS),
        (make_token(keys, now, privacy_bits=0x2), "other.example", S.DOMAIN_NAME_CHECK_FAILED),
        (make_token(keys, now, expires=now - dt.timedelta(seconds=5), generated=now - dt.timedelta(hours=1)),
         None, S.EXPIRED_TOKEN),
        (make_token(other, now), None, S.INVALID_PAYLOAD),
        (v4[:-7], None, S.INVALID_PAYLOAD),
        (make_token(keys, now, uid="A" * 1000), None, S.SUCCESS),  # > 512-byte uid: the heap buffer
        (make_token(keys, now, uid="A" * 1000, version=2), None, S.SUCCESS),
        ("A" * 3000, None, S.VERSION_NOT_SUPPORTED),
        ("é" * 60, None, S.INVALID_PAYLOAD),
        (v4.encode(), None, S.INVALID_PAYLOAD),
        (None, None, S.INVALID_PAYLOAD),
    ]


def _scalar_round(bidstream, sharing, cases, n_decrypt, n_encrypt):
    decrypt = bidstream.decrypt_token_into_raw_uid
    encrypt = sharing.encrypt_raw_uid_into_token
    m = len(cases)
    for i in range(n_decrypt):
        token, domain, _ = cases[i % m]
        decrypt(token, domain)
    uids = [RAW_UID, PHONE_UID, "A" * 1500, "not base64!"]
    for i in range(n_encrypt):
        encrypt(uids[i & 3])
        if i % 64 == 0:
            encrypt(RAW_UID, 12345)  # a keyset with no key: NOT_AUTHORIZED_FOR_KEY


def test_scalar_decrypt_and_encrypt_leave_memory_flat(engine, clients, scalar_cases):
    bidstream, sharing, _ = clients
    for token, domain, expected in scalar_cases:  # the cases mean what they say
        assert bidstream.decrypt_token_into_raw_uid(token, domain).status == expected, (token, domain)
    assert sharing.encrypt_raw_uid_into_token(RAW_UID).status == E.SUCCESS
    assert sharing.encrypt_raw_uid_into_token("A" * 1500).status == E.SUCCESS
    assert sharing.encrypt_raw_uid_into_token(RAW_UID, 12345).status == E.NOT_AUTHORIZED_FOR_KEY

    n_decrypt, n_encrypt = (1_000_000, 200_000) if engine.NAME == "c" else (100_000, 20_000)
    meter = _Meter()
    _scalar_round(bidstream, sharing, scalar_cases, n_decrypt // 20, n_encrypt // 20)  # warm-up
    meter.mark()
    _scalar_round(bidstream, sharing, scalar_cases, n_decrypt, n_encrypt)
    rss, blocks = meter.growth()
    print(f"\n{engine.NAME}: {n_decrypt:,} decrypts + {n_encrypt:,} encrypts: RSS {_mib(rss)}, blocks {blocks:+d}")
    assert blocks < BLOCK_SLACK
    assert rss < 2 * 2**20  # < 2 bytes per decrypt on the C engine


def _batch_inputs(tokens):
    """The same tokens as every input kind the batch API takes."""
    kinds = [tokens, np.array(tokens, dtype=object), np.array(tokens), np.array([t.encode() for t in tokens]),
             tuple(tokens)]
    try:
        import pyarrow as pa
    except ImportError:
        pass
    else:
        half = len(tokens) // 2
        kinds += [pa.array(tokens, type=pa.string()), pa.array(tokens, type=pa.large_string()),
                  pa.chunked_array([tokens[:half], tokens[half:]], type=pa.string())]
    return kinds


def _batch_round(bidstream, sharing, inputs, domains, uids, calls, check=False):
    n = len(domains)
    for i in range(calls):
        dom = (None, DOMAIN, domains)[i % 3]
        threads = (None, 1, 2)[i % 3]
        res = bidstream.decrypt_tokens_into_raw_uids(inputs[i % len(inputs)], dom, threads=threads)
        enc = sharing.encrypt_raw_uids_into_tokens(uids, threads=threads)
        if check:
            assert len(res) == n and res.status_counts()[S.SUCCESS] > 0
            assert enc.status_counts() == {E.SUCCESS: len(uids)}
        if i % 50 == 0:  # the row accessors and the export build objects too
            res[0]
            res.uids()
            enc[0]


def test_thousand_batch_decrypts_and_encrypts_leave_memory_flat(engine, clients, scalar_cases):
    bidstream, sharing, _ = clients
    size = 1000 if engine.NAME == "c" else 50
    base = [t for t, _, _ in scalar_cases if isinstance(t, str) and t.isascii() and len(t) < 1000]
    tokens = [base[i % len(base)] for i in range(size)]
    domains = [(DOMAIN, "other.example", None)[i % 3] for i in range(size)]
    uids = [(RAW_UID, PHONE_UID)[i & 1] for i in range(size // 4)]
    inputs = _batch_inputs(tokens)
    meter = _Meter()
    _batch_round(bidstream, sharing, inputs, domains, uids, 100, check=True)  # warm-up, answers checked
    meter.mark()
    _batch_round(bidstream, sharing, inputs, domains, uids, 1000)
    rss, blocks = meter.growth()
    print(f"\n{engine.NAME}: 1000 batch decrypts of {size} + 1000 batch encrypts of {len(uids)}: RSS {_mib(rss)}, "
          f"blocks {blocks:+d}")
    assert blocks < BLOCK_SLACK
    assert rss < 2 * 2**20  # a leaked worker (scratch, nonce pool, contexts) per call would be several MB


def test_ten_million_tokens_in_chunks_keep_rss_bounded(engine, clients):
    """100,000 distinct tokens made once, decrypted 100 times (the twin: 20,000, ten times). The RSS reached
    in the first chunks is the ceiling: no later chunk adds to it (one chunk's results alone are ~9 MB)."""
    bidstream, sharing, _ = clients
    chunk, rounds = (100_000, 100) if engine.NAME == "c" else (20_000, 10)
    rng = np.random.default_rng(11)
    raw = [bytes(r) for r in rng.integers(0, 256, size=(chunk, 32), dtype=np.uint8)]
    uids = [base64.b64encode(r).decode() for r in raw]
    enc = sharing.encrypt_raw_uids_into_tokens(uids)
    assert enc.status_counts() == {E.SUCCESS: chunk}
    tokens = enc.tokens
    del raw, enc
    meter = _Meter()
    warmup = min(5, rounds // 2)
    plateau = peak = 0  # the highest RSS between chunks, during the warm-up and after it
    for i in range(rounds):
        res = sharing.decrypt_tokens_into_raw_uids(tokens)
        if i in (0, rounds - 1):  # right answers, first and last
            assert res.status_counts() == {S.SUCCESS: chunk}
            assert res.uids() == uids
        del res
        rss = _rss()  # as it runs: no collection, no trim
        if i < warmup:
            plateau = max(plateau, rss)
        else:
            peak = max(peak, rss)
        if i == warmup - 1:
            meter.mark()
    rss, blocks = meter.growth()
    print(f"\n{engine.NAME}: {chunk * rounds:,} tokens in chunks of {chunk:,}: RSS plateau after {warmup} chunks "
          f"{_mib(plateau)}, highest later {_mib(peak)}; trimmed growth {_mib(rss)}, blocks {blocks:+d}")
    assert blocks < BLOCK_SLACK
    assert peak - plateau < 4 * 2**20
    assert rss < 2 * 2**20


def test_meter_sees_a_leak():
    """The measures can see what the bounds above are meant to catch: 1,000 leaked objects, and 4 MiB of
    leaked C buffers (twice the RSS bound)."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    meter = _Meter()
    meter.mark()
    leaked = [object() for _ in range(1000)]
    assert meter.growth()[1] >= 1000
    del leaked
    meter.mark()
    buffers = [libc.malloc(2048) for _ in range(2000)]  # 4 MiB nobody frees, written so it is resident
    for b in buffers:
        ctypes.memset(b, 1, 2048)
    assert meter.growth()[0] >= 2 * 2**20
    for b in buffers:
        libc.free(ctypes.c_void_p(b))

