"""The DuckDB UDF against ``decrypt_tokens`` on the same column, measured side by side.

    python benchmarks/bench_duckdb.py [--size 200000] [--reps 5] [--threads N]

v4 tokens from a LocalOperator (20,000 distinct ones, repeated to ``size``) in a DuckDB table. Before any
timing, the SQL result (``uid2_decrypt(token)`` fetched as Arrow) must equal ``decrypt_tokens(...).to_arrow()``
row for row. Then, alternating so that both see the same machine load, the fastest of ``reps`` runs of:

- ``decrypt_tokens``: ``uid2fast.decrypt_tokens(column, keys)`` on the column as one Arrow array;
- ``+ to_arrow``: the same plus ``.to_arrow()`` (the columns the UDF hands back);
- ``SQL``: ``SELECT count(d.uid), max(d.expiry) FROM (SELECT uid2_decrypt(token) AS d FROM bids)``, the UDF
  over the same table (DuckDB vectors of ~2048 rows, one Python call each), for each ``threads=`` of
  ``register`` given.

The ratio is SQL time over ``decrypt_tokens`` time (the target is at most 1.5).
"""
import argparse
import os
import time

import duckdb
import pyarrow as pa

import uid2fast
import uid2fast.duckdb
from uid2fast.testing import LocalOperator

QUERY = "SELECT count(d.uid), max(d.expiry) FROM (SELECT uid2_decrypt(token) AS d FROM bids)"


def _check(con, column, keys) -> None:
    rel = con.sql("SELECT uid2_decrypt(token) AS d FROM bids ORDER BY id")
    got = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()  # duckdb 2 renamed it
    got = got.column("d").combine_chunks().flatten()
    want = uid2fast.decrypt_tokens(column, keys).to_arrow()
    for name, col in zip(want.column_names, got):
        w = want.column(name).combine_chunks()
        if not col.cast(w.type).equals(w):
            raise AssertionError(f"column {name}: the SQL result differs from decrypt_tokens")
    if want.column("status").to_pylist().count("SUCCESS") != len(column):
        raise AssertionError("not every benchmark token decrypted")


def _best(fn, reps):
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=200_000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="+", default=[0, 1],
                    help="threads= of register() to time (0 means None: all cores per call)")
    args = ap.parse_args(argv)

    with LocalOperator() as op:
        client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
        client.refresh()
        base = [op.issue_token(email=f"duck{i}@example.com") for i in range(min(20_000, args.size))]
    keys = client.keys
    tokens = (base * (args.size // len(base) + 1))[:args.size]
    column = pa.array(tokens, pa.string())

    cons = {}
    for t in args.threads:
        con = duckdb.connect()
        con.register("bids_arrow", pa.table({"id": pa.array(range(len(tokens)), pa.int64()), "token": column}))
        con.execute("CREATE TABLE bids AS SELECT * FROM bids_arrow")
        uid2fast.duckdb.register(con, keys, threads=t or None)
        _check(con, column, keys)
        cons[t] = con

    times = {"decrypt_tokens": float("inf"), "+ to_arrow": float("inf")}
    for _ in range(args.reps):  # interleaved: every variant sees the same load
        times["decrypt_tokens"] = min(times["decrypt_tokens"], _best(lambda: uid2fast.decrypt_tokens(column, keys), 1))
        times["+ to_arrow"] = min(times["+ to_arrow"],
                                  _best(lambda: uid2fast.decrypt_tokens(column, keys).to_arrow(), 1))
        for t, con in cons.items():
            key = f"SQL, threads={t or 'None'}"
            times[key] = min(times.get(key, float("inf")), _best(lambda c=con: c.execute(QUERY).fetchall(), 1))

    base_s = times["decrypt_tokens"]
    print(f"uid2fast {uid2fast.__version__} ({uid2fast.backend}); duckdb {duckdb.__version__}; "
          f"{os.cpu_count()} cores; {len(tokens):,} v4 tokens; best of {args.reps}")
    print(f"{'variant':<22}{'ns/token':>10}{'vs decrypt_tokens':>20}")
    for name, s in times.items():
        print(f"{name:<22}{s / len(tokens) * 1e9:>10.1f}{s / base_s:>19.2f}x")


if __name__ == "__main__":
    main()
