"""The ``uid2fast`` command line.

::

    uid2fast demo [--scope UID2|EUID] [--count N] [--seconds S]
    uid2fast keys fetch --base-url URL --kind bidstream|sharing -o keys.json
    uid2fast decrypt --keys keys.json INPUT OUTPUT --column token [--client bidstream|sharing] ...
    uid2fast encrypt --keys keys.json INPUT OUTPUT --column uid [--keyset-id N]
    uid2fast operator [--port P] [--scope UID2|EUID]
    uid2fast bench [--plot FILE] [--quick]

Files are CSV, Parquet or newline-separated text, chosen by extension (``.csv``, ``.parquet``/``.pq``,
``.txt``; ``.csv.gz``/``.txt.gz`` are compressed). They are streamed in batches, so memory stays flat for
any file size. An output file is written under a temporary name in its directory and renamed into place
only when complete: a failure never leaves half a file.

Bad input gives one line on stderr and exit status 1 (argument errors: 2); no traceback unless
``UID2FAST_DEBUG=1``. Human-readable output goes to stderr for the file commands and to stdout for
``demo``, ``operator`` and ``bench``; ``--json`` writes the data to stdout as JSON.
"""
import argparse
import base64
import binascii
import concurrent.futures
import gzip
import json
import os
import platform
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

__all__ = ["main"]

DEFAULT_BATCH_SIZE = 65_536
_SECRETS: List[str] = []  # credentials this process holds; scrubbed from any error line


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit status 1."""


# ---------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------
def _scrub(text: str) -> str:
    for secret in _SECRETS:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())  # one line, whatever the exception text held


def _err(message: str) -> None:
    sys.stderr.write(f"uid2fast: error: {_scrub(message)}\n")
    sys.stderr.flush()


def _info(args: argparse.Namespace, message: str) -> None:
    if not getattr(args, "quiet", False):
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _json_out(data: Any) -> None:
    _out(json.dumps(data, indent=2, sort_keys=False, default=str))


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _progress(args: argparse.Namespace, *, total: Optional[int], unit: str, desc: str) -> Any:
    """A tqdm bar on stderr, shown only after a second of work, only on a terminal, not with --quiet."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, delay=1.0, unit_scale=True,
                dynamic_ncols=True, leave=False)


def _fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def _fmt_us(us: float) -> str:
    return f"{us:.3f}" if us < 1 else f"{us:.2f}" if us < 100 else f"{us:,.0f}"


def _credentials(args: argparse.Namespace) -> Tuple[str, bytes]:
    api_key = args.api_key or os.environ.get("UID2_API_KEY") or ""
    secret = args.secret_key or os.environ.get("UID2_SECRET_KEY") or ""
    _SECRETS.extend([api_key, secret])
    if not api_key:
        raise CliError("no API key: set UID2_API_KEY or pass --api-key")
    if not secret:
        raise CliError("no secret key: set UID2_SECRET_KEY or pass --secret-key")
    try:
        secret_bytes = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise CliError("the secret key is not valid base64") from None
    if len(secret_bytes) != 32:
        raise CliError(f"the secret key must decode to 32 bytes, not {len(secret_bytes)}")
    return api_key, secret_bytes


def _load_keys(path: str) -> Any:
    from .keyfile import _looks_like_json, load_keys

    if _looks_like_json(path) and not os.path.exists(path):  # never echo it: it holds the key secrets
        raise CliError("--keys takes the path of a key file (see `uid2fast keys fetch`), not the keys JSON")
    try:
        return load_keys(path)
    except OSError as exc:
        raise CliError(f"cannot read key file {path}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------------
# file formats
# ---------------------------------------------------------------------------------------------------
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".txt": "text", ".text": "text",
            ".tokens": "text"}


def _format_of(path: str) -> Tuple[str, bool]:
    """(``csv`` | ``parquet`` | ``text``, gzip-compressed?) from the file name."""
    name = path.lower()
    gz = name.endswith(".gz")
    if gz:
        name = name[:-3]
    ext = os.path.splitext(name)[1]
    fmt = _FORMATS.get(ext)
    if fmt is None or (gz and fmt == "parquet"):
        known = ", ".join(sorted(set(_FORMATS) | {".csv.gz", ".txt.gz"}))
        raise CliError(f"{path}: unknown file type {ext + ('.gz' if gz else '') or '(no extension)'!r}; "
                       f"use one of {known}")
    return fmt, gz


