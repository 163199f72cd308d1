"""Shared pieces of the command line: the error type, output helpers, progress bars, credentials, key files."""
import argparse
import importlib
import json
import os
import sys
from typing import Any, List, Optional, Tuple

DEFAULT_BATCH_SIZE = 65_536
_SECRETS: List[str] = []  # credentials this process holds; scrubbed from any error line


class CliError(Exception):
    """A problem with the user's input: printed as one line, exit status 1."""

    exit_status = 1


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: raised in the main thread like KeyboardInterrupt, so cleanup runs."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def printable(value: Any, limit: int = 200) -> str:
    """``value`` (text or bytes) safe for one terminal line: control characters, undecodable bytes and
    other unprintable characters escaped (``\\x00``, ``\\xff``), cut to ``limit`` characters."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        text = bytes(value).decode("utf-8", "surrogateescape")
    else:
        text = str(value)
    out = []
    for ch in text:
        if "\udc80" <= ch <= "\udcff":  # a byte that was not UTF-8
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    shown = "".join(out)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def require(module: str, what: str, extra: str = "cli") -> None:
    """Fail before any work when an optional dependency is missing, naming the extra that brings it."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise CliError(f"{what} needs {module}, which is not installed: pip install 'uid2fast[{extra}]' "
                       f"(or pip install {module})") from None


# ---------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------
def _scrub(text: str) -> str:
    from .._netpolicy import scrub

    # Every printed form of each credential (escaped, quoted, percent-encoded), before joining the lines.
    return " ".join(scrub(text, _SECRETS).split())  # one line, whatever the exception text held


def _err(message: str) -> None:
    sys.stderr.write(f"uid2fast: error: {printable(_scrub(message), limit=2000)}\n")
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
    """A tqdm bar on stderr, shown only after a second of work, only on a terminal, not with --quiet.

    With a ``total`` it shows a percentage; ``unit="B"`` counts bytes (KiB, MiB, ...)."""
    if getattr(args, "quiet", False) or not sys.stderr.isatty():
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, delay=1.0, unit_scale=True,
                unit_divisor=1024 if unit == "B" else 1000, dynamic_ncols=True, leave=False)


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
    from .._netpolicy import check_api_key, check_secret_key

    try:  # surrounding whitespace (a newline from a secrets file) is stripped; the messages never echo
        api_key = check_api_key(api_key)
        secret_bytes = check_secret_key(secret)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if len(secret_bytes) != 32:
        raise CliError(f"the secret key must decode to 32 bytes, not {len(secret_bytes)}")
    return api_key, secret_bytes


def _load_keys(path: str) -> Any:
    from ..keyfile import _looks_like_json, load_keys

    if _looks_like_json(path) and not os.path.exists(path):  # never echo it: it holds the key secrets
        raise CliError("--keys takes the path of a key file (see `uid2fast keys fetch`), not the keys JSON")
    try:
        return load_keys(path)
    except OSError as exc:
        raise CliError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        from .._keyset_check import NO_KEYS

        if NO_KEYS in str(exc):  # refused like an empty refresh; say what to do about it
            raise CliError(f"key file {path} holds no keys; run `uid2fast keys fetch`") from None
        raise CliError(f"{exc}; fetch a key file with `uid2fast keys fetch`") from None  # names the file, no secret
