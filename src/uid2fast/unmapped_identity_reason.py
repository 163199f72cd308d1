"""Why an identity map v3 input was not mapped."""
from __future__ import annotations

from enum import Enum

__all__ = ["UnmappedIdentityReason"]


class UnmappedIdentityReason(Enum):
    """``optout``, ``invalid identifier``, or ``unknown`` for anything else the operator sends."""

    OPTOUT = "optout"
    INVALID_IDENTIFIER = "invalid identifier"
    UNKNOWN = "unknown"

    @classmethod
    def from_string(cls, reason_str: str) -> "UnmappedIdentityReason":
        try:
            return cls(reason_str)
        except ValueError:
            return cls.UNKNOWN