class _Input:
    """An input file opened for streaming: its Arrow schema, row count when known, and a batch iterator."""

    def __init__(self, path: str, column: str, batch_size: int):
        import pyarrow as pa

        self.path = path
        self.format, self.gz = _format_of(path)
        self.total: Optional[int] = None
        if not os.path.exists(path):
            raise CliError(f"{path}: no such file")
        if os.path.isdir(path):
            raise CliError(f"{path}: is a directory")
        if not os.access(path, os.R_OK):
            raise CliError(f"{path}: permission denied")
        self._batch_size = batch_size
        self._column = column
        if self.format == "parquet":
            import pyarrow.parquet as pq

            try:
                # buffer_size > 0 streams column chunks page by page instead of loading whole row groups.
                self._pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
            except (pa.ArrowException, OSError) as exc:
                raise CliError(f"{path}: not a readable Parquet file ({exc})") from None
            self.schema = self._pf.schema_arrow
            self.total = self._pf.metadata.num_rows
        elif self.format == "csv":
            import pyarrow.csv as pacsv

            self._block = int(min(max(batch_size * 256, 1 << 20), 256 << 20))
            try:
                probe = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=self._block))
                names = probe.schema.names
                probe.close()
            except (pa.ArrowException, OSError) as exc:
                raise CliError(f"{path}: not a readable CSV file ({exc})") from None
            if len(set(names)) != len(names):
                raise CliError(f"{path}: the CSV header repeats a column name")
            # Every column as text: values pass through unchanged and a later block can never
            # contradict the types guessed from the first one.
            self._convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names})
            self.schema = pa.schema([pa.field(n, pa.string()) for n in names])
        else:
            self.schema = pa.schema([pa.field(column, pa.string())])

    def batches(self) -> Iterator[Any]:
        import pyarrow as pa

        if self.format == "parquet":
            yield from self._pf.iter_batches(batch_size=self._batch_size)
        elif self.format == "csv":
            import pyarrow.csv as pacsv

            reader = pacsv.open_csv(self.path, read_options=pacsv.ReadOptions(block_size=self._block),
                                    convert_options=self._convert)
            try:
                for batch in reader:
                    yield batch
            finally:
                reader.close()
        else:
            opener: Callable[..., Any] = gzip.open if self.gz else open
            with opener(self.path, "rt", encoding="utf-8") as f:
                buf: List[str] = []
                try:
                    for line in f:
                        buf.append(line[:-1] if line.endswith("\n") else line)
                        if len(buf) >= self._batch_size:
                            yield pa.record_batch([pa.array(buf, pa.string())], names=[self._column])
                            buf = []
                except UnicodeDecodeError:
                    raise CliError(f"{self.path}: not UTF-8 text") from None
                if buf:
                    yield pa.record_batch([pa.array(buf, pa.string())], names=[self._column])

    def check_column(self, column: str, what: str) -> None:
        if column not in self.schema.names:
            shown = ", ".join(self.schema.names[:20]) + (", ..." if len(self.schema.names) > 20 else "")
            raise CliError(f"{self.path}: no {what} column {column!r} (columns: {shown})")


class _AtomicOutput:
    """Writes an output file under a temporary name beside it; ``commit()`` renames it into place."""

    def __init__(self, path: str, schema: Any, text_column: Optional[str]):
        import pyarrow as pa

        self.path = path
        self.format, gz = _format_of(path)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise CliError(f"{path}: the directory {directory} does not exist")
        self.tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        self._text_column = text_column
        self._writer: Any = None
        self._file: Any = None
        try:
            if self.format == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self.tmp, schema)
            elif self.format == "csv":
                import pyarrow.csv as pacsv

                sink = pa.output_stream(self.tmp, compression="gzip" if gz else None)
                self._file = sink
                self._writer = pacsv.CSVWriter(sink, schema)
            else:
                opener: Callable[..., Any] = gzip.open if gz else open
                self._file = opener(self.tmp, "wt", encoding="utf-8", newline="\n")
        except PermissionError:
            self._discard()
            raise CliError(f"{path}: permission denied") from None
        except OSError as exc:
            self._discard()
            raise CliError(f"{path}: cannot write ({exc.strerror or exc})") from None

    def write(self, batch: Any) -> None:
        if self.format == "text":
            values = batch.column(batch.schema.get_field_index(self._text_column)).to_pylist()
            self._file.write("".join(("" if v is None else v) + "\n" for v in values))
        else:
            self._writer.write_batch(batch)

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._file is not None:
            self._file.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.tmp, 0o666 & ~umask)  # as an ordinary open() would have created it
        os.replace(self.tmp, self.path)

    def _discard(self) -> None:
        for obj in (self._writer, self._file):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # noqa: BLE001 - already failing; the temporary file goes anyway
                pass
        try:
            os.unlink(self.tmp)
        except OSError:
            pass

    def __enter__(self) -> "_AtomicOutput":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self._discard()


