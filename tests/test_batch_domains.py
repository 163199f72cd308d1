"""Per-row domain names in the batch (docs/design.md#batch): every container kind gives the engine the same
domains as the twin's reading of it (bytes decoded as UTF-8 with errors="replace", non-str items as no
domain), so the CSTG domain check answers as the scalar call does with that domain."""
import base64
import datetime as dt
import threading

import numpy as np
import pytest

import uid2fast as U

from .helpers import RAW_UID, make_keys, make_token

OK, FAIL = U.DecryptionStatus.SUCCESS, U.DecryptionStatus.DOMAIN_NAME_CHECK_FAILED

pytestmark = pytest.mark.engine_path

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)
# The site's names: ASCII, non-ASCII, one with U+FFFD (what undecodable bytes become) and one with a lone
# surrogate (a str can hold one; its UTF-8 bytes are not valid UTF-8).
NAMES = ["pub.example", "b\u00fccher.example", "\ufffdx.example", "\ud800s.example"]

# (value, the str the twin reads it as, or None when the check must fail for want of a str)
DOMAINS = [
    ("pub.example", "pub.example"),
    ("PUB.Example", "PUB.Example"),
    ("other.example", "other.example"),
    ("b\u00fccher.example", "b\u00fccher.example"),
    ("B\u00fcCHER.example", "B\u00fcCHER.example"),
    ("\ud800s.example", "\ud800s.example"),
    ("", ""),
    ("pub.example\x00", "pub.example\x00"),  # an embedded (here trailing) NUL in a str is part of it
    (b"pub.example", "pub.example"),
    (b"b\xc3\xbccher.example", "b\u00fccher.example"),
    (b"\xffx.example", "\ufffdx.example"),  # replaced: matches the U+FFFD name
    (b"\xed\xa0\x80s.example", "\ufffd\ufffd\ufffds.example"),  # the surrogate's bytes: replaced, no match
    (bytearray(b"PUB.EXAMPLE"), "PUB.EXAMPLE"),
    (None, None),
    (17, None),
    (memoryview(b"pub.example"), None),
]


@pytest.fixture
def keys(engine):
    return make_keys(NOW, engine=engine, site_data=[{"id": 9000, "domain_names": NAMES}])


@pytest.fixture
def csg(keys):
    return make_token(keys, NOW, version=4, privacy_bits=0x2)


def _scalar_status(keys, token, domain):
    c = U.BidstreamClient("http://127.0.0.1:1", "k", "AAAA")
    c._keys = keys
    return c._decrypt_token_into_raw_uid(token, domain, NOW).status


def _statuses(out):
    return [out.status_enum(i) for i in range(len(out))]


def _expect(keys, csg, reads):
    return [_scalar_status(keys, csg, d) for d in reads]


def test_list_of_mixed_items(keys, csg):
    values = [v for v, _ in DOMAINS] * 3
    want = _expect(keys, csg, [r for _, r in DOMAINS] * 3)
    assert set(want) == {OK, FAIL}  # both answers are exercised
    out = U.decrypt_tokens([csg] * len(values), keys, now=NOW, domain_names=values)
    assert _statuses(out) == want
    # a list of ASCII str only (the list fast path), and a tuple
    ascii_rows = ["pub.example", "PUB.EXAMPLE", "x.example", ""] * 5
    want = _expect(keys, csg, ascii_rows)
    assert _statuses(U.decrypt_tokens([csg] * 20, keys, now=NOW, domain_names=ascii_rows)) == want
    assert _statuses(U.decrypt_tokens([csg] * 20, keys, now=NOW, domain_names=tuple(ascii_rows))) == want


def _str_rows():
    return [(v, r) for v, r in DOMAINS if isinstance(v, str) and "\ud800" not in v] + [(None, None)]


