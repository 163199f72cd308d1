"""Random and corrupted input through every public decrypt entry point, on both engines (issue 6).

The C engine's memory safety is fuzzed below the Python layer by ``fuzz/`` (libFuzzer + ASan/UBSan,
``scripts/fuzz.sh``). This file checks the public layer with hypothesis: random ASCII, unicode and
base64-ish strings, truncated / bit-flipped / re-alphabeted valid tokens (v2, v3, v4, client-side
generated), bytes, bytearrays, None, ints and floats go through

- ``decrypt``, ``decrypt_token`` (each client type), ``Uid2Client.decrypt``, ``decrypt_data``,
- ``BidstreamClient`` / ``SharingClient`` ``decrypt_token_into_raw_uid`` (wall clock) and their
  ``_decrypt_token_into_raw_uid`` hooks (explicit ``now``),
- ``decrypt_tokens`` over a list, numpy (object, ``U``, ``S``) and Arrow (string, large_string, binary,
  chunked) and the clients' ``decrypt_tokens_into_raw_uids``,

once on the C engine and once on the pure-Python engine. The two must agree: the same result (status and
every field) or, where the official SDK raises, the same exception type and message. The bidstream and
sharing clients never raise for a token's content (docs/differences.md#malformed-tokens); the batch
APIs never raise per item, and a batch row is what the scalar API answers for the same token.

Runtime: a few seconds (``max_examples`` below); ``UID2FAST_FUZZ_EXAMPLES=N`` runs N examples per test.
"""
import base64
import datetime as dt
import json
import os
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import uid2fast as U
from uid2fast import _engine

from .helpers import SITE_ID, keys_body, make_keys, make_token

np = pytest.importorskip("numpy")
pa = pytest.importorskip("pyarrow")

pytestmark = [pytest.mark.skipif(_engine.c_engine is None, reason=f"C engine not built ({_engine.import_error})"),
              pytest.mark.engine_path]

UTC = dt.timezone.utc
ENGINES = ("c", "py")
_N = int(os.environ.get("UID2FAST_FUZZ_EXAMPLES", "0"))


def examples(n):
    return settings(max_examples=_N or n, deadline=None, suppress_health_check=list(HealthCheck))


# ---- keys, clients and valid tokens --------------------------------------------------------------------------
# The wall-clock entry points (client.decrypt_token_into_raw_uid, Uid2Client.decrypt) read the real clock,
# so everything is built around it: keys valid for ten days either side, tokens valid for an hour.
NOW = dt.datetime.now(UTC).replace(microsecond=0)
SITE_DATA = [{"id": SITE_ID, "domain_names": ["example.com", "Publisher.ORG"], "app_names": ["com.example.app"]}]
BODY = keys_body(NOW, site_data=SITE_DATA, secrets={164: bytes(range(32)), 165: bytes(range(100, 132))})
KEYS = make_keys(NOW, site_data=SITE_DATA, secrets={164: bytes(range(32)), 165: bytes(range(100, 132))})
EUID_KEYS = make_keys(NOW, scope="EUID")
DOMAINS = ["example.com", "EXAMPLE.com", "publisher.org", "com.example.app", "other.example", ""]
RAW_33 = base64.b64encode(bytes([0x14]) + bytes(range(32))).decode()


def _clients(engine=None):
    body = json.dumps({"body": BODY})
    secret = base64.b64encode(b"s" * 32).decode()
    bid = U.BidstreamClient("http://127.0.0.1:9", "key", secret, engine=engine)
    sha = U.SharingClient("http://127.0.0.1:9", "key", secret, engine=engine)
    legacy = U.Uid2Client("http://127.0.0.1:9", "key", secret, engine=engine)
    assert bid._refresh_json(body).success and sha._refresh_json(body).success
    legacy.refresh_json(body)
    return bid, sha, legacy


BID, SHARING, LEGACY = _clients()


