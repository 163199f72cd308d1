"""``Envelope``: an encrypted operator request and its nonce (same API as ``uid2_client.envelope``)."""
from __future__ import annotations

import base64

__all__ = ["Envelope"]


class Envelope:
    """An encrypted request envelope.

    Parameters
    ----------
    envelope : bytes
        The binary envelope (``0x01 ‖ IV ‖ ciphertext ‖ tag``).
    nonce : bytes
        The 8-byte nonce the response must echo.
    """

    __slots__ = ("_binary_envelope", "_nonce")

    def __init__(self, envelope: bytes, nonce: bytes) -> None:
        self._binary_envelope = envelope
        self._nonce = nonce

    @property
    def envelope(self) -> bytes:
        """The base64 envelope for the POST body of a text endpoint — **bytes**, as the official SDK returns.

        See https://unifiedid.com/docs/getting-started/gs-encryption-decryption#encrypted-request-envelope
        """
        return base64.b64encode(self._binary_envelope)

    @property
    def nonce(self) -> bytes:
        """The request nonce."""
        return self._nonce

    @property
    def binary_envelope(self) -> bytes:
        """The raw envelope bytes (the body for ``/v3/identity/map``)."""
        return self._binary_envelope

    def __repr__(self) -> str:
        return f"<Envelope {len(self._binary_envelope)} bytes>"
