"""uid2fast.duckdb: the SQL UDFs give exactly what the batch API gives, row for row, on both engines."""
import base64
import hashlib

import pytest

pa = pytest.importorskip("pyarrow")
duckdb = pytest.importorskip("duckdb")

import pyarrow.parquet as pq  # noqa: E402

import uid2fast  # noqa: E402
import uid2fast.duckdb as uid2duck  # noqa: E402
from uid2fast.testing import LocalOperator  # noqa: E402

SITES = {1001: ["news.example.com"], 1002: ["shop.example.com", "com.example.app"], 1003: ["blog.example.org"]}
ALL_DOMAINS = [d for names in SITES.values() for d in names] + ["unknown.example"]


@pytest.fixture(scope="module")
def op():
    with LocalOperator(site_data=SITES) as operator:
        yield operator


@pytest.fixture(scope="module")
def bid(op):
    client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
    assert client.refresh().success
    return client


@pytest.fixture(scope="module")
def share(op):
    client = uid2fast.SharingClient(op.base_url, *op.credentials("sharer"))
    assert client.refresh().success
    return client


def _raw33(i: int) -> str:
    """A 33-byte raw UID (the newer raw UID length), base64: 44 characters like the 32-byte ones."""
    return base64.b64encode(bytes([0x10 | (i % 4)]) + hashlib.sha256(b"uid%d" % i).digest()).decode()


@pytest.fixture(scope="module")
def bids(op):
    """Production-shaped rows: many sites, v3 and v4, 32- and 33-byte raw UIDs, CSTG, bad tokens, NULLs."""
    sites = list(SITES)
    tokens, domains = [], []
    for i in range(900):
        site = sites[i % len(sites)]
        if i % 5 == 0:
            tok = op.issue_token(raw_uid=_raw33(i), identity_type=i % 2, site_id=site)
        elif i % 7 == 0:
            tok = op.issue_token(phone=f"+1444{i:07d}", version=3, site_id=site)
        else:
            tok = op.issue_token(email=f"duck{i}@example.com", site_id=site, client_side=i % 3 == 0)
        tokens.append(tok)
        domains.append(ALL_DOMAINS[i % len(ALL_DOMAINS)] if i % 11 else None)
    tokens += ["garbage", tokens[1][:-8], "", None, None, tokens[3]]
    domains += ["news.example.com", None, "news.example.com", "news.example.com", None, "Shop.Example.com"]
    return tokens, domains


def _sql_rows(con, query, **params):
    """The struct column of a one-column result as a list of dicts (None for a NULL struct)."""
    return [r[0] for r in con.execute(query, params or None).fetchall()]


def _want(tokens, keys, **kw):
    rows = uid2fast.decrypt_tokens(tokens, keys, **kw).to_arrow().to_pylist()
    return [None if t is None else r for t, r in zip(tokens, rows)]


def _table(con, tokens, domains):
    con.register("bids_view", pa.table({"id": list(range(len(tokens))), "token": pa.array(tokens, pa.string()),
                                        "domain": pa.array(domains, pa.string())}))


@pytest.mark.parametrize("engine", ["c", "py"], indirect=True)
@pytest.mark.parametrize("with_domain", [False, True])
def test_decrypt_matches_batch_api_row_for_row(engine, bid, bids, with_domain):
    tokens, domains = bids
    con = duckdb.connect()
    uid2duck.register(con, bid.keys)
    _table(con, tokens, domains)
    call = "uid2_decrypt(token, domain)" if with_domain else "uid2_decrypt(token)"
    got = _sql_rows(con, f"SELECT {call} FROM bids_view ORDER BY id")
    want = _want(tokens, bid.keys, domain_names=domains if with_domain else None)
    assert got == want
    statuses = {r["status"] for r in got if r is not None}
    assert {"SUCCESS", "INVALID_PAYLOAD"} <= statuses
    if with_domain:
        assert "DOMAIN_NAME_CHECK_FAILED" in statuses
    assert got[-3] is None and got[-2] is None  # NULL token -> NULL struct
    assert sum(1 for r in got if r and r["status"] == "SUCCESS" and len(base64.b64decode(r["uid"])) == 33) > 100


