"""Identity scope: UID2 or EUID (same values as ``uid2_client.identity_scope``)."""
from enum import IntEnum

__all__ = ["IdentityScope"]


class IdentityScope(IntEnum):
    """Enum for types of unified ID."""

    UID2 = 0
    EUID = 1