def _world(engine):
    """Everything the entry points below use, on one engine: its key sets and its clients."""
    bid, sha, legacy = _clients(engine)
    assert bid.keys._engine is engine and legacy.keys._engine is engine
    return types.SimpleNamespace(keys=KEYS._on_engine(engine), euid_keys=EUID_KEYS._on_engine(engine), bid=bid,
                                 sharing=sha, legacy=legacy)


WORLDS = {name: _world(_engine.by_name(name)) for name in ENGINES} if _engine.c_engine is not None else {}

VALID = [
    make_token(KEYS, NOW, version=2),
    make_token(KEYS, NOW, version=3),
    make_token(KEYS, NOW, version=4),
    make_token(KEYS, NOW, version=4, privacy_bits=2),  # client-side generated: the domain check
    make_token(KEYS, NOW, version=3, privacy_bits=6),  # CSTG and opted out
    make_token(KEYS, NOW, version=4, uid=RAW_33),
    make_token(KEYS, NOW, version=4, expires=NOW - dt.timedelta(seconds=1)),
    make_token(KEYS, NOW, version=4, generated=NOW + dt.timedelta(hours=2)),
    make_token(EUID_KEYS, NOW, version=4),  # other secrets: NOT_AUTHORIZED / INVALID_PAYLOAD
    SHARING._encrypt_raw_uid_into_token(RAW_33, now=NOW).encrypted_data,  # the engine's own v4 encryption
    U.encrypt_data(b"some data", U.IdentityScope.UID2, key=KEYS.get(165), now=NOW),
]
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


# ---- strategies --------------------------------------------------------------------------------------------
@st.composite
def corrupted(draw):
    """A valid token, then a few edits: truncation, a flipped base64 digit, an inserted or deleted character,
    the other alphabet, padding, whitespace, non-ASCII."""
    tok = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(0, 3))):
        n = len(tok)
        edit = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "url", "std", "pad", "unpad",
                                     "space", "unicode", "prefix"]))
        i = draw(st.integers(0, max(n - 1, 0)))
        if edit == "truncate":
            tok = tok[:i]
        elif edit == "flip" and n:
            c = tok[i]
            v = B64.find(c.replace("-", "+").replace("_", "/"))
            bit = draw(st.integers(0, 5))
            tok = tok[:i] + (B64[(v ^ (1 << bit)) & 63] if v >= 0 else "A") + tok[i + 1:]
        elif edit == "insert":
            tok = tok[:i] + draw(st.sampled_from(B64 + "=-_.!\n\x00")) + tok[i:]
        elif edit == "delete" and n:
            tok = tok[:i] + tok[i + 1:]
        elif edit == "url":
            tok = tok.replace("+", "-").replace("/", "_").rstrip("=")
        elif edit == "std":
            tok = tok.replace("-", "+").replace("_", "/")
        elif edit == "pad":
            tok = tok + "=" * draw(st.integers(1, 3))
        elif edit == "unpad":
            tok = tok.rstrip("=")
        elif edit == "space":
            tok = tok[:i] + " " + tok[i:]
        elif edit == "unicode":
            tok = tok[:i] + draw(st.characters(min_codepoint=0x80)) + tok[i + 1:]
        elif edit == "prefix" and n >= 4:
            tok = draw(st.sampled_from(["A", "B", "E", "F", "Ag", "AH", "AI", "QQ"])) + tok[2:]
    return tok


ascii_text = st.text(st.characters(max_codepoint=0x7F), max_size=300)
base64ish = st.text(B64 + "=-_", max_size=300)
unicode_text = st.text(max_size=80)
surrogates = st.text(st.characters(categories=["Cs"]), min_size=1, max_size=4)

token_str = st.one_of(corrupted(), corrupted(), base64ish, ascii_text, unicode_text, st.sampled_from(VALID))
token_any = st.one_of(
    token_str,
    token_str.map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.binary(max_size=40).map(bytearray),
    st.none(),
    st.integers(),
    st.floats(allow_nan=False),
)
domain_any = st.one_of(st.none(), st.sampled_from(DOMAINS), unicode_text, surrogates, st.binary(max_size=20),
                       st.integers())


