"""``Uid2Response``: a raw operator response body, text or binary (same API as ``uid2_client``)."""
from __future__ import annotations

from typing import Optional, Union

__all__ = ["Uid2Response"]


class Uid2Response:
    """The undecrypted body of an operator response.

    Text endpoints give base64 text (held in ``as_string``; like the official SDK this may be ``bytes``
    read from the socket), ``/v3/identity/map`` gives raw bytes (``as_bytes``).
    """

    __slots__ = ("_as_string", "_as_bytes")

    def __init__(self, as_string: Optional[Union[str, bytes]], as_bytes: Optional[bytes]) -> None:
        self._as_string = as_string
        self._as_bytes = as_bytes

    @classmethod
    def from_string(cls, as_string: Union[str, bytes]) -> "Uid2Response":
        return cls(as_string, None)

    @classmethod
    def from_bytes(cls, as_bytes: bytes) -> "Uid2Response":
        return cls(None, as_bytes)

    @property
    def as_string(self) -> Optional[Union[str, bytes]]:
        return self._as_string

    @property
    def as_bytes(self) -> Optional[bytes]:
        return self._as_bytes

    def is_binary(self) -> bool:
        return self._as_bytes is not None

    def __repr__(self) -> str:
        kind = "binary" if self.is_binary() else "text"
        data = self._as_bytes if self.is_binary() else self._as_string
        return f"<Uid2Response {kind} {len(data) if data is not None else 0} bytes>"
