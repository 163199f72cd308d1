"""The batch API (docs/design.md#batch): every input kind, per-item statuses, columns equal to the scalar answers."""
import datetime as dt

import numpy as np
import pytest

import uid2fast as U
from uid2fast import DecryptionStatus as S

from .helpers import RAW_UID, make_keys, make_token

pytestmark = pytest.mark.engine_path

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)


@pytest.fixture
def keys(engine):
    """The test's key set, built on the engine under test (every batch and scalar call below runs there)."""
    return make_keys(NOW, engine=engine)


@pytest.fixture
def mixed(keys):
    good4 = make_token(keys, NOW, version=4)
    good3 = make_token(keys, NOW, version=3)
    good2 = make_token(keys, NOW, version=2)
    phone = make_token(keys, NOW, version=4, uid="BEOGxroPLdcY7LrSiwjY52+X05V0ryELpJmoWAyXiwbZ")
    expired = make_token(keys, NOW, version=4, expires=NOW - dt.timedelta(seconds=1),
                         generated=NOW - dt.timedelta(hours=1))
    return [good4, good3, good2, phone, expired, good4[:-5], "E" + good4[1:], "", "AIA", "????" + good4[4:],
            good4.replace("-", "+").replace("_", "/")]


def _scalar(keys, token, client="bidstream", domain=None):
    if client == "bidstream":
        c = U.BidstreamClient("http://127.0.0.1:1", "k", "AAAA")
        c._keys = keys
        return c._decrypt_token_into_raw_uid(token, domain, NOW)
    c = U.SharingClient("http://127.0.0.1:1", "k", "AAAA")
    c._keys = keys
    return c._decrypt_token_into_raw_uid(token, NOW)


@pytest.mark.parametrize("client", ["bidstream", "sharing"])
def test_batch_equals_scalar(engine, keys, mixed, client):
    out = U.decrypt_tokens(mixed, keys, now=NOW, client=client)
    assert len(out) == len(mixed)
    for i, token in enumerate(mixed):
        assert out[i] == _scalar(keys, token, client), (i, token)
    assert out[0].uid == RAW_UID and out[0].success
    assert out[-1].success  # v4 given in standard base64 is accepted


def test_input_kinds(engine, keys, mixed):
    pa = pytest.importorskip("pyarrow")
    expected = U.decrypt_tokens(mixed, keys, now=NOW)
    kinds = [
        np.array(mixed),  # U
        np.array([t.encode() for t in mixed], dtype="S"),  # S
        np.array(mixed, dtype=object),
        pa.array(mixed, type=pa.string()),
        pa.array(mixed, type=pa.large_string()),
        pa.chunked_array([mixed[:3], mixed[3:]], type=pa.string()),
        tuple(mixed),
    ]
    if hasattr(pa, "string_view"):
        kinds.append(pa.array(mixed, type=pa.string_view()))
    for kind in kinds:
        got = U.decrypt_tokens(kind, keys, now=NOW)
        assert got.status.tolist() == expected.status.tolist(), type(kind)
        assert got.uids() == expected.uids(), type(kind)
        assert got.established_ms.tolist() == expected.established_ms.tolist()


def test_bad_items_are_statuses_not_exceptions(engine, keys, mixed):
    pa = pytest.importorskip("pyarrow")
    good = mixed[0]
    items = [good, None, 42, 3.5, b"\xff\xfe", "t\u00e9st" * 60, object(), good.encode(), ["x"], good]
    out = U.decrypt_tokens(items, keys, now=NOW)
    assert out.status.tolist() == [0, 4, 4, 4, 4, 4, 4, 0, 4, 0]
    arrow = pa.array([good, None, "", good], type=pa.string())
    assert U.decrypt_tokens(arrow, keys, now=NOW).status.tolist() == [0, 4, 4, 0]


def test_keys_missing_or_expired(engine, keys, mixed):
    assert set(U.decrypt_tokens(mixed, None, now=NOW).status.tolist()) == {3}
    later = NOW + dt.timedelta(days=3650)
    assert set(U.decrypt_tokens(mixed, keys, now=later).status.tolist()) == {6}


