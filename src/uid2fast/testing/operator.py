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
"""
from __future__ import annotations

import base64
import binascii
import collections
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Deque, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, Union

from .. import _envelope
from .._keys_json import keys_json_body
from ..input_util import get_base64_encoded_hash, is_phone_number_normalized, normalize_email_string
from ..uid2_token_generator import identity_type_of, token_v3_v4
from ._raw_uid import RawUidMinter
from ._server import MAX_BODY, HttpResponse, LoopbackServer, json_response

__all__ = ["LocalOperator", "RequestRecord", "INSUFFICIENT_CONSENT_TCF", "MASTER_KEYSET_ID"]

logger = logging.getLogger("uid2fast.testing.operator")

MASTER_KEYSET_ID = 9999999
INSUFFICIENT_CONSENT_TCF = "CPehXK9PehXK9ABAMBFRACBoADAAAEJAAIYgAKwAQAKgArABAAqAAA"
_OPTED_OUT_TEST_IDENTITIES = (("email", "optout@example.com"), ("phone", "+00000000000"),
                              ("phone", "+00000000002"))
_REFRESH_OPTOUT_TEST_IDENTITIES = (("email", "refresh-optout@example.com"), ("phone", "+00000000003"))

# Roles as the operator names them, and which endpoints each authorises.
_ROLE_ALIASES = {"publisher": "GENERATOR", "bidstream": "ID_READER", "sharer": "SHARER", "mapper": "MAPPER"}
_ENDPOINT_ROLES: Dict[str, Set[str]] = {
    "/v2/key/sharing": {"SHARER", "ID_READER"},
    "/v2/key/bidstream": {"ID_READER"},
    "/v2/token/generate": {"GENERATOR"},
    "/v2/token/validate": {"GENERATOR"},
    "/v2/identity/map": {"MAPPER"},
    "/v3/identity/map": {"MAPPER"},
    "/v2/identity/buckets": {"MAPPER"},
    "/v2/optout/status": {"MAPPER", "SHARER", "ID_READER"},
}
_REFRESH_PATH = "/v2/token/refresh"
_DAY_MS = 86_400_000

Millis = Union[int, dt.datetime]


def _to_ms(value: Millis) -> int:
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return int(value)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class _Key:
    id: int
    keyset_id: int
    site_id: int
    created: int  # epoch seconds, as the keys JSON
    activates: int
    expires: int
    secret: bytes = field(repr=False)

    def active(self, now_s: float) -> bool:
        return self.activates <= now_s < self.expires


@dataclass
class _Client:
    api_key: str = field(repr=False)
    secret: bytes = field(repr=False)
    roles: Set[str]
    site_id: int
    name: str


@dataclass(frozen=True)
class RequestRecord:
    """One request the operator received.

    ``path``, the HTTP ``status`` sent, the ``headers`` (Authorization redacted), whether the body was a
    ``binary`` envelope, the client's TCP ``peer_port`` (same port = reused connection) and a SHA-256
    ``body_digest`` (distinct digests = distinct envelopes).
    """

    path: str
    status: int
    headers: Mapping[str, str]
    binary: bool
    peer_port: int
    body_digest: str


@dataclass
class _Fault:
    kind: str
    remaining: int
    value: float
    path: Optional[str]


class _ClientError(Exception):
    def __init__(self, message: str, http_status: int = 400, status: str = "client_error") -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.status = status


class LocalOperator:
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
    ) -> None:
        if isinstance(identity_scope, str):
            scope = identity_scope.upper()
        else:
            scope = "EUID" if int(identity_scope) else "UID2"
        if scope not in ("UID2", "EUID"):
            raise ValueError(f"identity_scope must be 'UID2' or 'EUID', got {identity_scope!r}")
        self.identity_scope = scope
        self._scope_bit = 1 if scope == "EUID" else 0
        self._clock = clock
        self.time_offset = dt.timedelta(0)
        self._lock = threading.RLock()
        self._salt = salt if salt is not None else os.urandom(32)
        self._raw_uids = RawUidMinter(self._salt, scope, raw_uid_version, environment)
        self._refresh_key = os.urandom(32)
        self._identity_ttl_ms = int(identity_ttl.total_seconds() * 1000)
        self._refresh_from_ms = int(refresh_from_after.total_seconds() * 1000)
        self._refresh_ttl_ms = int(refresh_ttl.total_seconds() * 1000)
        self._key_lifetime_s = int(key_lifetime.total_seconds())
        self.token_expiry_seconds = int(token_expiry_seconds)
        self.allow_clock_skew_seconds = int(allow_clock_skew_seconds)
        self.max_identities_per_request = int(max_identities_per_request)
        self.max_bidstream_lifetime_seconds = int(identity_ttl.total_seconds()) + 10
        self.max_sharing_lifetime_seconds = int(refresh_ttl.total_seconds()) + 10
        self.site_data: Dict[int, List[str]] = {int(k): sorted(v) for k, v in (site_data or {}).items()}
        self.publisher_site_id = publisher_site_id
        self.sharer_site_id = sharer_site_id
        self.bidstream_site_id = bidstream_site_id
        self.mapper_site_id = mapper_site_id

        self._keys: Dict[int, _Key] = {}
        self._keyset_site: Dict[int, int] = {MASTER_KEYSET_ID: -1}
        self._site_keyset: Dict[int, int] = {}
        self._next_key_id = 1
        self._next_keyset_id = 100
        self._clients: Dict[str, _Client] = {}
        self._default_credentials: Dict[str, Tuple[str, str]] = {}
        self._optouts: Dict[Tuple[str, str], int] = {}
        self._raw_uid_optouts: Dict[str, int] = {}
        self._refresh_optout: Set[Tuple[str, str]] = set()
        self._insufficient_consent: Set[str] = set()
        self._faults: List[_Fault] = []
        self.requests: Deque[RequestRecord] = collections.deque(maxlen=10_000)

        now_ms = self.now_ms()
        self._n_buckets = int(n_buckets)
        self._bucket_version = [0] * self._n_buckets
        self._bucket_updated = [now_ms - 30 * _DAY_MS] * self._n_buckets
        self._bucket_previous_rotation: List[Optional[int]] = [None] * self._n_buckets

        now_s = now_ms // 1000
        for keyset in (MASTER_KEYSET_ID, self._keyset_for_site(publisher_site_id),
                       self._keyset_for_site(sharer_site_id)):
            self._add_key(keyset, now_s - 86_400, now_s - 86_400, now_s + self._key_lifetime_s)
        for name, site in (("publisher", publisher_site_id), ("bidstream", bidstream_site_id),
                           ("sharer", sharer_site_id), ("mapper", mapper_site_id)):
            self._default_credentials[name] = self.add_client([name], site, name=name)
        if test_identities:
            for kind, value in _OPTED_OUT_TEST_IDENTITIES:
                self.opt_out(**{kind: value}, at=now_ms - _DAY_MS)
            for kind, value in _REFRESH_OPTOUT_TEST_IDENTITIES:
                self._refresh_optout.add(self._identity(kind, value))
            if scope == "EUID":
                self._insufficient_consent.add(INSUFFICIENT_CONSENT_TCF)

        self._closed = False
        self._closing = threading.Event()
        self._server = LoopbackServer(self._serve_request, port=port, max_workers=max_workers,
                                      max_connections=max_connections, idle_timeout=idle_timeout,
                                      max_body=MAX_BODY)

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

    def now_ms(self) -> int:
        """The operator's clock, epoch milliseconds (``clock`` plus :attr:`time_offset`)."""
        base = self._clock() if self._clock is not None else int(time.time() * 1000)
        return int(base + self.time_offset.total_seconds() * 1000)

    # ------------------------------------------------------------------------------------------------
    # clients and keys
    # ------------------------------------------------------------------------------------------------
    def credentials(self, role: str) -> Tuple[str, str]:
        """``(api_key, base64 secret)`` of the default client for ``"publisher"``, ``"bidstream"``,
        ``"sharer"`` or ``"mapper"``."""
        try:
            return self._default_credentials[role]
        except KeyError:
            raise ValueError(f"role must be one of {sorted(self._default_credentials)}, got {role!r}") from None

    def add_client(self, roles: Iterable[str], site_id: int, *, name: Optional[str] = None) -> Tuple[str, str]:
        """Register a client with the given roles (role names or aliases) for a site; returns credentials."""
        resolved = set()
        for r in roles:
            role = _ROLE_ALIASES.get(r, r).upper()
            if role not in {"GENERATOR", "ID_READER", "SHARER", "MAPPER"}:
                raise ValueError(f"unknown role {r!r}")
            resolved.add(role)
        api_key = f"{self.identity_scope}-L-{site_id}-" + base64.b64encode(os.urandom(24)).decode()
        secret = os.urandom(32)
        with self._lock:
            self._clients[api_key] = _Client(api_key, secret, resolved, int(site_id), name or ",".join(sorted(roles)))
            if "SHARER" in resolved or "GENERATOR" in resolved:
                self._keyset_for_site(int(site_id))
        return api_key, base64.b64encode(secret).decode()

    def _keyset_for_site(self, site_id: int) -> int:
        with self._lock:
            keyset = self._site_keyset.get(site_id)
            if keyset is None:
                keyset = self._next_keyset_id
                self._next_keyset_id += 1
                self._site_keyset[site_id] = keyset
                self._keyset_site[keyset] = site_id
                if self._keys:  # after construction: give the new keyset a key at once
                    now_s = self.now_ms() // 1000
                    self._add_key(keyset, now_s - 60, now_s - 60, now_s + self._key_lifetime_s)
            return keyset

    def _add_key(self, keyset_id: int, created: int, activates: int, expires: int) -> _Key:
        with self._lock:
            key = _Key(self._next_key_id, keyset_id, self._keyset_site[keyset_id], created, activates, expires,
                       os.urandom(32))
            self._next_key_id += 1
            self._keys[key.id] = key
            return key

    def rotate_keys(self, *, activates_in: dt.timedelta = dt.timedelta(0),
                    lifetime: Optional[dt.timedelta] = None) -> List[int]:
        """Add a new key to every keyset; old keys stay until they expire. Returns the new key ids."""
        now_s = self.now_ms() // 1000
        life = int(lifetime.total_seconds()) if lifetime is not None else self._key_lifetime_s
        act = now_s + int(activates_in.total_seconds())
        with self._lock:
            return [self._add_key(ks, now_s, act, act + life).id for ks in list(self._keyset_site)]

    def expire_keys(self, key_ids: Optional[Iterable[int]] = None, *, at: Optional[Millis] = None) -> None:
        """Make keys (default: all but the newest of each keyset) expire now.

        ``at`` (epoch ms or a datetime) sets the expiry to that time instead, rounded down to the second as
        the keys JSON carries it: a time in the future keeps the keys served and usable until then.
        """
        expires_s = _to_ms(at) // 1000 if at is not None else self.now_ms() // 1000 - 1
        with self._lock:
            if key_ids is None:
                newest: Dict[int, int] = {}
                for k in self._keys.values():
                    if k.id > newest.get(k.keyset_id, 0):
                        newest[k.keyset_id] = k.id
                key_ids = [k.id for k in self._keys.values() if newest[k.keyset_id] != k.id]
            for kid in key_ids:
                k = self._keys[kid]
                self._keys[kid] = _Key(k.id, k.keyset_id, k.site_id, k.created, min(k.activates, expires_s),
                                       expires_s, k.secret)

    def _active_key(self, keyset_id: int, now_s: float) -> _Key:
        with self._lock:
            candidates = [k for k in self._keys.values() if k.keyset_id == keyset_id and k.active(now_s)]
        if not candidates:
            raise _ClientError(f"no active key for keyset {keyset_id}", 500, "error")
        return max(candidates, key=lambda k: (k.activates, k.id))

    def _keys_json(self, client: _Client, *, bidstream: bool) -> Dict[str, Any]:
        now_s = self.now_ms() // 1000
        with self._lock:
            live = sorted((k for k in self._keys.values() if k.expires > now_s), key=lambda k: k.id)
            own = self._site_keyset.get(client.site_id)
        keys = [{"id": k.id, "created": k.created, "activates": k.activates, "expires": k.expires,
                 "secret": k.secret,
                 "keyset_id": k.keyset_id if not bidstream and k.keyset_id in (MASTER_KEYSET_ID, own) else None}
                for k in live]
        if bidstream:
            return keys_json_body(keys, identity_scope=self.identity_scope, site_data=self.site_data,
                                  max_bidstream_lifetime_seconds=self.max_bidstream_lifetime_seconds,
                                  allow_clock_skew_seconds=self.allow_clock_skew_seconds)
        return keys_json_body(
            keys, identity_scope=self.identity_scope, caller_site_id=client.site_id,
            master_keyset_id=MASTER_KEYSET_ID, default_keyset_id=own,
            token_expiry_seconds=str(self.token_expiry_seconds),  # a string, as the operator sends it
            max_sharing_lifetime_seconds=self.max_sharing_lifetime_seconds if "SHARER" in client.roles else None,
            allow_clock_skew_seconds=self.allow_clock_skew_seconds)

    # ------------------------------------------------------------------------------------------------
    # identities, raw UIDs, buckets, opt-outs
    # ------------------------------------------------------------------------------------------------
    @staticmethod
    def _identity(kind: str, value: str) -> Tuple[str, str]:
        """(``"email"``/``"phone"``, base64 hash) from a raw value or a hash (``email_hash``...)."""
        if kind == "email":
            normalized = normalize_email_string(value)
            if normalized is None:
                raise ValueError("invalid email address")
            return "email", get_base64_encoded_hash(normalized)
        if kind == "phone":
            if not is_phone_number_normalized(value):
                raise ValueError("phone number is not normalized")
            return "phone", get_base64_encoded_hash(value)
        if kind in ("email_hash", "phone_hash"):
            try:
                raw = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise ValueError("invalid hash") from None
            if len(raw) != 32:
                raise ValueError("invalid hash")
            return kind[:5], value
        raise ValueError(f"unknown identity kind {kind!r}")

    def _one_identity(self, **kwargs: Optional[str]) -> Tuple[str, str]:
        given = [(k, v) for k, v in kwargs.items() if v is not None]
        if len(given) != 1:
            raise ValueError("exactly one of email, phone, email_hash, phone_hash is required")
        return self._identity(*given[0])

    def _bucket(self, ident: Tuple[str, str]) -> int:
        digest = hmac.new(self._salt, b"bucket:" + ident[1].encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:4], "big") % self._n_buckets

    def _raw_uid_bytes(self, ident: Tuple[str, str], version: Optional[int] = None) -> bytes:
        bucket = self._bucket(ident)
        v = self._bucket_version[bucket] if version is None else version
        return self._raw_uids.raw_uid(ident[0], ident[1], bucket, v)

    def raw_uid(self, *, email: Optional[str] = None, phone: Optional[str] = None,
                email_hash: Optional[str] = None, phone_hash: Optional[str] = None) -> str:
        """The current raw UID (base64, 44 characters: 33 bytes by default, see ``raw_uid_version``) of an
        identity, as identity map and tokens give it."""
        return base64.b64encode(self._raw_uid_bytes(self._one_identity(
            email=email, phone=phone, email_hash=email_hash, phone_hash=phone_hash))).decode()

    @staticmethod
    def _bucket_id(index: int) -> str:
        return f"b{index:04d}"

    def bucket_id(self, *, email: Optional[str] = None, phone: Optional[str] = None,
                  email_hash: Optional[str] = None, phone_hash: Optional[str] = None) -> str:
        """The salt bucket id of an identity."""
        return self._bucket_id(self._bucket(self._one_identity(
            email=email, phone=phone, email_hash=email_hash, phone_hash=phone_hash)))

    def rotate_salts(self, bucket_ids: Optional[Iterable[str]] = None) -> List[str]:
        """Rotate salt buckets (default: all): their raw UIDs change and ``last_updated`` becomes now."""
        now = self.now_ms()
        with self._lock:
            indexes = range(self._n_buckets) if bucket_ids is None else [int(b[1:]) for b in bucket_ids]
            for i in indexes:
                self._bucket_version[i] += 1
                self._bucket_previous_rotation[i] = now
                self._bucket_updated[i] = now
            return [self._bucket_id(i) for i in indexes]

    def opt_out(self, *, email: Optional[str] = None, phone: Optional[str] = None,
                email_hash: Optional[str] = None, phone_hash: Optional[str] = None,
                raw_uid: Optional[str] = None, at: Optional[Millis] = None) -> Optional[str]:
        """Opt an identity out (token generate answers ``optout``, identity map and opt-out status report it).

        Returns the identity's current raw UID (None when ``raw_uid`` was given directly).
        """
        when = _to_ms(at) if at is not None else self.now_ms()
        if raw_uid is not None:
            with self._lock:
                self._raw_uid_optouts[raw_uid] = when
            return None
        ident = self._one_identity(email=email, phone=phone, email_hash=email_hash, phone_hash=phone_hash)
        with self._lock:
            self._optouts[ident] = when
        return base64.b64encode(self._raw_uid_bytes(ident)).decode()

    def _optout_time(self, ident: Tuple[str, str]) -> Optional[int]:
        with self._lock:
            return self._optouts.get(ident)

    # ------------------------------------------------------------------------------------------------
    # tokens
    # ------------------------------------------------------------------------------------------------
    def issue_token(self, *, email: Optional[str] = None, phone: Optional[str] = None,
                    email_hash: Optional[str] = None, phone_hash: Optional[str] = None,
                    raw_uid: Optional[str] = None, identity_type: Optional[int] = None,
                    site_id: Optional[int] = None, privacy_bits: int = 0, client_side: bool = False,
                    client_side_opted_out: bool = False, generated: Optional[Millis] = None,
                    expires: Optional[Millis] = None, established: Optional[Millis] = None,
                    version: int = 4) -> str:
        """An advertising token (v4 by default, or v3) signed with the current keys.

        Parameters
        ----------
        email, phone, email_hash, phone_hash : str, optional
            The identity (its raw UID as identity map returns it).
        raw_uid, identity_type : optional
            Or a raw UID directly (base64) and its type (0 email, 1 phone; by default a 33-byte raw UID's
            metadata byte says, else email unless the text starts with ``F`` or ``B``).
        site_id : int, optional
            The issuing site (default the publisher site); a site without keys gets a keyset.
        privacy_bits : int
            Raw privacy bits; ``client_side=True`` adds 0x2 (CSTG), ``client_side_opted_out`` 0x4.
        generated, expires, established : int (ms) or datetime, optional
            Timestamps; default now, now + identity TTL, now.
        version : {3, 4}
        """
        if raw_uid is not None:
            uid = base64.b64decode(raw_uid)
            itype = int(identity_type) if identity_type is not None else identity_type_of(raw_uid, uid)
        else:
            ident = self._one_identity(email=email, phone=phone, email_hash=email_hash, phone_hash=phone_hash)
            uid = self._raw_uid_bytes(ident)
            itype = 0 if ident[0] == "email" else 1
        bits = privacy_bits | (0x2 if client_side else 0) | (0x4 if client_side_opted_out else 0)
        now = self.now_ms()
        gen = _to_ms(generated) if generated is not None else now
        exp = _to_ms(expires) if expires is not None else gen + self._identity_ttl_ms
        est = _to_ms(established) if established is not None else gen
        site = self.publisher_site_id if site_id is None else int(site_id)
        return self._build_token(uid, itype, site, bits, est, gen, exp, version)

    def _build_token(self, uid: bytes, identity_type: int, site_id: int, privacy_bits: int,
                     established: int, generated: int, expires: int, version: int = 4) -> str:
        if version not in (3, 4):
            raise ValueError(f"version must be 3 or 4, got {version!r}")
        now_s = self.now_ms() / 1000
        site_key = self._active_key(self._keyset_for_site(site_id), now_s)
        master_key = self._active_key(MASTER_KEYSET_ID, now_s)
        # Minted by the test token generator, not by an engine: what the engines decrypt is checked
        # against an independent writer of the layout.
        return token_v3_v4(uid, site_id=site_id, master_key_id=master_key.id, master_secret=master_key.secret,
                           site_key_id=site_key.id, site_secret=site_key.secret, identity_scope=self._scope_bit,
                           identity_type=identity_type, version=128 if version == 4 else 112,
                           privacy_bits=privacy_bits, established_ms=established, generated_ms=generated,
                           expires_ms=expires)

    def decrypt_token(self, token: str) -> Tuple[str, int, int]:
        """Open an advertising token issued here: ``(raw_uid, site_id, privacy_bits)``; ValueError if invalid."""
        site_payload = self._open_token(token)[2]
        site_id, _, _, bits = struct.unpack(">iqii", site_payload[:20])
        return base64.b64encode(site_payload[36:]).decode(), site_id, bits

    def token_key_ids(self, token: str) -> Tuple[int, int]:
        """``(master key id, site key id)`` of an advertising token issued here: the keys a key set must hold
        to decrypt it. ValueError if the token is not one of this operator's."""
        master_id, site_key_id, _ = self._open_token(token)
        return master_id, site_key_id

    def _open_token(self, token: str) -> Tuple[int, int, bytes]:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = base64.urlsafe_b64decode(padded) if ("-" in token or "_" in token) else base64.b64decode(padded)
            if len(data) < 6 + 28 or data[1] not in (112, 128):
                raise ValueError("not a v3/v4 token")
            with self._lock:
                master = self._keys[struct.unpack(">I", data[2:6])[0]]
            master_payload = _envelope.decrypt_gcm(master.secret, data[6:])
            with self._lock:
                site_key = self._keys[struct.unpack(">i", master_payload[29:33])[0]]
            site_payload = _envelope.decrypt_gcm(site_key.secret, master_payload[33:])
        except (KeyError, struct.error, binascii.Error) as exc:
            raise ValueError(f"invalid token ({type(exc).__name__})") from None
        return master.id, site_key.id, site_payload

    def _issue_identity(self, ident: Tuple[str, str], site_id: int, established: Optional[int] = None,
                        *, v1: bool = False) -> Dict[str, Any]:
        now = self.now_ms()
        est = now if established is None else established
        token = self._build_token(self._raw_uid_bytes(ident), 0 if ident[0] == "email" else 1, site_id, 0,
                                  est, now, now + self._identity_ttl_ms)
        response_key = None if v1 else base64.b64encode(os.urandom(32)).decode()
        refresh_expires = now + self._refresh_ttl_ms
        inner = json.dumps({"k": ident[0], "h": ident[1], "s": site_id, "e": est, "x": refresh_expires,
                            "r": response_key}).encode()
        refresh_token = base64.b64encode(b"\x02" + _envelope.encrypt_gcm(self._refresh_key, inner)).decode()
        body: Dict[str, Any] = {"advertising_token": token, "user_token": token, "refresh_token": refresh_token,
                                "identity_expires": now + self._identity_ttl_ms,
                                "refresh_expires": refresh_expires, "refresh_from": now + self._refresh_from_ms}
        if response_key is not None:
            body["refresh_response_key"] = response_key
        return body

    def generate_identity(self, *, email: Optional[str] = None, phone: Optional[str] = None,
                          email_hash: Optional[str] = None, phone_hash: Optional[str] = None,
                          site_id: Optional[int] = None, v1_session: bool = False) -> Dict[str, Any]:
        """The identity JSON ``/v2/token/generate`` would return (without HTTP).

        ``v1_session=True`` issues one without ``refresh_response_key``: its refresh is answered in plain JSON.
        """
        ident = self._one_identity(email=email, phone=phone, email_hash=email_hash, phone_hash=phone_hash)
        return self._issue_identity(ident, self.publisher_site_id if site_id is None else site_id, v1=v1_session)

    # ------------------------------------------------------------------------------------------------
    # fault injection
    # ------------------------------------------------------------------------------------------------
    def _add_fault(self, kind: str, n: int, value: float, path: Optional[str]) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._faults.append(_Fault(kind, int(n), float(value), path))

    def fail_next(self, n: int, status: int = 503, *, path: Optional[str] = None) -> None:
        """The next ``n`` requests (to ``path`` if given) get HTTP ``status`` with a JSON error body."""
        self._add_fault("fail", n, status, path)

    def delay_next(self, n: int, seconds: float, *, path: Optional[str] = None) -> None:
        """The next ``n`` requests wait ``seconds`` before being handled (bounded: close() cuts it short)."""
        self._add_fault("delay", n, seconds, path)

    def rate_limit_next(self, n: int, retry_after: float = 1, *, path: Optional[str] = None) -> None:
        """The next ``n`` requests get ``429 Too Many Requests`` with ``Retry-After`` and no body."""
        self._add_fault("rate_limit", n, retry_after, path)

    def malformed_next(self, n: int, *, path: Optional[str] = None) -> None:
        """The next ``n`` requests get HTTP 200 with a body that is not a valid encrypted response."""
        self._add_fault("malformed", n, 0, path)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_faults(self, path: str) -> Tuple[float, Optional[_Fault]]:
        """Consume the faults that apply to this request: (total delay, the terminal fault if any)."""
        delay = 0.0
        terminal = None
        with self._lock:
            for f in self._faults:
                if f.remaining <= 0 or (f.path is not None and f.path != path):
                    continue
                if f.kind == "delay":
                    f.remaining -= 1
                    delay += f.value
                elif terminal is None:
                    f.remaining -= 1
                    terminal = f
            self._faults = [f for f in self._faults if f.remaining > 0]
        return delay, terminal

    def request_count(self, path: Optional[str] = None) -> int:
        """Requests received (to ``path`` if given)."""
        return sum(1 for r in list(self.requests) if path is None or r.path == path)

    # ------------------------------------------------------------------------------------------------
    # request handling (server thread)
    # ------------------------------------------------------------------------------------------------
    def _serve_request(self, path: str, headers: Mapping[str, str], body: bytes, peer_port: int) -> HttpResponse:
        """The server's application: faults, dispatch, and the request record (written before the answer goes
        out, so a client that got its response always finds the record)."""
        response = self._respond(path, headers, body)
        binary = headers.get("content-type", "").startswith("application/octet-stream")
        redacted = {k: ("***" if k == "authorization" else v) for k, v in headers.items()}
        self.requests.append(RequestRecord(path, response[0], redacted, binary, peer_port,
                                           hashlib.sha256(body).hexdigest()))
        return response

    def _respond(self, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        delay, fault = self._take_faults(path)
        if delay > 0 and self._closing.wait(delay):
            return json_response(503, {"status": "error", "message": "operator closing"})
        if fault is not None:
            return self._fault_response(fault)
        try:
            return self._handle(path, headers, body)
        except _ClientError as err:
            obj = {"status": err.status}
            if err.status != "unauthorized":
                obj["message"] = err.message
            return json_response(err.http_status, obj)
        except Exception:  # noqa: BLE001 - a bug in the operator must not kill the server
            logger.exception("local operator failed handling %s", path)
            return json_response(500, {"status": "error", "message": "internal error"})

    @staticmethod
    def _fault_response(fault: _Fault) -> HttpResponse:
        if fault.kind == "fail":
            return json_response(int(fault.value), {"status": "error", "message": "injected failure"})
        if fault.kind == "rate_limit":
            retry_after = fault.value
            value = str(int(retry_after)) if float(retry_after).is_integer() else f"{retry_after:g}"
            return 429, {"Retry-After": value}, b""
        # malformed: a 200 whose body is base64 but not a valid encrypted response
        return 200, {"Content-Type": "text/plain"}, base64.b64encode(os.urandom(48))

    def _authenticate(self, path: str, authorization: Optional[str]) -> _Client:
        if not authorization or not authorization.startswith("Bearer "):
            raise _ClientError("missing API key", 401, "unauthorized")
        with self._lock:
            client = self._clients.get(authorization[7:].strip())
        if client is None or not (client.roles & _ENDPOINT_ROLES[path]):
            raise _ClientError("unauthorized", 401, "unauthorized")
        return client

    def _open_envelope(self, client: _Client, body: bytes, binary: bool) -> Tuple[bytes, Any]:
        if not binary:
            try:
                body = base64.b64decode(body.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise _ClientError("Invalid body: not base64") from None
        try:
            ts, nonce, data = _envelope.decrypt_envelope(client.secret, body)
        except ValueError:
            raise _ClientError("Invalid body: cannot decrypt") from None
        if abs(self.now_ms() - ts) > 60_000:
            raise _ClientError("Request too old or client time drift")
        if not data:
            return nonce, None
        try:
            return nonce, json.loads(data)
        except ValueError:
            raise _ClientError("Invalid body: not JSON") from None

    def _handle(self, path: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        binary = headers.get("content-type", "").split(";")[0].strip().lower() == "application/octet-stream"
        if path == _REFRESH_PATH:
            return self._handle_refresh(body)
        if path not in _ENDPOINT_ROLES:
            raise _ClientError("unknown endpoint", 404)
        client = self._authenticate(path, headers.get("authorization"))
        nonce, request = self._open_envelope(client, body, binary)
        handler = _HANDLERS[path]
        status, response_body = handler(self, client, request)
        payload: Dict[str, Any] = {"status": status}
        if response_body is not None:
            payload["body"] = response_body
        encrypted = _envelope.encrypt_response(client.secret, self.now_ms(), nonce, json.dumps(payload).encode())
        if binary:
            return 200, {"Content-Type": "application/octet-stream"}, encrypted
        return 200, {"Content-Type": "text/plain"}, base64.b64encode(encrypted)

    def _handle_refresh(self, body: bytes) -> HttpResponse:
        try:
            raw = base64.b64decode(body.strip(), validate=True)
            if raw[:1] != b"\x02":
                raise ValueError("unknown refresh token version")
            inner = json.loads(_envelope.decrypt_gcm(self._refresh_key, raw[1:]))
        except (binascii.Error, ValueError):
            raise _ClientError("Invalid Token", 400, "invalid_token") from None
        now = self.now_ms()
        if now > inner["x"]:
            raise _ClientError("Expired Token", 400, "expired_token")
        ident = (inner["k"], inner["h"])
        if ident in self._refresh_optout or self._optout_time(ident) is not None:
            payload: Dict[str, Any] = {"status": "optout"}
        else:
            payload = {"status": "success",
                       "body": self._issue_identity(ident, inner["s"], inner["e"], v1=inner["r"] is None)}
        data = json.dumps(payload).encode()
        if inner["r"] is None:  # v1 session: plain JSON
            return 200, {"Content-Type": "application/json"}, data
        return 200, {"Content-Type": "text/plain"}, base64.b64encode(
            _envelope.encrypt_gcm(base64.b64decode(inner["r"]), data))

    # -- endpoints: each returns (status, body) ----------------------------------------------------
    def _ep_key_sharing(self, client: _Client, request: Any) -> Tuple[str, Any]:
        return "success", self._keys_json(client, bidstream=False)

    def _ep_key_bidstream(self, client: _Client, request: Any) -> Tuple[str, Any]:
        return "success", self._keys_json(client, bidstream=True)

    @staticmethod
    def _require_object(request: Any) -> Dict[str, Any]:
        if not isinstance(request, dict):
            raise _ClientError("request body must be a JSON object")
        return request

    def _request_identity(self, request: Dict[str, Any]) -> Tuple[str, str]:
        given = [k for k in ("email", "email_hash", "phone", "phone_hash") if request.get(k) is not None]
        if len(given) != 1:
            raise _ClientError("Exactly one of email, email_hash, phone, phone_hash is required")
        try:
            return self._identity(given[0], request[given[0]])
        except (ValueError, TypeError) as exc:
            raise _ClientError(str(exc)) from None

    def _ep_token_generate(self, client: _Client, request: Any) -> Tuple[str, Any]:
        request = self._require_object(request)
        ident = self._request_identity(request)
        tcf = request.get("tcf_consent_string")
        if tcf is not None and tcf in self._insufficient_consent:
            return "insufficient_user_consent", None
        if self._optout_time(ident) is not None:
            return "optout", None
        return "success", self._issue_identity(ident, client.site_id)

    def _ep_token_validate(self, client: _Client, request: Any) -> Tuple[str, Any]:
        request = self._require_object(request)
        token = request.get("token")
        if not isinstance(token, str) or not token:
            raise _ClientError("Required Parameter Missing: token")
        ident = self._request_identity(request)
        try:
            uid, _, _ = self.decrypt_token(token)
        except ValueError:
            return "success", False
        return "success", uid == base64.b64encode(self._raw_uid_bytes(ident)).decode()

    def _check_count(self, n: int) -> None:
        if n > self.max_identities_per_request:
            raise _ClientError(f"Too many identities: {n} > {self.max_identities_per_request}")

    def _map_one(self, kind: str, value: Any) -> Tuple[Optional[Tuple[str, str]], Optional[str]]:
        """(identity, None) or (None, unmapped reason)."""
        try:
            ident = self._identity(kind, value)
        except (ValueError, TypeError):
            return None, "invalid identifier"
        if self._optout_time(ident) is not None:
            return None, "optout"
        return ident, None

    def _ep_identity_map_v2(self, client: _Client, request: Any) -> Tuple[str, Any]:
        request = self._require_object(request)
        given = [k for k in ("email", "email_hash", "phone", "phone_hash") if request.get(k) is not None]
        if len(given) != 1 or not isinstance(request[given[0]], list):
            raise _ClientError("Exactly one of email, email_hash, phone, phone_hash (a list) is required")
        kind = given[0]
        values = request[kind]
        self._check_count(len(values))
        mapped, unmapped = [], []
        for value in values:
            ident, reason = self._map_one(kind, value)
            if ident is None:
                unmapped.append({"identifier": value, "reason": reason})
            else:
                mapped.append({"identifier": value,
                               "advertising_id": base64.b64encode(self._raw_uid_bytes(ident)).decode(),
                               "bucket_id": self._bucket_id(self._bucket(ident))})
        body: Dict[str, Any] = {"mapped": mapped}
        if unmapped:
            body["unmapped"] = unmapped
        return "success", body

    def _ep_identity_map_v3(self, client: _Client, request: Any) -> Tuple[str, Any]:
        request = self._require_object(request)
        kinds = ("email", "email_hash", "phone", "phone_hash")
        lists = {k: request.get(k) or [] for k in kinds}
        if any(not isinstance(v, list) for v in lists.values()):
            raise _ClientError("identity arrays must be lists")
        self._check_count(sum(len(v) for v in lists.values()))
        now = self.now_ms()
        body: Dict[str, List[Dict[str, Any]]] = {}
        for kind in kinds:
            out: List[Dict[str, Any]] = []
            for value in lists[kind]:
                ident, reason = self._map_one(kind, value)
                if ident is None:
                    out.append({"e": reason})
                    continue
                bucket = self._bucket(ident)
                prev_rot = self._bucket_previous_rotation[bucket]
                previous = None
                if prev_rot is not None and now - prev_rot < 90 * _DAY_MS and self._bucket_version[bucket] > 0:
                    previous = base64.b64encode(
                        self._raw_uid_bytes(ident, self._bucket_version[bucket] - 1)).decode()
                refresh_from = max(self._bucket_updated[bucket] + 30 * _DAY_MS, now + _DAY_MS) // 1000
                out.append({"u": base64.b64encode(self._raw_uid_bytes(ident)).decode(), "p": previous,
                            "r": refresh_from})
            body[kind] = out
        return "success", body

    def _ep_identity_buckets(self, client: _Client, request: Any) -> Tuple[str, Any]:
        request = self._require_object(request)
        since = request.get("since_timestamp")
        try:
            since_dt = dt.datetime.fromisoformat(since)
            if since_dt.tzinfo is not None:
                raise ValueError("offset not allowed")
        except (TypeError, ValueError):
            raise _ClientError("invalid date, must conform to ISO 8601") from None
        since_ms = int(since_dt.replace(tzinfo=dt.timezone.utc).timestamp() * 1000)
        out = []
        with self._lock:
            for i in range(self._n_buckets):
                updated = self._bucket_updated[i]
                if updated > since_ms:
                    ts = dt.datetime.fromtimestamp(updated / 1000, tz=dt.timezone.utc).replace(tzinfo=None)
                    out.append({"bucket_id": self._bucket_id(i),
                                "last_updated": ts.isoformat(timespec="milliseconds")})
        return "success", out

    def _ep_optout_status(self, client: _Client, request: Any) -> Tuple[str, Any]:
        request = self._require_object(request)
        ids = request.get("advertising_ids")
        if not isinstance(ids, list):
            raise _ClientError("Required Parameter Missing: advertising_ids")
        self._check_count(len(ids))
        with self._lock:
            by_uid = dict(self._raw_uid_optouts)
            for ident, when in self._optouts.items():
                by_uid.setdefault(base64.b64encode(self._raw_uid_bytes(ident)).decode(), when)
        return "success", {"opted_out": [{"advertising_id": u, "opted_out_since": by_uid[u]}
                                         for u in ids if isinstance(u, str) and u in by_uid]}


_HANDLERS: Dict[str, Callable[[LocalOperator, _Client, Any], Tuple[str, Any]]] = {
    "/v2/key/sharing": LocalOperator._ep_key_sharing,
    "/v2/key/bidstream": LocalOperator._ep_key_bidstream,
    "/v2/token/generate": LocalOperator._ep_token_generate,
    "/v2/token/validate": LocalOperator._ep_token_validate,
    "/v2/identity/map": LocalOperator._ep_identity_map_v2,
    "/v3/identity/map": LocalOperator._ep_identity_map_v3,
    "/v2/identity/buckets": LocalOperator._ep_identity_buckets,
    "/v2/optout/status": LocalOperator._ep_optout_status,
}
