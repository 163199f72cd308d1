"""Request/response helpers with the official names and signatures (``uid2_client.request_response_util``).

Client modules import these names into their own namespace and call them through it, so that code (and
the official tests) patching e.g. ``uid2fast.identity_map_client.make_request`` keeps working. ``post``
sends through the calling client's :class:`uid2fast._http.HttpTransport` (timeouts, connection reuse);
the retry loop lives in the clients, around a whole create-envelope / request / parse attempt.
"""
from __future__ import annotations

import base64
import binascii
import os
from datetime import datetime
from importlib import metadata
from typing import Dict, Optional, Union

from . import _envelope
from ._http import BINARY, HttpResponse, current_transport
from .envelope import Envelope
from .uid2_response import Uid2Response

__all__ = [
    "BINARY",
    "auth_headers",
    "create_envelope",
    "make_request",
    "make_binary_request",
    "post",
    "parse_response",
]



def _make_url(base_url: str, path: str) -> str:
    return base_url + path


def _package_version() -> str:
    # Exactly the official lookup (docs/differences.md#drop-in-promise): the version of the
    # ``uid2_client`` distribution, or ``non-packaged-mode`` where it is not installed.
    try:
        return metadata.version("uid2_client")
    except Exception:
        return "non-packaged-mode"


def auth_headers(auth_key: str) -> Dict[str, str]:
    """``Authorization: Bearer <key>`` and ``X-UID2-Client-Version: uid2-client-python-<version>``.

    The version is looked up exactly as the official SDK does (the ``uid2_client`` distribution's).
    """
    return {"Authorization": "Bearer " + auth_key,
            "X-UID2-Client-Version": "uid2-client-python-" + _package_version()}


def create_envelope(secret_key: bytes, now: datetime, data: Optional[bytes] = None) -> Envelope:
    """Encrypt a request envelope for ``now`` with a fresh random nonce and IV.

    Parameters
    ----------
    secret_key : bytes
        The client secret, base64-decoded.
    now : datetime
        The request time (the operator rejects envelopes more than a minute off its clock).
    data : bytes, optional
        The JSON request body.
    """
    envelope, nonce = _envelope.encrypt_envelope(secret_key, int(now.timestamp() * 1000), data,
                                                 nonce=os.urandom(_envelope.NONCE_SIZE))
    return Envelope(envelope, nonce)


def make_request(base_url: str, path: str, headers: Dict[str, str], envelope: Envelope) -> Uid2Response:
    """POST a base64 envelope; return the (still encrypted) text response."""
    resp = post(base_url, path, headers, envelope.envelope)
    return Uid2Response.from_string(resp.read())


def make_binary_request(base_url: str, path: str, headers: Dict[str, str], envelope: Envelope) -> Uid2Response:
    """POST a raw envelope as ``application/octet-stream``; return the binary response."""
    headers["Content-Type"] = BINARY
    resp = post(base_url, path, headers, envelope.binary_envelope)
    return Uid2Response.from_bytes(resp.read())


def post(base_url: str, path: str, headers: Dict[str, str], data: bytes) -> HttpResponse:
    """One POST (no retry). Returns an object with ``read()``; raises ``Uid2HttpError`` (an ``HTTPError``)."""
    auth = headers.get("Authorization", "")
    secrets = (auth[7:],) if auth.startswith("Bearer ") else ()
    # Inside a client call, the attempt's deadline and the client's secrets apply too.
    return current_transport().post(_make_url(base_url, path), headers, data, endpoint=path, secrets=secrets)


def parse_response(secret_key: bytes, uid2_response: Uid2Response, nonce: bytes) -> bytes:
    """Decrypt a response and check its nonce; return the JSON payload bytes.

    Raises
    ------
    ValueError
        No data, not base64, the tag does not verify, or ``"nonce mismatch"``.
    """
    if uid2_response.is_binary():
        as_bytes = uid2_response.as_bytes
        if as_bytes is None:
            raise ValueError("Binary response has no bytes data")
        return _decrypt_payload(secret_key, as_bytes, nonce)
    as_string = uid2_response.as_string
    if as_string is None:
        raise ValueError("String response has no string data")
    try:
        encrypted = base64.b64decode(as_string)
    except (binascii.Error, ValueError):
        raise ValueError("response body is not base64") from None
    return _decrypt_payload(secret_key, encrypted, nonce)


def _decrypt_payload(secret_key: bytes, encrypted: Union[bytes, bytearray], nonce: bytes) -> bytes:
    return _envelope.decrypt_response(secret_key, encrypted, nonce)