def test_arrow_kinds(keys, csg):
    pa = pytest.importorskip("pyarrow")
    strs = _str_rows()
    values, reads = [v for v, _ in strs], [r for _, r in strs]
    want = _expect(keys, csg, reads)
    assert set(want) == {OK, FAIL}
    kinds = [pa.string(), pa.large_string(), pa.string_view()]
    arrays = [pa.array(values, type=t) for t in kinds]
    arrays.append(pa.array(values, type=pa.string()).dictionary_encode())
    arrays.append(pa.chunked_array([values[:3], values[3:]], type=pa.string_view()))
    # a slice (an offset into the buffers) and a chunked array whose chunks are slices
    padded = pa.array(["zz"] + values + ["zz"], type=pa.large_string())
    arrays.append(padded.slice(1, len(values)))
    arrays.append(pa.chunked_array([padded.slice(1, 3), padded.slice(4, len(values) - 3)]))
    for arr in arrays:
        out = U.decrypt_tokens([csg] * len(values), keys, now=NOW, domain_names=arr)
        assert _statuses(out) == want, arr.type

    byts = [(v, r) for v, r in DOMAINS if isinstance(v, (bytes, type(None)))]
    bvalues, breads = [v for v, _ in byts], [r for _, r in byts]
    bwant = _expect(keys, csg, breads)
    assert set(bwant) == {OK, FAIL}
    for t in (pa.binary(), pa.large_binary(), pa.binary_view()):
        out = U.decrypt_tokens([csg] * len(bvalues), keys, now=NOW, domain_names=pa.array(bvalues, type=t))
        assert _statuses(out) == bwant, t
    # another type: read through to_pylist (ints are not str: no domain)
    ints = pa.array(list(range(4)), type=pa.int64())
    assert _statuses(U.decrypt_tokens([csg] * 4, keys, now=NOW, domain_names=ints)) == [FAIL] * 4


def test_long_view_domains(keys):
    """String views over 12 bytes point into a data buffer; shorter ones are inline."""
    pa = pytest.importorskip("pyarrow")
    long_name = "a-rather-long-publisher-name.example"
    k = make_keys(NOW, engine=keys._engine, site_data=[{"id": 9000, "domain_names": [long_name, "ab.example"]}])
    csg = make_token(k, NOW, version=4, privacy_bits=0x2)
    values = [long_name, long_name.upper(), "ab.example", long_name + "x", "ab.exampl"]
    arr = pa.array(values, type=pa.string_view())
    out = U.decrypt_tokens([csg] * 5, k, now=NOW, domain_names=arr)
    assert _statuses(out) == [OK, OK, OK, FAIL, FAIL]


def test_arrow_string_that_is_not_utf8_raises_as_to_pylist(keys, csg):
    pa = pytest.importorskip("pyarrow")
    bad = pa.array([b"pub.example", b"\xffx.example"], type=pa.binary()).view(pa.string())
    with pytest.raises(UnicodeDecodeError):
        U.decrypt_tokens([csg] * 2, keys, now=NOW, domain_names=bad)


def test_arrow_bytes_under_a_null_row_are_not_read_as_a_domain(keys, csg):
    """A chunk whose rows span only ASCII is settled by one scan of the data buffer; a null row's bytes may
    lie in that span and be anything, and then each row is checked alone: the null row is no domain and the
    others are read as they are."""
    pa = pytest.importorskip("pyarrow")
    data = b"pub.example" + b"\xff\xfe" + b"PUB.EXAMPLE" + b"b\xc3\xbccher.example"
    offsets = np.array([0, 11, 13, 24, 39], dtype=np.int32)
    validity = np.packbits(np.array([1, 0, 1, 1, 0, 0, 0, 0], dtype=bool), bitorder="little")
    arr = pa.Array.from_buffers(pa.string(), 4, [pa.py_buffer(validity.tobytes()), pa.py_buffer(offsets.tobytes()),
                                                 pa.py_buffer(data)], null_count=1)
    assert arr.to_pylist() == ["pub.example", None, "PUB.EXAMPLE", "b\u00fccher.example"]
    out = U.decrypt_tokens([csg] * 4, keys, now=NOW, domain_names=arr)
    assert _statuses(out) == _expect(keys, csg, arr.to_pylist()) == [OK, FAIL, OK, OK]


@pytest.mark.parametrize("pos", [0, 7, 8, 31, 32, 33, 63, 64, 69])
def test_arrow_string_not_utf8_anywhere_in_a_long_row_raises(keys, csg, pos):
    """The check reads ASCII 32 and 8 bytes at a time: a bad byte at every offset of those steps is found."""
    pa = pytest.importorskip("pyarrow")
    row = bytearray(b"a" * 70)
    row[pos] = 0xFF
    bad = pa.array([b"pub.example", bytes(row)], type=pa.binary()).view(pa.string())
    with pytest.raises(UnicodeDecodeError):
        U.decrypt_tokens([csg] * 2, keys, now=NOW, domain_names=bad)
    row[pos] = 0x7F  # ASCII: fine
    ok = pa.array([b"pub.example", bytes(row)], type=pa.binary()).view(pa.string())
    assert len(U.decrypt_tokens([csg] * 2, keys, now=NOW, domain_names=ok)) == 2


