"""The operator request/response envelope and the refresh-response format.

Layouts: docs/keys-and-envelope.md#request-envelope and #response-envelope.

Request envelope, as the operator expects it::

    [0:1)    envelope version, always 0x01
    [1:13)   GCM IV (12 bytes, random)
    [13:-16) AES-256-GCM ciphertext (key = client secret) of
                 [0:8)  now, epoch milliseconds, big-endian
                 [8:16) nonce (8 random bytes; echoed by the operator)
                 [16:)  UTF-8 JSON request (absent for the key endpoints)
    [-16:)   GCM tag

Response (HTTP 200 only): ``IV (12) ‖ ciphertext ‖ tag (16)`` with the same secret; the plaintext is
``timestamp (8) ‖ nonce (8) ‖ JSON``. ``/v2/token/refresh`` differs: the plaintext is the JSON itself and
the key is the identity's ``refresh_response_key``; without a key, the body is plain JSON
(docs/differences.md#refresh-without-key).

This module is pure crypto: no I/O, no logging of any input.
"""
from __future__ import annotations

import base64
import binascii
import os
from typing import Optional, Tuple, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ENVELOPE_VERSION",
    "NONCE_SIZE",
    "IV_SIZE",
    "TAG_SIZE",
    "MIN_ENVELOPE_SIZE",
    "encrypt_gcm",
    "decrypt_gcm",
    "encrypt_envelope",
    "decrypt_envelope",
    "encrypt_response",
    "decrypt_response",
    "decrypt_refresh_response",
]

ENVELOPE_VERSION = 1
NONCE_SIZE = 8
IV_SIZE = 12
TAG_SIZE = 16
#: version (1) + IV (12) + timestamp and nonce (16) + tag (16): the operator's lower bound.
MIN_ENVELOPE_SIZE = 1 + IV_SIZE + 16 + TAG_SIZE

Bytes = Union[bytes, bytearray, memoryview]


def _aead(key: Bytes) -> AESGCM:
    try:
        return AESGCM(bytes(key))
    except (ValueError, TypeError) as exc:
        # The message from cryptography names the length only, never the key bytes.
        raise ValueError(f"invalid AES-GCM key: {exc}") from None


def encrypt_gcm(key: Bytes, plaintext: Bytes, iv: Optional[bytes] = None) -> bytes:
    """AES-256-GCM encrypt, framed as ``IV (12) ‖ ciphertext ‖ tag (16)`` with no AAD.

    Parameters
    ----------
    key : bytes
        The 32-byte secret.
    plaintext : bytes
        The data to encrypt.
    iv : bytes, optional
        A 12-byte IV; by default 12 bytes from the OS CSPRNG. Pass one only for test vectors.

    Returns
    -------
    bytes
        The framed ciphertext.
    """
    if iv is None:
        iv = os.urandom(IV_SIZE)
    elif len(iv) != IV_SIZE:
        raise ValueError(f"iv must be {IV_SIZE} bytes, got {len(iv)}")
    return bytes(iv) + _aead(key).encrypt(bytes(iv), bytes(plaintext), None)


def decrypt_gcm(key: Bytes, framed: Bytes) -> bytes:
    """Decrypt ``IV (12) ‖ ciphertext ‖ tag (16)``.

    Raises
    ------
    ValueError
        If the data is too short or the tag does not verify (wrong key or tampered data).
    """
    framed = bytes(framed)
    if len(framed) < IV_SIZE + TAG_SIZE:
        raise ValueError(f"encrypted data too short ({len(framed)} bytes)")
    try:
        return _aead(key).decrypt(framed[:IV_SIZE], framed[IV_SIZE:], None)
    except InvalidTag:
        raise ValueError("GCM tag check failed: wrong secret or corrupted data") from None


