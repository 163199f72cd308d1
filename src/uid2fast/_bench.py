"""The benchmark behind ``uid2fast bench`` and ``benchmarks/bench_decrypt.py``.

For v2, v3 and v4 advertising tokens (decrypt; v4 also through the legacy ``decrypt(token, keys)``) and for
sharing tokens (encrypt) it times, in one run on the same tokens and keys:

- the official SDK (``uid2_client``, when installed), one token at a time;
- uid2fast's pure-Python engine, one token at a time;
- the C engine one token at a time, in batch on one thread and in batch on all cores;
- the bidder's call: ``BidstreamClient.decrypt_token_into_raw_uid(token, domain)`` on v4 tokens of the
  production mix (33-byte raw UIDs, 16 sites, a domain per call) followed by reading ``status``, ``uid``,
  ``established`` and ``site_id``, and the same call alone (``decrypt v4+dom``), each path's passes taken in
  turns with the official SDK's (minimum and median per call).

Every path is checked against the official SDK (or, without it, against the pure-Python engine) before it
is timed: same status, raw UID, established time and site id for decryption (for the bidder's call the very
objects read: equal values of the same types); for encryption, the tokens
each path made must decrypt back to their raw UIDs with the official SDK. A path that disagrees is
reported and not timed. The table names the CPU, Python and the versions, and gives µs/token, tokens/s
and the ratio to the official SDK measured in the same run.
"""
import argparse
import base64
import datetime as dt
import json
import os
import platform
import random
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

__all__ = ["main", "run"]

