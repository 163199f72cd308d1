"""The DuckDB UDF against ``decrypt_tokens`` on the same column, measured side by side.

    python benchmarks/bench_duckdb.py [--size 200000] [--reps 7] [--threads N ...] [--duckdb-threads N] [--fields]
                                     [--legacy-32]

The production mix of ``uid2fast._bench`` (v4 tokens with 33-byte raw UIDs from 16 sites, a domain name on
every row; ``--legacy-32`` for 32-byte raw UIDs), repeated to ``size`` rows, in a DuckDB table. Before any
timing, the SQL result (``uid2_decrypt(token, domain)`` fetched as Arrow) must equal
``decrypt_tokens(..., domain_names=...).to_arrow()`` row for row. Then ``reps`` rounds, each running every
variant once in turn (so that all see the same machine load), of:

- ``decrypt_tokens``: ``uid2fast.decrypt_tokens(column, keys, domain_names=domains)`` on the columns as Arrow
  arrays already in memory (all cores): the reference;
- ``+ to_arrow``: the same plus ``.to_arrow()`` (the columns the UDF hands back);
- ``DuckDB -> Arrow + decrypt_tokens``: the route without SQL for a column that lives in DuckDB: the same
  table's two columns fetched as Arrow (``con.sql(...).to_arrow_table()``), then ``decrypt_tokens``;
- ``SQL``: ``SELECT count(d.uid), max(d.expiry) FROM (SELECT uid2_decrypt(token, domain) AS d FROM bids)``,
  the UDF over the same table (DuckDB vectors of 2,048 rows, one Python call each), for each ``threads=`` of
  ``register`` given, and the same without the domain;
- ``Parquet -> Arrow + decrypt_tokens`` and ``SQL over Parquet``: the same rows written to a Parquet file,
  read with ``pyarrow.parquet.read_table`` then decrypted, against the first ``SQL`` query over the file;
- three UDFs that do no work, to split what DuckDB's Arrow UDF interface costs by itself (which uid2fast
  cannot change): ``handoff: arguments`` takes ``(token, domain)`` and returns a prepared BIGINT column (the
  two VARCHAR vectors read and moved out to Arrow); ``handoff: result`` takes the BIGINT ``id`` and returns a
  prepared STRUCT of ``uid2_decrypt``'s type (the STRUCT moved back in); ``handoff: both`` takes
  ``(token, domain)`` and returns the STRUCT, the whole interface with no decrypt in it; ``decrypt, prepared
  result`` runs ``decrypt_tokens`` on its vector as ``uid2_decrypt`` does but returns that prepared STRUCT:
  the most that a faster packing of the result could save;
- with ``--fields``, one such UDF per STRUCT field, ``id`` in and that field's column out, and one returning
  BIGINT: what each result field costs beside the fixed cost of a call.

Each figure is wall time per row, the minimum and the median over the rounds; the ratio to ``decrypt_tokens``
as the two minimums' ratio (each at its least disturbed) and as the median of the ratios taken within each
round; and the process's CPU time per row (minimum), which a loaded machine moves much less. The target for
``SQL`` is a ratio of at most 1.5. ``docs/design.md`` (DuckDB) explains what the handoff rows show.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import uid2fast
import uid2fast.duckdb
from uid2fast import _bench
from uid2fast.bidstream_client import BidstreamClient

QUERY = "SELECT count(d.uid), max(d.expiry) FROM (SELECT {fn}(token{dom}) AS d FROM bids)"
STRUCT_FROM_ID = "SELECT count(d.uid), max(d.expiry) FROM (SELECT {fn}(id) AS d FROM bids)"


def _arrow(rel):
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()  # duckdb 2 renamed it


def _check(con, column, domains, keys) -> None:
    got = _arrow(con.sql("SELECT uid2_decrypt(token, domain) AS d FROM bids ORDER BY id"))
    got = got.column("d").combine_chunks().flatten()
    want = uid2fast.decrypt_tokens(column, keys, domain_names=domains).to_arrow()
    for name, col in zip(want.column_names, got):
        w = want.column(name).combine_chunks()
        if not col.cast(w.type).equals(w):
            raise AssertionError(f"column {name}: the SQL result differs from decrypt_tokens")
    if want.column("status").to_pylist().count("SUCCESS") != len(column):
        raise AssertionError("not every benchmark token decrypted")


def _once(fn):
    """(wall seconds, process CPU seconds) of one call."""
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _prepared(made):
    """A UDF body returning ``made`` (an Arrow array prepared beforehand) cut or repeated to the vector's length."""
    def column(n):
        if n <= len(made):
            return made.slice(0, n)
        return pa.concat_arrays([made] * (n // len(made) + 1)).slice(0, n)

    def one(a):
        return column(len(a))

    def two(a, b):
        return column(len(a))

    return one, two


def _noop_udfs(con, column, domains, keys, fields):
    """Register the UDFs that do no work (see the module docstring); returns {row name: query}."""
    res = uid2fast.decrypt_tokens(column.slice(0, 2048), keys, domain_names=domains.slice(0, 2048))
    table = res.to_arrow()
    struct = pa.StructArray.from_arrays([c.combine_chunks() for c in table.columns], names=table.column_names)
    struct_type = uid2fast.duckdb._struct_type(duckdb, table)
    ints = pa.array(np.arange(2048, dtype=np.int64))
    opts = {"type": "arrow", "null_handling": "special", "side_effects": False}
    con.create_function("__args", _prepared(ints)[1], ["VARCHAR", "VARCHAR"], "BIGINT", **opts)
    con.create_function("__result", _prepared(struct)[0], ["BIGINT"], struct_type, **opts)
    con.create_function("__both", _prepared(struct)[1], ["VARCHAR", "VARCHAR"], struct_type, **opts)
    made = _prepared(struct)[0]

    def decrypt_unpacked(tokens, doms):
        tokens = uid2fast.duckdb._text(tokens)
        uid2fast.decrypt_tokens(tokens, keys, domain_names=uid2fast.duckdb._text(doms), threads=1)
        return made(tokens)

    con.create_function("__unpacked", decrypt_unpacked, ["VARCHAR", "VARCHAR"], struct_type, **opts)
    queries = {
        "handoff: arguments": "SELECT count(__args(token, domain)) FROM bids",
        "handoff: result": STRUCT_FROM_ID.format(fn="__result"),
        "handoff: both (no work)": QUERY.format(fn="__both", dom=", domain"),
        "decrypt, prepared result": QUERY.format(fn="__unpacked", dom=", domain"),
    }
    if fields:
        con.create_function("__field_bigint", _prepared(ints)[0], ["BIGINT"], "BIGINT", **opts)
        queries["field: BIGINT (call only)"] = "SELECT count(__field_bigint(id)) FROM bids"
        for name, col in zip(table.column_names, table.columns):
            fn = f"__field_{name}"
            sql_type = uid2fast.duckdb._duckdb_type(col.type)
            con.create_function(fn, _prepared(col.combine_chunks())[0], ["BIGINT"], sql_type, **opts)
            queries[f"field: {name} {sql_type}"] = f"SELECT count({fn}(id)) FROM bids"
    return queries


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[0, 1],
                    help="threads= of register() to time (0 means None: all cores per call)")
    ap.add_argument("--duckdb-threads", type=int, default=None,
                    help="DuckDB's own threads (SET threads); its default is one per core")
    ap.add_argument("--fields", action="store_true", help="also time a no-op UDF per STRUCT field")
    ap.add_argument("--legacy-32", action="store_true", help="32-byte raw UIDs instead of 33-byte ones")
    args = ap.parse_args(argv)

    body = _bench._keys_body()
    client = BidstreamClient("http://127.0.0.1:1", "bench", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    client._refresh_json(json.dumps({"body": body, "status": "success"}))
    keys = client.keys
    distinct = min(20_000, args.size)
    tokens, _, doms = _bench.corpus(body, 4, distinct, raw_uid_bytes=32 if args.legacy_32 else 33)
    reps = args.size // distinct + 1
    column = pa.array((tokens * reps)[:args.size], pa.string())
    domains = pa.array((doms * reps)[:args.size], pa.string())

    cons = {}
    for t in args.threads:
        con = duckdb.connect()
        if args.duckdb_threads:
            con.execute(f"SET threads = {int(args.duckdb_threads)}")
        con.register("bids_arrow", pa.table({"id": pa.array(range(len(column)), pa.int64()), "token": column,
                                             "domain": domains}))
        con.execute("CREATE TABLE bids AS SELECT * FROM bids_arrow")
        con.unregister("bids_arrow")
        uid2fast.duckdb.register(con, keys, threads=t or None)
        _check(con, column, domains, keys)
        cons[t] = con
    first = cons[args.threads[0]]

    def fetch_then_decrypt():
        table = _arrow(first.sql("SELECT token, domain FROM bids"))
        uid2fast.decrypt_tokens(table.column("token"), keys, domain_names=table.column("domain"))

    variants = {
        "decrypt_tokens": lambda: uid2fast.decrypt_tokens(column, keys, domain_names=domains),
        "+ to_arrow": lambda: uid2fast.decrypt_tokens(column, keys, domain_names=domains).to_arrow(),
        "DuckDB -> Arrow + decrypt_tokens": fetch_then_decrypt,
    }
    for t, con in cons.items():
        label = t or "None"
        q = QUERY.format(fn="uid2_decrypt", dom=", domain")
        variants[f"SQL, threads={label}"] = lambda c=con, q=q: c.execute(q).fetchall()
        q = QUERY.format(fn="uid2_decrypt", dom="")
        variants[f"SQL no domain, threads={label}"] = lambda c=con, q=q: c.execute(q).fetchall()
    tmp = tempfile.TemporaryDirectory()
    parquet = os.path.join(tmp.name, "bids.parquet")
    pq.write_table(pa.table({"token": column, "domain": domains}), parquet)

    def parquet_then_decrypt():
        table = pq.read_table(parquet)
        uid2fast.decrypt_tokens(table.column("token"), keys, domain_names=table.column("domain"))

    variants["Parquet -> Arrow + decrypt_tokens"] = parquet_then_decrypt
    q = QUERY.replace("FROM bids", "FROM read_parquet('{path}')").format(
        fn="uid2_decrypt", dom=", domain", path=parquet.replace("'", "''"))
    variants["SQL over Parquet"] = lambda q=q: first.execute(q).fetchall()
    for name, q in _noop_udfs(first, column, domains, keys, args.fields).items():
        variants[name] = lambda q=q: first.execute(q).fetchall()

    wall = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    for _ in range(max(1, args.reps)):  # interleaved: every variant sees the same load
        for name, fn in variants.items():
            w, c = _once(fn)
            wall[name].append(w)
            cpu[name].append(c)

    n = len(column)
    duck_threads = first.execute("SELECT current_setting('threads')").fetchone()[0]
    base = wall["decrypt_tokens"]
    print(f"uid2fast {uid2fast.__version__} ({uid2fast.backend}); duckdb {duckdb.__version__}; "
          f"{os.cpu_count()} cores; {n:,} v4 tokens, {'32' if args.legacy_32 else '33'}-byte raw UIDs, "
          f"16 sites, a domain per row; DuckDB threads {duck_threads}; "
          f"{args.reps} rounds")
    print(f"{'variant':<42}{'wall ns/row':>12}{'median':>8}{'ratio':>8}{'median':>8}{'CPU ns/row':>12}")
    for name in variants:
        ratios = [w / b for w, b in zip(wall[name], base)]
        print(f"{name:<42}{min(wall[name]) / n * 1e9:>12.1f}{statistics.median(wall[name]) / n * 1e9:>8.1f}"
              f"{min(wall[name]) / min(base):>7.2f}x{statistics.median(ratios):>7.2f}x"
              f"{min(cpu[name]) / n * 1e9:>12.1f}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
