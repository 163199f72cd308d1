"""The pure half of the operator clients: policy, limits, credentials and scrubbing, with no I/O.

Everything here is shared by the blocking transport (:mod:`uid2fast._http`, ``requests``) and can be shared
by an asyncio transport: it never opens a socket, sleeps or logs.

- :class:`HttpConfig`: timeouts, the two deadlines (per attempt and per call), retries with full-jitter
  backoff, and the response size limit of each endpoint.
- :class:`Uid2HttpError`: the one error type of a failed request (a ``urllib.error.HTTPError``).
- :class:`Deadline`, :func:`next_delay` and :class:`RetryState`: the retry decision and the state of one
  call's retry loop, which the blocking and the asyncio transports both run.
- :class:`BoundedBody`: collects a response body under its limit, decompressing gzip/deflate in bounded steps
  (a 1 MB gzip bomb never inflates past the limit).
- :func:`check_api_key`, :func:`check_secret_key`: credentials validated when a client is built.
- :func:`scrub`: removes every printed form of a secret from a message.
- The pieces of an attempt both transports share: the request headers (:func:`request_headers`), the
  declared-length check (:func:`declared_too_large`), the error messages (:func:`deadline_error`,
  :func:`too_large_error`, :func:`status_error`, :func:`short_reason`).
"""
from __future__ import annotations

import base64
import binascii
import email.utils
import io
import json
import random
import time
import urllib.parse
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, List, Mapping, Optional, Union
from urllib.error import HTTPError

__all__ = [
    "HttpConfig",
    "Uid2HttpError",
    "Deadline",
    "RetryState",
    "BoundedBody",
    "DEFAULT_RESPONSE_LIMITS",
    "next_delay",
    "check_api_key",
    "check_secret_key",
    "secret_forms",
    "scrub",
    "request_headers",
    "declared_too_large",
    "deadline_error",
    "too_large_error",
    "status_error",
    "retry_after_seconds",
    "printable",
    "short_reason",
]

MiB = 1024 * 1024

