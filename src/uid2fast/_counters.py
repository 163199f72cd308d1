"""Status counters for the clients' metrics, the pure-Python twin of ``StatusCounter`` in
``_engine_c_counters.pxi`` (same constructor, methods and answers). Each engine module exports its own as
``StatusCounter``; a client builds its counters on its engine."""
import threading
from typing import Any, Iterable, Tuple

__all__ = ["StatusCounter"]

_MAX_COUNTED = 32


class StatusCounter:
    """Counts per status code, shared by any number of threads (a lock around each update: this engine's calls
    take tens of microseconds, so the lock is a small share of them).

    ``StatusCounter(statuses)`` takes the public status objects by engine code (None for a code no result
    carries). ``add_status`` finds the code of a status object by identity (the first code that has it),
    ``add(code, n=1)`` counts a code, ``add_codes`` a whole uint8 status column; ``counts()`` is the tuple of
    counts by code.
    """

    __slots__ = ("_statuses", "_codes", "_c", "_lock")

    def __init__(self, statuses: Iterable[Any]) -> None:
        st = tuple(statuses)
        if not 0 < len(st) <= _MAX_COUNTED:
            raise ValueError(f"statuses: 1 to {_MAX_COUNTED} entries, got {len(st)}")
        self._statuses = st
        codes: dict = {}
        for code, status in enumerate(st):
            codes.setdefault(id(status), code)  # the first code of a status, as the C counter's scan finds it
        self._codes = codes
        self._c = [0] * len(st)
        self._lock = threading.Lock()

    @property
    def statuses(self) -> Tuple[Any, ...]:
        """The status objects by code, as given."""
        return self._statuses

    def add_status(self, status: Any) -> None:
        """Count one call that answered ``status`` (a ValueError for an object that is none of the statuses)."""
        code = self._codes.get(id(status))
        if code is None or self._statuses[code] is not status:
            raise ValueError(f"{status!r} is not one of this counter's statuses")
        with self._lock:
            self._c[code] += 1

    def add(self, code: int, n: int = 1) -> None:
        """Count ``n`` calls that answered ``code``."""
        code = int(code)
        n = int(n)
        if not 0 <= code < len(self._c):
            raise ValueError(f"status code {code} out of range 0..{len(self._c) - 1}")
        if not 0 <= n < 1 << 64:
            raise OverflowError(f"n must be a uint64, got {n}")
        with self._lock:
            self._c[code] = (self._c[code] + n) & 0xFFFF_FFFF_FFFF_FFFF  # wraps as the C counter's uint64 does

    def add_codes(self, codes: Any) -> None:
        """Count every entry of a uint8 status column (a batch's ``status``); a code out of range is a ValueError
        and nothing of the column is counted."""
        import numpy as np

        arr = np.asarray(codes)
        if arr.dtype != np.uint8 or arr.ndim != 1:
            raise ValueError(f"codes must be a one-dimensional uint8 column, got {arr.dtype} with {arr.ndim} dims")
        hist = np.bincount(arr, minlength=len(self._c)) if len(arr) else np.zeros(len(self._c), dtype=np.int64)
        if len(hist) > len(self._c) and hist[len(self._c):].any():
            raise ValueError(f"a status code out of range 0..{len(self._c) - 1} in the column")
        with self._lock:
            for code in np.flatnonzero(hist[:len(self._c)]):
                self._c[code] += int(hist[code])

    def counts(self) -> Tuple[int, ...]:
        """The counts by code (a tuple of ints)."""
        with self._lock:
            return tuple(self._c)

    def __repr__(self) -> str:
        return f"<StatusCounter {self.counts()!r}>"

    def __reduce__(self) -> Any:
        raise TypeError("a StatusCounter is not picklable")
