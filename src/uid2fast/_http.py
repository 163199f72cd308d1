"""The blocking transport: the only module that talks to the network.

Every operator client owns an :class:`HttpTransport`: one ``requests.Session`` (connection reuse), an
:class:`HttpConfig` and a retry loop that calls a whole *attempt* again, so that each retry sends a fresh
envelope (new timestamp, new nonce) — the operator rejects replayed or stale envelopes. The policy (what to
retry, deadlines, limits, scrubbing) is in :mod:`uid2fast._netpolicy`, which has no I/O.

Bounds on what an operator (or anything posing as one) can do to a caller:

- **Size.** The body is streamed and collected by :class:`~uid2fast._netpolicy.BoundedBody` under the
  endpoint's limit, before and after decompression; a larger ``Content-Length`` is refused unread.
- **Time.** Each attempt has a total deadline (name resolution, connect, send, headers and the whole body).
  Socket timeouts are clipped to it, and a watchdog timer shuts the attempt's socket down when it passes, which
  wakes a read that a byte-a-second server would otherwise keep alive. The host name is resolved on a small
  pool of daemon threads and waited for at most the connect timeout, itself clipped to the deadline: a
  resolver that never answers (``getaddrinfo`` has no timeout of its own) costs the caller no more than a
  server that never accepts. Each call has a deadline across its retries.

The public names of ``request_response_util`` (``post``, ``make_request``, ...) keep the official
signatures; they find the calling client's transport, deadline and secrets through a context variable set
by :meth:`HttpTransport.call`, and fall back to one shared default transport.
"""
from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import logging
import os
import queue
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, TypeVar

import requests
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from ._netpolicy import (
    ERROR_BODY_LIMIT,
    BadEncoding,
    BodyTooLarge,
    BoundedBody,
    Deadline,
    HttpConfig,
    RetryState,
    Uid2HttpError,
    deadline_error,
    declared_too_large,
    printable,
    request_headers,
    scrub,
    short_reason,
    status_error,
    too_large_error,
)

__all__ = [
    "HttpConfig",
    "HttpResponse",
    "HttpTransport",
    "Uid2HttpError",
    "current_transport",
    "default_transport",
    "BINARY",
]

logger = logging.getLogger("uid2fast.http")

BINARY = "application/octet-stream"
_CHUNK = 64 * 1024
T = TypeVar("T")


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


# -- the attempt in progress -------------------------------------------------------------------------
class _Attempt:
    """What one attempt's requests share: the transport, the deadline, the secrets, the watchdog."""

    __slots__ = ("transport", "deadline", "secrets", "_conns", "_lock", "fired")

    def __init__(self, transport: "HttpTransport", deadline: Deadline, secrets: Sequence[Any]) -> None:
        self.transport = transport
        self.deadline = deadline
        self.secrets = tuple(secrets)
        self._conns: List[Any] = []
        self._lock = threading.Lock()
        self.fired = False

    def register(self, conn: Any) -> None:
        with self._lock:
            if conn not in self._conns:
                self._conns.append(conn)
            fired = self.fired
        if fired:
            _shutdown(conn)

    def fire(self) -> None:
        """The deadline passed: wake every blocked read of this attempt by shutting its sockets down."""
        with self._lock:
            self.fired = True
            conns = list(self._conns)
        for conn in conns:
            _shutdown(conn)

    @contextlib.contextmanager
    def watch(self) -> Iterator[None]:
        remaining = self.deadline.remaining()
        timer = None
        if remaining != float("inf"):
            timer = threading.Timer(remaining, self.fire)
            timer.daemon = True
            timer.start()
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
            with self._lock:
                self._conns.clear()


def _shutdown(conn: Any) -> None:
    sock = getattr(conn, "sock", None)
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


_ATTEMPT: "contextvars.ContextVar[Optional[_Attempt]]" = contextvars.ContextVar("uid2fast_attempt", default=None)


def _register_current(conn: Any) -> None:
    attempt = _ATTEMPT.get()
    if attempt is not None:
        attempt.register(conn)


# -- name resolution under the deadline ----------------------------------------------------------------
class _Lookup:
    __slots__ = ("host", "port", "done", "result", "error")

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.done = threading.Event()
        self.result: List[Any] = []
        self.error: Optional[BaseException] = None