#: Default response size limits per endpoint (after decompression), sized well above the largest legitimate
#: response: a full key set with every site's domain names, a 5,000-item identity map, the salt buckets
#: rotated since an old timestamp. Other paths get ``HttpConfig.max_response_bytes``.
DEFAULT_RESPONSE_LIMITS: Mapping[str, int] = {
    "/v2/key/sharing": 64 * MiB,
    "/v2/key/bidstream": 64 * MiB,
    "/v2/identity/map": 32 * MiB,
    "/v3/identity/map": 32 * MiB,
    "/v2/identity/buckets": 256 * MiB,
    "/v2/optout/status": 16 * MiB,
    "/v2/token/generate": 1 * MiB,
    "/v2/token/refresh": 1 * MiB,
    "/v2/token/validate": 1 * MiB,
}
#: How much of an error response is read for its message.
ERROR_BODY_LIMIT = 64 * 1024
#: The longest operator message quoted in an error.
MAX_MESSAGE = 300
#: What urllib sent as the Content-Type of a POST for the official SDK.
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class HttpConfig:
    """Timeouts, deadlines, retries and response limits for operator requests.

    Parameters
    ----------
    connect_timeout : float
        Seconds to establish a TCP connection (default 5).
    read_timeout : float
        Seconds one socket read may wait (default 30).
    attempt_timeout : float
        Total seconds for one attempt: connect, send, and the whole response including its body (default 60).
        A server that trickles bytes is cut off here, however often it sends.
    call_timeout : float
        Total seconds for one call across all its attempts and backoff sleeps (default 120). A retry is not
        started when its backoff would end past this deadline.
    retries : int
        Extra attempts after the first (default 3, so at most 4 requests). Retried: connection errors,
        timeouts, HTTP 5xx and 429. Never retried: other 4xx, an oversized or undecodable response, a request
        the HTTP library refuses to send, envelope errors.
    backoff_base : float
        Exponential backoff: attempt *k* (0-based) sleeps ``uniform(0, min(backoff_max, base * 2**k))``
        ("full jitter").
    backoff_max : float
        Upper bound of one backoff sleep, in seconds.
    max_retry_after : float
        A 429's ``Retry-After`` is honoured up to this many seconds; a longer demand is not retried.
    retry_statuses : frozenset of int
        HTTP statuses to retry besides 5xx (default ``{429}``).
    pool_maxsize : int
        Connections kept per host by the session.
    max_response_bytes : int
        Response body limit (after decompression) for paths not in ``response_limits`` (default 16 MiB).
    response_limits : mapping of str to int
        Per-path limits; defaults to :data:`DEFAULT_RESPONSE_LIMITS`. Entries given here replace the defaults
        for their paths only.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    attempt_timeout: float = 60.0
    call_timeout: float = 120.0
    retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    retry_statuses: FrozenSet[int] = field(default_factory=lambda: frozenset({429}))
    pool_maxsize: int = 10
    max_response_bytes: int = 16 * MiB
    response_limits: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "read_timeout", "attempt_timeout", "call_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"retries must be an int >= 0, got {self.retries!r}")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.max_retry_after < 0:
            raise ValueError("backoff_base, backoff_max and max_retry_after must be >= 0")
        limits = dict(DEFAULT_RESPONSE_LIMITS)
        limits.update(self.response_limits)
        for path, limit in list(limits.items()) + [("max_response_bytes", self.max_response_bytes)]:
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ValueError(f"response limit for {path} must be a positive int, got {limit!r}")
        object.__setattr__(self, "response_limits", limits)

    def limit_for(self, path: str) -> int:
        """The response body limit of ``path``, in bytes after decompression."""
        return self.response_limits.get(path, self.max_response_bytes)

    def is_retryable_status(self, status: Optional[int]) -> bool:
        """True for no response at all (connection error, timeout), any 5xx, and ``retry_statuses``."""
        return status is None or 500 <= status <= 599 or status in self.retry_statuses

    def backoff(self, attempt: int) -> float:
        """The full-jitter sleep before retry number ``attempt + 1``."""
        cap = min(self.backoff_max, self.backoff_base * (2 ** min(attempt, 30)))
        return random.uniform(0.0, cap)  # noqa: S311 - jitter, not security


class Uid2HttpError(HTTPError):
    """An operator request failed.

    A subclass of :class:`urllib.error.HTTPError`, as the official SDK raised for non-2xx responses, so
    ``except HTTPError`` / ``except URLError`` keep working. ``status`` is ``None`` when no complete response
    was received (connection refused, timeout, deadline, oversized body).

    Parameters
    ----------
    endpoint : str
        The path, e.g. ``"/v2/token/generate"``.
    status : int or None
        The HTTP status, or None.
    message : str
        What went wrong; never contains a secret, a header or the request body.
    retryable : bool, optional
        Whether a retry may help; by default decided from ``status`` (none, 5xx, 429).
    """

    def __init__(
        self,
        endpoint: str,
        status: Optional[int],
        message: str,
        *,
        url: Optional[str] = None,
        retry_after: Optional[float] = None,
        attempts: int = 1,
        retryable: Optional[bool] = None,
    ) -> None:
        self.endpoint = endpoint
        self.message = message
        self.retry_after = retry_after
        self.attempts = attempts
        self._retryable = retryable
        # HTTPError keeps ``code`` (exposed as ``status``/``getcode()``) and ``msg`` (``reason``).
        HTTPError.__init__(self, url if url is not None else endpoint, status, message, None, io.BytesIO())  # type: ignore[arg-type]
        self.args = (endpoint, status, message)

    def __str__(self) -> str:
        where = f"{self.endpoint}: HTTP {self.code}" if self.code is not None else f"{self.endpoint}: no response"
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"{where}: {self.message}{tries}"

    def __repr__(self) -> str:
        return f"Uid2HttpError(endpoint={self.endpoint!r}, status={self.code!r}, message={self.message!r})"

    def __reduce__(self) -> Any:
        return (Uid2HttpError, (self.endpoint, self.code, self.message))

    @property
    def retryable(self) -> bool:
        """True for errors a retry may fix (no response, 5xx, 429), unless the error says otherwise."""
        if self._retryable is not None:
            return self._retryable
        return self.code is None or 500 <= self.code <= 599 or self.code == 429


class Deadline:
    """A point in monotonic time; ``Deadline(None)`` never expires."""

    __slots__ = ("seconds", "_end")

    def __init__(self, seconds: Optional[float], *, _clock: Any = time.monotonic) -> None:
        self.seconds = seconds
        self._end = None if seconds is None else _clock() + max(0.0, seconds)

    def remaining(self) -> float:
        """Seconds left (``inf`` for no deadline; never negative)."""
        if self._end is None:
            return float("inf")
        return max(0.0, self._end - time.monotonic())

    def expired(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end

    def within(self, other: "Deadline") -> "Deadline":
        """The earlier of the two deadlines (a new object)."""
        out = Deadline(None)
        ends = [d._end for d in (self, other) if d._end is not None]
        out._end = min(ends) if ends else None
        out.seconds = min(s for s in (self.seconds, other.seconds, float("inf")) if s is not None)
        return out


def next_delay(config: HttpConfig, err: Uid2HttpError, tries: int, call_deadline: Deadline) -> Optional[float]:
    """Seconds to sleep before retrying after the ``tries``-th failed attempt, or None to give up."""
    if tries > config.retries or not err.retryable:
        return None
    if err.code is not None and not config.is_retryable_status(err.code):
        return None
    if err.code == 429 and err.retry_after is not None:
        if err.retry_after > config.max_retry_after:
            return None
        delay = err.retry_after
    else:
        delay = config.backoff(tries - 1)
    if delay >= call_deadline.remaining():
        return None  # the retry could not even start before the call's deadline
    return delay


class RetryState:
    """The retry loop of one call, without the I/O: the call's deadline, each attempt's deadline, the count.

    Both transports run the same loop::

        state = RetryState(config, deadline)
        while True:
            try:
                return attempt(state.attempt_deadline())
            except Uid2HttpError as err:
                delay = state.failed(err)      # None: give up (re-raise); else sleep, then retry
    """

    __slots__ = ("config", "call_deadline", "tries")

    def __init__(self, config: HttpConfig, deadline: Optional[Deadline] = None) -> None:
        self.config = config
        call_deadline = Deadline(config.call_timeout)
        self.call_deadline = call_deadline if deadline is None else call_deadline.within(deadline)
        self.tries = 0

    def attempt_deadline(self) -> Deadline:
        """The next attempt's deadline: ``attempt_timeout``, cut at the call's deadline."""
        return Deadline(self.config.attempt_timeout).within(self.call_deadline)

    def failed(self, err: Uid2HttpError) -> Optional[float]:
        """Record a failed attempt (``err.attempts`` is set); the sleep before the next one, or None to give up."""
        self.tries += 1
        err.attempts = self.tries
        return next_delay(self.config, err, self.tries, self.call_deadline)

    def retry_message(self, endpoint: str, err: Uid2HttpError, delay: float) -> str:
        """The log line for a retry (no secret: the error's message is already scrubbed)."""
        what = err.code if err.code is not None else "no response"
        return f"{endpoint} failed ({what}); retry {self.tries}/{self.config.retries} in {delay:.3f} s"


# -- response bodies ---------------------------------------------------------------------------------
class BodyTooLarge(Exception):
    """A response body passed its limit (raw or decompressed)."""


class BadEncoding(Exception):
    """A response body in an encoding this client did not ask for, or that does not decode."""


class BoundedBody:
    """Collects a response body, never holding more than ``limit`` bytes after decompression.

    ``feed`` raw (possibly compressed) chunks as they arrive, then call ``finish``. gzip and deflate are
    decompressed in steps of at most the remaining room, so a compression bomb stops at ``limit + 1`` bytes.
    The caller drops the object on error, which frees what was collected.
    """

    def __init__(self, limit: int, content_encoding: Optional[str] = None) -> None:
        self.limit = limit
        self._buf = bytearray()
        self._raw = 0
        enc = (content_encoding or "").strip().lower()
        if enc in ("", "identity"):
            self._d: Any = None
        elif enc in ("gzip", "x-gzip", "deflate"):
            self._d = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
            self._deflate = enc == "deflate"
            self._started = False
        else:
            raise BadEncoding(f"unsupported Content-Encoding {enc[:40]!r}")

    def _room(self) -> int:
        return self.limit - len(self._buf)

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._raw += len(chunk)
        if self._raw > self.limit:
            raise BodyTooLarge()
        if self._d is None:
            self._buf += chunk
            return
        data = chunk
        while data:
            try:
                out = self._d.decompress(data, self._room() + 1)
            except zlib.error:
                if self._deflate and not self._started:  # raw deflate without the zlib header
                    self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                    self._started = True
                    continue
                raise BadEncoding("the compressed response does not decode") from None
            self._started = True
            self._buf += out
            if len(self._buf) > self.limit:
                raise BodyTooLarge()
            if self._d.eof:
                rest = self._d.unused_data
                if not rest.strip(b"\0"):
                    return
                self._d = zlib.decompressobj(zlib.MAX_WBITS | 32)  # concatenated gzip members
                data = rest
                continue
            data = self._d.unconsumed_tail

    def finish(self) -> bytes:
        if self._d is not None and not self._d.eof:
            if self._started:
                raise BadEncoding("the compressed response is truncated")
        out = bytes(self._buf)
        self._buf = bytearray()
        return out


# -- credentials -------------------------------------------------------------------------------------
def has_control(text: str) -> bool:
    return any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F or ch in "\u2028\u2029" for ch in text)


