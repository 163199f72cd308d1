"""The DuckDB UDF against ``decrypt_tokens`` on the same column, measured side by side.

    python benchmarks/bench_duckdb.py [--size 200000] [--reps 5] [--threads N ...] [--legacy-32]

The production mix of ``uid2fast._bench`` (v4 tokens with 33-byte raw UIDs from 16 sites, a domain name on
every row; ``--legacy-32`` for 32-byte raw UIDs), repeated to ``size`` rows, in a DuckDB table. Before any
timing, the SQL result (``uid2_decrypt(token, domain)`` fetched as Arrow) must equal
``decrypt_tokens(..., domain_names=...).to_arrow()`` row for row. Then, alternating so that every variant sees
the same machine load, the fastest of ``reps`` runs of:

- ``decrypt_tokens``: ``uid2fast.decrypt_tokens(column, keys, domain_names=domains)`` on the columns as Arrow
  arrays (all cores);
- ``+ to_arrow``: the same plus ``.to_arrow()`` (the columns the UDF hands back);
- ``SQL``: ``SELECT count(d.uid), max(d.expiry) FROM (SELECT uid2_decrypt(token, domain) AS d FROM bids)``,
  the UDF over the same table (DuckDB vectors of 2,048 rows, one Python call each), for each ``threads=`` of
  ``register`` given, and the same without the domain;
- ``DuckDB handoff``: a UDF of the same signature that does no work (it returns a STRUCT of the same type
  made beforehand): what DuckDB's Arrow UDF interface costs per row by itself (moving the VARCHAR vectors
  out to Arrow and the STRUCT back), which uid2fast cannot change.

Each figure is given as wall time and as the process's CPU time per row: on a loaded machine the CPU time
moves much less. The ratio is each variant over ``decrypt_tokens`` (the target is at most 1.5).
"""
import argparse
import json
import os
import sys
import time

import duckdb
import pyarrow as pa

import uid2fast
import uid2fast.duckdb
from uid2fast import _bench
from uid2fast.bidstream_client import BidstreamClient

QUERY = "SELECT count(d.uid), max(d.expiry) FROM (SELECT {fn}(token{dom}) AS d FROM bids)"


def _check(con, column, domains, keys) -> None:
    rel = con.sql("SELECT uid2_decrypt(token, domain) AS d FROM bids ORDER BY id")
    got = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()  # duckdb 2 renamed it
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


def _handoff_udf(con, column, domains, keys) -> None:
    """``__handoff(token, domain)``: the UDF interface with no work in it (a STRUCT of uid2_decrypt's type,
    made beforehand, sliced to the vector's length)."""
    res = uid2fast.decrypt_tokens(column.slice(0, 2048), keys, domain_names=domains.slice(0, 2048))
    table = res.to_arrow()
    made = pa.StructArray.from_arrays([c.combine_chunks() for c in table.columns], names=table.column_names)
    struct = uid2fast.duckdb._struct_type(duckdb, table)

    def handoff(tokens, doms):
        n = len(tokens)
        return made.slice(0, n) if n <= len(made) else pa.concat_arrays([made] * (n // len(made) + 1)).slice(0, n)

    con.create_function("__handoff", handoff, ["VARCHAR", "VARCHAR"], struct, type="arrow",
                        null_handling="special", side_effects=False)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[0, 1],
                    help="threads= of register() to time (0 means None: all cores per call)")
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
        con.register("bids_arrow", pa.table({"id": pa.array(range(len(column)), pa.int64()), "token": column,
                                             "domain": domains}))
        con.execute("CREATE TABLE bids AS SELECT * FROM bids_arrow")
        uid2fast.duckdb.register(con, keys, threads=t or None)
        _check(con, column, domains, keys)
        cons[t] = con
    first = cons[args.threads[0]]
    _handoff_udf(first, column, domains, keys)

    variants = {
        "decrypt_tokens": lambda: uid2fast.decrypt_tokens(column, keys, domain_names=domains),
        "+ to_arrow": lambda: uid2fast.decrypt_tokens(column, keys, domain_names=domains).to_arrow(),
    }
    for t, con in cons.items():
        label = t or "None"
        q = QUERY.format(fn="uid2_decrypt", dom=", domain")
        variants[f"SQL, threads={label}"] = lambda c=con, q=q: c.execute(q).fetchall()
        q = QUERY.format(fn="uid2_decrypt", dom="")
        variants[f"SQL no domain, threads={label}"] = lambda c=con, q=q: c.execute(q).fetchall()
    q = QUERY.format(fn="__handoff", dom=", domain")
    variants["DuckDB handoff (no work)"] = lambda: first.execute(q).fetchall()
    wall = {k: float("inf") for k in variants}
    cpu = {k: float("inf") for k in variants}
    for _ in range(max(1, args.reps)):  # interleaved: every variant sees the same load
        for name, fn in variants.items():
            w, c = _once(fn)
            wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)

    n = len(column)
    print(f"uid2fast {uid2fast.__version__} ({uid2fast.backend}); duckdb {duckdb.__version__}; "
          f"{os.cpu_count()} cores; {n:,} v4 tokens, {'32' if args.legacy_32 else '33'}-byte raw UIDs, "
          f"16 sites, a domain per row; best of {args.reps}")
    print(f"{'variant':<30}{'wall ns/row':>12}{'ratio':>8}{'CPU ns/row':>12}{'ratio':>8}")
    for name in variants:
        print(f"{name:<30}{wall[name] / n * 1e9:>12.1f}{wall[name] / wall['decrypt_tokens']:>7.2f}x"
              f"{cpu[name] / n * 1e9:>12.1f}{cpu[name] / cpu['decrypt_tokens']:>7.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