def test_empty_batch(engine, keys):
    out = U.decrypt_tokens([], keys, now=NOW)
    assert len(out) == 0 and out.status_counts() == {} and list(out) == []
    assert len(U.encrypt_tokens([], keys, now=NOW)) == 0


def test_threads_give_same_answer(engine, keys, mixed):
    tokens = mixed * 800  # 8,800 rows: 4 threads of at least 2,048 rows each (csrc/uid2_batch.c)
    one = U.decrypt_tokens(tokens, keys, now=NOW, threads=1)
    many = U.decrypt_tokens(tokens, keys, now=NOW, threads=4)
    for name in ("status", "uid", "established_ms", "expiry_ms", "site_id", "version", "identity_type"):
        assert np.array_equal(getattr(one, name), getattr(many, name)), name


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_threads_take_chunks_to_the_last_row(engine, keys, mixed, threads):
    """The threads take chunks of rows from one shared cursor (csrc/uid2_batch.c): a row count that is no
    multiple of the chunk still gets every row answered once, as on one thread, in both directions."""
    tokens = (mixed * 1400)[:15_013]
    one = U.decrypt_tokens(tokens, keys, now=NOW, threads=1)
    many = U.decrypt_tokens(tokens, keys, now=NOW, threads=threads)
    for name in ("status", "uid", "established_ms", "expiry_ms", "site_id", "version", "identity_type"):
        assert np.array_equal(getattr(one, name), getattr(many, name)), name
    raw = [u for u in one.uids() if u is not None][:1] * 15_013
    enc = U.encrypt_tokens(raw, keys, now=NOW, threads=threads)
    assert bool(enc.success.all()) and len(set(enc.tokens)) == len(raw)  # each row its own nonce
    assert U.decrypt_tokens(enc.tokens, keys, now=NOW, client="sharing", threads=threads).uids() == raw


@pytest.mark.parametrize("where", ["tokens", "domains"])
@pytest.mark.parametrize("odd", [None, b"bytes", "n\u00e9e", 7], ids=["None", "bytes", "non-ASCII", "int"])
@pytest.mark.parametrize("at", [0, 300, 9_000, -1])
def test_list_rows_read_while_threads_run(engine, keys, mixed, where, odd, at):
    """On several threads a list of str is read while the threads already decrypt the rows read so far
    (uid2_decrypt_run_* in csrc/uid2_batch.c): None rows stay on that path, any other odd item stops the
    threads and the batch is done again the general way. Either way every row is answered as on one thread,
    and every reference taken is given back exactly once (a count off by one would leak or free a token)."""
    import sys

    tokens = (mixed * 1000)[:10_007]
    domains = [("a.com", "b.org", None)[i % 3] for i in range(len(tokens))]
    (tokens if where == "tokens" else domains)[at] = odd
    probe_t, probe_d = tokens[5], domains[4]
    refs = (sys.getrefcount(probe_t), sys.getrefcount(probe_d))
    one = U.decrypt_tokens(list(tokens), keys, now=NOW, domain_names=list(domains), threads=1)
    many = U.decrypt_tokens(tokens, keys, now=NOW, domain_names=domains, threads=2)
    for name in ("status", "uid", "established_ms", "expiry_ms", "site_id", "version", "identity_type"):
        assert np.array_equal(getattr(one, name), getattr(many, name)), name
    del one, many
    assert (sys.getrefcount(probe_t), sys.getrefcount(probe_d)) == refs


def test_list_rows_with_long_uids_on_threads(engine, keys, mixed):
    """Rows whose uid is not 44 ASCII characters are decrypted again after the threads (their references
    still held then): on several threads over a list, in the caller's chunks and the other thread's alike."""
    import sys

    long2 = make_token(keys, NOW, version=2, uid="x" * 61)
    accented = make_token(keys, NOW, version=2, uid="caf\u00e9-" + "y" * 40)
    tokens = (mixed * 1000)[:10_007]
    for at in range(0, len(tokens), 997):
        tokens[at] = long2 if at % 2 else accented
    refs = sys.getrefcount(long2), sys.getrefcount(accented)
    one = U.decrypt_tokens(list(tokens), keys, now=NOW, threads=1)
    many = U.decrypt_tokens(tokens, keys, now=NOW, threads=2)
    assert many.uids() == one.uids()
    assert {one.uids()[at] for at in range(0, len(tokens), 997)} == {"x" * 61, "caf\u00e9-" + "y" * 40}
    assert np.array_equal(one.status, many.status)
    del one, many
    assert (sys.getrefcount(long2), sys.getrefcount(accented)) == refs


