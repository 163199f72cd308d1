"""Time conversions shared by the engines and the public objects.

The official SDK turns a token's millisecond timestamp into ``datetime.fromtimestamp(ms / 1000.0,
tz=utc)`` and compares datetimes. Both engines compare integer microseconds instead, so this module
defines the one exact mapping between the two.
"""
import datetime as dt
import time
from typing import Optional

__all__ = ["EPOCH", "MAX_US", "to_us", "ms_to_us", "ms_to_datetime", "now_us"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_ONE_US = dt.timedelta(microseconds=1)
# datetime.max as UTC microseconds since the epoch: anything later cannot be a datetime.
MAX_US = (dt.datetime.max.replace(tzinfo=dt.timezone.utc) - EPOCH) // _ONE_US
# Below 2**32 seconds, ms / 1000.0 is within half a microsecond of the exact value, so
# fromtimestamp gives exactly ms * 1000 µs; above it the float rounding must be replayed.
_EXACT_MS_LIMIT = (1 << 32) * 1000


def to_us(value: dt.datetime) -> int:
    """A timezone-aware datetime as integer microseconds since the Unix epoch.

    Raises ``TypeError`` for a naive datetime, as comparing one with the SDK's aware datetimes does.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError("can't compare offset-naive and offset-aware datetimes")
    return (value - EPOCH) // _ONE_US


def ms_to_us(ms: int) -> Optional[int]:
    """Microseconds of ``datetime.fromtimestamp(ms / 1000.0, tz=utc)``, or None where that raises."""
    if 0 <= ms < _EXACT_MS_LIMIT:
        return ms * 1000
    try:
        d = dt.datetime.fromtimestamp(ms / 1000.0, tz=dt.timezone.utc)
    except (OverflowError, ValueError, OSError):
        return None
    return (d - EPOCH) // _ONE_US


def ms_to_datetime(ms: Optional[int]) -> Optional[dt.datetime]:
    """The datetime the official SDK reports for a token timestamp in milliseconds."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000.0, tz=dt.timezone.utc)


def now_us() -> int:
    """The current UTC time in microseconds."""
    return time.time_ns() // 1000
