"""The file commands (``decrypt``, ``encrypt``), ``keys fetch``, ``operator`` and ``bench``."""
import argparse
import json
import os
import signal
import threading
import time
from typing import Any, Dict, List

from ._common import CliError, _credentials, _fmt_int, _info, _json_out, _load_keys, _out, _progress
from ._formats import _AtomicOutput, _format_of, _Input, _text_column_of


def _result_schema(kind: str, prefix: str) -> Any:
    import pyarrow as pa

    from ..batch import decrypt_tokens, encrypt_tokens

    table = decrypt_tokens([], None).to_arrow() if kind == "decrypt" else encrypt_tokens([], None).to_arrow()
    return pa.schema([pa.field(prefix + f.name, f.type) for f in table.schema])


def _run_file_job(args: argparse.Namespace, kind: str) -> int:
    import pyarrow as pa

    from ..batch import decrypt_tokens, encrypt_tokens

    if args.batch_size < 1:
        raise CliError("--batch-size must be positive")
    if args.threads is not None and args.threads < 1:
        raise CliError("--threads must be positive")
    keys = _load_keys(args.keys)
    inp = _Input(args.input, args.column, args.batch_size)
    _format_of(args.output)  # an unknown output type fails before any work
    inp.check_column(args.column, "token" if kind == "decrypt" else "uid")
    domain_col = getattr(args, "domain_column", None)
    if domain_col is not None:
        if inp.format == "text":
            raise CliError("--domain-column needs a CSV or Parquet input (a text file has one column)")
        inp.check_column(domain_col, "domain")
    if os.path.abspath(args.input) == os.path.abspath(args.output):
        raise CliError("INPUT and OUTPUT are the same file")
    results = _result_schema(kind, args.prefix)
    clash = [f.name for f in results if f.name in inp.schema.names]
    if clash:
        raise CliError(f"{args.input}: already has column(s) {', '.join(clash)}; pick a --prefix for the results")
    out_schema = pa.schema(list(inp.schema) + list(results))
    text_column = args.prefix + ("uid" if kind == "decrypt" else "token")
    col_index = inp.schema.get_field_index(args.column)
    dom_index = None if domain_col is None else inp.schema.get_field_index(domain_col)

    counts: Dict[str, int] = {}
    rows = 0
    engine_seconds = 0.0
    start = time.perf_counter()
    with _AtomicOutput(args.output, out_schema, text_column) as out:
        with _progress(args, total=inp.total, unit="rows", desc=kind) as bar:
            for batch in inp.batches():
                if batch.num_rows == 0:
                    continue
                values = _text_column_of(batch, col_index, args.input, args.column)
                t0 = time.perf_counter()
                res: Any
                if kind == "decrypt":
                    domains = None
                    if dom_index is not None:
                        domains = _text_column_of(batch, dom_index, args.input, str(domain_col))
                    res = decrypt_tokens(values, keys, client=args.client, domain_names=domains,
                                         threads=args.threads)
                else:
                    res = encrypt_tokens(values, keys, keyset_id=args.keyset_id, threads=args.threads)
                engine_seconds += time.perf_counter() - t0
                for status, n in res.status_counts().items():
                    counts[status.name] = counts.get(status.name, 0) + n
                table = res.to_arrow()
                arrays = [batch.column(i) for i in range(batch.num_columns)]
                arrays += [table.column(i).combine_chunks() for i in range(table.num_columns)]
                out.write(pa.RecordBatch.from_arrays(arrays, schema=out_schema))
                rows += batch.num_rows
                bar.update(batch.num_rows)
        out.commit()
    seconds = time.perf_counter() - start
    summary = {
        "command": kind, "input": args.input, "output": args.output, "rows": rows,
        "status_counts": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
        "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds) if seconds > 0 else None,
        "engine_us_per_token": round(engine_seconds / rows * 1e6, 3) if rows else None,
    }
    from .. import backend

    summary["backend"] = backend
    if args.json:
        _json_out(summary)
    elif not args.quiet:
        verb = "decrypted" if kind == "decrypt" else "encrypted"
        status_text = ", ".join(f"{k}={v:,}" for k, v in summary["status_counts"].items()) or "no rows"
        rate = f"{_fmt_int(rows / seconds)} rows/s" if seconds > 0 and rows else "-"
        _info(args, f"{verb} {rows:,} rows -> {args.output} in {seconds:.2f} s ({rate}, engine {backend}): "
                    f"{status_text}")
    return 0


