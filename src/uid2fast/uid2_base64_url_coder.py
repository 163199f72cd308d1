"""Base64url without padding (RFC 4648 §5), as the official ``Uid2Base64UrlCoder``."""
import base64

__all__ = ["Uid2Base64UrlCoder"]


class Uid2Base64UrlCoder:
    @staticmethod
    def encode(input: bytes) -> str:
        return base64.urlsafe_b64encode(input).decode("ascii").rstrip("=")

    @staticmethod
    def decode(token):  # type: ignore[no-untyped-def]
        pad = -len(token) % 4
        if pad:
            token = token + ("=" * pad if isinstance(token, str) else b"=" * pad)
        return base64.urlsafe_b64decode(token)
