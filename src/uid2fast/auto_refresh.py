"""``EncryptionKeysAutoRefresher``: the official background refresher for the legacy ``Uid2Client``.

Same names and behaviour as ``uid2_client.auto_refresh`` (a non-daemon ``threading.Thread``); the one fix
is ``EncryptionKeysAutoRefreshResult.__repr__``, which crashed when ``last_error`` was None. For the newer
clients use :class:`uid2fast.refresher.KeyRefresher`.

>>> from uid2fast import EncryptionKeysAutoRefresher  # doctest: +SKIP
"""
from __future__ import annotations

import datetime as dt
import sys
import threading
from datetime import timezone
from typing import Any, Optional, Tuple

from .metrics import Metrics, RefreshRecorder, error_reason, refresher_metrics

__all__ = ["EncryptionKeysAutoRefreshResult", "EncryptionKeysAutoRefresher"]


class EncryptionKeysAutoRefreshResult:
    """Snapshot of a background refresh.

    Attributes
    ----------
    keys : EncryptionKeysCollection or None
        The keys of the last successful refresh (None before the first).
    last_error : tuple or None
        ``(exc_type, exc_value, traceback)`` of the last attempt; None if it succeeded.
    last_success_time : datetime or None
        UTC time of the last success.
    """

    def __init__(self, keys: Any, error: Optional[Tuple[Any, Any, Any]], last_success: Optional[dt.datetime]) -> None:
        self.keys = keys
        self.last_error = error
        self.last_success_time = last_success

    @property
    def ready(self) -> bool:
        """True if keys have been refreshed at least once (they may no longer be valid)."""
        return self.keys is not None

    def __repr__(self) -> str:
        error = self.last_error[1] if self.last_error is not None else None
        return f"<{self.keys}, {error}>"


class EncryptionKeysAutoRefresher(threading.Thread):
    """Thread that calls ``client.refresh_keys()`` every ``refresh_interval`` (``retry_interval`` after a
    failure) and keeps the last successful result.

    Use it with ``with``:

    >>> with EncryptionKeysAutoRefresher(client, refresh_interval, retry_interval) as refresher:  # doctest: +SKIP
    ...     result = refresher.current_result()
    ...     if result.ready:
    ...         do_work(result.keys)
    """

    def __init__(self, client: Any, refresh_interval: dt.timedelta, retry_interval: dt.timedelta) -> None:
        threading.Thread.__init__(self)
        self._client = client
        self._refresh_interval = refresh_interval.total_seconds()
        self._retry_interval = retry_interval.total_seconds()
        self._finished = threading.Event()
        err = RuntimeError("Refresh has not started or completed yet")
        self._result = EncryptionKeysAutoRefreshResult(None, (RuntimeError, err, None), None)
        self._recorder = RefreshRecorder()

    def current_result(self) -> EncryptionKeysAutoRefreshResult:
        """The latest result; take one snapshot and use it (the reference is replaced, never mutated)."""
        return self._result

    def metrics(self) -> Metrics:
        """A snapshot of this thread's refresh attempts with its client's key-set age and status counts (an
        addition; see :class:`uid2fast.metrics.Metrics`)."""
        return refresher_metrics(self._recorder, self._client)

    def run(self) -> None:
        """Thread body; call ``start()``, not this."""
        while not self._finished.is_set():
            interval = self._refresh_interval if self._try_refresh_keys() else self._retry_interval
            self._finished.wait(interval)

    def cancel(self) -> None:
        """Tell the thread to stop."""
        self._finished.set()

    def _try_refresh_keys(self) -> bool:
        try:
            keys = self._client.refresh_keys()
            self._result = self._make_success_result(keys)
            self._recorder.record(True)
            self._recorder.keys_installed(keys)
            return True
        except Exception as exc:  # noqa: BLE001 - as the official: any failure keeps the previous keys
            self._result = self._make_error_result(sys.exc_info())
            self._recorder.record(False, error_reason(exc))
            return False

    def _make_error_result(self, err: Any) -> EncryptionKeysAutoRefreshResult:
        return EncryptionKeysAutoRefreshResult(self._result.keys, err, self._result.last_success_time)

    def _make_success_result(self, keys: Any) -> EncryptionKeysAutoRefreshResult:
        return EncryptionKeysAutoRefreshResult(keys, None, dt.datetime.now(tz=timezone.utc))

    def __enter__(self) -> "EncryptionKeysAutoRefresher":
        self.start()
        return self

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        self.cancel()
        self.join()