def _text_column_of(batch: Any, index: int, path: str, name: str) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    col = batch.column(index)
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col
    if pa.types.is_null(t) or pa.types.is_dictionary(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t) \
            or getattr(pa.types, "is_string_view", lambda _: False)(t):
        try:
            return pc.cast(col, pa.string())
        except pa.ArrowException:
            raise CliError(f"{path}: column {name!r} holds bytes that are not UTF-8 text") from None
    raise CliError(f"{path}: column {name!r} has type {t}; it must hold text")


def _result_schema(kind: str, prefix: str) -> Any:
    import pyarrow as pa

    from .batch import decrypt_tokens, encrypt_tokens

    table = decrypt_tokens([], None).to_arrow() if kind == "decrypt" else encrypt_tokens([], None).to_arrow()
    return pa.schema([pa.field(prefix + f.name, f.type) for f in table.schema])


def _run_file_job(args: argparse.Namespace, kind: str) -> int:
    import pyarrow as pa

    from .batch import decrypt_tokens, encrypt_tokens

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
    from . import backend

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
    from . import _http
    from .identity_scope import IdentityScope
    from .keyfile import parse_keys_body, save_keys

    api_key, secret = _credentials(args)
    base_url = args.base_url.rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise CliError(f"--base-url must start with http:// or https://, not {args.base_url!r}")
    _format_json_path(args.output)
    path = "/v2/key/bidstream" if args.kind == "bidstream" else "/v2/key/sharing"
    config = _http.HttpConfig(connect_timeout=args.timeout, read_timeout=args.timeout, retries=2)
    try:
        payload = _http.post_enveloped(base_url, path, api_key, secret, None, config=config)
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
    from .testing import LocalOperator

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


# ---------------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------------
def _time_path(fn: Callable[[], Any], n_items: int, budget: float) -> Tuple[float, int, Any]:
    """(µs per item, items processed, first result): runs ``fn`` until ``budget`` seconds have passed."""
    t0 = time.perf_counter()
    first = fn()
    calls = 1
    elapsed = time.perf_counter() - t0
    while elapsed < budget:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
    return elapsed / (calls * n_items) * 1e6, calls * n_items, first


