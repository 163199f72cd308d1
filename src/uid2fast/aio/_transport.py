"""The asyncio transport: ``httpx.AsyncClient`` under the same policy as the blocking one.

Everything that decides (what to retry and when, the deadlines, the body limits, the error messages, the
scrubbing of secrets) is :mod:`uid2fast._netpolicy`, shared with :mod:`uid2fast._http`. What is asyncio here:

- **Size.** The body is streamed with ``aiter_raw()`` (the bytes as sent, still compressed) into
  :class:`~uid2fast._netpolicy.BoundedBody`, which stops at the endpoint's limit before and after
  decompression; a larger ``Content-Length`` is refused unread. A body cut short closes its connection.
- **Time.** Each attempt runs under ``asyncio.wait_for`` with what is left of its deadline (connect, send,
  headers and the whole body): a server trickling a byte a second is cancelled there, whatever httpx's
  per-read timeouts would allow. The call's deadline bounds the attempts and the backoff sleeps between them.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Mapping, Optional, Sequence, TypeVar

import httpx

from .._http import HttpResponse
from .._netpolicy import (
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

__all__ = ["AsyncHttpTransport"]

logger = logging.getLogger("uid2fast.http")

T = TypeVar("T")

# Errors of the request itself: sending it again cannot help.
_NOT_RETRYABLE = (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError)


class AsyncHttpTransport:
    """An ``httpx.AsyncClient``, an :class:`~uid2fast.HttpConfig` and the retry loop; one per client.

    Parameters
    ----------
    config : HttpConfig, optional
        Timeouts, deadlines, retries and limits (the defaults of the blocking clients).
    client : httpx.AsyncClient, optional
        A client of your own to share connections with (not closed by :meth:`aclose`). By default one is
        created on first use, with ``pool_maxsize`` connections and no redirects.

    An ``httpx.AsyncClient`` belongs to the event loop it is first used on: use the transport (and the
    clients built on it) from one loop.
    """

    def __init__(self, config: Optional[HttpConfig] = None, client: Optional[httpx.AsyncClient] = None) -> None:
        if config is not None and not isinstance(config, HttpConfig):
            raise TypeError(f"http must be an HttpConfig, not {type(config).__name__}")
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise TypeError(f"client must be an httpx.AsyncClient, not {type(client).__name__}")
        self.config = config if config is not None else HttpConfig()
        self._own_client = client is None
        self._client = client
        self._closed = False

    def __repr__(self) -> str:
        return f"AsyncHttpTransport(config={self.config!r})"

    @property
    def client(self) -> httpx.AsyncClient:
        """The ``httpx.AsyncClient`` (created on first use)."""
        if self._closed:
            raise RuntimeError("this client is closed")
        if self._client is None:
            cfg = self.config
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(cfg.read_timeout, connect=cfg.connect_timeout),
                limits=httpx.Limits(max_connections=cfg.pool_maxsize, max_keepalive_connections=cfg.pool_maxsize),
                follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        """Close the pooled connections (only of an ``httpx.AsyncClient`` this transport created)."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._own_client:
            await client.aclose()

    # -- one request -------------------------------------------------------------------------------
    async def post(self, url: str, headers: Mapping[str, str], data: Optional[bytes], *, endpoint: str,
                   secrets: Sequence[Any] = (), deadline: Optional[Deadline] = None) -> HttpResponse:
        """Send one POST; return the 2xx response or raise :class:`~uid2fast.Uid2HttpError`.

        The whole attempt (connect, send, headers, body) ends by ``deadline`` (default: ``attempt_timeout``
        from now). ``secrets`` are scrubbed, in every printed form, from any error message.
        """
        if deadline is None:
            deadline = Deadline(self.config.attempt_timeout)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise deadline_error(endpoint, deadline, url)
        try:
            return await asyncio.wait_for(self._post(url, headers, data, endpoint, secrets, deadline), remaining)
        except asyncio.TimeoutError:
            raise deadline_error(endpoint, deadline, url) from None

    async def _post(self, url: str, headers: Mapping[str, str], data: Optional[bytes], endpoint: str,
                    secrets: Sequence[Any], deadline: Deadline) -> HttpResponse:
        cfg = self.config
        remaining = deadline.remaining()
        timeout = httpx.Timeout(min(cfg.read_timeout, remaining), connect=min(cfg.connect_timeout, remaining))
        client = self.client  # (a closed client raises RuntimeError here, not retried)
        try:
            async with client.stream("POST", url, content=data, headers=request_headers(headers, data),
                                          timeout=timeout, follow_redirects=False) as resp:
                if 200 <= resp.status_code < 300:
                    body = await self._read_body(resp, cfg.limit_for(endpoint), endpoint, url, secrets)
                    return HttpResponse(resp.status_code, resp.headers, body, url)
                try:
                    err_body = await self._read_body(resp, ERROR_BODY_LIMIT, endpoint, url, secrets)
                except Uid2HttpError:
                    err_body = b""
                raise status_error(endpoint, resp.status_code, resp.reason_phrase, err_body, resp.headers, secrets,
                                   url)
        except Uid2HttpError:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to Uid2HttpError
            raise self._request_error(exc, endpoint, url, secrets) from None

    def _request_error(self, exc: BaseException, endpoint: str, url: str, secrets: Sequence[Any]) -> Uid2HttpError:
        cfg = self.config
        if isinstance(exc, httpx.ConnectTimeout):
            return Uid2HttpError(endpoint, None, f"connect timed out after {cfg.connect_timeout:g} s", url=url)
        if isinstance(exc, httpx.TimeoutException):
            return Uid2HttpError(endpoint, None, f"read timed out after {cfg.read_timeout:g} s", url=url)
        reason = printable(scrub(type(exc).__name__ + ": " + short_reason(exc), secrets))
        if isinstance(exc, _NOT_RETRYABLE):
            return Uid2HttpError(endpoint, None, f"request refused by the HTTP library ({reason})", url=url,
                                 retryable=False)
        if isinstance(exc, httpx.TransportError):
            return Uid2HttpError(endpoint, None, f"connection failed ({reason})", url=url)
        if isinstance(exc, (ValueError, TypeError, UnicodeError)):
            return Uid2HttpError(endpoint, None, f"request refused ({type(exc).__name__})", url=url,
                                 retryable=False)
        return Uid2HttpError(endpoint, None, f"request failed ({reason})", url=url)

    async def _read_body(self, resp: httpx.Response, limit: int, endpoint: str, url: str,
                         secrets: Sequence[Any]) -> bytes:
        """The whole body, at most ``limit`` bytes after decompression."""
        if declared_too_large(resp.headers, limit):
            raise too_large_error(endpoint, limit, url)
        try:
            body = BoundedBody(limit, resp.headers.get("Content-Encoding"))
            async for chunk in resp.aiter_raw():
                body.feed(chunk)
            return body.finish()
        except BodyTooLarge:
            raise too_large_error(endpoint, limit, url) from None
        except BadEncoding as exc:
            raise Uid2HttpError(endpoint, None, str(exc), url=url, retryable=False) from None
        except httpx.TimeoutException:
            raise Uid2HttpError(endpoint, None, f"read timed out after {self.config.read_timeout:g} s",
                                url=url) from None
        except Exception as exc:  # noqa: BLE001 - a broken or cut body
            reason = printable(scrub(type(exc).__name__ + ": " + short_reason(exc), secrets))
            raise Uid2HttpError(endpoint, None, f"response body broken off ({reason})", url=url) from None

    # -- the retry loop ----------------------------------------------------------------------------
    async def call(self, attempt: Callable[[Deadline], Awaitable[T]], *, endpoint: str,
                   deadline: Optional[Deadline] = None) -> T:
        """``await attempt(attempt_deadline)`` with retries; each retry calls it again (a fresh envelope).

        The loop and its decisions are :class:`~uid2fast._netpolicy.RetryState`'s, as in the blocking
        transport: ``attempt_timeout`` per attempt, ``call_timeout`` (or ``deadline``, when earlier) for the
        call, full-jitter backoff, no retry of 4xx other than 429 or of an oversized body.
        """
        state = RetryState(self.config, deadline)
        while True:
            try:
                return await attempt(state.attempt_deadline())
            except Uid2HttpError as err:
                delay = state.failed(err)
                if delay is None:
                    raise
                logger.info("%s", state.retry_message(endpoint, err, delay))
            if delay > 0:
                await asyncio.sleep(delay)
