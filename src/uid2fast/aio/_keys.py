"""The asyncio key-holding clients: bidstream and sharing.

``refresh()`` is a coroutine; decryption and encryption stay synchronous (well under a microsecond a
token, nothing to await). Each wraps its blocking twin (:class:`uid2fast.BidstreamClient`,
:class:`uid2fast.SharingClient`) for everything but the network: the credential checks, the key set (the
same :class:`~uid2fast.EncryptionKeysCollection`, on the engine chosen with ``engine=``), its adoption
(only on success, in one assignment) and every decrypt and encrypt method. The key fetch is the blocking
one's too, from the envelope to the key-set checks (``refresh_keys_util.keys_response``), sent through an
:class:`~uid2fast.aio.AsyncHttpTransport`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Optional, Type

import httpx

from .._env import FromEnv
from ..batch import DecryptedTokens, EncryptedTokens
from ..bidstream_client import BidstreamClient
from ..encryption import DecryptedToken
from ..encryption_data_response import EncryptionDataResponse
from ..metrics import Metrics
from ..refresh_keys_util import keys_failure, keys_response
from ..refresh_response import RefreshResponse
from ..sharing_client import SharingClient
from ._clients import AsyncOperatorClient, make_transport
from ._refresher import AsyncKeyRefresher
from ._transport import AsyncHttpTransport

__all__ = ["AsyncBidstreamClient", "AsyncSharingClient"]


class _AsyncKeyHolder(FromEnv):
    """A blocking key holder for the keys, an asyncio transport for ``refresh()``, an optional refresh task."""

    _sync_class: ClassVar[Type[Any]]
    _path: ClassVar[str]

    def __init__(self, base_url: str, auth_key: str, secret_key: str, *, http: Optional[Any] = None,
                 client: Optional[httpx.AsyncClient] = None, engine: Optional[Any] = None) -> None:
        # The blocking twin checks the credentials exactly as it does for itself, and holds the keys.
        self._sync = self._sync_class(base_url, auth_key, secret_key, engine=engine)
        self._transport = make_transport(http, client)
        self._own_transport = self._transport is not http  # a transport passed in is closed by its owner
        self._refresher: Optional[AsyncKeyRefresher] = None

    def __repr__(self) -> str:
        # Never the API key or the secret.
        return f"{type(self).__name__}(base_url={self._sync._base_url!r}, keys={self._sync.keys!r})"

    @property
    def keys(self) -> Any:
        """The current EncryptionKeysCollection, or None before the first successful refresh."""
        return self._sync.keys

    @property
    def transport(self) -> AsyncHttpTransport:
        return self._transport

    async def refresh(self) -> RefreshResponse:
        """Fetch the latest key set; it replaces the current one only on success (the last good keys stay).

        Never raises for a failed refresh: ``success`` is False and ``reason`` says why (no secret in it).
        Cancelled (e.g. by a timeout around it), it swaps nothing in.
        """
        sync = self._sync
        secrets = (sync._auth_key, sync._secret_key)
        try:
            fetcher = AsyncOperatorClient(sync._base_url, sync._auth_key, sync._secret_key, http=self._transport)
            response = keys_response(await fetcher._post(self._path, None))
        except Exception as exc:  # noqa: BLE001 - a refresh reports failure, it does not raise
            response = keys_failure(exc, secrets)
        return sync._apply(response)

    def start_auto_refresh(self, interval: dt.timedelta = dt.timedelta(hours=1),
                           retry_interval: dt.timedelta = dt.timedelta(seconds=30), *,
                           timeout: Optional[Any] = None) -> AsyncKeyRefresher:
        """Start an :class:`AsyncKeyRefresher` task for this client on the running loop and return it.

        It refreshes now, then every ``interval`` (``retry_interval`` after a failure). Leaving the client's
        ``async with`` block (or :meth:`aclose`) stops it; so does ``await refresher.stop()``.
        """
        if self._refresher is not None and self._refresher.running:
            raise RuntimeError("this client's auto-refresh is already running")
        self._refresher = AsyncKeyRefresher(self, interval, retry_interval, timeout=timeout).start()
        return self._refresher

    async def aclose(self) -> None:
        """Stop the auto-refresh task, if any, and release pooled connections (of a transport and an
        ``httpx.AsyncClient`` this client created)."""
        refresher, self._refresher = self._refresher, None
        if refresher is not None:
            await refresher.stop()
        if self._own_transport:
            await self._transport.aclose()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def _refresh_json(self, json_str: str) -> RefreshResponse:
        return self._sync._refresh_json(json_str)

    def metrics(self) -> Metrics:
        """A snapshot of this client's metrics, kept as by the blocking client (every ``refresh()`` and every
        decrypt and encrypt is recorded); see :class:`uid2fast.metrics.Metrics`."""
        return self._sync.metrics()


class AsyncBidstreamClient(_AsyncKeyHolder):
    """:class:`uid2fast.BidstreamClient` for asyncio: ``await client.refresh()``; decrypt stays synchronous.

    Parameters
    ----------
    base_url, auth_key, secret_key : str
        As for :class:`~uid2fast.BidstreamClient`.
    http : HttpConfig or AsyncHttpTransport, optional
        Timeouts, deadlines, retries and response limits for ``refresh()``, or a transport to share.
    client : httpx.AsyncClient, optional
        An ``httpx.AsyncClient`` to share connections with (not closed by this client).
    engine : {"c", "py"} or None
        The engine of this client's key sets, as for the blocking client.
    """

    _sync_class = BidstreamClient
    _path = "/v2/key/bidstream"
    _sync: BidstreamClient

    def decrypt_token_into_raw_uid(self, token: str, domain_name: Optional[str] = None) -> DecryptedToken:
        """Decrypt an advertising token; see :meth:`uid2fast.BidstreamClient.decrypt_token_into_raw_uid`."""
        return self._sync.decrypt_token_into_raw_uid(token, domain_name)

    def decrypt_tokens_into_raw_uids(self, tokens: Any, domain_names: Any = None, *, now: Optional[dt.datetime] = None,
                                     threads: Optional[int] = None) -> DecryptedTokens:
        """Decrypt many advertising tokens at once (see :func:`uid2fast.decrypt_tokens`)."""
        return self._sync.decrypt_tokens_into_raw_uids(tokens, domain_names, now=now, threads=threads)


class AsyncSharingClient(_AsyncKeyHolder):
    """:class:`uid2fast.SharingClient` for asyncio: ``await client.refresh()``; encrypt and decrypt stay
    synchronous. Parameters as for :class:`AsyncBidstreamClient`."""

    _sync_class = SharingClient
    _path = "/v2/key/sharing"
    _sync: SharingClient

    def encrypt_raw_uid_into_token(self, uid2: str, keyset_id: Optional[int] = None) -> EncryptionDataResponse:
        """Encrypt a raw UID2 into a sharing token; see :meth:`uid2fast.SharingClient.encrypt_raw_uid_into_token`."""
        return self._sync.encrypt_raw_uid_into_token(uid2, keyset_id)

    def decrypt_token_into_raw_uid(self, token: str) -> DecryptedToken:
        """Decrypt a sharing token; every outcome is a status."""
        return self._sync.decrypt_token_into_raw_uid(token)

    def decrypt_tokens_into_raw_uids(self, tokens: Any, *, now: Optional[dt.datetime] = None,
                                     threads: Optional[int] = None) -> DecryptedTokens:
        """Decrypt many sharing tokens at once (see :func:`uid2fast.decrypt_tokens`)."""
        return self._sync.decrypt_tokens_into_raw_uids(tokens, now=now, threads=threads)

    def encrypt_raw_uids_into_tokens(self, uids: Any, keyset_id: Optional[int] = None, *,
                                     now: Optional[dt.datetime] = None,
                                     threads: Optional[int] = None) -> EncryptedTokens:
        """Encrypt many raw UID2s; a per-item EncryptionStatus column and the tokens."""
        return self._sync.encrypt_raw_uids_into_tokens(uids, keyset_id, now=now, threads=threads)