def test_argument_errors(keys, mixed):
    with pytest.raises(ValueError, match="client"):
        U.decrypt_tokens(mixed, keys, client="dsp")
    with pytest.raises(TypeError, match="tokens"):
        U.decrypt_tokens("AIAAAA", keys)
    with pytest.raises(TypeError, match="tokens"):
        U.decrypt_tokens(12, keys)
    with pytest.raises(ValueError, match="domain_names"):
        U.decrypt_tokens(mixed, keys, domain_names=["a.com"])
    with pytest.raises(ValueError, match="threads"):
        U.decrypt_tokens(mixed, keys, threads=0)
    with pytest.raises(ValueError, match="timezone"):
        U.decrypt_tokens(mixed, keys, now=dt.datetime(2026, 1, 1))


def test_columns_and_exports(engine, keys, mixed):
    pytest.importorskip("pandas")
    out = U.decrypt_tokens(mixed, keys, now=NOW)
    assert out.status.dtype == np.uint8 and out.uid.dtype == np.dtype("S44")
    assert out.established_ms.dtype == np.int64 and out.expiry_ms.dtype == np.int64
    assert out.uid[0] == RAW_UID.encode()
    assert out.uid[5] == b"" and out.established_ms[5] == U.DecryptedTokens.NONE_I64
    counts = out.status_counts()
    assert sum(counts.values()) == len(mixed) and counts[S.SUCCESS] == 5
    table = out.to_arrow()
    assert table.num_rows == len(mixed)
    assert table.column("uid").to_pylist() == out.uids()
    assert table.column("status").to_pylist()[0] == "SUCCESS"
    df = out.to_pandas()
    assert list(df["uid"][:1]) == [RAW_UID]
    assert out[-1] == out[len(mixed) - 1]
    assert out[1:3] == [out[1], out[2]]
    with pytest.raises(IndexError):
        out[len(mixed)]
    assert "SUCCESS=5" in repr(out)


@pytest.mark.parametrize("client", ["bidstream", "sharing"])
def test_identity_scope_column_equals_the_scalar_scope(engine, keys, mixed, client):
    """The identity_scope column (built on first use) is, row by row, the scalar answer's identity_scope:
    the key set's scope, or -1 where the official SDK reports none (the bare error statuses)."""
    out = U.decrypt_tokens(mixed, keys, now=NOW, client=client)
    col = out.identity_scope
    assert col.dtype == np.int8 and len(col) == len(mixed) and out.identity_scope is col
    scalars = [_scalar(keys, t, client) for t in mixed]
    want = [-1 if r.identity_scope is None else int(r.identity_scope) for r in scalars]
    assert col.tolist() == want
    assert -1 in want and int(keys.get_identity_scope()) in want  # both kinds of row are there
    if pytest.importorskip("pyarrow"):
        assert out.to_arrow().column("identity_scope").to_pylist() == [None if v == -1 else v for v in want]
    assert U.decrypt_tokens(mixed, None, now=NOW).identity_scope.tolist() == [-1] * len(mixed)


def test_domain_names_per_item(engine):
    keys = make_keys(NOW, engine=engine, site_data=[{"id": 9000, "domain_names": ["pub.example"]}])
    csg = make_token(keys, NOW, version=4, privacy_bits=0x2)
    tokens = [csg, csg, csg, csg]
    out = U.decrypt_tokens(tokens, keys, now=NOW, domain_names=["pub.example", "PUB.EXAMPLE", "other.example", None])
    assert out.status.tolist() == [0, 0, 11, 11]
    out = U.decrypt_tokens(tokens, keys, now=NOW, domain_names="pub.example")
    assert out.status.tolist() == [0, 0, 0, 0]
    sharing = U.decrypt_tokens(tokens, keys, now=NOW, client="sharing")
    assert sharing.status.tolist() == [0, 0, 0, 0] and sharing.is_client_side_generated.tolist() == [1] * 4