class _Resolver:
    """``getaddrinfo`` on at most ``workers`` daemon threads, waited for with a timeout.

    ``socket.getaddrinfo`` blocks for as long as the system resolver takes and cannot be interrupted, so it
    runs here and the caller waits only as long as it may. A lookup that outlives its caller finishes on its
    thread and is dropped; while every worker is stuck so, new lookups queue and time out in their callers,
    so a dead resolver costs bounded threads and bounded time. Daemon threads never hold up interpreter exit,
    and a forked child (a pre-forking server) starts a pool of its own.
    """

    def __init__(self, workers: int = 4) -> None:
        self._workers = workers
        self._reset()

    def _reset(self) -> None:
        """A fresh pool: at start, and in a forked child (whose copy has no worker threads, and perhaps a lock
        some other thread held at the fork)."""
        self._lock = threading.Lock()
        self._jobs: "queue.SimpleQueue[_Lookup]" = queue.SimpleQueue()
        self._threads = 0  # workers started
        self._idle = 0  # workers waiting for a job that nobody has claimed yet
        self._backlog = 0  # queued jobs no worker was free for: the next worker to finish takes one

    def _run(self, jobs: "queue.SimpleQueue[_Lookup]") -> None:
        while True:
            job = jobs.get()
            try:
                # looked up at call time, so a patched socket.getaddrinfo (tests, gevent) is the one called
                job.result = socket.getaddrinfo(job.host, job.port, 0, socket.SOCK_STREAM)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                job.error = exc
            job.done.set()
            with self._lock:
                if self._backlog:
                    self._backlog -= 1  # the next get() is that job
                else:
                    self._idle += 1

    def resolve(self, host: str, port: int, timeout: float) -> List[Any]:
        """``socket.getaddrinfo(host, port, 0, SOCK_STREAM)``, or ``socket.timeout`` after ``timeout`` seconds."""
        job = _Lookup(host, port)
        with self._lock:
            jobs = self._jobs
            # each job has a taker: an idle worker, a new one, or (every worker busy) the first to finish
            if self._idle:
                self._idle -= 1
            elif self._threads < self._workers:
                threading.Thread(target=self._run, args=(jobs,), name="uid2fast-resolver", daemon=True).start()
                self._threads += 1
            else:
                self._backlog += 1
            jobs.put(job)
        if not job.done.wait(max(timeout, 0.0)):
            raise socket.timeout(f"resolving the host name timed out after {timeout:g} s")
        if job.error is not None:
            raise job.error
        return job.result


_RESOLVER = _Resolver()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_RESOLVER._reset)


def _numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    return True


def _connect_budget(conn: Any) -> Optional[float]:
    """How long resolving and connecting may take: the connect timeout (already clipped to the attempt's
    deadline when the request was made), cut again at the deadline; None for no bound."""
    timeout = getattr(conn, "timeout", None)
    budget = float(timeout) if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) else None
    attempt = _ATTEMPT.get()
    if attempt is not None:
        remaining = attempt.deadline.remaining()
        if remaining != float("inf"):
            budget = remaining if budget is None else min(budget, remaining)
    return budget


def _new_conn_in_time(conn: Any, new_conn: Callable[[], socket.socket]) -> socket.socket:
    """A watched connection's ``_new_conn``: its host resolved under the connect budget (see
    :class:`_Resolver`), then ``new_conn`` (urllib3's own) on each address in turn with what is left of it."""
    host = conn._dns_host
    budget = _connect_budget(conn)
    if budget is None or _numeric(host):
        return new_conn()
    t0 = time.monotonic()
    try:
        infos = _RESOLVER.resolve(host, conn.port, budget)
    except socket.gaierror as exc:
        raise urllib3.exceptions.NewConnectionError(conn, f"Failed to resolve '{host}' ({exc})") from exc
    except socket.timeout as exc:
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"Resolving {host} timed out. (connect timeout={budget:g})") from exc
    addresses: List[str] = []
    for *_, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    last: Optional[BaseException] = None
    saved = conn.timeout
    try:
        # the addresses in the resolver's order, as urllib3's create_connection tries them
        for address in addresses:
            left = budget - (time.monotonic() - t0)
            if left <= 0:
                break
            conn._dns_host, conn.timeout = address, left
            try:
                return new_conn()
            except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError) as exc:
                last = exc
    finally:
        conn._dns_host, conn.timeout = host, saved
    if last is None:
        raise urllib3.exceptions.ConnectTimeoutError(
            conn, f"Connection to {host} timed out. (connect timeout={budget:g})")
    raise last


