"""Kernel microbenchmark: compiles benchmarks/bench_kernels.c with the engine's C files and runs it, then times
the token batch beside it.

    python benchmarks/bench_kernels.py [--runs 101] [--iters 5000] [--tokens 20000] [--rounds 5]
                                       [--engine-seconds 0] [--cc gcc]

Prints ns per AES-256-GCM decrypt/encrypt of 68 and 129 bytes (the site and master payloads of a v4 token)
through the engine's EVP path (pre-keyed context, uid2_aead.c) and the AES-NI kernel (uid2_gcm_ni.c), ns per
base64url decode of a v4 token from tests/vectors/decrypt.json through the exact decoder (uid2_base64.c) and
the fast one (uid2_b64fast.c), and ns per base64 encode of a 32-byte raw UID. Each figure is the median of
`runs` runs of `iters` back-to-back calls, with the fastest run in brackets: on a shared machine the median
moves with the neighbours' load, the minimum much less. The answers are checked before anything is timed.

Then the multi-buffer kernel (uid2_gcm_mb.c: 8 messages with 8 keys per call, each instruction set the CPU
has) against the one-message kernel on the same messages, and the kernel sum of a v4 token (base64url decode
+ GCM 129 + GCM 68, the work every token needs) beside what a whole token costs: in the C engine alone
(uid2_decrypt_many over distinct tokens from 16 sites with a domain on every row, one thread) and through
Python (``uid2fast.decrypt_tokens(tokens, keys, domain_names=domains, threads=1)``, the batch API, on the
production mix of uid2fast._bench with a domain per row, over a list of str and an Arrow array, when uid2fast
is importable with its C engine), with the ratio to the kernel sum and to the engine alone. The C benchmark's
engine batch is not the Python batch's (its own tokens, one domain name for all rows, none client-side
generated), so the Python batches are also set beside the engine alone on their own rows
(``_engine_c.engine_times``: the same tokens and domain names copied into one buffer each, uid2_decrypt_many on
one thread, its answers checked against the batch API's): that ratio is the batch API's own cost.
The engine runs over 32- and 33-byte raw UIDs alternately, and each round runs the C benchmark twice, the
second time with the multi-buffer kernel off (UID2FAST_NO_MULTIBUF=1): the 33-vs-32 and on-vs-off ratios are
side by side. The C runs and the Python batches alternate `rounds` times, so each ratio is taken over the same
stretch of a shared machine's load. With ``--engine-seconds S`` each C run also decrypts back-to-back batches for
S seconds and reports the best and the median batch: on a VM whose vCPU shares a core with a neighbour's, a few
dozen runs may catch none of the moments the core is the engine's alone.
"""
import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SOURCES = ["uid2_aead.c", "uid2_b64fast.c", "uid2_base64.c", "uid2_batch.c", "uid2_gcm_mb.c", "uid2_gcm_ni.c",
           "uid2_table.c", "uid2_kernels.c", "uid2_gcm_arm.c", "uid2_b64_neon.c", "uid2_token.c"]
# the flags setup.py compiles the engine with (minus the warnings that would only make this fail louder)
CFLAGS = ["-O3", "-std=gnu11", "-pthread", "-ffp-contract=off", "-D_GNU_SOURCE"]


def v4_token():
    data = json.loads((ROOT / "tests" / "vectors" / "decrypt.json").read_text())
    for v in data["vectors"]:
        tok = v.get("token")
        if v.get("kind") == "decrypt" and v.get("version") == 4 and isinstance(tok, str) and len(tok) == 218:
            return tok
    return None


