"""The only module that talks to the network.

Every client owns an :class:`HttpTransport`: one ``requests.Session`` (connection reuse), an
:class:`HttpConfig` (timeouts, retries) and a retry loop that calls a whole *attempt* again, so that each
retry sends a fresh envelope (new timestamp, new nonce) — the operator rejects replayed or stale envelopes.

The public names of ``request_response_util`` (``post``, ``make_request``, ...) keep the official
signatures; they find the calling client's transport through a context variable set by
:meth:`HttpTransport.call`, and fall back to one shared default transport.

Errors are :class:`Uid2HttpError`, a subclass of :class:`urllib.error.HTTPError` (and so of ``URLError``),
so code written for the official urllib-based SDK (``except HTTPError``) keeps working. Messages carry the
endpoint and the HTTP status, never a header, a request body or a secret.
"""
from __future__ import annotations

import contextlib
import contextvars
import email.utils
import io
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, FrozenSet, Iterator, Mapping, Optional, Sequence, TypeVar, Union
from urllib.error import HTTPError

import requests
from requests.adapters import HTTPAdapter

__all__ = [
    "HttpConfig",
    "HttpResponse",
    "HttpTransport",
    "Uid2HttpError",
    "current_transport",
    "default_transport",
    "post_enveloped",
    "BINARY",
]

logger = logging.getLogger("uid2fast.http")

BINARY = "application/octet-stream"
_FORM = "application/x-www-form-urlencoded"
_MAX_MESSAGE = 300
T = TypeVar("T")


@dataclass(frozen=True)
class HttpConfig:
    """Timeouts and retry policy for operator requests.

    Parameters
    ----------
    connect_timeout : float
        Seconds to establish a TCP connection (default 5).
    read_timeout : float
        Seconds to wait for response bytes (default 30).
    retries : int
        Extra attempts after the first (default 3, so at most 4 requests). Retried: connection errors,
        timeouts, HTTP 5xx and 429. Never retried: other 4xx and envelope errors.
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
    """

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    retry_statuses: FrozenSet[int] = field(default_factory=lambda: frozenset({429}))
    pool_maxsize: int = 10

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.retries!r}")
        if self.backoff_base < 0 or self.backoff_max < 0 or self.max_retry_after < 0:
            raise ValueError("backoff_base, backoff_max and max_retry_after must be >= 0")

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
    ``except HTTPError`` / ``except URLError`` keep working. ``status`` is ``None`` when no response was
    received (connection refused, timeout).

    Parameters
    ----------
    endpoint : str
        The path, e.g. ``"/v2/token/generate"``.
    status : int or None
        The HTTP status, or None.
    message : str
        What went wrong; never contains a secret, a header or the request body.
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
    ) -> None:
        self.endpoint = endpoint
        self.message = message
        self.retry_after = retry_after
        self.attempts = attempts
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
        """True for errors a retry may fix (no response, 5xx, 429)."""
        return self.code is None or 500 <= self.code <= 599 or self.code == 429


class HttpResponse:
    """A completed HTTP 2xx response: ``status``, ``headers``, ``content``; ``read()`` like urllib's."""

    __slots__ = ("status", "headers", "content", "url")

    def __init__(self, status: int, headers: Mapping[str, str], content: bytes, url: str) -> None:
        self.status = status
        self.headers = headers
        self.content = content
        self.url = url

    def read(self) -> bytes:
        """The body, as ``urlopen(...).read()`` returned it."""
        return self.content

    def getcode(self) -> int:
        return self.status

    def __repr__(self) -> str:
        return f"<HttpResponse {self.status} {len(self.content)} bytes>"


def _retry_after_seconds(value: Optional[str]) -> Optional[float]:
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


def _server_message(resp: requests.Response) -> str:
    """A short, printable description of an error response (the operator's ``message``/``status``)."""
    text = ""
    try:
        body = resp.json()
        if isinstance(body, dict):
            parts = [str(body[k]) for k in ("status", "message") if body.get(k)]
            text = ": ".join(parts)
    except ValueError:
        text = resp.text[:_MAX_MESSAGE] if resp.content else ""
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return (resp.reason or "error") + (f" ({text[:_MAX_MESSAGE]})" if text else "")


def _scrub(message: str, secrets: Sequence[str]) -> str:
    for s in secrets:
        if s and len(s) >= 4 and s in message:
            message = message.replace(s, "***")
    return message