# The session's connections register with the attempt in progress, so the attempt's watchdog can shut their
# sockets, and resolve their host under the attempt's time.
class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def connect(self) -> None:
        _register_current(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _register_current(self)
        super().request(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        return _new_conn_in_time(self, super()._new_conn)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def connect(self) -> None:
        _register_current(self)
        super().connect()

    def request(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        _register_current(self)
        super().request(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        return _new_conn_in_time(self, super()._new_conn)


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """An adapter whose pools use the watched connections (no urllib3 retries)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
        self.poolmanager.key_fn_by_scheme = dict(self.poolmanager.key_fn_by_scheme)


# -- helpers -----------------------------------------------------------------------------------------
def _keep_headers(request: Any) -> Any:
    return request


# Errors of the request itself: sending it again cannot help.
_NOT_RETRYABLE = (
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.URLRequired,
)


class HttpTransport:
    """A session, a config and a retry loop; one per client.

    Parameters
    ----------
    config : HttpConfig, optional
        Timeouts, deadlines, retries and limits (defaults as documented there).
    session : requests.Session, optional
        An existing session to use (it is not closed by :meth:`close`). By default a new one is created.
        With your own session the watchdog covers the response body (its connection is known once the
        headers are in); until then the socket timeouts, clipped to the deadline, bound each wait, and the
        host name is resolved by your adapters, without a bound. The transport's own session registers its
        connections from the start, headers included, and resolves under the attempt's time.
    """

    def __init__(self, config: Optional[HttpConfig] = None, session: Optional[requests.Session] = None) -> None:
        self.config = config if config is not None else HttpConfig()
        self._own_session = session is None
        if session is None:
            session = requests.Session()
            adapter = _WatchedAdapter(pool_connections=4, pool_maxsize=self.config.pool_maxsize, max_retries=0)
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

    # -- one request -------------------------------------------------------------------------------
    def post(
        self,
        url: str,
        headers: Mapping[str, str],
        data: Optional[bytes],
        *,
        endpoint: str,
        secrets: Sequence[Any] = (),
    ) -> HttpResponse:
        """Send one POST; return the 2xx response or raise :class:`Uid2HttpError`.

        Inside :meth:`call` the attempt's deadline applies; outside, a fresh ``attempt_timeout``.
        ``secrets`` are scrubbed (in every printed form) from any error message.
        """
        current = _ATTEMPT.get()
        if current is not None and current.transport is self:
            attempt = current
            secrets = tuple(secrets) + attempt.secrets
            token = None
        else:
            attempt = _Attempt(self, Deadline(self.config.attempt_timeout), secrets)
            token = _ATTEMPT.set(attempt)
        try:
            with attempt.watch():
                return self._post(url, headers, data, endpoint, secrets, attempt)
        finally:
            if token is not None:
                _ATTEMPT.reset(token)

    def _deadline_error(self, endpoint: str, url: str, attempt: _Attempt) -> Uid2HttpError:
        return deadline_error(endpoint, attempt.deadline, url)

    def _post(self, url: str, headers: Mapping[str, str], data: Optional[bytes], endpoint: str,
              secrets: Sequence[Any], attempt: _Attempt) -> HttpResponse:
        cfg = self.config
        hdrs = request_headers(headers, data)
        remaining = attempt.deadline.remaining()
        if remaining <= 0:
            raise self._deadline_error(endpoint, url, attempt)
        timeout = (min(cfg.connect_timeout, remaining), min(cfg.read_timeout, remaining))
        try:
            resp = self.session.post(url, data=data, headers=hdrs, timeout=timeout, allow_redirects=False,
                                     stream=True)
        except Exception as exc:  # noqa: BLE001 - mapped to Uid2HttpError below
            raise self._request_error(exc, endpoint, url, secrets, attempt) from None
        complete = False
        try:
            conn = getattr(resp.raw, "_connection", None) or getattr(resp.raw, "connection", None)
            if conn is not None:
                attempt.register(conn)
            if 200 <= resp.status_code < 300:
                limit = cfg.limit_for(endpoint)
                body = self._read_body(resp, limit, endpoint, url, secrets, attempt)
                complete = True
                return HttpResponse(resp.status_code, resp.headers, body, url)
            try:
                err_body = self._read_body(resp, ERROR_BODY_LIMIT, endpoint, url, secrets, attempt)
            except Uid2HttpError:
                err_body = b""
            raise status_error(endpoint, resp.status_code, resp.reason, err_body, resp.headers, secrets, url)
        finally:
            if complete:  # read to the end: the connection goes back to the pool
                resp.raw.release_conn()
            else:  # anything cut short: the connection is closed, never reused
                resp.close()

    def _request_error(self, exc: BaseException, endpoint: str, url: str, secrets: Sequence[Any],
                       attempt: _Attempt) -> Uid2HttpError:
        cfg = self.config
        if attempt.fired or attempt.deadline.expired():
            return self._deadline_error(endpoint, url, attempt)
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return Uid2HttpError(endpoint, None, f"connect timed out after {cfg.connect_timeout:g} s", url=url)
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return Uid2HttpError(endpoint, None, f"read timed out after {cfg.read_timeout:g} s", url=url)
        reason = printable(scrub(type(exc).__name__ + ": " + short_reason(exc), secrets))
        if isinstance(exc, _NOT_RETRYABLE):
            return Uid2HttpError(endpoint, None, f"request refused by the HTTP library ({reason})", url=url,
                                 retryable=False)
        if isinstance(exc, requests.exceptions.ConnectionError):
            return Uid2HttpError(endpoint, None, f"connection failed ({reason})", url=url)
        if isinstance(exc, requests.exceptions.RequestException):
            return Uid2HttpError(endpoint, None, f"request failed ({reason})", url=url)
        if isinstance(exc, (ValueError, TypeError, UnicodeError)):
            return Uid2HttpError(endpoint, None, f"request refused ({type(exc).__name__})", url=url,
                                 retryable=False)
        return Uid2HttpError(endpoint, None, f"request failed ({reason})", url=url)

    def _read_body(self, resp: requests.Response, limit: int, endpoint: str, url: str,
                   secrets: Sequence[Any], attempt: _Attempt) -> bytes:
        """The whole body, at most ``limit`` bytes after decompression, within the attempt's deadline."""
        if declared_too_large(resp.headers, limit):
            raise too_large_error(endpoint, limit, url)
        try:
            body = BoundedBody(limit, resp.headers.get("Content-Encoding"))
            for chunk in resp.raw.stream(_CHUNK, decode_content=False):
                body.feed(chunk)
                if attempt.deadline.expired():
                    raise self._deadline_error(endpoint, url, attempt)
            return body.finish()
        except BodyTooLarge:
            raise too_large_error(endpoint, limit, url) from None
        except BadEncoding as exc:
            raise Uid2HttpError(endpoint, None, str(exc), url=url, retryable=False) from None
        except Uid2HttpError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken or cut body
            if attempt.fired or attempt.deadline.expired():
                raise self._deadline_error(endpoint, url, attempt) from None
            reason = printable(scrub(type(exc).__name__ + ": " + short_reason(exc), secrets))
            raise Uid2HttpError(endpoint, None, f"response body broken off ({reason})", url=url) from None

    # -- the retry loop ----------------------------------------------------------------------------
    def call(self, attempt: Callable[[], T], *, endpoint: str, secrets: Sequence[Any] = (),
             deadline: Optional[Deadline] = None) -> T:
        """Run ``attempt()`` with retries; each retry calls it again (fresh envelope).

        ``attempt`` raises :class:`Uid2HttpError` for HTTP failures; anything else propagates at once.
        Each attempt gets ``attempt_timeout`` seconds, the whole call ``call_timeout`` (or ``deadline``
        when that is earlier: the requests of one split identity map share one). While an attempt runs,
        :func:`current_transport` returns this transport and its requests share the deadline.
        """
        state = RetryState(self.config, deadline)
        while True:
            token = _ATTEMPT.set(_Attempt(self, state.attempt_deadline(), secrets))
            try:
                return attempt()
            except Uid2HttpError as err:
                delay = state.failed(err)
                if delay is None:
                    raise
                logger.info("%s", state.retry_message(endpoint, err, delay))
            finally:
                _ATTEMPT.reset(token)
            if delay > 0:
                self._sleep(delay)


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
    a = _ATTEMPT.get()
    return a.transport if a is not None else default_transport()


@contextlib.contextmanager
def using(transport: HttpTransport) -> Iterator[HttpTransport]:
    """Make ``transport`` the current one for the enclosed block (one attempt's deadline, no retries)."""
    token = _ATTEMPT.set(_Attempt(transport, Deadline(transport.config.attempt_timeout), ()))
    try:
        yield transport
    finally:
        _ATTEMPT.reset(token)


def headers_for_log(headers: Mapping[str, str]) -> Dict[str, str]:
    """Headers with the Authorization value redacted (for debug output)."""
    return {k: ("***" if k.lower() == "authorization" else v) for k, v in headers.items()}
