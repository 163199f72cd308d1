"""asyncio clients on ``httpx.AsyncClient`` (``pip install "uid2fast[async]"``).

The network methods are coroutines with the names, arguments and result types of the blocking clients,
so moving to asyncio is a matter of ``await``; decryption and encryption stay synchronous:

- :class:`AsyncPublisherClient`: ``await generate_token(...)``, ``refresh_token``, ``validate_token``;
- :class:`AsyncIdentityMapV3Client`: ``await generate_identity_map(...)``;
- :class:`AsyncOptOutClient`: ``await get_optout_status(...)``;
- :class:`AsyncBidstreamClient`, :class:`AsyncSharingClient`: ``await refresh()``, ``start_auto_refresh()``;
- :class:`AsyncKeyRefresher`: the key-refresh task.

They share the blocking clients' envelope code, retries with backoff and jitter, deadlines, response size
limits, credential checks, secret scrubbing and error types (:class:`~uid2fast.HttpConfig`,
:class:`~uid2fast.Uid2HttpError`). Every client is an async context manager (``async with``) that closes
its connections and stops its refresh task, and has ``from_env()``.
"""
try:
    import httpx  # noqa: F401
except ImportError as _exc:  # pragma: no cover - exercised by a subprocess test without httpx
    raise ImportError("uid2fast.aio needs httpx, an optional dependency: pip install \"uid2fast[async]\"") from _exc

from .._netpolicy import HttpConfig, Uid2HttpError
from ._clients import AsyncIdentityMapV3Client, AsyncOperatorClient, AsyncOptOutClient, AsyncPublisherClient
from ._keys import AsyncBidstreamClient, AsyncSharingClient
from ._refresher import AsyncKeyRefresher
from ._transport import AsyncHttpTransport

__all__ = [
    "AsyncPublisherClient",
    "AsyncIdentityMapV3Client",
    "AsyncOptOutClient",
    "AsyncBidstreamClient",
    "AsyncSharingClient",
    "AsyncKeyRefresher",
    "AsyncHttpTransport",
    "AsyncOperatorClient",
    "HttpConfig",
    "Uid2HttpError",
]