def test_numpy_kinds(keys, csg):
    strs = [(v, r) for v, r in DOMAINS if isinstance(v, str)]
    # numpy's tolist() drops trailing NULs from each item of a "U" or "S" array
    reads = [r.rstrip("\x00") for _, r in strs]
    want = _expect(keys, csg, reads)
    assert set(want) == {OK, FAIL}
    for arr in (np.array([v for v, _ in strs]), np.array([v for v, _ in strs]).astype(">U40")):
        out = U.decrypt_tokens([csg] * len(strs), keys, now=NOW, domain_names=arr)
        assert _statuses(out) == want, arr.dtype
    # a non-contiguous view
    doubled = np.array([v for v, _ in strs for _ in (0, 1)])
    assert _statuses(U.decrypt_tokens([csg] * len(strs), keys, now=NOW, domain_names=doubled[::2])) == want

    byts = [(v, r) for v, r in DOMAINS if isinstance(v, bytes)]
    barr = np.array([v for v, _ in byts], dtype="S")
    bwant = _expect(keys, csg, [r for _, r in byts])
    assert set(bwant) == {OK, FAIL}
    assert _statuses(U.decrypt_tokens([csg] * len(byts), keys, now=NOW, domain_names=barr)) == bwant

    obj = np.array([v for v, _ in DOMAINS], dtype=object)
    owant = _expect(keys, csg, [r for _, r in DOMAINS])
    assert _statuses(U.decrypt_tokens([csg] * len(DOMAINS), keys, now=NOW, domain_names=obj)) == owant
    # empty strings and zero-width dtypes
    assert _statuses(U.decrypt_tokens([csg] * 2, keys, now=NOW, domain_names=np.array(["", ""]))) == [FAIL] * 2
    assert _statuses(U.decrypt_tokens([csg] * 2, keys, now=NOW,
                            domain_names=np.zeros(2, dtype="S0"))) == [FAIL] * 2


def test_length_mismatch_for_every_kind(keys, csg):
    pa = pytest.importorskip("pyarrow")
    for doms in (["a"], np.array(["a"]), np.array([b"a"]), pa.array(["a"]), pa.chunked_array([["a"]]),
                 pa.array(["a"], type=pa.string_view())):
        with pytest.raises(ValueError, match="domain_names has 1 items for 2 tokens"):
            U.decrypt_tokens([csg, csg], keys, now=NOW, domain_names=doms)


def test_many_rows_on_many_threads(keys, csg):
    """Enough rows for several worker threads: every thread reads its own slice of the domains."""
    pa = pytest.importorskip("pyarrow")
    base = ["pub.example", "nope.example", "B\u00fcCHER.example", None, "\ufffdx.example"]
    values = base * 2000
    want = _expect(keys, csg, base) * 2000
    tokens = [csg] * len(values)
    for doms in (values, pa.array(values), pa.array(values, type=pa.string_view()),
                 np.array([v or "" for v in values])):
        w = want if not isinstance(doms, np.ndarray) else _expect(keys, csg, [v or "" for v in base]) * 2000
        for threads in (1, 4):
            out = U.decrypt_tokens(tokens, keys, now=NOW, domain_names=doms, threads=threads)
            assert _statuses(out) == w, (type(doms), threads)


def _row(r):
    return (r.status, r.uid, r.established, r.site_id, r.site_key_site_id, r.identity_type,
            r.advertising_token_version, r.is_client_side_generated, r.expiry)


