"""Which kind of client decrypts a token; it decides the lifetime and domain checks."""
from enum import Enum

__all__ = ["ClientType"]


class ClientType(Enum):
    # The trailing commas are the official SDK's: its SHARING and BIDSTREAM values are tuples.
    SHARING = (1,)
    BIDSTREAM = (2,)
    LEGACY_WITHOUT_DOMAIN_CHECK = 3
