"""The asyncio operator clients: publisher, identity map v3 and opt-out.

Each is its blocking twin with ``await``: the same constructor arguments (``client=`` an
``httpx.AsyncClient`` in place of ``session=``), the same method names, arguments and result types. The
requests and results are built by the twins' own functions (``publisher_client.validate_request``,
``identity_map_v3_client.merge_responses``, ``optout_client.optout_parse``, ...), the envelope by
:mod:`uid2fast.request_response_util`, the policy by :mod:`uid2fast._netpolicy`.
"""
from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Optional, Sequence, TypeVar

import httpx

from .. import publisher_client as _pub
from .._batching import DEFAULT_MAX_IN_FLIGHT, MAX_IDENTITIES_PER_REQUEST, check_batch_options
from .._netpolicy import Deadline
from .._operator_client import ClientCredentials
from ..identity_map_v3_client import IDENTITY_MAP_V3_PATH, input_size, merge_responses
from ..identity_map_v3_input import IdentityMapV3Input
from ..identity_map_v3_response import IdentityMapV3Response
from ..identity_tokens import IdentityTokens
from ..optout_client import OPTOUT_PATH, optout_chunks, optout_parse, optout_request, optout_result
from ..request_response_util import BINARY, auth_headers, create_envelope, parse_response
from ..token_generate_input import TokenGenerateInput
from ..token_generate_response import TokenGenerateResponse
from ..token_refresh_response import TokenRefreshResponse
from ..uid2_response import Uid2Response
from ._transport import AsyncHttpTransport

__all__ = ["AsyncOperatorClient", "AsyncPublisherClient", "AsyncIdentityMapV3Client", "AsyncOptOutClient",
           "gather_chunks"]

A = TypeVar("A")
R = TypeVar("R")


def make_transport(http: Any, client: Optional[httpx.AsyncClient]) -> AsyncHttpTransport:
    """The transport of an ``http=`` argument: an :class:`AsyncHttpTransport` to share, else a new one."""
    if isinstance(http, AsyncHttpTransport):
        if client is not None:
            raise TypeError("pass either a transport as http= or client=, not both")
        return http
    return AsyncHttpTransport(http, client)


async def gather_chunks(func: Callable[[A], Awaitable[R]], chunks: Sequence[A], max_in_flight: int) -> List[R]:
    """``[await func(c) for c in chunks]`` with at most ``max_in_flight`` running at once, in input order.

    The first failure cancels the rest (they hold no state: a cancelled request closes its connection); of
    the chunks that had failed by then, the first in input order is raised, as
    :func:`uid2fast._batching.run_chunks` does for the blocking clients.
    """
    if len(chunks) <= 1 or max_in_flight == 1:
        return [await func(c) for c in chunks]
    gate = asyncio.Semaphore(max_in_flight)

    async def one(chunk: A) -> R:
        async with gate:
            return await func(chunk)

    tasks = [asyncio.ensure_future(one(c)) for c in chunks]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class AsyncOperatorClient(ClientCredentials):
    """Credentials, an :class:`AsyncHttpTransport` and ``_post``; the asyncio twin of
    :class:`uid2fast._operator_client.OperatorClient` (same checks, same envelope, same retries).

    Use it with ``async with`` or call :meth:`aclose` to release its connections.
    """

    def __init__(self, base_url: str, auth_key: str, secret_key: Any, *,
                 http: Optional[Any] = None, client: Optional[httpx.AsyncClient] = None) -> None:
        super().__init__(base_url, auth_key, secret_key)
        self._transport = make_transport(http, client)
        self._own_transport = self._transport is not http  # a transport passed in is closed by its owner

    @property
    def transport(self) -> AsyncHttpTransport:
        return self._transport

    async def aclose(self) -> None:
        """Release pooled connections (of a transport and an ``httpx.AsyncClient`` this client created)."""
        if self._own_transport:
            await self._transport.aclose()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def _call_deadline(self) -> Deadline:
        """One deadline for all the requests of a public call that sends several (split inputs)."""
        return Deadline(self._transport.config.call_timeout)

    async def _post(self, path: str, body: Optional[bytes], binary: bool = False, *, enveloped: bool = True,
                    deadline: Optional[Deadline] = None) -> bytes:
        """POST to ``path`` with retries; return the decrypted JSON payload (see ``OperatorClient._post``)."""
        transport, url, secrets = self._transport, self._base_url + path, self._secrets()
        auth_key, secret = self._auth_key, self._secret_key

        async def attempt(attempt_deadline: Deadline) -> bytes:
            headers = auth_headers(auth_key)
            if not enveloped:
                resp = await transport.post(url, headers, body, endpoint=path, secrets=secrets,
                                            deadline=attempt_deadline)
                return resp.content
            envelope = create_envelope(secret, dt.datetime.now(tz=dt.timezone.utc), body)
            if binary:
                headers["Content-Type"] = BINARY
            data = envelope.binary_envelope if binary else envelope.envelope
            resp = await transport.post(url, headers, data, endpoint=path, secrets=secrets, deadline=attempt_deadline)
            response = Uid2Response.from_bytes(resp.content) if binary else Uid2Response.from_string(resp.content)
            return parse_response(secret, response, envelope.nonce)

        return await transport.call(attempt, endpoint=path, deadline=deadline)