def check_api_key(value: Any, name: str = "API key") -> str:
    """The API key with surrounding whitespace stripped.

    Raises
    ------
    TypeError
        Not a str.
    ValueError
        Empty, or holding a control character or inner whitespace. The message never includes the value.
    """
    if not isinstance(value, str):
        raise TypeError(f"the {name} must be a str, not {type(value).__name__}")
    key = value.strip()
    if not key:
        raise ValueError(f"the {name} is empty")
    if has_control(key):
        raise ValueError(f"the {name} contains a control character (not shown); check the source it was read from")
    if any(ch.isspace() for ch in key):
        raise ValueError(f"the {name} contains whitespace (not shown); check the source it was read from")
    return key


def check_secret_key(value: Any, name: str = "secret key") -> bytes:
    """The client secret decoded from base64 (surrounding whitespace stripped); bytes pass through.

    Raises
    ------
    TypeError
        Not a str or bytes.
    ValueError
        Empty, control characters or whitespace inside, or not strict base64. The message never includes
        the value. (The length is checked by the cipher when a request is made: a client that only loads
        key sets from files never needs a working secret.)
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError(f"the {name} is empty")
        if has_control(text):
            raise ValueError(f"the {name} contains a control character (not shown); check the source it was read "
                             "from")
        if any(ch.isspace() for ch in text):
            raise ValueError(f"the {name} is not valid base64: it contains whitespace (value not shown)")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"the {name} is not valid base64 (value not shown)") from None
    else:
        raise TypeError(f"the {name} must be a base64 str, not {type(value).__name__}")
    return raw


# -- scrubbing ---------------------------------------------------------------------------------------
def secret_forms(secret: Union[str, bytes, None]) -> List[str]:
    """Every way ``secret`` may be printed: raw, stripped, repr- and JSON-escaped, percent-encoded, base64."""
    if not secret:
        return []
    forms = set()
    values: List[str] = []
    if isinstance(secret, (bytes, bytearray)):
        raw = bytes(secret)
        values.append(base64.b64encode(raw).decode())
        forms.add(repr(raw)[2:-1])
        forms.add(raw.hex())
        try:
            values.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    else:
        values.append(secret)
    for s in values:
        for v in {s, s.strip()}:
            if not v:
                continue
            forms.add(v)
            forms.add(repr(v)[1:-1])
            forms.add(json.dumps(v)[1:-1])
            forms.add(v.encode("unicode_escape").decode("ascii"))
            forms.add(urllib.parse.quote(v, safe=""))
            forms.add(urllib.parse.quote_plus(v, safe=""))
            forms.add(urllib.parse.quote(v))
            forms.add(repr(v.encode("utf-8", "surrogatepass"))[2:-1])
    # Longest first, so a longer form is replaced before a shorter one inside it.
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def scrub(message: str, secrets: Iterable[Union[str, bytes, None]]) -> str:
    """``message`` with every form of every secret (see :func:`secret_forms`) replaced by ``***``."""
    for secret in secrets:
        for form in secret_forms(secret):
            if form in message:
                message = message.replace(form, "***")
    return message


# -- the pieces of an attempt ------------------------------------------------------------------------
def request_headers(headers: Mapping[str, str], data: Optional[bytes]) -> Dict[str, str]:
    """The headers an attempt sends: the caller's, a form Content-Type for a body without one (what urllib
    added for the official SDK), and ``Accept-Encoding: gzip, deflate`` (never br or zstd: only these two
    decode in bounded steps, see :class:`BoundedBody`)."""
    hdrs = dict(headers)
    if data is not None and not any(k.lower() == "content-type" for k in hdrs):
        hdrs["Content-Type"] = FORM_CONTENT_TYPE
    if not any(k.lower() == "accept-encoding" for k in hdrs):
        hdrs["Accept-Encoding"] = "gzip, deflate"
    return hdrs


def declared_too_large(headers: Mapping[str, str], limit: int) -> bool:
    """True when an uncompressed response declares a ``Content-Length`` over ``limit`` (refused unread)."""
    length = headers.get("Content-Length")
    if length is None or headers.get("Content-Encoding"):
        return False
    try:
        return int(length) > limit
    except ValueError:
        return False


def deadline_error(endpoint: str, deadline: Deadline, url: Optional[str] = None) -> Uid2HttpError:
    """The error of an attempt cut off at its deadline."""
    return Uid2HttpError(endpoint, None, f"no complete response within the {deadline.seconds:g} s deadline", url=url)


def too_large_error(endpoint: str, limit: int, url: Optional[str] = None) -> Uid2HttpError:
    """The error of a body over its limit (not retried: the operator would send the same)."""
    return Uid2HttpError(endpoint, None, f"response body exceeds the {limit:,} byte limit for {endpoint} "
                                         "(HttpConfig.response_limits)", url=url, retryable=False)


def status_error(endpoint: str, status: int, reason: Optional[str], body: bytes, headers: Mapping[str, str],
                 secrets: Iterable[Any], url: Optional[str] = None) -> Uid2HttpError:
    """The error of a non-2xx response: the status, the operator's ``status``/``message`` (scrubbed) and a
    429's ``Retry-After``."""
    message = scrub(server_message(reason, body), secrets)
    return Uid2HttpError(endpoint, status, message, url=url,
                         retry_after=retry_after_seconds(headers.get("Retry-After")))


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds from now; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def printable(text: str) -> str:
    """``text`` with every unprintable character (newlines, escapes) replaced by a space, stripped."""
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def server_message(reason: Optional[str], body: bytes) -> str:
    """A short, printable description of an error response (the operator's ``status``/``message``)."""
    text = ""
    if body:
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                text = ": ".join(str(parsed[k]) for k in ("status", "message") if parsed.get(k))
        except ValueError:
            text = body[:MAX_MESSAGE].decode("utf-8", "replace")
    text = printable(text)
    return printable(reason or "error")[:60] + (f" ({text[:MAX_MESSAGE]})" if text else "")


def short_reason(exc: BaseException) -> str:
    """The innermost reason of an HTTP library's exception (they wrap each other and repeat pool objects)."""
    inner: BaseException = exc
    for _ in range(4):
        nxt = inner.args[0] if inner.args and isinstance(inner.args[0], BaseException) else None
        if nxt is None:
            nxt = getattr(inner, "reason", None)
        if not isinstance(nxt, BaseException):
            break
        inner = nxt
    text = str(inner)
    if "]" in text and text.startswith("<"):
        text = text.split(">: ", 1)[-1]
    return text[:MAX_MESSAGE]