def python_batches(n):
    """({input kind: one-call timer}, backend_features) for uid2fast.decrypt_tokens on n distinct v4 tokens of
    the production mix (uid2fast._bench.corpus: 33-byte raw UIDs, 16 sites, each row with its site's domain
    name), one thread (a list of str, and Arrow arrays when pyarrow is importable), each checked first; None if
    uid2fast's C engine is not importable."""
    import time

    sys.path.insert(0, str(ROOT / "src"))
    try:
        import uid2fast
        from uid2fast import _bench
        from uid2fast.bidstream_client import BidstreamClient
    except ImportError:
        return None
    if uid2fast.backend != "c":
        return None
    body = _bench._keys_body()
    client = BidstreamClient("http://127.0.0.1:1", "bench", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    client._refresh_json(json.dumps({"body": body, "status": "success"}))
    tokens, uids, domains = _bench.corpus(body, 4, n)
    inputs = {"str tokens": (tokens, domains)}
    try:
        import pyarrow as pa

        inputs["Arrow array"] = (pa.array(tokens, type=pa.string()), pa.array(domains, type=pa.string()))
    except ImportError:
        pass
    # the engine alone on the same rows, copied into one buffer (no Python objects, no refcounts): what the
    # batch API's own cost is measured against
    from uid2fast import _engine_c, _time
    now = _time.now_us()
    table = client.keys._table
    _, cols = _engine_c.engine_times(table, tokens, domains, now, _engine_c.CLIENT_BIDSTREAM, 3)
    want = uid2fast.decrypt_tokens(tokens, client.keys, domain_names=domains, threads=1)
    if not all((cols[name] == getattr(want, name)).all() for name in ("status", "uid", "site_id", "established_ms")):
        raise SystemExit("the engine alone gave other rows than decrypt_tokens: not timing")
    timers = {"engine, same rows": lambda: _engine_c.engine_times(table, tokens, domains, now,
                                                                  _engine_c.CLIENT_BIDSTREAM, 1)[0][0]}
    for kind, (data, doms) in inputs.items():
        if uid2fast.decrypt_tokens(data, client.keys, domain_names=doms, threads=1).uids() != uids:
            raise SystemExit(f"decrypt_tokens gave wrong uids for {kind}: not timing")
        for _ in range(3):  # warm up (the allocator settles on reusing the result block)
            uid2fast.decrypt_tokens(data, client.keys, domain_names=doms, threads=1)

        def one(data=data, doms=doms):
            t0 = time.perf_counter()
            uid2fast.decrypt_tokens(data, client.keys, domain_names=doms, threads=1)
            return (time.perf_counter() - t0) / n * 1e9

        timers[kind] = one
    return timers, uid2fast.backend_features


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=101, help="timed runs per figure (1..255), median reported")
    ap.add_argument("--iters", type=int, default=5000, help="calls per run")
    ap.add_argument("--tokens", type=int, default=20000, help="tokens in the Python batch")
    ap.add_argument("--rounds", type=int, default=5,
                    help="kernel runs and Python batches alternate this many times (the ratio is taken over "
                         "the same stretch of a shared machine's load)")
    ap.add_argument("--engine-seconds", type=float, default=0.0,
                    help="also run the engine alone on back-to-back batches for this long in each round and "
                         "report the best and median batch (a shared vCPU runs at full speed only at moments)")
    ap.add_argument("--cc", default="gcc")
    args = ap.parse_args(argv)
    rounds = max(1, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        exe = pathlib.Path(tmp) / "bench_kernels"
        cmd = [args.cc, *CFLAGS, f"-I{CSRC}", "-o", str(exe), str(ROOT / "benchmarks" / "bench_kernels.c"),
               *(str(CSRC / s) for s in SOURCES), "-lcrypto", "-lm"]
        subprocess.run(cmd, check=True)
        tok = v4_token()
        print(f"Python {platform.python_version()} | {platform.machine()} | {' '.join(CFLAGS)}", flush=True)
        batches = python_batches(args.tokens)
        timers, features = batches if batches is not None else (None, None)
        kernel_sums, kernel_mins, engine, engine33, engine_off, py = [], [], [], [], [], {}
        long_on, long_off = [], []  # (best, median) of each round's long engine run, multi-buffer on / off
        per_round = max(5, args.runs // rounds)
        for r in range(rounds):
            run = [str(exe), str(args.runs if r == 0 else per_round), str(args.iters), tok or ""]
            if args.engine_seconds > 0:
                run.append(str(args.engine_seconds))
            # the same binary with the multi-buffer kernel off, right after: the engine's A/B in one stretch
            off_env = dict(os.environ, UID2FAST_NO_MULTIBUF="1")
            procs = [subprocess.run(run, capture_output=True, text=True),
                     subprocess.run(run, capture_output=True, text=True, env=off_env)]
            proc = procs[0]
            if r == 0:  # the full table once; later rounds only add samples
                sys.stdout.write(proc.stdout)
                sys.stderr.write(proc.stderr)
            bad = [p for p in procs if p.returncode != 0]
            if bad:
                if r != 0 or bad[0] is not proc:
                    sys.stderr.write(bad[0].stderr)
                return bad[0].returncode
            lines = [[ln for ln in p.stdout.splitlines() if ln.startswith("KERNELS ")] for p in procs]
            if not lines[0] or not lines[1]:
                break
            k = dict(kv.split("=") for kv in lines[0][0].split()[1:])
            k_off = dict(kv.split("=") for kv in lines[1][0].split()[1:])
            kernel_sums.append(float(k["sum"]))
            kernel_mins.append(float(k["summin"]))
            engine.append(float(k["engine"]))
            engine33.append(float(k["engine33"]))
            engine_off.append(float(k_off["engine33"]))
            multibuf = int(k["mb"])
            for p, store in zip(procs, (long_on, long_off)):
                got = [ln for ln in p.stdout.splitlines() if ln.startswith("ENGINE_LONG ")]
                if got:
                    kv = dict(x.split("=") for x in got[0].split()[1:])
                    store.append((float(kv["best"]), float(kv["median"])))
            if timers is not None:
                for kind, one in timers.items():
                    for _ in range(3):  # untimed: the subprocess has just had the caches
                        one()
                    py.setdefault(kind, []).extend(one() for _ in range(max(5, 51 // rounds)))
    if kernel_sums:
        e, e33, eoff = _median(engine), _median(engine33), _median(engine_off)
        print(f"\n{rounds} rounds: engine (C, one thread, 16 sites, one domain name for every row, no token "
              "client-side generated), medians of the rounds:")
        print(f"  32-byte raw UIDs {e:.1f} ns, 33-byte {e33:.1f} ns = {e33 / e:.2f}x")
        if multibuf:
            print(f"  33-byte, multi-buffer GCM on {e33:.1f} ns, off (UID2FAST_NO_MULTIBUF=1) {eoff:.1f} ns "
                  f"= {eoff / e33:.2f}x faster with it")
    if long_on:
        best, med = min(b for b, _ in long_on), _median([m for _, m in long_on])
        print(f"  engine alone, {args.engine_seconds:g} s of back-to-back batches a round (33-byte raw UIDs): "
              f"best {best:.1f} ns, median {med:.1f} ns (the rounds' best {best:.1f}–"
              f"{max(b for b, _ in long_on):.1f} ns)")
        if long_off:
            print(f"    with UID2FAST_NO_MULTIBUF=1: best {min(b for b, _ in long_off):.1f} ns, median "
                  f"{_median([m for _, m in long_off]):.1f} ns")
    if timers is None:
        print("  uid2fast.decrypt_tokens: uid2fast with its C engine is not importable (build it first)")
    elif kernel_sums:
        s, smin = _median(kernel_sums), min(kernel_mins)
        print(f"\n{rounds} rounds, kernels and batches alternating: kernel sum {s:.1f} ns (median of the rounds), "
              f"engine {_median(engine):.1f} ns = {_median(engine) / s:.2f}x")
        same = py.pop("engine, same rows")
        for kind, xs in py.items():
            med, best = _median(xs), min(xs)
            print(f"  uid2fast.decrypt_tokens, {args.tokens} {kind:<12} {med:7.1f} ns (min {best:.1f}) = "
                  f"{med / s:.2f}x the kernel sum (min/min {best / smin:.2f}x), {med / _median(engine):.2f}x "
                  f"the engine")
        e_med, e_min = _median(same), min(same)
        print(f"\n  the engine alone on the batches' own rows (uid2_decrypt_many on a copy of the {args.tokens} tokens "
              f"and their domain names\n  in one buffer, one thread; _engine_c.engine_times): "
              f"{e_med:.1f} ns (min {e_min:.1f})")
        for kind, xs in py.items():
            med, best = _median(xs), min(xs)
            print(f"  uid2fast.decrypt_tokens, {kind:<12} vs the engine on the same rows: {med / e_med:.2f}x at the "
                  f"median (min/min {best / e_min:.2f}x)")
        print(f"  backend_features: {features}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
