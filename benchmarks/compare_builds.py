"""Side-by-side decrypt speed of two builds of uid2fast (this tree and a git ref, `main` by default).

The method: the other ref is checked out into a temporary git worktree and its C engine built in place
there; both builds then run the same worker (one subprocess per build) over the same inputs, made once by this
tree and handed to both as a file: a key set (16 publisher sites) and v4 tokens of 32-byte raw UIDs from
those sites in random order, a shape every build's fast paths take (33-byte raw UIDs are newer than some
refs one may compare with). The rounds alternate A, B, A, B ... so both see the same stretch of a shared
machine's load. Each round reports, per build, the best of ``--reps`` timings of

* scalar: ``BidstreamClient.decrypt_token_into_raw_uid`` over ``--scalar`` tokens, ns per token;
* batch: ``uid2fast.decrypt_tokens(tokens, keys, threads=1)`` over ``--tokens`` tokens, ns per token;

and the summary gives each build's median and best over the rounds and the ratio (this tree / the other;
below 1 is faster). Only ratios from one run mean anything on a loaded machine, and a heavily loaded one
makes even those noisy: take more rounds.

    python benchmarks/compare_builds.py [--base main] [--rounds 7] [--tokens 20000] [--scalar 2000]
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

WORKER = r"""
import base64, json, sys, time
import uid2fast
data = json.loads(open(sys.argv[1]).read())
n_scalar, reps = map(int, sys.argv[2:4])
assert uid2fast.backend == "c", uid2fast.backend
client = uid2fast.BidstreamClient("http://127.0.0.1:1", "cmp", base64.b64encode(bytes(32)).decode())
client._refresh_json(data["refresh"])
tokens = data["tokens"]
keys = client.keys
sample = tokens[:n_scalar]
assert [client.decrypt_token_into_raw_uid(t).uid for t in sample] == data["uids"][:n_scalar]
print(json.dumps({"features": uid2fast.backend_features}), flush=True)
for line in sys.stdin:  # one round per line from the driver
    best_s = best_b = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        for t in sample:
            client.decrypt_token_into_raw_uid(t)
        best_s = min(best_s, (time.perf_counter_ns() - t0) / len(sample))
        t0 = time.perf_counter_ns()
        out = uid2fast.decrypt_tokens(tokens, keys, threads=1)
        best_b = min(best_b, (time.perf_counter_ns() - t0) / len(tokens))
    assert len(out) == len(tokens)
    print(json.dumps({"scalar": best_s, "batch": best_b}), flush=True)
"""


def _inputs(path: pathlib.Path, n: int) -> None:
    """The key set and tokens both builds decrypt, written to ``path`` by this tree's benchmark corpus."""
    sys.path.insert(0, str(ROOT / "src"))
    from uid2fast import _bench

    body = _bench._keys_body()
    tokens, uids, _ = _bench.corpus(body, 4, n, raw_uid_bytes=32, cstg=False)
    path.write_text(json.dumps({"refresh": json.dumps({"body": body, "status": "success"}),
                                "tokens": tokens, "uids": uids}))


def _start(src: pathlib.Path, data: pathlib.Path, args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(src), UID2FAST_REQUIRE_EXTENSIONS="1")
    p = subprocess.Popen([sys.executable, "-c", WORKER, str(data), str(args.scalar), str(args.reps)],
                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(src.parent))
    p.features = json.loads(p.stdout.readline())["features"]
    return p


def _round(p: subprocess.Popen) -> dict:
    p.stdin.write("go\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="main", help="the git ref to compare with (default: main)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=20_000)
    ap.add_argument("--scalar", type=int, default=2_000)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        other = pathlib.Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(other), args.base], check=True,
                       capture_output=True)
        try:
            for tree in (ROOT, other):
                subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tree, check=True,
                               env=dict(os.environ, UID2FAST_REQUIRE_EXTENSIONS="1"), capture_output=True)
            data = pathlib.Path(tmp) / "inputs.json"
            _inputs(data, args.tokens)
            procs = {"this tree": _start(ROOT / "src", data, args), args.base: _start(other / "src", data, args)}
            for name, p in procs.items():
                print(f"{name}: {p.features}")
            runs = {name: [] for name in procs}
            for r in range(args.rounds):
                order = list(procs) if r % 2 == 0 else list(reversed(procs))
                for name in order:
                    runs[name].append(_round(procs[name]))
                print(f"round {r + 1}: " + "; ".join(
                    f"{n} scalar {runs[n][-1]['scalar']:.0f} ns, batch {runs[n][-1]['batch']:.0f} ns" for n in procs),
                    flush=True)
            for p in procs.values():
                p.stdin.close()
                p.wait(timeout=60)
            for label, agg in (("median", statistics.median), ("best", min)):
                val = {n: {k: agg(x[k] for x in runs[n]) for k in ("scalar", "batch")} for n in procs}
                print(f"\n{label} over {args.rounds} rounds (ns per token, one thread):")
                for k in ("scalar", "batch"):
                    a, b = val["this tree"][k], val[args.base][k]
                    print(f"  {k:<7} this tree {a:8.1f}   {args.base} {b:8.1f}   ratio {a / b:.3f}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=False,
                           capture_output=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