# ---- scalar entry points ---------------------------------------------------------------------------------------
def _fields(t):
    """Everything a DecryptedToken holds, and its class (the same on every path)."""
    assert isinstance(t, U.DecryptedToken), type(t)
    return (type(t), t.status, t.uid, t.established, t.site_id, t.site_key_site_id, t.identity_scope,
            t.identity_type, t.advertising_token_version, t.is_client_side_generated, t.expiry)


def _outcome(call, *args):
    try:
        r = call(*args)
    except U.EncryptionError as exc:
        return ("raise", "EncryptionError", str(exc))
    except Exception as exc:  # anything else is a bug; reported by the caller with the input
        return ("unexpected", type(exc).__name__, str(exc))
    if isinstance(r, U.DecryptedToken):
        return ("token",) + _fields(r)
    if isinstance(r, U.DecryptedData):
        return ("data", r.data, r.encrypted_at)
    return ("other", repr(r))


# name -> (call, may raise EncryptionError): the legacy entry points raise as the official SDK does.
SCALAR = {
    "decrypt": (lambda w, t, d: U.decrypt(t, w.keys, NOW), True),
    "decrypt(now=None)": (lambda w, t, d: U.decrypt(t, w.keys), True),
    "decrypt_token/bidstream": (lambda w, t, d: U.decrypt_token(t, w.keys, d, U.ClientType.BIDSTREAM, NOW), False),
    "decrypt_token/sharing": (lambda w, t, d: U.decrypt_token(t, w.keys, d, U.ClientType.SHARING, NOW), False),
    "decrypt_token/legacy": (lambda w, t, d: U.decrypt_token(t, w.keys, d, U.ClientType.LEGACY_WITHOUT_DOMAIN_CHECK,
                                                             NOW),
                             True),
    "decrypt_token/euid-keys": (lambda w, t, d: U.decrypt_token(t, w.euid_keys, d, U.ClientType.BIDSTREAM, NOW), False),
    "decrypt_token/no-keys": (lambda w, t, d: U.decrypt_token(t, None, d, U.ClientType.SHARING, NOW), False),
    "BidstreamClient.decrypt_token_into_raw_uid": (lambda w, t, d: w.bid.decrypt_token_into_raw_uid(t, d), False),
    "BidstreamClient._decrypt_token_into_raw_uid": (lambda w, t, d: w.bid._decrypt_token_into_raw_uid(t, d, NOW),
                                                    False),
    "SharingClient.decrypt_token_into_raw_uid": (lambda w, t, d: w.sharing.decrypt_token_into_raw_uid(t), False),
    "SharingClient._decrypt_token_into_raw_uid": (lambda w, t, d: w.sharing._decrypt_token_into_raw_uid(t, NOW), False),
    "Uid2Client.decrypt": (lambda w, t, d: w.legacy.decrypt(t), True),
    "decrypt_data": (lambda w, t, d: U.decrypt_data(t, w.keys), True),
}


def _run_scalar(token, domain):
    out = {}
    for engine in ENGINES:
        w = WORLDS[engine]
        out[engine] = {name: _outcome(call, w, token, domain) for name, (call, _) in SCALAR.items()}
    for name, (_, may_raise) in SCALAR.items():
        c, py = out["c"][name], out["py"][name]
        assert c == py, f"{name}({token!r}, {domain!r}): C {c} vs Python {py}"
        allowed = ("token", "data", "raise") if may_raise else ("token",)
        assert c[0] in allowed, f"{name}({token!r}, {domain!r}) gave {c}"


@examples(1000)
@given(token=token_any, domain=domain_any)
def test_scalar_entry_points_agree_and_never_raise_unexpectedly(token, domain):
    _run_scalar(token, domain)


