"""Thread scaling of the batch decrypt: one thread against all cores, over a list[str] and an Arrow array.

    python benchmarks/bench_scaling.py [--sizes 20000 200000 1000000] [--reps 7]

v4 tokens from a LocalOperator (20,000 distinct ones, repeated to each size); each figure is the fastest of
``reps`` calls of ``uid2fast.decrypt_tokens(..., threads=N)``, in ns per token. Per call there is a fixed cost
(starting the worker threads) and, for a list, a serial pass under the GIL that takes a reference to every
string; both weigh less as batches grow.
"""
import argparse
import os
import time

import pyarrow as pa

import uid2fast
from uid2fast.testing import LocalOperator


def _best_ns(tokens, keys, threads, reps):
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        out = uid2fast.decrypt_tokens(tokens, keys, threads=threads)
        best = min(best, time.perf_counter() - t0)
    assert (out.status == 0).all(), out.status_counts()
    return best / len(tokens) * 1e9


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000, 1_000_000])
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args(argv)

    with LocalOperator() as op:
        client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
        client.refresh()
        base = [op.issue_token(email=f"scale{i}@example.com") for i in range(20_000)]
    keys, cores = client.keys, os.cpu_count() or 1
    print(f"uid2fast {uid2fast.__version__} ({uid2fast.backend}, {uid2fast.backend_features}); {cores} cores")
    print(f"{'input':<8}{'tokens':>11}{'1 thread ns':>14}{f'{cores} threads ns':>16}{'scaling':>10}")
    for n in args.sizes:
        tokens = (base * (n // len(base) + 1))[:n]
        for name, data in (("list", tokens), ("arrow", pa.array(tokens))):
            one = _best_ns(data, keys, 1, args.reps)
            all_ = _best_ns(data, keys, cores, args.reps)
            print(f"{name:<8}{n:>11,}{one:>14.1f}{all_:>16.1f}{one / all_:>9.2f}x")


if __name__ == "__main__":
    main()
