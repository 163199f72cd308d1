"""What the status counters cost a scalar decrypt, measured side by side with counting left out.

    python benchmarks/bench_metrics.py [--calls 200000] [--reps 7] [--threads 1 4] [--engine c]

``counted`` is ``BidstreamClient.decrypt_token_into_raw_uid`` as shipped; ``uncounted`` is the same method
body without its ``self._decrypts.add_status(...)`` line, bound to the same client, so the two differ only by
the count. Before any timing both must give the same result and the client's SUCCESS count must equal the
calls made. Then each of ``reps`` rounds times ``calls`` calls of each on every thread count given (the
threads share one client and so one counter, the contended case), the two alternating (each first in half
the rounds) so that both see the same machine load; the fastest round of each is kept. The overhead is the
difference per call.
"""
import argparse
import threading
import time
import types

import uid2fast
from uid2fast import _codes, _engine
from uid2fast.encryption import _decrypt_result
from uid2fast.testing import LocalOperator


def _uncounted(self, token, domain_name=None):
    # BidstreamClient.decrypt_token_into_raw_uid without the count
    keys = self._keys
    if keys is not None:
        table = keys._table
        if table is not None:
            return keys._engine.decrypt_result(table, token, _codes.CLIENT_BIDSTREAM, domain_name)
    return _decrypt_result(keys, token, _codes.CLIENT_BIDSTREAM, domain_name, None)


def _round(fn, token, calls: int, threads: int) -> float:
    """Seconds for ``calls`` calls on each of ``threads`` threads (wall time of the slowest)."""
    start = threading.Barrier(threads + 1)

    def work():
        start.wait()
        for _ in range(calls):
            fn(token, None)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    t0 = time.perf_counter()
    for w in workers:
        w.join()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=200_000, help="calls per thread per round")
    ap.add_argument("--reps", type=int, default=7, help="rounds (the fastest is kept)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--engine", choices=["c", "py"], default="c" if _engine.c_engine is not None else "py")
    args = ap.parse_args(argv)

    with LocalOperator() as op:
        client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"), engine=args.engine)
        assert client.refresh().success
        token = op.issue_token(email="bench@example.com")
    counted = client.decrypt_token_into_raw_uid
    uncounted = types.MethodType(_uncounted, client)
    assert counted(token, None) == uncounted(token, None) and counted(token, None).success
    before = client.metrics().decrypt["SUCCESS"]
    _round(counted, token, 1000, 2)
    assert client.metrics().decrypt["SUCCESS"] == before + 2000, "the counter lost counts"

    print(f"engine={args.engine} calls/thread/round={args.calls} rounds={args.reps}")
    print(f"{'threads':>7}  {'uncounted ns/call':>17}  {'counted ns/call':>15}  {'overhead ns':>11}")
    for threads in args.threads:
        best = {"counted": float("inf"), "uncounted": float("inf")}
        pair = [("uncounted", uncounted), ("counted", counted)]
        for rep in range(args.reps):
            for name, fn in (pair if rep % 2 == 0 else pair[::-1]):  # each goes first in half the rounds
                best[name] = min(best[name], _round(fn, token, args.calls, threads))
        per = {k: v / (args.calls * threads) * 1e9 for k, v in best.items()}
        print(f"{threads:>7}  {per['uncounted']:>17.1f}  {per['counted']:>15.1f}  "
              f"{per['counted'] - per['uncounted']:>11.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