def _tamper(token: str) -> str:
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def _cmd_demo(args: argparse.Namespace) -> int:
    import random


    from . import BidstreamClient, IdentityMapV3Client, IdentityMapV3Input, SharingClient
    from . import TokenGenerateInput, Uid2PublisherClient, __version__, backend
    from .testing import LocalOperator

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

    with LocalOperator(identity_scope=scope) as op:
        say(f"uid2fast {__version__} demo: local {scope} operator at {op.base_url}, engine: {backend}")
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
        pub_creds = op.credentials("publisher")

        def generate(ident: Tuple[str, str]) -> Optional[str]:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = Uid2PublisherClient(op.base_url, *pub_creds)
            kind, value = ident
            tgi = TokenGenerateInput.from_email(value) if kind == "email" else TokenGenerateInput.from_phone(value)
            resp = client.generate_token(tgi)
            identity = resp.get_identity() if resp.is_success() else None
            return None if identity is None else identity.get_advertising_token()

        t0 = time.perf_counter()
        tokens_or_none: List[Optional[str]] = []
        with _progress(args, total=len(identities), unit="tokens", desc="issuing tokens") as bar, \
                concurrent.futures.ThreadPoolExecutor(max_workers=args.workers) as pool:
            for tok in pool.map(generate, identities, chunksize=16):
                tokens_or_none.append(tok)
                bar.update(1)
        gen_s = time.perf_counter() - t0
        ok_idx = [i for i, t in enumerate(tokens_or_none) if t is not None]
        tokens: List[str] = [t for t in tokens_or_none if t is not None]
        if not tokens:
            raise CliError("the local operator issued no tokens")
        report["tokens_issued"] = len(tokens)
        report["token_generate_per_second"] = round(len(identities) / gen_s)
        say(f"operator issued {len(tokens):,} advertising tokens ({len(emails):,} emails, {len(phones):,} phones) "
            f"over HTTP in {gen_s:.1f} s ({_fmt_int(len(identities) / gen_s)} requests/s)")

        # 3. time each path on the same tokens
        rows: List[Dict[str, Any]] = []
        n_paths = 9  # six uid2fast paths, three official ones
        budget = max(timing_budget / n_paths, 0.02)

        def scalar_decrypt() -> List[Any]:
            d = bid.decrypt_token_into_raw_uid
            return [d(t) for t in tokens]

        us, done, scalar_res = _time_path(scalar_decrypt, len(tokens), budget)
        rows.append({"path": "decrypt, one by one (BidstreamClient.decrypt_token_into_raw_uid)", "group": "decrypt",
                     "tokens": done, "us_per_token": us})
        us, done, batch1 = _time_path(lambda: bid.decrypt_tokens_into_raw_uids(tokens, threads=1), len(tokens), budget)
        rows.append({"path": "decrypt, batch 1 thread (decrypt_tokens_into_raw_uids)", "group": "decrypt",
                     "tokens": done, "us_per_token": us})
        threads = os.cpu_count() or 1
        us, done, batch = _time_path(lambda: bid.decrypt_tokens_into_raw_uids(tokens), len(tokens), budget)
        rows.append({"path": f"decrypt, batch all threads ({threads} cores)", "group": "decrypt",
                     "tokens": done, "us_per_token": us})
        uids = batch.uids()
        uid_list = [u for u in uids if u is not None]

        def scalar_encrypt() -> List[Any]:
            e = share.encrypt_raw_uid_into_token
            return [e(u) for u in uid_list]

        us, done, _ = _time_path(scalar_encrypt, len(uid_list), budget)
        rows.append({"path": "sharing encrypt, one by one (encrypt_raw_uid_into_token)", "group": "encrypt",
                     "tokens": done, "us_per_token": us})
        us, done, enc = _time_path(lambda: share.encrypt_raw_uids_into_tokens(uid_list), len(uid_list), budget)
        rows.append({"path": "sharing encrypt, batch (encrypt_raw_uids_into_tokens)", "group": "encrypt",
                     "tokens": done, "us_per_token": us})
        sharing_tokens = list(enc.tokens)
        us, done, shared_back = _time_path(lambda: share.decrypt_tokens_into_raw_uids(sharing_tokens),
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
        mixed_res = bid.decrypt_tokens_into_raw_uids(mixed)
        report["status_counts"] = {s.name: n for s, n in mixed_res.status_counts().items()}
        report["status_counts_input"] = {"operator_tokens": len(tokens), "tampered_copies": n_bad}

        # 6. the official SDK, when installed
        official = _official_demo(op, tokens, uids, uid_list, sharing_tokens, budget, rng)
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
    elif not args.quiet:
        _print_demo(report, rows, checks)
    failed = [c for c, ok, _ in checks if not ok]
    if failed:
        _err(f"demo check failed: {failed[0]}")
        return 1
    return 0


def _official_demo(op: Any, tokens: List[str], uids: List[Optional[str]], uid_list: List[str],
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
    sample = [tokens[i] for i in idx]
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
        return [d(t, None) for t in sample]

    us, done, res = _time_path(dec, n, budget)
    rows.append({"path": f"official uid2-client {version}: decrypt, one by one", "group": "decrypt",
                 "tokens": done, "us_per_token": us, "official": True})
    agree = sum(1 for r, i in zip(res, idx) if r.uid == uids[i])
    checks.append((f"official uid2-client {version} decrypts the same raw UIDs", agree == n, f"{agree}/{n}"))
    u_sample = [uid_list[i % len(uid_list)] for i in idx]

    def enc() -> List[Any]:
        e = share.encrypt_raw_uid_into_token
        return [e(u) for u in u_sample]

    us, done, _ = _time_path(enc, n, budget)
    rows.append({"path": f"official uid2-client {version}: sharing encrypt, one by one", "group": "encrypt",
                 "tokens": done, "us_per_token": us, "official": True})
    st_sample = [sharing_tokens[i % len(sharing_tokens)] for i in idx]

    def sdec() -> List[Any]:
        d = share.decrypt_token_into_raw_uid
        return [d(t) for t in st_sample]

    us, done, sres = _time_path(sdec, n, budget)
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


# ---------------------------------------------------------------------------------------------------
# bench
# ---------------------------------------------------------------------------------------------------
def _cmd_bench(args: argparse.Namespace) -> int:
    from . import _bench

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


# ---------------------------------------------------------------------------------------------------
# argument parsing
# ---------------------------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _scope(text: str) -> str:
    value = text.upper()
    if value not in ("UID2", "EUID"):
        raise argparse.ArgumentTypeError(f"must be UID2 or EUID, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary on stderr")
    common.add_argument("--json", action="store_true", help="write the results to stdout as JSON")

    parser = argparse.ArgumentParser(
        prog="uid2fast", description="Fast UID2/EUID token decryption and encryption: files, keys, a local "
                                     "operator, benchmarks.")
    parser.add_argument("--version", action="version", version=f"uid2fast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", parents=[common], help="run the local operator end to end and print a throughput table")
    p.add_argument("--scope", type=_scope, default="UID2", help="UID2 (default) or EUID")
    p.add_argument("--count", type=_positive_int, default=2000, help="identities to issue tokens for (default 2000)")
    p.add_argument("--workers", type=_positive_int, default=4, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=5.0,
                   help="seconds spent timing the paths, roughly (default 5); issuing the tokens comes on top")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("keys", help="key files")
    keys_sub = p.add_subparsers(dest="keys_command", metavar="ACTION")
    keys_sub.required = True
    f = keys_sub.add_parser("fetch", parents=[common],
                            help="fetch the bidstream or sharing keys into a file (mode 0600)")
    f.add_argument("--base-url", required=True, help="the operator, e.g. https://prod.uidapi.com")
    f.add_argument("--kind", choices=("bidstream", "sharing"), required=True)
    f.add_argument("-o", "--output", required=True, help="the key file to write")
    f.add_argument("--api-key", help="API key (default: $UID2_API_KEY)")
    f.add_argument("--secret-key", help="client secret (default: $UID2_SECRET_KEY)")
    f.add_argument("--timeout", type=float, default=30.0, help="HTTP timeout in seconds (default 30)")
    f.set_defaults(func=_cmd_keys_fetch)

    for kind in ("decrypt", "encrypt"):
        what = "tokens into raw UIDs" if kind == "decrypt" else "raw UIDs into sharing tokens"
        p = sub.add_parser(kind, parents=[common], help=f"{kind} a file of {what} (CSV, Parquet or text)",
                           description=f"{kind.capitalize()} a CSV, Parquet or text file of {what}, streamed in "
                                       "batches; the result columns are appended to the input columns. A text "
                                       "file has one value per line and gets one result per line ("
                                       + ("the raw UID, empty when it did not decrypt" if kind == "decrypt" else
                                          "the token, empty when it could not be encrypted") + ").")
        p.add_argument("--keys", required=True, help="key file from `uid2fast keys fetch`")
        p.add_argument("input", metavar="INPUT")
        p.add_argument("output", metavar="OUTPUT")
        p.add_argument("--column", default="token" if kind == "decrypt" else "uid",
                       help=f"the input column (default {'token' if kind == 'decrypt' else 'uid'})")
        if kind == "decrypt":
            p.add_argument("--client", choices=("bidstream", "sharing"), default="bidstream",
                           help="which checks apply (default bidstream)")
            p.add_argument("--domain-column", help="column with the domain or app name (bidstream CSTG check)")
        else:
            p.add_argument("--keyset-id", type=int, help="encrypt with this keyset (default: the default keyset)")
        p.add_argument("--threads", type=_positive_int, help="worker threads (default: all cores)")
        p.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH_SIZE,
                       help=f"rows per batch (default {DEFAULT_BATCH_SIZE}; approximate for CSV)")
        p.add_argument("--prefix", default="", help="prefix for the result column names (default none)")
        p.set_defaults(func=lambda a, k=kind: _run_file_job(a, k))

    p = sub.add_parser("operator", parents=[common], help="run a local fake operator for integration tests")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--scope", type=_scope, default="UID2", help="UID2 (default) or EUID")
    p.set_defaults(func=_cmd_operator)

    p = sub.add_parser("bench", parents=[common], help="benchmark against the official SDK")
    p.add_argument("--plot", metavar="FILE", help="also draw a bar chart PNG (needs matplotlib)")
    p.add_argument("--quick", action="store_true", help="fewer tokens, shorter timings")
    p.add_argument("--count", type=_positive_int, help="tokens per version (default 20000; --quick 2000)")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = os.environ.get("UID2FAST_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except CliError as exc:
        if debug:
            raise
        _err(str(exc))
        return 1
    except BrokenPipeError:
        return 1
    except Exception as exc:  # noqa: BLE001 - the contract is one line and a status, never a traceback
        if debug:
            raise
        _err(_describe(exc))
        return 1


def _describe(exc: BaseException) -> str:
    """One line for an exception that was not already a CliError."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror or exc}"
    try:
        import pyarrow as pa

        if isinstance(exc, pa.ArrowException):
            return f"cannot read the input: {exc}"
    except ImportError:  # pragma: no cover
        pass
    try:
        from ._http import Uid2HttpError

        if isinstance(exc, Uid2HttpError):
            return exc.message
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (set UID2FAST_DEBUG=1 for a traceback)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