class HttpTransport:
    """A session, a config and a retry loop; one per client.

    Parameters
    ----------
    config : HttpConfig, optional
        Timeouts and retries (defaults as documented there).
    session : requests.Session, optional
        An existing session to use (it is not closed by :meth:`close`). By default a new one is created.
    """

    def __init__(self, config: Optional[HttpConfig] = None, session: Optional[requests.Session] = None) -> None:
        self.config = config if config is not None else HttpConfig()
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.config.pool_maxsize, max_retries=0)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            # A session-level auth stops requests from replacing our Bearer header with ~/.netrc
            # credentials, while proxies from the environment still apply.
            session.auth = _keep_headers
        self.session = session
        self._sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"HttpTransport(config={self.config!r})"

    def close(self) -> None:
        """Close the session's pooled connections (only if this transport created the session)."""
        if self._own_session:
            self.session.close()

    def __enter__(self) -> "HttpTransport":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- one attempt -------------------------------------------------------------------------------
    def post(
        self,
        url: str,
        headers: Mapping[str, str],
        data: Optional[bytes],
        *,
        endpoint: str,
        secrets: Sequence[str] = (),
    ) -> HttpResponse:
        """Send one POST; return the 2xx response or raise :class:`Uid2HttpError`.

        ``secrets`` are strings scrubbed from any error message (defence in depth).
        """
        hdrs = dict(headers)
        if data is not None and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = _FORM  # what urllib added for the official SDK
        timeout = (self.config.connect_timeout, self.config.read_timeout)
        try:
            resp = self.session.post(url, data=data, headers=hdrs, timeout=timeout, allow_redirects=False)
        except requests.exceptions.ConnectTimeout:
            raise Uid2HttpError(endpoint, None, f"connect timed out after {self.config.connect_timeout:g} s",
                                url=url) from None
        except requests.exceptions.ReadTimeout:
            raise Uid2HttpError(endpoint, None, f"read timed out after {self.config.read_timeout:g} s",
                                url=url) from None
        except requests.exceptions.ConnectionError as exc:
            reason = _scrub(type(exc).__name__ + ": " + _short_reason(exc), secrets)
            raise Uid2HttpError(endpoint, None, f"connection failed ({reason})", url=url) from None
        except requests.exceptions.RequestException as exc:
            reason = _scrub(type(exc).__name__ + ": " + _short_reason(exc), secrets)
            raise Uid2HttpError(endpoint, None, f"request failed ({reason})", url=url) from None
        if 200 <= resp.status_code < 300:
            return HttpResponse(resp.status_code, resp.headers, resp.content, url)
        retry_after = _retry_after_seconds(resp.headers.get("Retry-After"))
        message = _scrub(_server_message(resp), secrets)
        raise Uid2HttpError(endpoint, resp.status_code, message, url=url, retry_after=retry_after)

    # -- the retry loop ----------------------------------------------------------------------------
    def call(self, attempt: Callable[[], T], *, endpoint: str) -> T:
        """Run ``attempt()`` with retries; each retry calls it again (fresh envelope).

        ``attempt`` raises :class:`Uid2HttpError` for HTTP failures; anything else propagates at once.
        While it runs, :func:`current_transport` returns this transport.
        """
        cfg = self.config
        tries = 0
        while True:
            token = _CURRENT.set(self)
            try:
                return attempt()
            except Uid2HttpError as err:
                tries += 1
                err.attempts = tries
                if tries > cfg.retries or not cfg.is_retryable_status(err.code):
                    raise
                if err.code == 429 and err.retry_after is not None:
                    if err.retry_after > cfg.max_retry_after:
                        raise
                    delay = err.retry_after
                else:
                    delay = cfg.backoff(tries - 1)
                logger.info("%s failed (%s); retry %d/%d in %.3f s", endpoint,
                            err.code if err.code is not None else "no response", tries, cfg.retries, delay)
            finally:
                _CURRENT.reset(token)
            if delay > 0:
                self._sleep(delay)

    def post_enveloped(
        self,
        base_url: str,
        path: str,
        auth_key: str,
        secret_key: bytes,
        data: Optional[bytes] = None,
        *,
        binary: bool = False,
    ) -> bytes:
        """POST an enveloped request with retries; return the decrypted JSON payload bytes."""
        from . import _envelope  # local: keeps import order free of cycles
        from .request_response_util import auth_headers

        url = base_url + path  # as the official _make_url

        def attempt() -> bytes:
            envelope, nonce = _envelope.encrypt_envelope(secret_key, int(time.time() * 1000), data)
            headers = auth_headers(auth_key)
            if binary:
                headers["Content-Type"] = BINARY
                body = envelope
            else:
                body = _b64(envelope)
            resp = self.post(url, headers, body, endpoint=path, secrets=(auth_key,))
            encrypted = resp.content if binary else _b64decode(resp.content)
            return _envelope.decrypt_response(secret_key, encrypted, nonce)

        return self.call(attempt, endpoint=path)