@pytest.mark.parametrize("engine", ["c", "py"], indirect=True)
def test_parquet_file_queried_by_name(engine, bid, bids, tmp_path, monkeypatch):
    tokens, domains = bids
    pq.write_table(pa.table({"id": list(range(len(tokens))), "token": tokens, "domain": domains}),
                   tmp_path / "bids.parquet", row_group_size=300)
    monkeypatch.chdir(tmp_path)
    con = duckdb.connect()
    con.execute("SET threads = 2")
    uid2duck.register(con, bid)  # a client: its current keys at each call
    got = con.execute("SELECT id, d.status, d.uid, d.established, d.site_id, d.identity_type, d.version FROM "
                      "(SELECT id, uid2_decrypt(token, domain) AS d FROM 'bids.parquet') ORDER BY id").fetchall()
    want = _want(tokens, bid.keys, domain_names=domains)
    assert [g[0] for g in got] == list(range(len(tokens)))
    for g, w in zip(got, want):
        if w is None:
            assert g[1:] == (None,) * 6
        else:
            assert g[1:] == (w["status"], w["uid"], w["established"], w["site_id"], w["identity_type"],
                             w["version"])
    counts = dict(con.execute("SELECT uid2_decrypt(token, domain).status AS s, count(*) FROM 'bids.parquet' "
                              "GROUP BY s").fetchall())
    assert counts.get("SUCCESS", 0) == sum(1 for w in want if w and w["status"] == "SUCCESS")


def test_result_struct_type_and_timestamps(bid, op):
    con = duckdb.connect()
    uid2duck.register(con, bid.keys)
    tok = op.issue_token(email="types@example.com")
    typ = con.execute("SELECT typeof(uid2_decrypt(?::VARCHAR))", [tok]).fetchone()[0]
    assert typ == ("STRUCT(status VARCHAR, uid VARCHAR, established TIMESTAMP WITH TIME ZONE, "
                   "expiry TIMESTAMP WITH TIME ZONE, site_id BIGINT, site_key_site_id BIGINT, identity_type TINYINT, "
                   "identity_scope TINYINT, \"version\" SMALLINT, is_client_side_generated BOOLEAN)"), typ
    one = uid2fast.decrypt_tokens([tok], bid.keys)
    epoch_ms = con.execute("SELECT epoch_ms(uid2_decrypt(?::VARCHAR).established)", [tok]).fetchone()[0]
    assert epoch_ms == int(one.established_ms[0])


def test_bad_input_gives_status_never_an_error(bid):
    con = duckdb.connect()
    uid2duck.register(con, bid.keys)
    rows = con.execute("SELECT uid2_decrypt(t).status FROM (VALUES ('x'), (''), ('A4AAAA'), (repeat('Z', 5000)), "
                       "(NULL)) v(t)").fetchall()
    assert [r[0] for r in rows[:4]] == _statuses(["x", "", "A4AAAA", "Z" * 5000], bid.keys)
    assert rows[4][0] is None


def _statuses(tokens, keys):
    return [r["status"] for r in uid2fast.decrypt_tokens(tokens, keys).to_arrow().to_pylist()]


def test_client_keys_follow_refresh(op):
    client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
    con = duckdb.connect()
    uid2duck.register(con, client)  # before the first refresh: no keys yet
    tok = op.issue_token(email="later@example.com")
    assert con.execute("SELECT uid2_decrypt(?::VARCHAR).status", [tok]).fetchone()[0] == "NOT_INITIALIZED"
    assert client.refresh().success
    assert con.execute("SELECT uid2_decrypt(?::VARCHAR).status", [tok]).fetchone()[0] == "SUCCESS"


@pytest.mark.parametrize("engine", ["c", "py"], indirect=True)
@pytest.mark.parametrize("via_client", [False, True])
def test_encrypt_round_trip(engine, op, share, via_client):
    raw = [op.raw_uid(email=f"share{i}@example.com") for i in range(300)] + [_raw33(i) for i in range(50)]
    raw += [None, "not a raw uid"]
    con = duckdb.connect()
    uid2duck.register(con, share if via_client else share.keys, client="sharing")
    con.register("uids", pa.table({"id": list(range(len(raw))), "raw": pa.array(raw, pa.string())}))
    got = con.execute("SELECT id, raw, e.status, e.token, uid2_decrypt(e.token) FROM "
                      "(SELECT id, raw, uid2_encrypt(raw) AS e FROM uids) ORDER BY id").fetchall()
    want_status = [r["status"] for r in uid2fast.encrypt_tokens(raw, share.keys).to_arrow().to_pylist()]
    for (_, r, status, token, dec), ws in zip(got, want_status):
        if r is None:
            assert status is None and token is None and dec is None
            continue
        assert status == ws
        if status == "SUCCESS":
            assert dec["status"] == "SUCCESS" and dec["uid"] == r
            assert uid2fast.decrypt_tokens([token], share.keys, client="sharing").uids() == [r]
    assert want_status.count("SUCCESS") == 350
    # A fresh nonce per call: the same raw UID twice gives two different tokens (never cached or folded).
    a, b = con.execute("SELECT uid2_encrypt(raw).token FROM uids WHERE id = 0 UNION ALL "
                       "SELECT uid2_encrypt(raw).token FROM uids WHERE id = 0").fetchall()
    assert a != b