def test_encrypt_batch_round_trip(engine, keys):
    uids = [RAW_UID, "BEOGxroPLdcY7LrSiwjY52+X05V0ryELpJmoWAyXiwbZ", None, 7, "", RAW_UID]
    out = U.encrypt_tokens(uids, keys, now=NOW)
    assert out.status.tolist() == [0, 0, 5, 5, 5, 0]
    assert out.tokens[2] is None and out[2].status == U.EncryptionStatus.ENCRYPTION_FAILURE
    assert out.tokens[0] != out.tokens[5]  # fresh nonces
    # the C engine writes each token into its str and cuts the str when the token is shorter than the longest
    # the raw UID could give (a padded one): each must be a plain str like one made from its bytes
    for tok in (out.tokens[0], out.tokens[1]):
        again = tok.encode("ascii").decode("ascii")
        assert type(tok) is str and tok == again and hash(tok) == hash(again) and len(tok) == len(again)
        assert tok.isascii() and "\x00" not in tok and {tok: 1}[again] == 1
    assert len(out.tokens[0]) == len(out.tokens[5]) != len(out.tokens[1])  # 32- and 33-byte raw UIDs
    back = U.decrypt_tokens([t for t in out.tokens if t], keys, now=NOW, client="sharing")
    assert back.uids() == [RAW_UID, "BEOGxroPLdcY7LrSiwjY52+X05V0ryELpJmoWAyXiwbZ", RAW_UID]
    assert back.identity_type.tolist() == [0, 1, 0]
    assert U.encrypt_tokens(uids, None, now=NOW).status.tolist() == [3] * len(uids)


def test_to_pandas_keeps_integers_nullable_and_text(engine, keys, mixed):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    out = U.decrypt_tokens(mixed, keys, now=NOW)
    df = out.to_pandas()
    dtypes = {"site_id": "Int64", "site_key_site_id": "Int64", "identity_type": "Int8", "identity_scope": "Int8",
              "version": "Int16", "is_client_side_generated": "boolean", "status": "string", "uid": "string"}
    assert {c: str(df[c].dtype) for c in dtypes} == dtypes
    assert str(df["established"].dtype) == "datetime64[ms, UTC]"
    bare = [i for i in range(len(out)) if out.site_id[i] == U.DecryptedTokens.NONE_I64]
    full = [i for i in range(len(out)) if out.site_id[i] != U.DecryptedTokens.NONE_I64]
    assert bare and full
    for i in bare:
        assert df["site_id"][i] is pd.NA and df["uid"][i] is pd.NA
    for col in ("version", "identity_type"):
        for i in range(len(out)):
            value = getattr(out, col)[i]
            assert df[col][i] is pd.NA if value < 0 else df[col][i] == int(value)
    for i in full:  # exact integers, never floats
        assert df["site_id"][i] == int(out.site_id[i]) and not isinstance(df["site_id"][i], float)
    assert list(df["uid"][:1]) == [RAW_UID] and df["uid"].str.len()[0] == 44
    assert list(df["status"]) == [s.name for s in (out.status_enum(i) for i in range(len(out)))]
    enc = U.encrypt_tokens([RAW_UID, "not a raw uid"], keys, now=NOW).to_pandas()
    assert str(enc["status"].dtype) == "string" and str(enc["token"].dtype) == "string"
    assert enc["token"][1] is pd.NA and enc["status"][0] == "SUCCESS"