def _keep_headers(request: Any) -> Any:
    return request


def _short_reason(exc: BaseException) -> str:
    # requests wraps urllib3 errors whose text repeats the pool object; keep the innermost reason.
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
    return text[:_MAX_MESSAGE]


def _b64(data: bytes) -> bytes:
    import base64

    return base64.b64encode(data)


def _b64decode(data: bytes) -> bytes:
    import base64
    import binascii

    try:
        return base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("response body is not base64") from None


_CURRENT: "contextvars.ContextVar[Optional[HttpTransport]]" = contextvars.ContextVar("uid2fast_transport",
                                                                                    default=None)
_DEFAULT: Optional[HttpTransport] = None
_DEFAULT_LOCK = threading.Lock()


def default_transport() -> HttpTransport:
    """The shared transport used when no client's transport is active (created on first use)."""
    global _DEFAULT
    if _DEFAULT is None:
        with _DEFAULT_LOCK:
            if _DEFAULT is None:
                _DEFAULT = HttpTransport()
    return _DEFAULT


def current_transport() -> HttpTransport:
    """The transport of the client call in progress on this thread/context, else the default."""
    t = _CURRENT.get()
    return t if t is not None else default_transport()


@contextlib.contextmanager
def using(transport: HttpTransport) -> Iterator[HttpTransport]:
    """Make ``transport`` the current one for the enclosed block (single attempt, no retries)."""
    token = _CURRENT.set(transport)
    try:
        yield transport
    finally:
        _CURRENT.reset(token)


def post_enveloped(
    base_url: str,
    path: str,
    auth_key: str,
    secret_key: bytes,
    data: Optional[bytes] = None,
    *,
    binary: bool = False,
    config: Optional[Union[HttpConfig, "HttpTransport"]] = None,
    session: Optional[requests.Session] = None,
    transport: Optional[HttpTransport] = None,
) -> bytes:
    """POST an enveloped request to the operator and return the decrypted JSON payload.

    Each attempt builds a fresh envelope; retries follow ``config`` (see :class:`HttpConfig`).

    Parameters
    ----------
    base_url : str
        e.g. ``"https://prod.uidapi.com"``.
    path : str
        e.g. ``"/v2/key/bidstream"``.
    auth_key : str
        The API key (sent as ``Authorization: Bearer``).
    secret_key : bytes
        The client secret, base64-decoded.
    data : bytes, optional
        The JSON request body (none for the key endpoints).
    binary : bool
        Send and receive the raw envelope (``/v3/identity/map``) instead of base64 text.
    config : HttpConfig or HttpTransport, optional
        Timeouts and retries; defaults to the current transport's. A transport is used as is.
    session : requests.Session, optional
        A session to reuse connections with.
    transport : HttpTransport, optional
        A client's transport (takes precedence over ``config``/``session``).

    Returns
    -------
    bytes
        The JSON bytes after the response's timestamp and nonce.

    Raises
    ------
    Uid2HttpError
        The request failed (no response, or a non-2xx status) after the allowed retries.
    ValueError
        The response could not be decrypted, or its nonce does not match.
    """
    if transport is None and isinstance(config, HttpTransport):  # a client's transport passed as config
        transport = config
        config = None
    if transport is None:
        assert not isinstance(config, HttpTransport)
        if session is not None or config is not None:
            base = current_transport()
            transport = HttpTransport(config if config is not None else base.config,
                                      session if session is not None else base.session)
        else:
            transport = current_transport()
    return transport.post_enveloped(base_url, path, auth_key, secret_key, data, binary=binary)


def headers_for_log(headers: Mapping[str, str]) -> Dict[str, str]:
    """Headers with the Authorization value redacted (for debug output)."""
    return {k: ("***" if k.lower() == "authorization" else v) for k, v in headers.items()}
