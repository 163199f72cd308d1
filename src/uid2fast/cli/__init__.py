"""The ``uid2fast`` command line.

::

    uid2fast demo [--scope UID2|EUID] [--count N] [--seconds S]
    uid2fast keys fetch --base-url URL --kind bidstream|sharing -o keys.json
    uid2fast decrypt --keys keys.json INPUT OUTPUT --column token [--client bidstream|sharing] ...
    uid2fast encrypt --keys keys.json INPUT OUTPUT --column uid [--keyset-id N]
    uid2fast operator [--port P] [--scope UID2|EUID]
    uid2fast bench [--plot FILE] [--quick]

Files are CSV, Parquet or newline-separated text, chosen by extension (``.csv``, ``.parquet``/``.pq``,
``.txt``; ``.csv.gz``/``.txt.gz`` are compressed) or by ``--input-format``/``--output-format``; ``-`` is
standard input or output (CSV or text; text unless the format flag says CSV). They are streamed in
batches, so memory stays flat for any file size. An output file is written under a temporary name in its
directory and renamed into place only when complete: a failure, SIGINT, SIGTERM or SIGHUP never leaves
half a file or a temporary one. INPUT and OUTPUT must be different files (compared by device and inode,
so a symlink or hard link to the input is refused).

Exit status: 0 done; 1 bad input or another error (one line on stderr naming the file, and the line where
there is one; no traceback unless ``UID2FAST_DEBUG=1``); 2 argument errors; 3 the output was written but
no row succeeded (``--fail-on all``, the default) or some row did not (``--fail-on any``), with a
diagnosis on stderr (``--fail-on never`` makes it 0); 130 SIGINT, 143 SIGTERM, 129 SIGHUP. A missing
optional dependency is named, with the extra that brings it, before any work. Human-readable output goes
to stderr for the file commands and to stdout for ``demo``, ``operator`` and ``bench``; ``--json`` writes
the data to stdout as JSON.
"""
import os
from typing import Optional, Sequence

from ._common import CliError, Terminated, _err
from ._parser import build_parser

__all__ = ["main", "build_parser", "CliError"]


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
    except Terminated as exc:
        import signal

        _err(f"terminated by {signal.Signals(exc.signum).name}")
        return 128 + exc.signum
    except CliError as exc:
        if debug and exc.exit_status == 1:
            raise
        _err(str(exc))
        return exc.exit_status
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
        from .._http import Uid2HttpError

        if isinstance(exc, Uid2HttpError):
            return exc.message
    except ImportError:  # pragma: no cover
        pass
    if isinstance(exc, ValueError):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (set UID2FAST_DEBUG=1 for a traceback)"

