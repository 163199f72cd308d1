"""A local UID2/EUID operator: a real HTTP server on 127.0.0.1 for integration tests and demos.

It speaks the real wire protocol (docs/keys-and-envelope.md): the AES-GCM request/response envelope with each
client's secret, the keys JSON, v4 advertising tokens, refresh tokens with ``refresh_response_key``, the
identity map v2/v3 (v3 binary), salt buckets, opt-out status and token validation. Roles authorise
endpoints as the production operator does; a stale envelope is rejected. Faults can be injected.

Nothing here is secure beyond a test: the operator's own secrets live in memory for its lifetime.

Examples
--------
>>> from uid2fast.testing import LocalOperator
>>> from uid2fast import Uid2PublisherClient, TokenGenerateInput
>>> with LocalOperator() as op:
...     client = Uid2PublisherClient(op.base_url, *op.credentials("publisher"))
...     identity = client.generate_token(TokenGenerateInput.from_email("a@example.com")).get_identity()
...     identity.get_advertising_token() is not None
True

Test identities (as on the UID2 integration environment): ``optout@example.com``, ``+00000000000`` and
``+00000000002`` are opted out; ``refresh-optout@example.com`` / ``+00000000003`` generate tokens but
refresh to ``optout``; the TCF string in :data:`INSUFFICIENT_CONSENT_TCF` gets ``insufficient_user_consent``
from an EUID operator.

Layout: :mod:`._state` holds the operator's state (clients, keys, salt buckets, opt-outs, faults) and mints
tokens through the test token generator; :mod:`._endpoints` answers requests from that state;
:mod:`._server` is the HTTP server (threads, limits, request parsing); :mod:`._model` the shared records;
this module puts them together.
"""
from __future__ import annotations

import datetime as dt
import functools
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from ._endpoints import serve_request
from ._model import INSUFFICIENT_CONSENT_TCF, MASTER_KEYSET_ID, RequestRecord
from ._server import MAX_BODY, LoopbackServer
from ._state import OperatorState

__all__ = ["LocalOperator", "RequestRecord", "INSUFFICIENT_CONSENT_TCF", "MASTER_KEYSET_ID"]


class LocalOperator(OperatorState):
    """A UID2 (or EUID) operator on ``127.0.0.1``, serving from a background thread.

    Parameters
    ----------
    identity_scope : {"UID2", "EUID"}
        Which service to imitate (key sets, token prefixes, TCF consent for EUID).
    port : int
        0 (default) picks a free port; see :attr:`base_url`.
    publisher_site_id, sharer_site_id, bidstream_site_id, mapper_site_id : int
        Site ids of the four default clients.
    site_data : mapping of int to list of str, optional
        Domain and app names per site id, emitted as ``site_data`` by ``/v2/key/bidstream`` (CSTG checks).
    identity_ttl, refresh_from_after, refresh_ttl : timedelta
        Advertising token lifetime (default 3 days), when refresh is advised (1 hour) and the refresh token
        lifetime (30 days).
    key_lifetime : timedelta
        Lifetime of generated keys (default 30 days).
    token_expiry_seconds : int
        ``token_expiry_seconds`` in ``/v2/key/sharing`` (sent as a string, as the operator does).
    allow_clock_skew_seconds : int
        Emitted in the keys JSON.
    max_identities_per_request : int
        Identity map / opt-out status limit per request (5,000).
    n_buckets : int
        Number of salt buckets.
    salt : bytes, optional
        Seed for raw UIDs (default random): the same salt gives the same raw UIDs across instances.
    clock : callable, optional
        Returns the operator's time in epoch milliseconds (default: the system clock).
    test_identities : bool
        Emulate the integration environment's test identities (see the module docstring).
    raw_uid_version : {4, 3, 2}
        The raw UID layout minted (identity map, tokens): 4 (default) and 3 are the operator's current
        33-byte layouts, a metadata byte (``scope<<4 | type<<2``, v4 adding ``env<<6 | 1<<5``) and 32 bytes;
        2 is the legacy 32-byte hash.
    environment : {"test", "integ", "prod"}
        The environment written into v4 raw UIDs (default ``"integ"``, the environment this imitates).
    max_workers : int
        Threads handling requests (default 32); further requests wait for a free one.
    max_connections : int
        Connections open at once (default 1,024); further ones wait in the listen backlog (1,024).
    idle_timeout : float
        Seconds a connection may stay silent (before a request, between kept-alive requests, or within one)
        before it is closed (default 10).
    request_timeout : float
        Seconds a whole request may take to arrive from its first byte (default 30); a slower one is closed.

    The server's limits (a request body of at most 8 MiB with a valid ``Content-Length``, otherwise 400, 411
    or 413) are described in :mod:`uid2fast.testing._server`.
    """

    def __init__(
        self,
        identity_scope: Union[str, int] = "UID2",
        *,
        port: int = 0,
        publisher_site_id: int = 1001,
        sharer_site_id: int = 1002,
        bidstream_site_id: int = 1003,
        mapper_site_id: int = 1004,
        site_data: Optional[Mapping[int, Sequence[str]]] = None,
        identity_ttl: dt.timedelta = dt.timedelta(days=3),
        refresh_from_after: dt.timedelta = dt.timedelta(hours=1),
        refresh_ttl: dt.timedelta = dt.timedelta(days=30),
        key_lifetime: dt.timedelta = dt.timedelta(days=30),
        token_expiry_seconds: int = 2_592_000,
        allow_clock_skew_seconds: int = 1800,
        max_identities_per_request: int = 5000,
        n_buckets: int = 16,
        salt: Optional[bytes] = None,
        clock: Optional[Callable[[], int]] = None,
        test_identities: bool = True,
        raw_uid_version: int = 4,
        environment: str = "integ",
        max_workers: int = 32,
        max_connections: int = 1024,
        idle_timeout: float = 10.0,
        request_timeout: float = 30.0,
    ) -> None:
        super().__init__(identity_scope, publisher_site_id=publisher_site_id, sharer_site_id=sharer_site_id,
            bidstream_site_id=bidstream_site_id, mapper_site_id=mapper_site_id, site_data=site_data,
            identity_ttl=identity_ttl, refresh_from_after=refresh_from_after, refresh_ttl=refresh_ttl,
            key_lifetime=key_lifetime, token_expiry_seconds=token_expiry_seconds,
            allow_clock_skew_seconds=allow_clock_skew_seconds, max_identities_per_request=max_identities_per_request,
            n_buckets=n_buckets, salt=salt, clock=clock, test_identities=test_identities,
            raw_uid_version=raw_uid_version, environment=environment)
        self._closed = False
        self._server = LoopbackServer(functools.partial(serve_request, self), port=port, max_workers=max_workers,
                                      max_connections=max_connections, idle_timeout=idle_timeout,
                                      request_timeout=request_timeout, max_body=MAX_BODY)

    # ------------------------------------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.port}"

    @property
    def port(self) -> int:
        return self._server.port

    def thread_count(self) -> int:
        """Threads serving HTTP now (a dispatcher and at most ``max_workers`` workers)."""
        return self._server.thread_count()

    def close(self) -> None:
        """Stop serving, close every connection and join the server thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()  # cuts injected delays short
        self._server.close()

    def __enter__(self) -> "LocalOperator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LocalOperator {self.identity_scope} {self.base_url} keys={len(self._keys)}>"