def test_register_arguments(bid, share):
    con = duckdb.connect()
    with pytest.raises(ValueError, match="client must be"):
        uid2duck.register(con, bid.keys, client="publisher")
    with pytest.raises(TypeError, match="keys must be"):
        uid2duck.register(con, {"keys": []})
    with pytest.raises(ValueError, match="threads"):
        uid2duck.register(con, bid.keys, threads=0)
    uid2duck.register(con, bid.keys)
    with pytest.raises(duckdb.Error):
        con.execute("SELECT uid2_encrypt('x')")  # bidstream registers no encrypt
    uid2duck.register(con, share.keys, client="sharing", threads=1)  # registering again replaces
    assert con.execute("SELECT uid2_encrypt(NULL)").fetchone()[0] is None


def test_missing_duckdb_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_duckdb(name, *args, **kwargs):
        if name == "duckdb":
            raise ImportError("No module named 'duckdb'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_duckdb)
    with pytest.raises(ImportError, match=r"uid2fast\[duckdb\]"):
        uid2duck.register(object(), None)


def test_benchmark_checks_then_times(capsys):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_duckdb.py"
    spec = importlib.util.spec_from_file_location("bench_duckdb", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--size", "3000", "--reps", "2", "--threads", "1", "--duckdb-threads", "1", "--fields"]) == 0
    out = capsys.readouterr().out
    rows = {line[:42].strip(): line[42:].split() for line in out.splitlines()[2:]}
    want = ["decrypt_tokens", "+ to_arrow", "DuckDB -> Arrow + decrypt_tokens", "SQL, threads=1",
            "SQL no domain, threads=1", "Parquet -> Arrow + decrypt_tokens", "SQL over Parquet",
            "handoff: arguments", "handoff: result", "handoff: both (no work)", "decrypt, prepared result",
            "field: BIGINT (call only)", "field: status VARCHAR", "field: uid VARCHAR",
            "field: established TIMESTAMPTZ", "field: version SMALLINT", "field: is_client_side_generated BOOLEAN"]
    assert list(rows)[:11] == want[:11] and set(want) <= set(rows), out
    assert len(rows) == 11 + 1 + 10  # one row per STRUCT field
    for name, cells in rows.items():
        assert len(cells) == 5 and all(float(c.rstrip("x")) > 0 for c in cells), (name, cells)
    assert rows["decrypt_tokens"][2] == "1.00x"
    assert "33-byte raw UIDs, 16 sites, a domain per row; DuckDB threads 1; 2 rounds" in out


@pytest.mark.parametrize("engine", ["c", "py"], indirect=True)
def test_a_clients_metrics_count_the_sql_answers(engine, op, bids):
    tokens, domains = bids
    client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"), engine=engine)
    assert client.refresh().success
    con = duckdb.connect()
    uid2duck.register(con, client)
    _table(con, tokens, domains)
    got = _sql_rows(con, "SELECT uid2_decrypt(token, domain) FROM bids_view ORDER BY id")
    want = {}
    for row in got:
        if row is not None:  # a NULL token gives NULL, not an answer: not counted
            want[row["status"]] = want.get(row["status"], 0) + 1
    assert sum(want.values()) == sum(t is not None for t in tokens) and want["SUCCESS"] > 500
    assert {k: v for k, v in client.metrics().decrypt.items() if v} == want

    sharer = uid2fast.SharingClient(op.base_url, *op.credentials("sharer"), engine=engine)
    assert sharer.refresh().success
    uid2duck.register(con, sharer, client="sharing")
    raw = [op.raw_uid(email="m@example.com"), None, "not a raw uid", _raw33(1)]
    con.register("uids", pa.table({"raw": pa.array(raw, pa.string())}))
    statuses = [r[0] for r in con.execute("SELECT uid2_encrypt(raw).status FROM uids").fetchall()]
    assert statuses.count("SUCCESS") == 2 and statuses[1] is None
    assert {k: v for k, v in sharer.metrics().encrypt.items() if v} == {"SUCCESS": 2, statuses[2]: 1}