@examples(500)
@given(token=corrupted(), domain=st.sampled_from([None] + DOMAINS))
def test_scalar_entry_points_on_corrupted_tokens(token, domain):
    _run_scalar(token, domain)


def test_valid_tokens_decrypt_on_both_engines():
    """The strategies start from tokens that really decrypt (else the corruption tests prove little)."""
    for engine in ENGINES:
        keys = WORLDS[engine].keys
        assert keys._engine.NAME == ("c" if engine == "c" else "python")
        for tok in VALID[:6]:
            r = U.decrypt_token(tok, keys, "example.com", U.ClientType.BIDSTREAM, NOW)
            assert r.status in (U.DecryptionStatus.SUCCESS, U.DecryptionStatus.USER_OPTED_OUT), (tok, r)
        r = U.decrypt_token(VALID[-2], keys, None, U.ClientType.SHARING, NOW)
        assert r.status == U.DecryptionStatus.SUCCESS and r.uid == RAW_33, r
        assert U.decrypt_data(VALID[-1], keys).data == b"some data"


# ---- batch entry points ------------------------------------------------------------------------------------------
def _utf8_ok(s):
    try:
        s.encode("utf-8")
        return True
    except UnicodeEncodeError:  # a lone surrogate: Arrow cannot hold it
        return False


def _inputs(items):
    """The batch input kinds that can hold these items."""
    kinds = {"list": list(items), "object ndarray": np.array(list(items) + [None], dtype=object)[:-1]}
    strs = [x for x in items if isinstance(x, str) and _utf8_ok(x)]
    if strs and len(strs) == len(items) and all("\x00" not in s for s in strs):
        u = kinds["U ndarray"] = np.array(strs, dtype=str)
        kinds["U ndarray big-endian"] = u.astype(u.dtype.newbyteorder(">"))
        kinds["arrow string sliced"] = pa.array(["junk", None] + strs, type=pa.string())[2:]
        kinds["arrow string"] = pa.array(strs, type=pa.string())
        kinds["arrow large_string chunked"] = pa.chunked_array([pa.array(strs[:1], type=pa.large_string()),
                                                                 pa.array(strs[1:], type=pa.large_string())])
    bytes_ = [x for x in items if isinstance(x, bytes)]
    if bytes_ and len(bytes_) == len(items) and all(not b.endswith(b"\x00") for b in bytes_):
        kinds["S ndarray"] = np.array(bytes_, dtype=bytes)
        kinds["arrow binary"] = pa.array(bytes_, type=pa.binary())
    nullable = [x for x in items if x is None or (isinstance(x, str) and _utf8_ok(x))]
    if nullable and len(nullable) == len(items):
        kinds["arrow string with nulls"] = pa.array(nullable, type=pa.string())
    return kinds


def _columns(r):
    return {name: getattr(r, name).tolist() for name in ("status", "uid", "established_ms", "expiry_ms", "site_id",
                                                         "site_key_site_id", "identity_type", "identity_scope",
                                                         "version", "is_client_side_generated")}, r.uids()


BATCH = {
    "decrypt_tokens/bidstream": lambda w, x, d: U.decrypt_tokens(x, w.keys, now=NOW, client="bidstream",
                                                                   domain_names=d),
    "decrypt_tokens/sharing": lambda w, x, d: U.decrypt_tokens(x, w.keys, now=NOW, client="sharing"),
    "decrypt_tokens/legacy": lambda w, x, d: U.decrypt_tokens(x, w.keys, now=NOW, client="legacy", threads=2),
    "decrypt_tokens/no-keys": lambda w, x, d: U.decrypt_tokens(x, None, now=NOW),
    "BidstreamClient.decrypt_tokens_into_raw_uids": lambda w, x, d: w.bid.decrypt_tokens_into_raw_uids(x, d, now=NOW),
    "SharingClient.decrypt_tokens_into_raw_uids": lambda w, x, d: w.sharing.decrypt_tokens_into_raw_uids(x, now=NOW),
}
# (the scalar legacy path raises where the batch gives a status: not compared row by row)
CLIENT_OF = {"decrypt_tokens/bidstream": U.ClientType.BIDSTREAM, "decrypt_tokens/sharing": U.ClientType.SHARING}

