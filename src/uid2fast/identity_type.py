"""Identity type: where a UID2 came from (same values as ``uid2_client.identity_type``)."""
from enum import IntEnum

__all__ = ["IdentityType"]


class IdentityType(IntEnum):
    """Enum for types of ID source."""

    Email = 0
    Phone = 1
