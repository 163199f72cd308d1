"""Token versions, with the official SDK's values (2, 112, 128)."""
from enum import IntEnum

__all__ = ["AdvertisingTokenVersion"]


class AdvertisingTokenVersion(IntEnum):
    # v2 has no version byte beyond the leading 0x02.
    ADVERTISING_TOKEN_V2 = 2
    # Second byte 112 (0x70): shows as "AHA..." in base64.
    ADVERTISING_TOKEN_V3 = 112
    # Second byte 128 (0x80): shows as "AIA..." in base64url.
    ADVERTISING_TOKEN_V4 = 128