batch_item = st.one_of(token_str, token_str, token_str.map(lambda s: s.encode("utf-8", "surrogatepass")),
                       st.binary(max_size=60), st.none(), st.integers(), st.floats(allow_nan=False),
                       st.binary(max_size=20).map(bytearray))


@st.composite
def batch_case(draw):
    kind = draw(st.sampled_from(["mixed", "str", "bytes", "str or None"]))
    # (surrogatepass: a corrupted token may carry a lone surrogate, which plain str.encode refuses)
    elem = {"mixed": batch_item, "str": token_str,
            "bytes": st.binary(max_size=300) | token_str.map(lambda s: s.encode("utf-8", "surrogatepass")),
            "str or None": st.none() | token_str}[kind]
    items = draw(st.lists(elem, min_size=1, max_size=12))
    dom = draw(st.sampled_from(["none", "one", "per-row"]))
    if dom == "none":
        domains = None
    elif dom == "one":
        domains = draw(st.sampled_from(DOMAINS))
    else:
        domains = draw(st.lists(st.one_of(st.none(), st.sampled_from(DOMAINS), unicode_text, st.binary(max_size=10)),
                                min_size=len(items), max_size=len(items)))
    return items, domains


def _scalar_domain(domains, i):
    if domains is None or isinstance(domains, str):
        return domains
    d = domains[i]
    return d.decode("utf-8", "replace") if isinstance(d, (bytes, bytearray)) else d


@examples(300)
@given(case=batch_case())
def test_batch_entry_points_agree_and_never_raise_per_item(case):
    items, domains = case
    kinds = _inputs(items)
    results = {}
    for engine in ENGINES:
        w = WORLDS[engine]
        for kind, x in kinds.items():
            for name, call in BATCH.items():
                try:
                    r = call(w, x, domains)
                except Exception as exc:  # per-item problems must be statuses
                    pytest.fail(f"{engine}: {name} over {kind} {items!r} (domains {domains!r}) raised {exc!r}")
                assert len(r) == len(items)
                results[engine, kind, name] = _columns(r)
                if engine == "c" and name in CLIENT_OF and kind == "list":
                    # a row is what the scalar API answers for the same ASCII str token (a non-ASCII
                    # item is INVALID_PAYLOAD in a batch by design, _engine_py._as_token)
                    client = CLIENT_OF[name]
                    for i, tok in enumerate(items):
                        if isinstance(tok, str) and tok.isascii():
                            d = _scalar_domain(domains, i) if client == U.ClientType.BIDSTREAM else None
                            want = U.decrypt_token(tok, w.keys, d, client, NOW)
                            assert _fields(r[i]) == _fields(want), (name, i, tok, d)
    for (engine, kind, name), got in results.items():
        if engine == "c":
            assert got == results["py", kind, name], f"{name} over {kind}: C and Python differ for {items!r}"
    # every input kind of the same items gives the same answer (per engine)
    for engine in ENGINES:
        for name in BATCH:
            first = results[engine, "list", name]
            for kind in kinds:
                assert results[engine, kind, name] == first, f"{engine}: {name} over {kind} != over a list"


def test_batch_over_two_threads_matches_one():
    """Enough rows for the C engine to split them (> 512 per thread), mixed good and bad."""
    items = [VALID[i % len(VALID)] if i % 3 else f"garbage {i}" for i in range(1100)]
    for engine in ENGINES:
        keys = WORLDS[engine].keys
        one = _columns(U.decrypt_tokens(items, keys, now=NOW, threads=1, domain_names="example.com"))
        two = _columns(U.decrypt_tokens(items, keys, now=NOW, threads=2, domain_names="example.com"))
        assert one == two
        if engine == "c":
            c_result = one
    assert c_result == one  # the Python engine's (last iteration)