_MASTER_KEYSET = 1
CLI_BATCH = 65_536  # rows per batch of `uid2fast decrypt` (cli._common.DEFAULT_BATCH_SIZE; a test checks)
_DEFAULT_KEYSET = 99
_CALLER_SITE = 99
_TOKEN_SITE = 1001


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or what ``platform`` knows)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _version(dist: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# Publisher sites whose tokens a benchmark batch mixes, each with its own site key (as in bidstream traffic:
# one master key, many sites), so per-key shortcuts in an engine are measured on a realistic mix.
_SITES = 16


# Every site's domain name (the key set's site_data): each token row carries its site's, as bid logs do.
def site_domain(j: int) -> str:
    return f"site{j}.example.com"


# One token in _CSTG_EVERY is client-side generated (privacy bit 0x2), so the bidstream domain check runs on
# a share of the rows; the others carry a domain that nothing checks, as in bidstream traffic.
_CSTG_EVERY = 4
PRODUCTION_MIX = (f"production mix: v{{version}} tokens, {{raw}}-byte raw UIDs, {_SITES} sites, a domain name on "
                  f"every row (1 in {_CSTG_EVERY} client-side generated, so checked)")


def _keys_body() -> Dict[str, Any]:
    """A sharing-style key set: a master keyset, the caller's default keyset and _SITES token sites' keys, and
    each site's domain name."""
    from ._keys_json import keys_json_body

    now = int(time.time())

    def key(key_id: int, keyset_id: Optional[int]) -> Dict[str, Any]:
        return {"id": key_id, "created": now - 3600, "activates": now - 3600, "expires": now + 86_400,
                "secret": os.urandom(32), "keyset_id": keyset_id}

    return keys_json_body(
        [key(1, _MASTER_KEYSET), key(2, _DEFAULT_KEYSET)] + [key(3 + j, 5) for j in range(_SITES)],
        identity_scope="UID2", caller_site_id=_CALLER_SITE, master_keyset_id=_MASTER_KEYSET,
        default_keyset_id=_DEFAULT_KEYSET, token_expiry_seconds="2592000", allow_clock_skew_seconds=1800,
        site_data={_TOKEN_SITE + j: [site_domain(j)] for j in range(_SITES)})


def corpus(body: Dict[str, Any], version: int, n: int, raw_uid_bytes: int = 33, cstg: bool = True
           ) -> Tuple[List[str], List[str], List[str]]:
    """The production mix: ``n`` distinct tokens of one version, their raw UIDs and each row's domain name.

    Sites are picked at random (seeded) among _SITES, each with its own site key; every row's domain is its
    site's name; one token in _CSTG_EVERY is client-side generated. Raw UIDs are 33 bytes as the operator
    mints them now (a v4 metadata byte, prod environment, UID2, email or phone: ``env << 6 | 1 << 5 | type <<
    2``, then 32 bytes), or the legacy 32 bytes with ``raw_uid_bytes=32``. ``cstg=False``: no client-side
    generated tokens (for timing the domains on and off, when every row must succeed either way).
    """
    from .keys import EncryptionKey
    from .uid2_token_generator import Params, UID2TokenGenerator

    if raw_uid_bytes not in (32, 33):
        raise ValueError(f"raw_uid_bytes must be 32 or 33, not {raw_uid_bytes!r}")

    def as_key(k: Dict[str, Any]) -> Any:
        ts = dt.datetime.fromtimestamp
        return EncryptionKey(k["id"], -1, ts(k["created"], dt.timezone.utc), ts(k["activates"], dt.timezone.utc),
                             ts(k["expires"], dt.timezone.utc), base64.b64decode(k["secret"]), k.get("keyset_id"))

    master = as_key(body["keys"][0])
    sites = [as_key(k) for k in body["keys"][2:]]
    params = Params(expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    if raw_uid_bytes == 33:
        uids = [base64.b64encode(bytes([2 << 6 | 1 << 5 | (i % 3 == 0) << 2]) + os.urandom(32)).decode()
                for i in range(n)]
    else:
        uids = [base64.b64encode(os.urandom(32)).decode() for _ in range(n)]
    gen = UID2TokenGenerator
    pick = random.Random(n * 10 + version)
    tokens, domains = [], []
    for i, u in enumerate(uids):
        j = pick.randrange(len(sites))
        privacy = 0x2 if cstg and i % _CSTG_EVERY == _CSTG_EVERY - 1 else 0
        if version == 2:
            tokens.append(gen.generate_uid2_token_v2(u, master, _TOKEN_SITE + j, sites[j], params,
                                                     privacy_bits=privacy))
        else:
            tokens.append(gen.generate_uid2_token_with_debug_info(u, master, _TOKEN_SITE + j, sites[j], params,
                                                                  112 if version == 3 else 128,
                                                                  privacy_bits=privacy))
        domains.append(site_domain(j))
    return tokens, uids, domains


def _tokens(body: Dict[str, Any], version: int, n: int) -> Tuple[List[str], List[str]]:
    """The tokens and raw UIDs of :func:`corpus` (its domains left out)."""
    tokens, uids, _ = corpus(body, version, n)
    return tokens, uids


def time_per_item(fn: Callable[[], Any], n_items: int, min_time: float) -> Tuple[float, int, Any]:
    """(µs per item, items done, the warm-up call's result): repeats ``fn`` for at least ``min_time`` seconds.

    The first call warms up (it also builds key tables and thread pools) and is not timed; its result is
    returned so that a caller can check the answers of the very function it timed.
    """
    first = fn()
    t0 = time.perf_counter()
    calls = 0
    elapsed = 0.0
    while calls == 0 or elapsed < min_time:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
    return elapsed / (calls * n_items) * 1e6, calls * n_items, first


def _timeit(fn: Callable[[], Any], n_items: int, min_time: float) -> Tuple[float, int]:
    """(µs per item, items done): :func:`time_per_item` without the result."""
    us, done, _ = time_per_item(fn, n_items, min_time)
    return us, done


def time_side_by_side(fns: Dict[str, Tuple[Callable[[], Any], int]], min_time: float,
                      runs: int = 15) -> Dict[str, Tuple[float, float]]:
    """{label: (minimum, median) µs per item} over ``runs`` passes of each ``fn`` (doing ``n_items`` items),
    the labels taking turns so that each sees the same stretch of a shared machine's load; each pass repeats
    its ``fn`` for ``min_time / runs`` seconds at least, after one untimed call (the first warms up; the later
    ones bring the caches back after the other paths' passes)."""
    import statistics

    per_run = min_time / runs
    samples: Dict[str, List[float]] = {label: [] for label in fns}
    for fn, _ in fns.values():
        fn()
    for _ in range(runs):
        for label, (fn, n_items) in fns.items():
            fn()  # caches warm again after the other paths' pass
            calls = 0
            t0 = time.perf_counter()
            elapsed = 0.0
            while calls == 0 or elapsed < per_run:
                fn()
                calls += 1
                elapsed = time.perf_counter() - t0
            samples[label].append(elapsed / (calls * n_items) * 1e6)
    return {label: (min(xs), statistics.median(xs)) for label, xs in samples.items()}


def _bidder_reads(r: Any) -> Tuple[Any, Any, Any, Any]:
    """What a bidder reads from a decrypt: status, raw UID, when the identity was established, the site."""
    return (r.status, r.uid, r.established, r.site_id)


def _row_of(r: Any) -> Tuple[str, Optional[str], Optional[int], Optional[int]]:
    est = getattr(r, "established", None)
    ms = None if est is None else int(est.timestamp() * 1000)
    return (r.status.name, r.uid, ms, getattr(r, "site_id", None))


def run(quick: bool = False, count: Optional[int] = None, min_time: Optional[float] = None,
        log: Callable[[str], None] = lambda s: None) -> Dict[str, Any]:
    """Run the benchmark; returns the machine description and one row per (operation, path)."""
    import numpy as np

    import uid2fast
    from . import _engine
    from .batch import decrypt_tokens, encrypt_tokens
    from .bidstream_client import BidstreamClient
    from .sharing_client import SharingClient

    n = count or (2_000 if quick else 20_000)
    min_time = min_time if min_time is not None else (0.1 if quick else 0.4)
    scalar_n = min(n, 500 if quick else 2_000)
    official_n = min(n, 200 if quick else 500)
    threads = _engine.c_engine.max_threads() if _engine.c_engine is not None and hasattr(
        _engine.c_engine, "max_threads") else (os.cpu_count() or 1)

    body = _keys_body()
    refresh_json = json.dumps({"body": body, "status": "success"})
    have_c = _engine.c_engine is not None

    def clients_on(engine: str) -> Any:
        b = BidstreamClient("http://127.0.0.1:1", "bench", base64.b64encode(bytes(32)).decode(), engine=engine)
        s = SharingClient("http://127.0.0.1:1", "bench", base64.b64encode(bytes(32)).decode(), engine=engine)
        b._refresh_json(refresh_json)
        s._refresh_json(refresh_json)
        return b, s, b.keys

    # The same key set on each engine, and clients holding it.
    py_b, py_s, keys_py = clients_on("py")
    c_b: Any = None
    c_s: Any = None
    keys_c: Any = None
    if have_c:
        c_b, c_s, keys_c = clients_on("c")

    try:
        import uid2_client as official
    except ImportError:
        official = None
    off_b = off_s = None
    if official is not None:
        off_b = official.BidstreamClient("http://127.0.0.1:1", "bench", base64.b64encode(bytes(32)).decode())
        off_s = official.SharingClient("http://127.0.0.1:1", "bench", base64.b64encode(bytes(32)).decode())
        off_b._refresh_json(refresh_json)
        off_s._refresh_json(refresh_json)

    info = {
        "cpu": cpu_name(), "cores": os.cpu_count(), "engine_threads": threads,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(terse=True), "uid2fast": uid2fast.__version__,
        "backend": uid2fast.backend, "backend_features": dict(uid2fast.backend_features),
        "uid2_client": _version("uid2-client") if official is not None else None,
        "numpy": np.__version__, "tokens_per_version": n, "min_time_s": min_time,
        "corpus": PRODUCTION_MIX.format(version="2/3/4", raw=33),
    }
    rows: List[Dict[str, Any]] = []

    def add(op: str, path: str, us: Optional[float], done: int, note: str = "") -> None:
        rows.append({"operation": op, "path": path, "us_per_token": us, "tokens": done,
                     "tokens_per_second": None if us is None else 1e6 / us, "note": note})
        shown = "-" if us is None else f"{us:.3f} µs/token"
        log(f"  {op:<12} {path:<{_PATH_W}} {shown} {note}")

    # ---- decrypt v2 / v3 / v4: the production mix, each row with its domain name -------------------
    def decrypt_version(version: int) -> None:
        op = f"decrypt v{version}"
        tokens, uids, domains = corpus(body, version, n)
        sample = list(zip(tokens[:scalar_n], domains[:scalar_n]))
        osample = sample[:official_n]
        reference = [_row_of(py_b.decrypt_token_into_raw_uid(t, d)) for t, d in osample]
        if off_b is not None:
            expected = [_row_of(off_b.decrypt_token_into_raw_uid(t, d)) for t, d in osample]
            ok = expected == reference and all(r[1] == u for r, u in zip(expected, uids))
            if not ok:
                raise RuntimeError(f"{op}: the official SDK and uid2fast disagree; not timing")
            us, done = _timeit(lambda: [off_b.decrypt_token_into_raw_uid(t, d) for t, d in osample],
                               len(osample), min_time)
            add(op, "official uid2-client", us, done)
        else:
            expected = reference

        def check_batch(res: Any, label: str, want_uids: List[str] = uids) -> bool:
            got = [_row_of(r) for r in res[:official_n]]
            if (want_uids is uids and got != expected) or res.uids() != want_uids or \
                    not bool(res.success.all()):
                add(op, label, None, 0, "WRONG RESULTS: not timed")
                return False
            return True

        def batch_row(label: str, data: Sequence[str], doms: Optional[Sequence[str]], nthreads: Optional[int],
                      want_uids: List[str] = uids) -> None:
            if check_batch(decrypt_tokens(data, keys_c, domain_names=doms, threads=nthreads), label, want_uids):
                us, done = _timeit(lambda: decrypt_tokens(data, keys_c, domain_names=doms, threads=nthreads),
                                   len(data), min_time)
                add(op, label, us, done)

        us, done = _timeit(lambda: [py_b.decrypt_token_into_raw_uid(t, d) for t, d in osample], len(osample),
                           min_time)
        add(op, "uid2fast Python engine", us, done)
        if not have_c:
            for label in ("uid2fast C, one by one", "uid2fast C batch, 1 thread",
                          f"uid2fast C batch, {threads} threads"):
                add(op, label, None, 0, "C engine not built")
            return
        got = [_row_of(c_b.decrypt_token_into_raw_uid(t, d)) for t, d in osample]
        if got != expected:
            add(op, "uid2fast C, one by one", None, 0, "WRONG RESULTS: not timed")
        else:
            dec = c_b.decrypt_token_into_raw_uid
            us, done = _timeit(lambda: [dec(t, d) for t, d in sample], len(sample), min_time)
            add(op, "uid2fast C, one by one", us, done)
        batch_row("uid2fast C batch, 1 thread", tokens, domains, 1)
        batch_row(f"uid2fast C batch, {threads} threads", tokens, domains, None)
        if version == 4:
            # domains on and off: without domains the client-side generated rows would fail their check (and
            # take the general path), so this pair is timed on the same mix without CSTG tokens
            tn, un, dn = corpus(body, 4, n, cstg=False)
            for label, nt in (("1 thread", 1), (f"{threads} threads", None)):
                batch_row(f"uid2fast C batch, {label}, no CSTG, domains", tn, dn, nt, un)
                batch_row(f"uid2fast C batch, {label}, no CSTG, no domains", tn, None, nt, un)
            t32, u32, d32 = corpus(body, 4, n, raw_uid_bytes=32)
            batch_row("uid2fast C batch, 1 thread, 32-byte raw UIDs", t32, d32, 1, u32)
            if not quick:
                # the batches `uid2fast decrypt` hands the engine (its default --batch-size): a batch pays for
                # starting its threads once, so the gain of more threads depends on the batch's size
                tb, ub, db = corpus(body, 4, CLI_BATCH)
                for label, nt in (("1 thread", 1), (f"{threads} threads", None)):
                    batch_row(f"uid2fast C batch, {label}, {CLI_BATCH:,}-row batches", tb, db, nt, ub)

    for version in (2, 3, 4):
        decrypt_version(version)

    # ---- the bidder's call: decrypt_token_into_raw_uid(token, domain) and four reads, v4 ------------
    # The production mix (33-byte raw UIDs, 16 sites, a domain on every call) through the public client, as a
    # bidder calls it per bid request; min and median of passes taken in turns with the official SDK's same call.
    tokens, uids, domains = corpus(body, 4, n)
    opairs = list(zip(tokens[:official_n], domains[:official_n]))
    pairs_c = list(zip(tokens[:scalar_n], domains[:scalar_n]))

    def bidder(client: Any, pairs: Sequence[Tuple[str, str]]) -> Callable[[], Any]:
        call = client.decrypt_token_into_raw_uid

        def run_calls() -> None:
            for t, d in pairs:
                r = call(t, d)
                r.status, r.uid, r.established, r.site_id  # noqa: B018 - the reads are what is timed

        return run_calls

    def call_only(client: Any, pairs: Sequence[Tuple[str, str]]) -> Callable[[], Any]:
        call = client.decrypt_token_into_raw_uid

        def run_calls() -> None:
            for t, d in pairs:
                call(t, d)

        return run_calls

    def reads_of(client: Any, pairs: Sequence[Tuple[str, str]]) -> List[Tuple[Any, ...]]:
        got = [_bidder_reads(client.decrypt_token_into_raw_uid(t, d)) for t, d in pairs]
        return [(s_.name, u, e, si) for s_, u, e, si in got]

    truth = reads_of(off_b, opairs) if off_b is not None else reads_of(py_b, opairs)
    if [g[1] for g in truth] != uids[:official_n] or any(g[0] != "SUCCESS" for g in truth):
        raise RuntimeError("bidder's call: the reference decrypt does not give the raw UIDs; not timing")
    paths: Dict[str, Tuple[Any, Sequence[Tuple[str, str]]]] = {}
    if off_b is not None:
        paths["official uid2-client"] = (off_b, opairs)
    paths["uid2fast Python engine"] = (py_b, opairs)
    if have_c:
        paths["uid2fast C"] = (c_b, pairs_c)
    timed: Dict[str, Tuple[Callable[[], Any], int]] = {}
    for label, (client, pairs) in paths.items():
        got = reads_of(client, opairs)
        # equal values of the same types (DecryptionStatus members, str, UTC datetimes, int)
        if got != truth or any(type(a) is not type(b) for g, t in zip(got, truth) for a, b in zip(g, t)):
            add("bidder's call", label, None, 0, "WRONG RESULTS: not timed")
            continue
        timed["bidder's call|" + label] = (bidder(client, pairs), len(pairs))
        timed["decrypt v4+dom|" + label] = (call_only(client, pairs), len(pairs))
    measured = time_side_by_side(timed, min_time * 2)
    for op in ("bidder's call", "decrypt v4+dom"):
        for label in paths:
            if op + "|" + label in measured:
                lo, med = measured[op + "|" + label]
                add(op, label, med, 0, f"min {lo * 1000:.0f} ns, median {med * 1000:.0f} ns")
                rows[-1]["us_min"] = lo
        if not have_c:
            add(op, "uid2fast C", None, 0, "C engine not built")

    # ---- the legacy module function decrypt(token, keys), v4 ------------------------------------
    op = "decrypt() v4"
    tokens, uids = _tokens(body, 4, n)
    sample = tokens[:scalar_n]
    osample = tokens[:official_n]
    if off_b is not None:
        got = [official.decrypt(t, off_b._keys).uid for t in osample]
        if got != uids[:official_n]:
            raise RuntimeError(f"{op}: the official SDK gives other uids; not timing")
        okeys = off_b._keys
        us, done = _timeit(lambda: [official.decrypt(t, okeys) for t in osample], len(osample), min_time)
        add(op, "official uid2-client", us, done)
    if [uid2fast.decrypt(t, keys_py).uid for t in osample] != uids[:official_n]:
        add(op, "uid2fast Python engine", None, 0, "WRONG RESULTS: not timed")
    else:
        us, done = _timeit(lambda: [uid2fast.decrypt(t, keys_py) for t in osample], len(osample), min_time)
        add(op, "uid2fast Python engine", us, done)
    if have_c:
        if [uid2fast.decrypt(t, keys_c).uid for t in sample] != uids[:scalar_n]:
            add(op, "uid2fast C, one by one", None, 0, "WRONG RESULTS: not timed")
        else:
            dec = uid2fast.decrypt
            us, done = _timeit(lambda: [dec(t, keys_c) for t in sample], len(sample), min_time)
            add(op, "uid2fast C, one by one", us, done)

    # ---- encrypt (sharing, v4) -----------------------------------------------------------------
    op = "encrypt"
    uids = [base64.b64encode(os.urandom(32)).decode() for _ in range(n)]

    def verify(tokens: Sequence[Optional[str]], label: str) -> bool:
        check = list(zip(tokens[:official_n], uids[:official_n]))
        if off_s is not None:
            back = [off_s.decrypt_token_into_raw_uid(t).uid if t else None for t, _ in check]
        else:
            back = [py_s.decrypt_token_into_raw_uid(t).uid if t else None for t, _ in check]
        if back != [u for _, u in check]:
            add(op, label, None, 0, "WRONG RESULTS: not timed")
            return False
        return True

    osample = uids[:official_n]
    if off_s is not None:
        toks = [off_s.encrypt_raw_uid_into_token(u).encrypted_data for u in osample]
        if verify(toks, "official uid2-client"):
            us, done = _timeit(lambda: [off_s.encrypt_raw_uid_into_token(u) for u in osample], len(osample), min_time)
            add(op, "official uid2-client", us, done)
    if verify([py_s.encrypt_raw_uid_into_token(u).encrypted_data for u in osample], "uid2fast Python engine"):
        us, done = _timeit(lambda: [py_s.encrypt_raw_uid_into_token(u) for u in osample], len(osample), min_time)
        add(op, "uid2fast Python engine", us, done)
    if have_c:
        e = c_s.encrypt_raw_uid_into_token
        if verify([e(u).encrypted_data for u in uids[:official_n]], "uid2fast C, one by one"):
            sample = uids[:scalar_n]
            us, done = _timeit(lambda: [e(u) for u in sample], len(sample), min_time)
            add(op, "uid2fast C, one by one", us, done)
        if verify(encrypt_tokens(uids, keys_c, threads=1).tokens, "uid2fast C batch, 1 thread"):
            us, done = _timeit(lambda: encrypt_tokens(uids, keys_c, threads=1), n, min_time)
            add(op, "uid2fast C batch, 1 thread", us, done)
        label = f"uid2fast C batch, {threads} threads"
        if verify(encrypt_tokens(uids, keys_c).tokens, label):
            us, done = _timeit(lambda: encrypt_tokens(uids, keys_c), n, min_time)
            add(op, label, us, done)
    else:
        for label in ("uid2fast C, one by one", "uid2fast C batch, 1 thread", f"uid2fast C batch, {threads} threads"):
            add(op, label, None, 0, "C engine not built")

    base = {r["operation"]: r for r in rows if r["path"] == "official uid2-client"}
    for r in rows:
        ref = base.get(r["operation"])
        r["x_official"] = None if ref is None or r["us_per_token"] is None else ref["us_per_token"] / r["us_per_token"]
        if ref is not None and "us_min" in r and "us_min" in ref:
            r["x_official_min"] = ref["us_min"] / r["us_min"]
    return {"machine": info, "rows": rows, "ratios": _ratios(rows, threads)}


def _ratios(rows: List[Dict[str, Any]], threads: int) -> Dict[str, Optional[float]]:
    """The side-by-side ratios of the v4 batch rows (None where a row was not timed)."""
    us = {r["path"]: r["us_per_token"] for r in rows if r["operation"] == "decrypt v4"}

    def ratio(a: str, b: str) -> Optional[float]:
        x, y = us.get(a), us.get(b)
        return None if x is None or y is None else x / y

    one, many = "uid2fast C batch, 1 thread", f"uid2fast C batch, {threads} threads"
    big = f", {CLI_BATCH:,}-row batches"  # (not timed with --quick: then no such ratio)
    at_cli_batch = {} if one + big not in us else {
        f"all threads ({threads}) vs one, with domains, {CLI_BATCH:,}-row batches (the CLI's)": ratio(one + big,
                                                                                                    many + big)}
    return {
        f"all threads ({threads}) vs one, with domains": ratio(one, many),
        **at_cli_batch,
        "with domains vs without, 1 thread (time, no CSTG)": ratio(one + ", no CSTG, domains",
                                                                    one + ", no CSTG, no domains"),
        f"with domains vs without, {threads} threads (time, no CSTG)": ratio(many + ", no CSTG, domains",
                                                                          many + ", no CSTG, no domains"),
        "33-byte vs 32-byte raw UIDs, 1 thread (time)": ratio(one, one + ", 32-byte raw UIDs"),
        "official SDK vs batch, 1 thread": ratio("official uid2-client", one),
    }


def format_table(result: Dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"CPU: {m['cpu']} ({m['cores']} cores); {m['python']} on {m['platform']}",
        f"uid2fast {m['uid2fast']} (engine {m['backend']}"
        + (f", {m['backend_features'].get('aes', '')}" if m["backend_features"].get("aes") else "") + "); "
        + (f"uid2-client {m['uid2_client']}" if m["uid2_client"] else "uid2-client not installed (no ratio)")
        + f"; numpy {m['numpy']}; {m['tokens_per_version']:,} tokens per version",
        f"corpus: {m.get('corpus', '?')}",
        "",
        f"{'operation':<12}  {'path':<{_PATH_W}}  {'µs/token':>9}  {'tokens/s':>12}  {'× official':>10}",
        "-" * (51 + _PATH_W),
    ]
    last = None
    for r in result["rows"]:
        if last is not None and r["operation"] != last:
            lines.append("")
        last = r["operation"]
        if r["us_per_token"] is None:
            lines.append(f"{r['operation']:<12}  {r['path']:<{_PATH_W}}  {'-':>9}  {'-':>12}  {'':>10}  {r['note']}")
            continue
        us = r["us_per_token"]
        us_s = f"{us:.3f}" if us < 10 else f"{us:.1f}"
        x = "" if r["x_official"] is None else f"{r['x_official']:,.1f}×"
        extra = ""
        if "us_min" in r:  # timed in turns with the official SDK: the median above, both here
            extra = f"  {r['note']}" + ("" if r.get("x_official_min") is None else
                                        f" ({r['x_official_min']:,.0f}× official at the minimum)")
        lines.append(f"{r['operation']:<12}  {r['path']:<{_PATH_W}}  {us_s:>9}  "
                     f"{r['tokens_per_second']:>12,.0f}  {x:>10}" + extra)
    ratios = result.get("ratios") or {}
    if ratios:
        lines.append("")
        lines.append("side by side, decrypt v4 (production mix):")
        for name, v in ratios.items():
            lines.append(f"  {name:<52} {'-' if v is None else f'{v:,.2f}×'}")
    return "\n".join(lines)


# width of the path column
_PATH_W = 50


def plot(result: Dict[str, Any], path: str) -> None:
    """A grouped bar chart (tokens/s, log scale) of ``result`` as a PNG."""
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("--plot needs matplotlib: pip install matplotlib (or uid2fast[cli])") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # The five paths every operation has (the bidder rows' "uid2fast C" is its one-call-at-a-time path); the
    # table holds the other v4 rows (domains off, 32-byte raw UIDs, 65,536-row batches).
    threads = result["machine"].get("engine_threads") or 1
    series = [("official uid2-client", ("official uid2-client",)),
              ("uid2fast Python engine", ("uid2fast Python engine",)),
              ("uid2fast C, one call at a time", ("uid2fast C, one by one", "uid2fast C")),
              ("uid2fast C batch, 1 thread", ("uid2fast C batch, 1 thread",)),
              (f"uid2fast C batch, {threads} threads", (f"uid2fast C batch, {threads} threads",))]
    ops = list(dict.fromkeys(r["operation"] for r in result["rows"]))
    value = {(r["operation"], r["path"]): r["tokens_per_second"] for r in result["rows"] if r["us_per_token"]}
    fig, ax = plt.subplots(figsize=(10, 5.2), dpi=110)
    width = 0.8 / len(series)
    colors = ["#9e9e9e", "#f2b134", "#4a90d9", "#2b6cb0", "#1a365d"]
    for j, (label, names) in enumerate(series):
        xs = [i + (j - (len(series) - 1) / 2) * width for i in range(len(ops))]
        ys = [next((value[(o, n)] for n in names if (o, n) in value), 0) for o in ops]
        bars = ax.bar(xs, ys, width, label=label, color=colors[j % len(colors)])
        for b, y in zip(bars, ys):
            if y:
                ax.annotate(f"{y / 1e6:.1f}M" if y >= 1e6 else f"{y / 1e3:.0f}k", (b.get_x() + b.get_width() / 2, y),
                            ha="center", va="bottom", fontsize=6.5)
    ax.set_yscale("log")
    ax.set_xticks(range(len(ops)))
    ax.set_xticklabels(ops, rotation=15)
    ax.set_ylabel("tokens per second (log scale)")
    m = result["machine"]
    ax.set_title(f"uid2fast {m['uid2fast']} vs uid2-client {m['uid2_client'] or '(not installed)'} — "
                 f"{m['cpu']}, {m['cores']} cores, {m['python']}", fontsize=9)
    ax.set_ylim(top=ax.get_ylim()[1] * 2.5)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_decrypt", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 tokens per version, short timings")
    parser.add_argument("--count", type=int, help="tokens per version (default 20,000)")
    parser.add_argument("--min-time", type=float, help="seconds each measurement runs (default 0.4)")
    parser.add_argument("--plot", metavar="FILE", help="draw a bar chart PNG")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.plot:  # before the benchmark's minutes of work, not after
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.stderr.write("bench_decrypt: --plot needs matplotlib: pip install 'uid2fast[cli]' "
                             "(or pip install matplotlib)\n")
            return 2

    def log(s: str) -> None:
        if not args.json:
            sys.stderr.write(s + "\n")

    log(f"benchmarking on {cpu_name()} ...")
    result = run(quick=args.quick, count=args.count, min_time=args.min_time, log=log)
    if args.plot:
        plot(result, args.plot)
        result["plot"] = args.plot
    if args.json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(format_table(result) + "\n")
        if args.plot:
            sys.stdout.write(f"\nchart written to {args.plot}\n")
    wrong = [r for r in result["rows"] if r["note"].startswith("WRONG")]
    return 1 if wrong else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