def _success_columns(uids, overflow):
    """Result columns built by hand: every row SUCCESS with the given raw UIDs (S44) and long ones, every other
    field absent."""
    from uid2fast.batch import DecryptedTokens

    n = len(uids)
    i64 = np.full(n, DecryptedTokens.NONE_I64, dtype=np.int64)
    small = np.full(n, -1, dtype=np.int8)
    return {"status": np.zeros(n, dtype=np.uint8), "uid": np.array(uids, dtype="S44"), "established_ms": i64,
            "expiry_ms": i64, "site_id": i64, "site_key_site_id": i64, "identity_type": small,
            "version": np.full(n, -1, dtype=np.int16), "is_client_side_generated": small, "uid_overflow": overflow}


@pytest.mark.parametrize("uids, overflow", [
    ([b"A" * 44, b"", b"B" * 44], {}),                        # the usual case: full width or none
    ([b"short", b"", b"C" * 44, b"x"], {}),                   # shorter rows: the general path
    ([b"D" * 44, b"", b"E" * 44], {1: "F" * 60}),             # a row longer than the width
    ([], {}),
    ([b"", b""], {}),
])
def test_to_arrow_uid_column_equals_uids(uids, overflow):
    pa = pytest.importorskip("pyarrow")
    from uid2fast.batch import DecryptedTokens

    cols = _success_columns(uids, overflow)
    res = DecryptedTokens(cols, None)
    col = res.to_arrow().column("uid")
    assert col.type == pa.string()
    assert col.to_pylist() == res.uids()
    assert col.null_count == sum(1 for u in res.uids() if u is None)
    assert res.to_arrow().column("status").to_pylist() == ["SUCCESS"] * len(uids)


def test_to_arrow_equals_the_rows(engine, keys, mixed):
    """to_arrow() builds its columns over the numpy buffers; every value equals the row objects' and the
    arrays are valid Arrow (a null uid's slot may hold bytes, which Arrow allows)."""
    pa = pytest.importorskip("pyarrow")
    for tokens in (mixed, mixed[:1], mixed[5:8], [mixed[0]] * 3, [None, None]):
        out = U.decrypt_tokens(tokens, keys, now=NOW)
        table = out.to_arrow()
        table.validate(full=True)
        assert table.schema.names == list(U.batch.ARROW_COLUMNS)
        ms = pa.timestamp("ms", tz="UTC")
        assert [f.type for f in table.schema] == [pa.string(), pa.string(), ms, ms, pa.int64(), pa.int64(),
                                                  pa.int8(), pa.int8(), pa.int16(), pa.bool_()]
        rows = table.to_pylist()
        sksi = [None if v == out.NONE_I64 else int(v) for v in out.site_key_site_id]
        for i, r in enumerate(out):
            want = {"status": r.status.name, "uid": r.uid, "established": r.established, "expiry": r.expiry,
                    "site_id": r.site_id, "site_key_site_id": sksi[i],
                    "identity_type": None if r.identity_type is None else int(r.identity_type),
                    "identity_scope": None if r.identity_scope is None else int(r.identity_scope),
                    "version": None if r.advertising_token_version is None else int(r.advertising_token_version),
                    "is_client_side_generated": r.is_client_side_generated}
            assert rows[i] == want, (i, rows[i], want)


def _fields(t):
    return (t.status, t.uid, t.established, t.site_id, t.site_key_site_id, t.identity_type, t.identity_scope,
            t.advertising_token_version, t.is_client_side_generated, t.expiry)


def _python_rows(res):
    """The rows as the pure-Python build makes them: make_token over each row's tuple."""
    from uid2fast._results import make_token

    return [make_token(res._row(i), res._scope) for i in range(len(res))]


def test_rows_built_in_c_equal_the_row_tuples(engine, keys, mixed, monkeypatch):
    """Iteration, indexing and slicing build each row in one C call per chunk where the C engine is importable:
    the same objects, field for field and type for type, as make_token over the row's tuple (the pure-Python
    build's way, forced here by hiding the C engine)."""
    from uid2fast import _engine, batch

    res = U.decrypt_tokens(mixed * 300, keys, now=NOW)  # over several iteration chunks
    want = _python_rows(res)
    got = list(res)
    assert [_fields(t) for t in got] == [_fields(t) for t in want]
    assert all(type(a) is type(b) for g, w in zip(got, want) for a, b in zip(_fields(g), _fields(w)))
    assert [_fields(t) for t in res[5:40]] == [_fields(t) for t in want[5:40]]
    assert [_fields(t) for t in res[40:5:-3]] == [_fields(t) for t in want[40:5:-3]]
    assert _fields(res[-1]) == _fields(want[-1]) and _fields(res[7]) == _fields(want[7])
    assert res[3:3] == [] and res[9:2] == []
    monkeypatch.setattr(_engine, "c_engine", None)
    assert [_fields(t) for t in batch.DecryptedTokens.__iter__(res)] == [_fields(t) for t in want]