class AsyncPublisherClient(AsyncOperatorClient):
    """:class:`uid2fast.Uid2PublisherClient` for asyncio: ``await generate_token(...)``, ``refresh_token``,
    ``validate_token``.

    Parameters
    ----------
    base_url, auth_key, secret_key : str
        As for :class:`~uid2fast.Uid2PublisherClient`.
    http : HttpConfig or AsyncHttpTransport, optional
        Timeouts, deadlines, retries and response limits, or a transport to share.
    client : httpx.AsyncClient, optional
        An ``httpx.AsyncClient`` to share connections with (not closed by this client).
    """

    def __init__(self, base_url: str, auth_key: str, secret_key: str, *, http: Optional[Any] = None,
                 client: Optional[httpx.AsyncClient] = None) -> None:
        super().__init__(base_url, auth_key, secret_key, http=http, client=client)

    async def generate_token(self, token_generate_input: TokenGenerateInput) -> TokenGenerateResponse:
        """Generate an identity; see :meth:`uid2fast.Uid2PublisherClient.generate_token`."""
        data = token_generate_input.get_as_json_string().encode()
        return TokenGenerateResponse(await self._post("/v2/token/generate", data))

    async def refresh_token(self, current_identity: IdentityTokens) -> TokenRefreshResponse:
        """Refresh an identity; see :meth:`uid2fast.Uid2PublisherClient.refresh_token`."""
        raw = await self._post("/v2/token/refresh", _pub.refresh_request(current_identity), enveloped=False)
        return _pub.refresh_result(raw, current_identity)

    async def validate_token(self, advertising_token: str, identity: TokenGenerateInput) -> bool:
        """Check a token against an identity; see :meth:`uid2fast.Uid2PublisherClient.validate_token`."""
        payload = _pub.validate_request(advertising_token, identity)
        return _pub.validate_result(await self._post("/v2/token/validate", payload))


class AsyncIdentityMapV3Client(AsyncOperatorClient):
    """:class:`uid2fast.IdentityMapV3Client` for asyncio: ``await generate_identity_map(...)``.

    Inputs over ``max_batch_size`` are split; at most ``max_in_flight`` requests run at once and the whole
    call shares one ``call_timeout``. ``http`` and ``client`` as for :class:`AsyncPublisherClient`.
    """

    def __init__(self, base_url: str, api_key: str, client_secret: str, *, http: Optional[Any] = None,
                 client: Optional[httpx.AsyncClient] = None, max_batch_size: int = MAX_IDENTITIES_PER_REQUEST,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        check_batch_options(max_batch_size, max_in_flight)
        super().__init__(base_url, api_key, client_secret, http=http, client=client)
        self._max_batch_size = max_batch_size
        self._max_in_flight = max_in_flight

    async def _request(self, data: bytes, deadline: Optional[Deadline] = None) -> bytes:
        return await self._post(IDENTITY_MAP_V3_PATH, data, binary=True, deadline=deadline)

    async def generate_identity_map(self, identity_map_input: IdentityMapV3Input) -> IdentityMapV3Response:
        """Map the input; see :meth:`uid2fast.IdentityMapV3Client.generate_identity_map`."""
        if input_size(identity_map_input) <= self._max_batch_size:
            body = await self._request(identity_map_input.get_identity_map_input_as_json_string().encode())
            return IdentityMapV3Response(body, identity_map_input)
        chunks = identity_map_input._chunk_json_strings(self._max_batch_size)
        deadline = self._call_deadline()
        bodies = await gather_chunks(lambda s: self._request(s.encode(), deadline), chunks, self._max_in_flight)
        return merge_responses(bodies, identity_map_input)


class AsyncOptOutClient(AsyncOperatorClient):
    """:class:`uid2fast.OptOutClient` for asyncio: ``await get_optout_status(raw_uids)``.

    ``max_batch_size``, ``max_in_flight``, ``http`` and ``client`` as for :class:`AsyncIdentityMapV3Client`.
    """

    def __init__(self, base_url: str, api_key: str, secret: str, *, http: Optional[Any] = None,
                 client: Optional[httpx.AsyncClient] = None, max_batch_size: int = MAX_IDENTITIES_PER_REQUEST,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        check_batch_options(max_batch_size, max_in_flight)
        super().__init__(base_url, api_key, secret, http=http, client=client)
        self._max_batch_size = max_batch_size
        self._max_in_flight = max_in_flight

    async def _request(self, raw_uids: List[str], deadline: Optional[Deadline] = None) -> Dict[str, int]:
        return optout_parse(await self._post(OPTOUT_PATH, optout_request(raw_uids), deadline=deadline))

    async def get_optout_status(self, raw_uids: Iterable[str]) -> Dict[str, Optional[dt.datetime]]:
        """When each raw UID opted out (None if not); see :meth:`uid2fast.OptOutClient.get_optout_status`."""
        uids, chunks = optout_chunks(raw_uids, self._max_batch_size)
        deadline = self._call_deadline()
        parts = await gather_chunks(lambda c: self._request(c, deadline), chunks, self._max_in_flight)
        return optout_result(uids, parts)

