"""``uid2fast decrypt`` and ``uid2fast encrypt``: an input's rows, plus the result columns, into an output.

Exit status: 0 when the job ran (rows that did not decrypt carry their status), 1 on an error (nothing is
left behind), 3 when no row succeeded (``--fail-on all``, the default) or when any row failed
(``--fail-on any``), with a diagnosis on stderr; ``--fail-on never`` makes such a run 0. The output is
complete in every case but an error. SIGINT, SIGTERM and SIGHUP remove the temporary output and exit
with 128 + the signal number.
"""
import argparse
import contextlib
import signal
import time
from typing import Any, Dict, Iterator, List

from ._common import CliError, Terminated, _fmt_int, _info, _json_out, _load_keys, _progress, require
from ._diagnose import diagnose
from ._pipeline import Pipeline, Serial
from ._formats import STDIO, AtomicOutput, Input, display_name, format_of, same_file, text_column_of

EXIT_ROWS_FAILED = 3


@contextlib.contextmanager
def cleanup_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` in the main thread and SIGINT KeyboardInterrupt, so that
    the ``with`` blocks of the job remove its temporary output on the way out."""
    fired: List[int] = []

    def handler(signum: int, frame: Any) -> None:
        if not fired:  # one exception: a second signal during the cleanup must not cut it short
            fired.append(signum)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise Terminated(signum)

    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None), signal.SIGINT):
        if sig is None:
            continue
        # SIGINT gets a handler of ours too: while Python's own is installed, pyarrow routes SIGINT to a stop
        # token of the Arrow call in progress, and a read waiting on a pipe never looks at it (the job hung
        # until stdin closed). A SIGINT the caller ignores (a background job) stays ignored.
        if sig == signal.SIGINT and signal.getsignal(sig) is signal.SIG_IGN:
            continue
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (main() called from a worker): signals stay as they are
            break
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _code_names() -> Dict[str, Any]:
    """The result columns that hold enum codes, each with the labels of its codes (code i -> labels[i])."""
    from ..identity_scope import IdentityScope
    from ..identity_type import IdentityType

    return {name: [m.name for m in sorted(enum, key=int)]
            for name, enum in (("identity_type", IdentityType), ("identity_scope", IdentityScope))}


def result_schema(kind: str, prefix: str, csv: bool = False) -> Any:
    """The result columns' schema; for CSV output the code and timestamp columns are text (see _for_csv)."""
    import pyarrow as pa

    from ..batch import decrypt_tokens, encrypt_tokens

    table = decrypt_tokens([], None).to_arrow() if kind == "decrypt" else encrypt_tokens([], None).to_arrow()
    if csv:
        table = _for_csv(table)
    return pa.schema([pa.field(prefix + f.name, f.type) for f in table.schema])


def _for_csv(table: Any) -> Any:
    """The result table as CSV output writes it: each code column as its labels (null stays null), like
    ``status``, and each UTC timestamp as the text Arrow's CSV writer gives it (``2026-01-02 03:04:05.678Z``),
    formatted here without a time zone lookup per value, which makes that writer slow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for name, labels in _code_names().items():
        i = table.schema.get_field_index(name)
        if i >= 0:
            table = table.set_column(i, name, pc.take(pa.array(labels, pa.string()), table.column(i)))
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            text = pc.cast(table.column(i).cast(pa.timestamp(field.type.unit)), pa.string())
            table = table.set_column(i, field.name, pc.binary_join_element_wise(text, pa.scalar("Z"), ""))
    return table


def run_file_job(args: argparse.Namespace, kind: str) -> int:
    require("pyarrow", f"uid2fast {kind}")
    if args.batch_size < 1:
        raise CliError("--batch-size must be positive")
    if args.threads is not None and args.threads < 1:
        raise CliError("--threads must be positive")
    if args.output == STDIO and args.json:
        raise CliError("--json writes the summary to standard output, which OUTPUT '-' already takes")
    format_of(args.output, args.output_format)  # an unknown output type fails before any work
    if same_file(args.input, args.output):
        raise CliError(f"INPUT {args.input} and OUTPUT {args.output} are the same file")
    keys = _load_keys(args.keys)
    with cleanup_on_signals(), Input(args.input, args.column, args.batch_size, args.input_format) as inp:
        return _run(args, kind, keys, inp)


def _run(args: argparse.Namespace, kind: str, keys: Any, inp: Input) -> int:
    import pyarrow as pa

    from ..batch import decrypt_tokens, encrypt_tokens

    inp.check_column(args.column, "token" if kind == "decrypt" else "uid")
    domain_col = getattr(args, "domain_column", None)
    if domain_col is not None:
        if inp.format == "text":
            raise CliError("--domain-column needs a CSV or Parquet input (a text file has one column)")
        inp.check_column(domain_col, "domain")
    out_format, _ = format_of(args.output, args.output_format)
    csv = out_format == "csv"
    results = result_schema(kind, args.prefix, csv=csv)
    clash = [f.name for f in results if f.name in inp.schema.names]
    if clash:
        raise CliError(f"{inp.name}: already has column(s) {', '.join(clash)}; pick a --prefix for the results")
    out_schema = pa.schema(list(inp.schema) + list(results))
    text_column = args.prefix + ("uid" if kind == "decrypt" else "token")
    col_index = inp.schema.get_field_index(args.column)
    dom_index = None if domain_col is None else inp.schema.get_field_index(domain_col)

    counts: Dict[str, int] = {}
    rows = 0
    engine_seconds = 0.0
    start = time.perf_counter()
    by_bytes = inp.format != "parquet"  # CSV and text: progress by bytes read (a percentage when the size is known)
    with AtomicOutput(args.output, out_schema, text_column, args.output_format) as out:
        # Files: reading, the engine and writing overlap (see _pipeline); standard input stays on this thread.
        stages = Serial(inp.batches(), out.write) if inp.path == STDIO else Pipeline(inp.batches(), out.write)
        with _progress(args, total=inp.total_bytes if by_bytes else inp.total, unit="B" if by_bytes else "rows",
                       desc=kind) as bar, stages:
            shown = 0
            for batch in stages.batches():
                if batch.num_rows == 0:
                    continue
                values = text_column_of(batch, col_index, inp.name, args.column)
                t0 = time.perf_counter()
                res: Any
                if kind == "decrypt":
                    domains = None
                    if dom_index is not None:
                        domains = text_column_of(batch, dom_index, inp.name, str(domain_col))
                    res = decrypt_tokens(values, keys, client=args.client, domain_names=domains,
                                         threads=args.threads)
                else:
                    res = encrypt_tokens(values, keys, keyset_id=args.keyset_id, threads=args.threads)
                engine_seconds += time.perf_counter() - t0
                for status, n in res.status_counts().items():
                    counts[status.name] = counts.get(status.name, 0) + n
                table = _for_csv(res.to_arrow()) if csv else res.to_arrow()
                arrays = [batch.column(i) for i in range(batch.num_columns)]
                arrays += [table.column(i).combine_chunks() for i in range(table.num_columns)]
                stages.write(pa.RecordBatch.from_arrays(arrays, schema=out_schema))
                rows += batch.num_rows
                done = inp.bytes_read if by_bytes else rows
                bar.update(done - shown)
                shown = done
            stages.finish()
            bar.set_postfix_str(f"{rows:,} rows")
        out.commit()
    seconds = time.perf_counter() - start
    return _report(args, kind, keys, inp, counts, rows, seconds, engine_seconds)


def _report(args: argparse.Namespace, kind: str, keys: Any, inp: Input, counts: Dict[str, int], rows: int,
            seconds: float, engine_seconds: float) -> int:
    from .. import backend

    succeeded = counts.get("SUCCESS", 0)
    failed = rows - succeeded
    diagnosis = None
    if rows and not succeeded:
        diagnosis = diagnose(kind, counts, keys, args.keys, args.column, getattr(args, "keyset_id", None))
    elif failed and args.fail_on == "any":
        diagnosis = f"{failed:,} of {rows:,} rows did not succeed (--fail-on any)"
    status = EXIT_ROWS_FAILED if diagnosis is not None and args.fail_on != "never" else 0
    summary = {
        "command": kind, "input": args.input, "output": args.output, "rows": rows,
        "status_counts": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
        "seconds": round(seconds, 3), "rows_per_second": round(rows / seconds) if seconds > 0 else None,
        "engine_us_per_token": round(engine_seconds / rows * 1e6, 3) if rows else None,
        "backend": backend, "diagnosis": diagnosis, "exit_status": status,
    }
    if args.json:
        _json_out(summary)
    elif not args.quiet:
        verb = "decrypted" if kind == "decrypt" else "encrypted"
        status_text = ", ".join(f"{k}={v:,}" for k, v in summary["status_counts"].items()) or "no rows"
        rate = f"{_fmt_int(rows / seconds)} rows/s" if seconds > 0 and rows else "-"
        target = display_name(args.output, output=True)
        _info(args, f"{verb} {rows:,} rows -> {target} in {seconds:.2f} s ({rate}, engine {backend}): {status_text}")
    if status:
        raise RowsFailed(f"{diagnosis} (exit status {EXIT_ROWS_FAILED}; the output is complete; "
                         f"--fail-on never accepts this)")
    if diagnosis is not None and not args.quiet and not args.json:
        _info(args, f"uid2fast: warning: {diagnosis}")
    return 0


class RowsFailed(CliError):
    """No row (or, with ``--fail-on any``, not every row) succeeded: exit status 3, after the output is written."""

    exit_status = EXIT_ROWS_FAILED
