"""Thread scaling of the batch decrypt: one thread against all cores, over a list[str] and an Arrow array, with the
production mix's domain names on every row and without them.

    python benchmarks/bench_scaling.py [--sizes 20000 200000 1000000] [--reps 7] [--legacy-32]

v4 tokens of the production mix (uid2fast._bench.corpus: 33-byte raw UIDs, 16 sites, each row with its site's
domain, one in four client-side generated; 20,000 distinct ones, repeated to each size), checked first; each
figure is the fastest of ``reps`` calls of ``uid2fast.decrypt_tokens(..., threads=N)``, in ns per token, the
1-thread and all-thread calls taken in turns. Per call there is a fixed cost (starting the worker threads)
and, for a list, a serial pass under the GIL that takes a reference to every string; both weigh less as
batches grow.
"""
import argparse
import json
import os
import time

import pyarrow as pa

import uid2fast
from uid2fast import _bench
from uid2fast.bidstream_client import BidstreamClient


def _best_ns(data, keys, domains, threads, reps):
    """{threads: fastest ns per token} of decrypt_tokens on each thread count, taken in turns."""
    best = {t: float("inf") for t in threads}
    for _ in range(reps):  # in turns: every variant sees the same load
        for t in threads:
            t0 = time.perf_counter()
            uid2fast.decrypt_tokens(data, keys, domain_names=domains, threads=t)
            best[t] = min(best[t], time.perf_counter() - t0)
    return {t: v / len(data) * 1e9 for t, v in best.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--legacy-32", action="store_true", help="32-byte raw UIDs instead of 33-byte ones")
    args = ap.parse_args(argv)

    body = _bench._keys_body()
    client = BidstreamClient("http://127.0.0.1:1", "bench", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    client._refresh_json(json.dumps({"body": body, "status": "success"}))
    base, base_uids, base_doms = _bench.corpus(body, 4, 20_000, raw_uid_bytes=32 if args.legacy_32 else 33)
    keys, cores = client.keys, os.cpu_count() or 1
    print(f"uid2fast {uid2fast.__version__} ({uid2fast.backend}, {uid2fast.backend_features}); {cores} cores; "
          + _bench.PRODUCTION_MIX.format(version=4, raw=32 if args.legacy_32 else 33))
    print(f"{'input':<8}{'tokens':>11}{'domains':>9}{'1 thread ns':>14}{f'{cores} threads ns':>16}{'scaling':>10}")
    for n in args.sizes:
        reps = n // len(base) + 1
        tokens, uids, doms = (base * reps)[:n], (base_uids * reps)[:n], (base_doms * reps)[:n]
        for name, data, d in (("list", tokens, doms), ("arrow", pa.array(tokens), pa.array(doms))):
            out = uid2fast.decrypt_tokens(data, keys, domain_names=d, threads=cores)
            if out.uids() != uids:
                raise SystemExit(f"{name}: wrong answers, not timing")
            for with_domains in (True, False):
                r = _best_ns(data, keys, d if with_domains else None, (1, cores), args.reps)
                print(f"{name:<8}{n:>11,}{'yes' if with_domains else 'no':>9}{r[1]:>14.1f}{r[cores]:>16.1f}"
                      f"{r[1] / r[cores]:>9.2f}x")


if __name__ == "__main__":
    main()