# ---------------------------------------------------------------------------------------------------
# keys fetch
# ---------------------------------------------------------------------------------------------------
def _cmd_keys_fetch(args: argparse.Namespace) -> int:
    from .. import _http
    from ..identity_scope import IdentityScope
    from ..keyfile import parse_keys_body, save_keys
    from ..refresh_keys_util import _KeyFetcher

    api_key, secret = _credentials(args)
    base_url = args.base_url.rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise CliError(f"--base-url must start with http:// or https://, not {args.base_url!r}")
    _format_json_path(args.output)
    path = "/v2/key/bidstream" if args.kind == "bidstream" else "/v2/key/sharing"
    # --timeout bounds the whole fetch: every attempt and the retries between them.
    limits = {path: args.max_response_bytes} if args.max_response_bytes else {}
    config = _http.HttpConfig(connect_timeout=args.timeout, read_timeout=args.timeout, attempt_timeout=args.timeout,
                              call_timeout=args.timeout, retries=2, response_limits=limits)
    try:
        with _KeyFetcher(base_url, api_key, secret, config) as fetcher:
            payload = fetcher.fetch(path)
    except _http.Uid2HttpError as exc:
        status = getattr(exc, "status", None) or getattr(exc, "code", None)
        hint = " (check the API key and secret key)" if status in (400, 401, 403) else ""
        raise CliError(f"fetching {args.kind} keys from {base_url} failed: {exc.message}{hint}") from None
    except ValueError as exc:  # the response envelope did not decrypt: usually the wrong secret
        raise CliError(f"fetching {args.kind} keys from {base_url}: the response could not be decrypted "
                       f"({exc}); check the secret key") from None
    try:
        response = json.loads(payload)
    except ValueError:
        raise CliError(f"{base_url}{path} answered with something that is not JSON") from None
    status = response.get("status") if isinstance(response, dict) else None
    if status != "success":
        raise CliError(f"{base_url}{path} answered status {status!r}")
    body = response.get("body")
    keys = parse_keys_body(body, f"{base_url}{path}")
    try:
        save_keys(body, args.output)
    except OSError as exc:
        raise CliError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
    info = {"output": args.output, "kind": args.kind, "keys": len(keys),
            "identity_scope": IdentityScope(keys.get_identity_scope()).name,
            "caller_site_id": keys.get_caller_site_id()}
    if args.json:
        _json_out(info)
    else:
        _info(args, f"wrote {info['keys']} {args.kind} keys ({info['identity_scope']}) to {args.output} (mode 0600)")
    return 0


def _format_json_path(path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(f"{path}: the directory {directory} does not exist")


# ---------------------------------------------------------------------------------------------------
# operator
# ---------------------------------------------------------------------------------------------------
def _cmd_operator(args: argparse.Namespace) -> int:
    from ..testing import LocalOperator

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    # Both signals only set the event, so a Ctrl-C at any moment ends the loop and closes the operator cleanly.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            op = LocalOperator(identity_scope=args.scope, port=args.port)
        except OSError as exc:
            raise CliError(f"cannot listen on 127.0.0.1:{args.port} ({exc.strerror or exc})") from None
        with op:
            roles = ("publisher", "bidstream", "sharer", "mapper")
            creds = {role: op.credentials(role) for role in roles}
            if args.json:
                _out(json.dumps({"base_url": op.base_url, "identity_scope": op.identity_scope,
                                 "credentials": {r: {"api_key": k, "secret_key": s} for r, (k, s) in creds.items()}}))
            else:
                # These are fake credentials of a local test operator; printing them is the point.
                _out(f"uid2fast local {op.identity_scope} operator listening on {op.base_url}")
                _out(f"  {'role':<10} {'api key':<56} secret key")
                for role, (key, secret) in creds.items():
                    _out(f"  {role:<10} {key:<56} {secret}")
                _out("Press Ctrl-C to stop.")
            while not stop.wait(0.5):
                pass
        if not args.json:
            _info(args, "operator stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .. import _bench

    argv: List[str] = []
    if args.plot:
        argv += ["--plot", args.plot]
    if args.quick:
        argv.append("--quick")
    if args.json:
        argv.append("--json")
    if args.count is not None:
        argv += ["--count", str(args.count)]
    return _bench.main(argv)