def test_iterating_rows_it_drops_sets_off_no_collection(engine, keys, mixed):
    """Iteration builds its rows in chunks smaller than the collector's first threshold: a loop that drops each
    row as it goes never makes the collector run (with 1,024-row chunks it ran every chunk and moved the rows
    to older generations, a quarter of the loop's time). A tiny threshold still gives every row."""
    import gc

    from uid2fast import batch

    res = U.decrypt_tokens(mixed * 500, keys, now=NOW)
    want = [(t.status, t.uid, t.established) for t in res[:]]
    starts = []

    def count(phase, info):
        if phase == "start":
            starts.append(info["generation"])

    old = gc.get_threshold()
    gc.collect()
    gc.callbacks.append(count)
    try:
        for t in res:
            t.uid  # noqa: B018
    finally:
        gc.callbacks.remove(count)
    assert starts == []
    assert batch._iter_chunk() == min(batch._ITER_CHUNK, old[0] * 3 // 4) if old[0] > 0 else batch._ITER_CHUNK
    try:
        gc.set_threshold(10, *old[1:])
        assert batch._iter_chunk() == 64
        assert [(t.status, t.uid, t.established) for t in res] == want
        gc.set_threshold(0, *old[1:])
        assert batch._iter_chunk() == batch._ITER_CHUNK
        assert [(t.status, t.uid, t.established) for t in res] == want
    finally:
        gc.set_threshold(*old)


def test_rows_over_many_days_and_sites_equal_make_token():
    """The C rows remember the last day they converted and share the ints of recent site ids: timestamps in
    runs on one day, alternating between days, at day and leap-year edges, and site ids repeated, far apart
    and colliding in the int cache, all give what make_token gives, row by row."""
    from uid2fast._results import make_token
    from uid2fast.batch import DecryptedTokens

    rnd = np.random.default_rng(7)
    n = 4000
    day = 86_400_000
    edges = np.array([0, day - 1, day, 951_782_400_000 - 1, 951_782_400_000, 4_107_542_399_999,
                      (1 << 32) * 1000 - 1], dtype=np.int64)  # 1970, 2000-02-29 00:00, 2100-02-28 23:59
    few_days = 1_780_000_000_000 + day * rnd.integers(0, 3, n) + rnd.integers(0, day, n)
    anywhere = rnd.integers(0, (1 << 32) * 1000, n)
    est = np.where(np.arange(n) // 50 % 2 == 0, few_days, anywhere)
    est[rnd.integers(0, n, 200)] = rnd.choice(edges, 200)
    exp = np.where(rnd.integers(0, 4, n) == 0, anywhere[::-1], few_days[::-1] + day)
    exp = np.minimum(exp, (1 << 32) * 1000 - 1)
    sites = np.where(rnd.integers(0, 3, n) == 0, rnd.integers(0, 1 << 31, n),
                     rnd.choice([1, 257, 513, 9000, 9256, 2 ** 31 - 1], n))
    cols = {"status": np.zeros(n, dtype=np.uint8), "uid": np.array([b"A" * 44] * n, dtype="S44"),
            "established_ms": est.astype(np.int64), "expiry_ms": exp.astype(np.int64),
            "site_id": sites.astype(np.int64), "site_key_site_id": sites[::-1].astype(np.int64),
            "identity_type": np.zeros(n, dtype=np.int8), "version": np.full(n, 128, dtype=np.int16),
            "is_client_side_generated": np.zeros(n, dtype=np.int8), "uid_overflow": {}}
    res = DecryptedTokens(cols, U.IdentityScope.UID2)
    want = [_fields(make_token(res._row(i), U.IdentityScope.UID2)) for i in range(n)]
    for _ in range(2):  # the second pass starts with the memo and the int cache the first left
        got = [_fields(t) for t in res]
        assert got == want
        assert all(type(a) is type(b) for g, w in zip(got, want) for a, b in zip(g, w))
        assert [(hash(g[2]), g[2].tzinfo, g[2].fold, g[9].isoformat()) for g in got[:300]] == \
            [(hash(w[2]), w[2].tzinfo, w[2].fold, w[9].isoformat()) for w in want[:300]]


@pytest.mark.parametrize("scope", [None, U.IdentityScope.UID2, U.IdentityScope.EUID])
def test_rows_of_hand_made_columns(scope):
    """Every field value a column can hold, the sentinels, long raw UIDs (overflow), timestamps on both sides of
    what the C path converts itself (1970..2106) and past datetime's range, unknown status and version codes,
    non-contiguous and other-typed columns: the C rows equal make_token's, or raise what it raises."""
    from uid2fast._results import make_token
    from uid2fast.batch import DecryptedTokens

    none = DecryptedTokens.NONE_I64
    est = [0, 1_700_000_000_123, none, (1 << 32) * 1000 - 1, (1 << 32) * 1000, 253_402_300_799_999, -5, none]
    n = len(est)
    cols = {"status": np.array([0, 0, 3, 0, 0, 0, 13, 200], dtype=np.uint8),
            "uid": np.array([b"A" * 44, b"", b"", b"short", b"B" * 44, b"C" * 44, b"", b"D" * 44], dtype="S44"),
            "established_ms": np.array(est, dtype=np.int64),
            "expiry_ms": np.array(est[::-1], dtype=np.int64),
            "site_id": np.array([1, none, 0, -1, 2 ** 31, 7, none, 5], dtype=np.int64),
            "site_key_site_id": np.array([none, 3, 0, 9, -1, 7, none, 5], dtype=np.int64),
            "identity_type": np.array([0, 1, -1, 2, 0, 1, -1, 0], dtype=np.int8),
            "version": np.array([128, 112, -1, 2, 7, 128, -1, 128], dtype=np.int16),
            "is_client_side_generated": np.array([0, 1, -1, 1, 0, 0, -1, 2], dtype=np.int8),
            "uid_overflow": {4: "E" * 70}}
    res = DecryptedTokens(cols, scope)
    want = []
    for i in range(n):
        try:
            want.append(_fields(make_token(res._row(i), scope)))
        except Exception as exc:  # noqa: BLE001 - the same exception is expected of the C rows
            want.append(type(exc))
    for i in range(n):
        if isinstance(want[i], type):
            with pytest.raises(want[i]):
                res[i]
        else:
            assert _fields(res[i]) == want[i], i
    # other dtypes and strides are converted per chunk, not refused
    cols2 = dict(cols, status=cols["status"].astype(np.int64), site_id=np.repeat(cols["site_id"], 2)[::2])
    res2 = DecryptedTokens(cols2, scope)
    for i in range(n):
        if not isinstance(want[i], type):
            assert _fields(res2[i]) == want[i], i


def _same_arrays(got, want):
    assert len(got) == len(want) == len(U.batch.ARROW_COLUMNS)
    for name, g, w in zip(U.batch.ARROW_COLUMNS, got, want):
        g.validate(full=True)
        assert g.type == w.type and g.null_count == w.null_count and g.equals(w), name


def test_arrow_one_pass_equals_the_numpy_path(engine, keys, mixed):
    """The C engine's one pass over the rows (validity bitmaps, status strings, scope column) gives the same
    Arrow arrays as the numpy path, for results of either engine: every status, absent fields, a batch of
    2,051 rows (bitmaps past whole bytes), no key set (no scope, NOT_INITIALIZED), client-side generated."""
    pytest.importorskip("pyarrow")
    from uid2fast import _engine

    if _engine.c_engine is None:
        pytest.skip("the one pass is the C engine's")
    from uid2fast._codes import PRIVACY_CLIENT_SIDE_GENERATED

    cstg = make_token(keys, NOW, version=4, privacy_bits=PRIVACY_CLIENT_SIDE_GENERATED)
    batches = [(mixed, keys, "bidstream"), (mixed[:1], keys, "bidstream"), (mixed[4:7], keys, "sharing"),
               ((mixed * 187)[:2051], keys, "bidstream"), (mixed + [None, cstg], keys, "bidstream"),
               (mixed, None, "bidstream"), ([cstg] * 9, keys, "legacy")]
    for tokens, k, client in batches:
        out = U.decrypt_tokens(tokens, k, now=NOW, client=client)
        one = out._arrow_arrays_one_pass()
        assert one is not None
        _same_arrays(one, out._arrow_arrays_numpy())
        _same_arrays(out._arrow_arrays(), out._arrow_arrays_numpy())
    assert out.is_client_side_generated.tolist() == [1] * 9
    assert U.decrypt_tokens(mixed, None, now=NOW)._arrow_arrays_one_pass()[7].null_count == len(mixed)


@pytest.mark.parametrize("uids, overflow, applies", [
    ([b"A" * 44, b"", b"B" * 44], {}, True),
    ([b"short", b"", b"C" * 44], {}, False),   # a UID shorter than the width: the numpy path's per-row offsets
    ([b"D" * 44, b""], {1: "F" * 60}, False),  # a UID longer than the width
    ([], {}, False),
])
def test_arrow_one_pass_leaves_the_rest_to_numpy(uids, overflow, applies):
    pytest.importorskip("pyarrow")
    from uid2fast import _engine
    from uid2fast.batch import DecryptedTokens

    if _engine.c_engine is None:
        pytest.skip("the one pass is the C engine's")
    cols = _success_columns(uids, overflow)
    res = DecryptedTokens(cols, 0)
    one = res._arrow_arrays_one_pass()
    assert (one is not None) == applies
    if one is not None:
        _same_arrays(one, res._arrow_arrays_numpy())
    _same_arrays(res._arrow_arrays(), res._arrow_arrays_numpy())
    # columns of other dtypes or strides (a result built by hand): the numpy path, or the pass over a copy
    wide = DecryptedTokens(dict(cols, status=cols["status"].astype(np.int64)), 0)
    assert wide._arrow_arrays_one_pass() is None
    _same_arrays(wide._arrow_arrays(), res._arrow_arrays_numpy())
    strided = DecryptedTokens(dict(cols, site_id=np.repeat(cols["site_id"], 2)[::2]), 0)
    assert (strided._arrow_arrays_one_pass() is not None) == applies
    _same_arrays(strided._arrow_arrays(), res._arrow_arrays_numpy())


def test_arrow_one_pass_checks_its_arguments():
    from uid2fast import _engine
    from uid2fast.batch import _BARE_LUT, _STATUS_BYTES, _STATUS_OFFSETS

    c = _engine.c_engine
    if c is None:
        pytest.skip("the one pass is the C engine's")
    n = 3
    i64, i8 = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int8)
    args = [np.zeros(n, dtype=np.uint8), np.ones((n, 44), dtype=np.uint8), i64, i64, i64, i64, i8,
            np.zeros(n, dtype=np.int16), i8, 0, _BARE_LUT, _STATUS_OFFSETS, _STATUS_BYTES]
    assert c.batch_arrow_parts(*args)[2] is True
    short = list(args)
    short[4] = np.zeros(n - 1, dtype=np.int64)
    with pytest.raises(ValueError, match="length"):
        c.batch_arrow_parts(*short)
    bad = list(args)
    bad[11] = np.zeros(256, dtype=np.int32)
    with pytest.raises(ValueError, match="257"):
        c.batch_arrow_parts(*bad)
    past = list(args)
    past[12] = _STATUS_BYTES[:-1]
    with pytest.raises(ValueError, match="past"):
        c.batch_arrow_parts(*past)
    backwards = list(args)
    backwards[11] = np.arange(257, 0, -1, dtype=np.int32)
    with pytest.raises(ValueError, match="non-decreasing"):
        c.batch_arrow_parts(*backwards)
