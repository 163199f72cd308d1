"""The argument parser of the ``uid2fast`` command."""
import argparse

from ._commands import _cmd_bench, _cmd_keys_fetch, _cmd_operator
from ._common import DEFAULT_BATCH_SIZE
from ._demo import _cmd_demo
from ._filejob import EXIT_ROWS_FAILED, run_file_job
from ._formats import FORMATS


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _scope(text: str) -> str:
    value = text.upper()
    if value not in ("UID2", "EUID"):
        raise argparse.ArgumentTypeError(f"must be UID2 or EUID, not {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

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
    p.add_argument("--legacy-32", action="store_true",
                   help="legacy 32-byte raw UIDs instead of the operator's current 33-byte ones (for comparison)")
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
    f.add_argument("--timeout", type=_positive_float, default=30.0,
                   help="seconds for the whole fetch, retries included (default 30)")
    f.add_argument("--max-response-bytes", type=_positive_int,
                   help="largest response body accepted, after decompression (default 64 MiB)")
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
        p.add_argument("input", metavar="INPUT", help="the input file, or - for standard input (CSV or text)")
        p.add_argument("output", metavar="OUTPUT", help="the output file, or - for standard output (CSV or text)")
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
        p.add_argument("--input-format", choices=FORMATS,
                       help="the input's format (default: from its extension; text for -)")
        p.add_argument("--output-format", choices=FORMATS,
                       help="the output's format (default: from its extension; text for -)")
        p.add_argument("--fail-on", choices=("all", "any", "never"), default="all",
                       help=f"exit with status {EXIT_ROWS_FAILED} (after writing the output) when no row succeeded "
                            f"(all, the default) or when any row did not (any), with a diagnosis on stderr; "
                            f"never: exit 0 whatever the statuses")
        p.set_defaults(func=lambda a, k=kind: run_file_job(a, k))

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