def test_list_domains_are_checked_after_the_batch(keys):
    """A list of domain names is read after the batch, and only the rows that need the check are read
    (docs/design.md#threads): whatever else decides a row (opt-out, a lifetime too long, a uid too long for the
    uid column, the version), every row equals the scalar call's answer with that domain, and every field
    equals the batch's with the same domains as an Arrow array (checked inside the engine), on one thread and
    on several."""
    pa = pytest.importorskip("pyarrow")
    long_uid = base64.b64encode(bytes(range(40))).decode()
    far = NOW + dt.timedelta(days=400)  # a lifetime longer than the bidstream allows
    tokens = [make_token(keys, NOW, version=v, uid=u, privacy_bits=p, expires=e)
              for v in (2, 3, 4) for p in (0, 0x2, 0x2 | 0x4) for u in (RAW_UID, long_uid) for e in (None, far)]
    doms = ["pub.example", "nope.example", None, "PUB.Example"]
    pairs = [(t, d) for t in tokens for d in doms]
    c = U.BidstreamClient("http://127.0.0.1:1", "k", "AAAA")
    c._keys = keys
    want = [_row(c._decrypt_token_into_raw_uid(t, d, NOW)) for t, d in pairs]
    assert {w[0] for w in want} >= {OK, FAIL, U.DecryptionStatus.USER_OPTED_OUT,
                                    U.DecryptionStatus.INVALID_TOKEN_LIFETIME}
    reps = 5000 // len(pairs) + 1  # enough rows for two threads
    toks, values = [t for t, _ in pairs] * reps, [d for _, d in pairs] * reps
    for threads in (1, 2):
        out = U.decrypt_tokens(toks, keys, now=NOW, domain_names=values, threads=threads)
        arrow = U.decrypt_tokens(toks, keys, now=NOW, domain_names=pa.array(values), threads=threads)
        got = [_row(r) for r in out]
        assert got == want * reps, threads
        assert got == [_row(r) for r in arrow], threads


def test_list_that_changes_size_meanwhile_is_never_misread(keys, csg):
    """Another thread shortens the list of domain names while the batch runs. The C engine reads the items
    after the batch, so it raises (ValueError when the change came before the batch started) instead of
    pairing rows with other rows' names; the twin copies the list first and answers for that copy. Either
    way, no answer is wrong and nothing is read out of bounds."""
    n = 100_000
    for threads in (1, 2):
        values = ["pub.example"] * n
        started = threading.Event()

        def shrink(values=values, started=started):
            started.wait()  # then runs as soon as the batch lets go of the GIL
            del values[-1000:]

        t = threading.Thread(target=shrink)
        t.start()
        try:
            started.set()
            try:
                out = U.decrypt_tokens([csg] * n, keys, now=NOW, domain_names=values, threads=threads)
            except (ValueError, RuntimeError) as e:
                assert "domain_names" in str(e) and f"for {n} tokens" in str(e)
            else:
                assert len(out) == n and out.status_counts() == {OK: n}
        finally:
            t.join()


def test_list_changed_by_another_thread_meanwhile(keys, csg):
    """A thread replacing the list's items while the batch runs cannot make the engine read freed memory
    (the items are read after the batch, with the GIL held; each row's answer is one of the two values')."""
    values = ["pub.example"] * 20000
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            for i in range(0, len(values), 97):
                values[i] = "x" * 40 if values[i] == "pub.example" else "pub.example"

    t = threading.Thread(target=churn)
    t.start()
    try:
        for _ in range(5):
            out = U.decrypt_tokens([csg] * len(values), keys, now=NOW, domain_names=values)
            assert set(_statuses(out)) <= {OK, FAIL}
    finally:
        stop.set()
        t.join()


@pytest.mark.c_engine
@pytest.mark.no_sanitizer(reason="tracemalloc figures under a sanitizer's allocator say nothing")
def test_c_engine_makes_no_python_object_per_domain():
    """The C engine reads an Arrow string array, a numpy "S" array and a list of ASCII str of domains without
    a Python object per row: the batch's Python allocations stay far below one small str a row (what
    to_pylist / tolist would make)."""
    import tracemalloc

    from uid2fast import _engine

    if _engine.c_engine is None:
        pytest.skip("C engine not built")
    pa = pytest.importorskip("pyarrow")
    keys = make_keys(NOW, engine=_engine.c_engine, site_data=[{"id": 9000, "domain_names": NAMES}])
    csg = make_token(keys, NOW, version=4, privacy_bits=0x2)
    n = 50_000
    tokens = pa.array([csg] * n)
    values = [f"site{i % 16}.example" for i in range(n)]
    for doms in (pa.array(values), pa.array(values, type=pa.large_string()), pa.array(values, type=pa.string_view()),
                 np.array(values, dtype="S"), values):
        U.decrypt_tokens(tokens, keys, now=NOW, domain_names=doms, threads=1)  # warm
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            U.decrypt_tokens(tokens, keys, now=NOW, threads=1)
            without = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            out = U.decrypt_tokens(tokens, keys, now=NOW, domain_names=doms, threads=1)
            with_domains = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert out.status_counts() == {FAIL: n}, type(doms)
        assert with_domains - without < n * 4, (type(doms), with_domains, without)