def encrypt_envelope(
    secret: Bytes,
    now_ms: int,
    data: Optional[Bytes] = None,
    *,
    nonce: Optional[bytes] = None,
    iv: Optional[bytes] = None,
) -> Tuple[bytes, bytes]:
    """Build a binary request envelope.

    Parameters
    ----------
    secret : bytes
        The client secret (32 bytes, already base64-decoded).
    now_ms : int
        The request time in epoch milliseconds.
    data : bytes, optional
        The UTF-8 JSON request; like the official SDK, an empty value adds nothing.
    nonce : bytes, optional
        8 bytes; random by default (pass one only for test vectors).
    iv : bytes, optional
        12 bytes; random by default.

    Returns
    -------
    tuple of (bytes, bytes)
        ``(envelope, nonce)``; text endpoints send ``base64(envelope)``, ``/v3/identity/map`` the raw bytes.
    """
    if nonce is None:
        nonce = os.urandom(NONCE_SIZE)
    elif len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
    plaintext = int(now_ms).to_bytes(8, "big") + bytes(nonce)
    if data:
        plaintext += bytes(data)
    return bytes([ENVELOPE_VERSION]) + encrypt_gcm(secret, plaintext, iv), bytes(nonce)


def decrypt_envelope(secret: Bytes, envelope: Bytes) -> Tuple[int, bytes, bytes]:
    """Open a request envelope (the operator's side; used by :mod:`uid2fast.testing`).

    Returns
    -------
    tuple of (int, bytes, bytes)
        ``(timestamp_ms, nonce, data)``.

    Raises
    ------
    ValueError
        Wrong version, too short, or the tag does not verify.
    """
    envelope = bytes(envelope)
    if len(envelope) < MIN_ENVELOPE_SIZE:
        raise ValueError("envelope too short")
    if envelope[0] != ENVELOPE_VERSION:
        raise ValueError(f"unsupported envelope version {envelope[0]}")
    plaintext = decrypt_gcm(secret, envelope[1:])
    return int.from_bytes(plaintext[:8], "big"), plaintext[8:16], plaintext[16:]


def encrypt_response(
    secret: Bytes, now_ms: int, nonce: bytes, payload: Bytes, *, iv: Optional[bytes] = None
) -> bytes:
    """Build an operator response: ``GCM(timestamp ‖ nonce ‖ payload)`` framed with its IV (not base64)."""
    return encrypt_gcm(secret, int(now_ms).to_bytes(8, "big") + bytes(nonce) + bytes(payload), iv)


def decrypt_response(secret: Bytes, encrypted: Bytes, nonce: bytes) -> bytes:
    """Decrypt an operator response and check that it echoes our nonce.

    Parameters
    ----------
    secret : bytes
        The client secret.
    encrypted : bytes
        The response body, base64-decoded (or raw for binary responses).
    nonce : bytes
        The nonce sent in the request envelope.

    Returns
    -------
    bytes
        The JSON payload (after timestamp and nonce), as the official SDK returns it.

    Raises
    ------
    ValueError
        The tag does not verify, the payload is shorter than 16 bytes, or ``"nonce mismatch"``.
    """
    payload = decrypt_gcm(secret, encrypted)
    if len(payload) < 16:
        raise ValueError("response payload too short")
    if payload[8:16] != bytes(nonce):
        raise ValueError("nonce mismatch")
    return payload[16:]


def decrypt_refresh_response(body: Union[bytes, str], refresh_response_key: Optional[Union[str, bytes]]) -> bytes:
    """Decrypt a ``/v2/token/refresh`` response body into its JSON bytes.

    Parameters
    ----------
    body : bytes or str
        The HTTP response body: base64 of ``IV ‖ ciphertext ‖ tag``.
    refresh_response_key : str or bytes or None
        The identity's ``refresh_response_key`` (base64 str, or the raw 32 bytes). ``None`` means a v1
        session: the operator answers with plain JSON, as the Java SDK reads it
        (docs/differences.md#refresh-without-key).

    Returns
    -------
    bytes
        The response JSON (no timestamp or nonce in this format).

    Raises
    ------
    ValueError
        The body is not base64 or the tag does not verify.
    """
    if isinstance(body, str):
        body = body.encode("ascii", "replace")
    if refresh_response_key is None:
        return bytes(body)
    key = base64.b64decode(refresh_response_key) if isinstance(refresh_response_key, str) else refresh_response_key
    try:
        encrypted = base64.b64decode(bytes(body).strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("refresh response is not base64") from None
    return decrypt_gcm(key, encrypted)
