"""The local operator's model: constants, roles, and the records it keeps (keys, clients, faults, requests).

Shared by the operator's state (:mod:`uid2fast.testing.operator`) and its endpoints
(:mod:`uid2fast.testing._endpoints`).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Set, Union

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
