"""The result of a key refresh."""
from typing import Any, Optional

__all__ = ["RefreshResponse"]


class RefreshResponse:
    """``success``, ``reason`` (a str on failure, docs/differences.md#refresh-reason) and ``keys``."""

    def __init__(self, success: bool, reason: Optional[str], keys: Any):
        self.success = success
        self.reason = reason
        self.keys = keys

    @staticmethod
    def make_success(keys: Any) -> "RefreshResponse":
        return RefreshResponse(True, None, keys)

    @staticmethod
    def make_error(reason: Any) -> "RefreshResponse":
        if isinstance(reason, tuple):
            reason = ", ".join(str(r) for r in reason) if reason else "unknown error"
        return RefreshResponse(False, reason, None)

    def __repr__(self) -> str:
        return f"RefreshResponse(success={self.success}, reason={self.reason!r}, keys={self.keys!r})"
