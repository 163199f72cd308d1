"""``uid2fast demo``: the whole path against a local operator, timed with the benchmark's timer.

The tokens are the production mix: 33-byte raw UIDs (``--legacy-32``: the legacy 32 bytes), issued by 16
publisher sites, each row decrypted with its site's domain name; one identity in four gets a client-side
generated token, so the bidstream domain check runs on those rows."""
import argparse
import concurrent.futures
import os
import platform
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from .._bench import time_per_item
from ._common import _SECRETS, CliError, _err, _fmt_int, _fmt_us, _json_out, _out, _progress


# The production mix: publisher sites (ids from _FIRST_SITE), and one identity in _CSTG_EVERY client-side generated.
_SITES = 16
_FIRST_SITE = 2001
_CSTG_EVERY = 4


def _tamper(token: str) -> str:
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def _cmd_demo(args: argparse.Namespace) -> int:
    import random


    from .. import BidstreamClient, IdentityMapV3Client, IdentityMapV3Input, SharingClient
    from .. import TokenGenerateInput, Uid2PublisherClient, __version__, backend
    from ..testing import LocalOperator

    if args.count < 10:
        raise CliError("--count must be at least 10")
    if args.seconds <= 0:
        raise CliError("--seconds must be positive")
    scope = args.scope
    t_start = time.perf_counter()
    timing_budget = args.seconds
    report: Dict[str, Any] = {"identity_scope": scope, "backend": backend, "uid2fast": __version__}
    checks: List[Tuple[str, bool, str]] = []
    rng = random.Random()
    tag = f"{rng.getrandbits(32):08x}"

    def say(text: str) -> None:
        if not args.json and not args.quiet:
            _out(text)

    sites = [_FIRST_SITE + j for j in range(_SITES)]
    site_domain = {s: f"site{j}.example.com" for j, s in enumerate(sites)}
    raw_bytes = 32 if getattr(args, "legacy_32", False) else 33
    report["corpus"] = (f"production mix: {raw_bytes}-byte raw UIDs, {_SITES} publisher sites, a domain name on "
                        f"every row, 1 in {_CSTG_EVERY} client-side generated")
    with LocalOperator(identity_scope=scope, site_data={s: [d] for s, d in site_domain.items()},
                       raw_uid_version=2 if raw_bytes == 32 else 4) as op:
        say(f"uid2fast {__version__} demo: local {scope} operator at {op.base_url}, engine: {backend}")
        say(report["corpus"])
        # the publisher sites and their keys exist before the key sync below
        pub_creds = {s: op.add_client(["GENERATOR"], s) for s in sites}
        # 1. key sync over HTTP
        bid = BidstreamClient(op.base_url, *op.credentials("bidstream"))
        share = SharingClient(op.base_url, *op.credentials("sharer"))
        _SECRETS.extend(c for role in ("bidstream", "sharer", "publisher", "mapper") for c in op.credentials(role))
        t0 = time.perf_counter()
        for client, name in ((bid, "bidstream"), (share, "sharing")):
            refreshed = client.refresh()
            if not refreshed.success:
                raise CliError(f"{name} key refresh from the local operator failed: {refreshed.reason}")
        report["key_sync_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        say(f"keys synced over HTTP: {len(bid.keys)} bidstream + {len(share.keys)} sharing keys "
            f"in {report['key_sync_ms']} ms")

        # 2. the operator issues tokens for generated emails and phones, through the publisher client
        n_phone = args.count // 4
        emails = [f"demo.{tag}.{i}@example.com" for i in range(args.count - n_phone)]
        phones = [f"+1{rng.randrange(200, 999)}{i:07d}" for i in range(n_phone)]
        identities = [("email", e) for e in emails] + [("phone", p) for p in phones]
        local = threading.local()
        site_of = [sites[rng.randrange(_SITES)] for _ in identities]

        def generate(job: Tuple[int, Tuple[str, str]]) -> Optional[str]:
            i, (kind, value) = job
            site = site_of[i]
            if i % _CSTG_EVERY == _CSTG_EVERY - 1:  # client-side generated: the operator mints it directly
                if kind == "email":
                    return op.issue_token(email=value, site_id=site, client_side=True)
                return op.issue_token(phone=value, site_id=site, client_side=True)
            clients = getattr(local, "clients", None)
            if clients is None:
                clients = local.clients = {}
            client = clients.get(site)
            if client is None:
                client = clients[site] = Uid2PublisherClient(op.base_url, *pub_creds[site])
            tgi = TokenGenerateInput.from_email(value) if kind == "email" else TokenGenerateInput.from_phone(value)
            resp = client.generate_token(tgi)
            identity = resp.get_identity() if resp.is_success() else None
            return None if identity is None else identity.get_advertising_token()

        t0 = time.perf_counter()
        tokens_or_none: List[Optional[str]] = []
        with _progress(args, total=len(identities), unit="tokens", desc="issuing tokens") as bar, \
                concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
            for tok in pool.map(generate, enumerate(identities), chunksize=16):
                tokens_or_none.append(tok)
                bar.update(1)
        gen_s = time.perf_counter() - t0
        ok_idx = [i for i, t in enumerate(tokens_or_none) if t is not None]
        tokens: List[str] = [t for t in tokens_or_none if t is not None]
        if not tokens:
            raise CliError("the local operator issued no tokens")
        domains = [site_domain[site_of[i]] for i in ok_idx]
        n_cstg = sum(1 for i in ok_idx if i % _CSTG_EVERY == _CSTG_EVERY - 1)
        report["tokens_issued"] = len(tokens)
        report["token_generate_per_second"] = round(len(identities) / gen_s)
        say(f"operator issued {len(tokens):,} advertising tokens ({len(emails):,} emails, {len(phones):,} phones; "
            f"{len(tokens) - n_cstg:,} over HTTP, {n_cstg:,} client-side generated) in {gen_s:.1f} s "
            f"({_fmt_int(len(identities) / gen_s)} tokens/s)")

        # 3. time each path on the same tokens
        rows: List[Dict[str, Any]] = []
        n_paths = 9  # six uid2fast paths, three official ones
        budget = max(timing_budget / n_paths, 0.02)

        def scalar_decrypt() -> List[Any]:
            d = bid.decrypt_token_into_raw_uid
            return [d(t, dom) for t, dom in zip(tokens, domains)]

        us, done, scalar_res = time_per_item(scalar_decrypt, len(tokens), budget)
        rows.append({"path": "decrypt, one by one (BidstreamClient.decrypt_token_into_raw_uid)", "group": "decrypt",
                     "tokens": done, "us_per_token": us})
        us, done, batch1 = time_per_item(lambda: bid.decrypt_tokens_into_raw_uids(tokens, domains, threads=1),
                                         len(tokens), budget)
        rows.append({"path": "decrypt, batch 1 thread (decrypt_tokens_into_raw_uids)", "group": "decrypt",
                     "tokens": done, "us_per_token": us})
        threads = os.cpu_count() or 1
        us, done, batch = time_per_item(lambda: bid.decrypt_tokens_into_raw_uids(tokens, domains), len(tokens),
                                        budget)
        rows.append({"path": f"decrypt, batch all threads ({threads} cores)", "group": "decrypt",
                     "tokens": done, "us_per_token": us})
        uids = batch.uids()
        uid_list = [u for u in uids if u is not None]

        def scalar_encrypt() -> List[Any]:
            e = share.encrypt_raw_uid_into_token
            return [e(u) for u in uid_list]

        us, done, _ = time_per_item(scalar_encrypt, len(uid_list), budget)
        rows.append({"path": "sharing encrypt, one by one (encrypt_raw_uid_into_token)", "group": "encrypt",
                     "tokens": done, "us_per_token": us})
        us, done, enc = time_per_item(lambda: share.encrypt_raw_uids_into_tokens(uid_list), len(uid_list), budget)
        rows.append({"path": "sharing encrypt, batch (encrypt_raw_uids_into_tokens)", "group": "encrypt",
                     "tokens": done, "us_per_token": us})
        sharing_tokens = list(enc.tokens)
        us, done, shared_back = time_per_item(lambda: share.decrypt_tokens_into_raw_uids(sharing_tokens),
                                           len(sharing_tokens), budget)
        rows.append({"path": "sharing decrypt, batch (SharingClient.decrypt_tokens_into_raw_uids)",
                     "group": "sharing decrypt", "tokens": done, "us_per_token": us})

        # 4. checks: one-by-one == batch, sharing round trip, identity map, the official SDK
        scalar_uids = [r.uid for r in scalar_res]
        same = sum(1 for a, b in zip(scalar_uids, uids) if a == b)
        same_status = all(r.status == batch.status_enum(i) for i, r in enumerate(scalar_res))
        checks.append(("one-by-one and batch decryption agree",
                       same == len(tokens) and same_status and batch1.uids() == uids, f"{same:,}/{len(tokens):,}"))
        back = shared_back.uids()
        rt = sum(1 for a, b in zip(back, uid_list) if a == b)
        checks.append(("sharing encrypt -> decrypt round trip", rt == len(uid_list) and bool(enc.success.all()),
                       f"{rt:,}/{len(uid_list):,}"))

        sample_n = min(200, len(ok_idx))
        sample = rng.sample(range(len(ok_idx)), sample_n)
        mapper = IdentityMapV3Client(op.base_url, *op.credentials("mapper"))
        s_emails = [identities[ok_idx[j]][1] for j in sample if identities[ok_idx[j]][0] == "email"]
        s_phones = [identities[ok_idx[j]][1] for j in sample if identities[ok_idx[j]][0] == "phone"]
        map_input = IdentityMapV3Input.from_emails(s_emails)
        if s_phones:
            map_input = map_input.with_phones(s_phones)
        mapped = mapper.generate_identity_map(map_input).mapped_identities
        agree = 0
        for j in sample:
            ident = identities[ok_idx[j]][1]
            m = mapped.get(ident)
            if m is not None and m.current_raw_uid == uids[j]:
                agree += 1
        checks.append(("raw UIDs match the identity map (v3) for a sample", agree == sample_n,
                       f"{agree}/{sample_n}"))

        # 5. statuses: the operator's tokens plus a few tampered copies
        n_bad = max(1, len(tokens) // 100)
        mixed = tokens + [_tamper(t) for t in tokens[:n_bad]]
        mixed_res = bid.decrypt_tokens_into_raw_uids(mixed, domains + domains[:n_bad])
        cstg_rows = [j for j, i in enumerate(ok_idx) if i % _CSTG_EVERY == _CSTG_EVERY - 1]
        if cstg_rows:  # the domain check runs: a client-side generated token with another site's domain fails
            j = cstg_rows[0]
            other = next(d for d in site_domain.values() if d != domains[j])
            checked = bid.decrypt_token_into_raw_uid(tokens[j], other)
            checks.append(("client-side generated tokens are checked against their site's domain",
                           checked.status.name == "DOMAIN_NAME_CHECK_FAILED" and scalar_res[j].success,
                           f"{len(cstg_rows):,} rows"))
        report["status_counts"] = {s.name: n for s, n in mixed_res.status_counts().items()}
        report["status_counts_input"] = {"operator_tokens": len(tokens), "tampered_copies": n_bad}

        # 6. the official SDK, when installed
        official = _official_demo(op, tokens, domains, uids, uid_list, sharing_tokens, budget, rng)
        if official is not None:
            rows.extend(official["rows"])
            checks.extend(official["checks"])
            report["official_sdk"] = official["version"]
        base = {r["group"]: r["us_per_token"] for r in rows if r.get("official")}
        for r in rows:
            r["tokens_per_second"] = 1e6 / r["us_per_token"]
            ref = base.get(r["group"])
            r["x_official"] = None if ref is None else ref / r["us_per_token"]
        report["paths"] = rows
        report["checks"] = [{"check": c, "ok": ok, "detail": d} for c, ok, d in checks]
    report["seconds"] = round(time.perf_counter() - t_start, 2)

    if args.json:
        _json_out(report)
    else:  # the table is the demo's result: --quiet drops the progress lines, never the table
        _print_demo(report, rows, checks)
    failed = [c for c, ok, _ in checks if not ok]
    if failed:
        _err(f"demo check failed: {failed[0]}")
        return 1
    return 0


def _official_demo(op: Any, tokens: List[str], domains: List[str], uids: List[Optional[str]], uid_list: List[str],
                   sharing_tokens: List[Optional[str]], budget: float, rng: Any) -> Optional[Dict[str, Any]]:
    """Time the official ``uid2_client`` on a sample of the same tokens (None when it is not installed)."""
    try:
        import uid2_client as official
    except ImportError:
        return None
    from importlib import metadata

    try:
        version = metadata.version("uid2-client")
    except metadata.PackageNotFoundError:  # pragma: no cover
        version = "?"
    n = min(300, len(tokens))
    idx = rng.sample(range(len(tokens)), n)
    sample = [(tokens[i], domains[i]) for i in idx]
    bid = official.BidstreamClient(op.base_url, *op.credentials("bidstream"))
    share = official.SharingClient(op.base_url, *op.credentials("sharer"))
    with open(os.devnull, "w") as devnull:  # the official SDK prints on some failures; keep stdout clean
        old = sys.stdout
        sys.stdout = devnull
        try:
            bid.refresh()
            share.refresh()
        finally:
            sys.stdout = old
    rows: List[Dict[str, Any]] = []
    checks: List[Tuple[str, bool, str]] = []

    def dec() -> List[Any]:
        d = bid.decrypt_token_into_raw_uid
        return [d(t, dom) for t, dom in sample]

    us, done, res = time_per_item(dec, n, budget)
    rows.append({"path": f"official uid2-client {version}: decrypt, one by one", "group": "decrypt",
                 "tokens": done, "us_per_token": us, "official": True})
    agree = sum(1 for r, i in zip(res, idx) if r.uid == uids[i])
    checks.append((f"official uid2-client {version} decrypts the same raw UIDs", agree == n, f"{agree}/{n}"))
    u_sample = [uid_list[i % len(uid_list)] for i in idx]

    def enc() -> List[Any]:
        e = share.encrypt_raw_uid_into_token
        return [e(u) for u in u_sample]

    us, done, _ = time_per_item(enc, n, budget)
    rows.append({"path": f"official uid2-client {version}: sharing encrypt, one by one", "group": "encrypt",
                 "tokens": done, "us_per_token": us, "official": True})
    st_sample = [sharing_tokens[i % len(sharing_tokens)] for i in idx]

    def sdec() -> List[Any]:
        d = share.decrypt_token_into_raw_uid
        return [d(t) for t in st_sample]

    us, done, sres = time_per_item(sdec, n, budget)
    rows.append({"path": f"official uid2-client {version}: sharing decrypt, one by one", "group": "sharing decrypt",
                 "tokens": done, "us_per_token": us, "official": True})
    expect = [uid_list[i % len(uid_list)] for i in idx]
    agree = sum(1 for r, u in zip(sres, expect) if r.uid == u)
    checks.append(("official uid2-client decrypts uid2fast's sharing tokens", agree == n, f"{agree}/{n}"))
    return {"version": version, "rows": rows, "checks": checks}


def _print_demo(report: Dict[str, Any], rows: List[Dict[str, Any]], checks: List[Tuple[str, bool, str]]) -> None:
    order = {"decrypt": 0, "encrypt": 1, "sharing decrypt": 2}
    rows = sorted(rows, key=lambda r: (order.get(r["group"], 9), not r.get("official")))
    width = max(len(r["path"]) for r in rows)
    _out("")
    _out(f"{report['corpus']}:")
    _out(f"{'path':<{width}}  {'tokens':>9}  {'µs/token':>9}  {'tokens/s':>11}  {'× official':>10}")
    _out("-" * (width + 48))
    last = None
    for r in rows:
        if last is not None and r["group"] != last:
            _out("")
        last = r["group"]
        x = "" if r["x_official"] is None else f"{r['x_official']:.1f}×"
        _out(f"{r['path']:<{width}}  {r['tokens']:>9,}  {_fmt_us(r['us_per_token']):>9}  "
             f"{_fmt_int(r['tokens_per_second']):>11}  {x:>10}")
    _out("")
    counts = ", ".join(f"{k}={v:,}" for k, v in report["status_counts"].items())
    inp = report["status_counts_input"]
    _out(f"status counts ({inp['operator_tokens']:,} operator tokens + {inp['tampered_copies']} tampered copies): "
         f"{counts}")
    for name, ok, detail in checks:
        _out(f"  [{'ok' if ok else 'FAILED'}] {name} ({detail})")
    official = report.get("official_sdk")
    note = f"official uid2-client {official} measured on a sample in the same run" if official else \
        "official uid2-client not installed: no ratio (pip install uid2-client)"
    _out(f"engine: {report['backend']}; {note}; {platform.python_implementation()} {platform.python_version()}; "
         f"{report['seconds']} s")
