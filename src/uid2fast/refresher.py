"""Background key refresh for any client.

A :class:`KeyRefresher` calls the client's ``refresh()`` (``BidstreamClient``, ``SharingClient``: returns
an object with ``success``/``reason``) or ``refresh_keys()`` (legacy ``Uid2Client``: raises on failure)
every ``interval``, and every ``retry_interval`` after a failure. The clients only replace their key set
on success, with one attribute assignment, so a failed refresh leaves decryption running on the last good
keys and no thread ever sees a half-built set.

Each attempt runs on its own short-lived thread and is waited for at most ``timeout`` seconds (by default
the smaller of ``interval`` and 120 s). An attempt still running then is abandoned: it counts as a failure,
the schedule goes on, and no new attempt starts until it ends (so a server that never answers costs one
thread, not one per interval). The clients' own deadlines (``HttpConfig.call_timeout``) end it eventually;
if it then succeeds, its keys are swapped in as usual.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any, Callable, Optional, Union

from .metrics import Metrics, RefreshRecorder, error_reason, refresher_metrics

__all__ = ["KeyRefresher", "KeyRefreshError"]

logger = logging.getLogger("uid2fast.refresher")

Interval = Union[dt.timedelta, float, int]


class KeyRefreshError(RuntimeError):
    """A refresh that reported failure (``success`` false) instead of raising; ``args[0]`` is the reason."""


def _seconds(value: Interval, name: str) -> float:
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    if not seconds > 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return seconds


def refresh_mode(client: Any) -> str:
    """``"refresh"`` (returns a result with ``success``) or ``"refresh_keys"`` (raises on failure)."""
    if callable(getattr(client, "refresh", None)):
        return "refresh"
    if callable(getattr(client, "refresh_keys", None)):
        return "refresh_keys"
    raise TypeError(f"client must have refresh() or refresh_keys(), got {type(client).__name__}")


def check_result(result: Any) -> None:
    """Raise :class:`KeyRefreshError` with the reason of a ``refresh()`` result that reports failure."""
    if not getattr(result, "success", False):
        raise KeyRefreshError(getattr(result, "reason", None) or "refresh failed")


class RefreshRecord:
    """What a refresher records of its attempts; the thread refresher here and the asyncio one
    (:class:`uid2fast.aio.AsyncKeyRefresher`) share it, so both count, log and call ``on_error`` alike.

    A subclass sets ``_ready`` (an event with ``set()``) before the first attempt.
    """

    _ready: Any

    def _init_record(self, client: Any, interval: Interval, retry_interval: Interval,
                     on_error: Optional[Callable[[BaseException], Any]], timeout: Optional[Interval]) -> None:
        self._mode = refresh_mode(client)
        self._client = client
        self._interval = _seconds(interval, "interval")
        self._retry_interval = _seconds(retry_interval, "retry_interval")
        self._timeout = min(self._interval, 120.0) if timeout is None else _seconds(timeout, "timeout")
        self._on_error = on_error
        self.last_success_time: Optional[dt.datetime] = None
        self.last_error: Optional[BaseException] = None
        self.refresh_count = 0
        self.failure_count = 0
        self._recorder = RefreshRecorder()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {type(self._client).__name__} running={self.running} ready={self.ready} "
                f"refreshes={self.refresh_count} failures={self.failure_count}>")

    @property
    def running(self) -> bool:  # pragma: no cover - each refresher says what running means for it
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        """True once a refresh has succeeded (the client has keys, possibly no longer the latest)."""
        return bool(self._ready.is_set())

    def metrics(self) -> Metrics:
        """A snapshot of this refresher's attempts (every attempt, abandoned ones included) with its client's
        key-set age and status counts (see :class:`uid2fast.metrics.Metrics`)."""
        return refresher_metrics(self._recorder, self._client)

    def _succeeded(self) -> bool:
        self.last_success_time = dt.datetime.now(dt.timezone.utc)
        self.last_error = None
        self.refresh_count += 1
        self._recorder.record(True)
        self._recorder.keys_installed(getattr(self._client, "keys", None))
        self._ready.set()
        return True

    def _failed(self, exc: BaseException) -> bool:
        self.last_error = exc
        self.failure_count += 1
        self._recorder.record(False, error_reason(exc))
        logger.warning("key refresh failed (%s): %s", type(exc).__name__, exc)
        if self._on_error is not None:
            try:
                self._on_error(exc)
            except Exception:  # noqa: BLE001
                logger.exception("on_error callback raised")
        return False


class KeyRefresher(RefreshRecord):
    """Refresh a client's keys on a daemon thread.

    Parameters
    ----------
    client : object
        Has ``refresh()`` returning an object with ``.success`` and ``.reason``, or ``refresh_keys()``
        that raises on failure.
    interval : timedelta or float
        Time between refreshes after a success (default 1 hour).
    retry_interval : timedelta or float
        Time before the next attempt after a failure (default 30 s).
    on_error : callable, optional
        Called with the exception after each failed attempt (from the refresher thread); an exception it
        raises is logged and ignored.
    timeout : timedelta or float, optional
        The longest wait for one attempt, for the background thread and :meth:`refresh_now` alike
        (default ``min(interval, 120 s)``).

    Attributes
    ----------
    last_success_time : datetime or None
        UTC time of the last successful refresh.
    last_error : BaseException or None
        The error of the last attempt; None after a success.
    refresh_count : int
        Successful refreshes so far.
    failure_count : int
        Failed attempts so far.

    :meth:`metrics` gives these as a :class:`uid2fast.metrics.Metrics` snapshot, with the client's key-set
    age and status counts.

    Examples
    --------
    >>> client = BidstreamClient(base_url, api_key, secret)  # doctest: +SKIP
    >>> with KeyRefresher(client, interval=timedelta(minutes=5)) as refresher:  # doctest: +SKIP
    ...     refresher.wait_ready(timeout=10)
    ...     client.decrypt_token_into_raw_uid(token, domain)
    """

    def __init__(self, client: Any, interval: Interval = dt.timedelta(hours=1),
                 retry_interval: Interval = dt.timedelta(seconds=30), *,
                 on_error: Optional[Callable[[BaseException], Any]] = None,
                 timeout: Optional[Interval] = None) -> None:
        self._init_record(client, interval, retry_interval, on_error, timeout)
        self._inflight: Optional[threading.Thread] = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()  # serializes attempts (thread vs refresh_now)
        self._thread: Optional[threading.Thread] = None

    # -- health ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def wait_ready(self, timeout: Optional[float] = None) -> bool:
        """Block until the first successful refresh (or ``timeout`` seconds); return :attr:`ready`."""
        return self._ready.wait(timeout)

    # -- control -----------------------------------------------------------------------------------
    def start(self) -> "KeyRefresher":
        """Start the daemon thread (its first attempt is immediate). Idempotent while running."""
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="uid2fast-key-refresher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = 10.0) -> None:
        """Ask the thread to stop and wait for it (an attempt in progress finishes first)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def refresh_now(self, timeout: Optional[float] = None) -> bool:
        """Run one attempt and wait for it at most ``timeout`` seconds (default: the refresher's ``timeout``);
        return whether it succeeded. An attempt that takes longer is abandoned and counts as a failure."""
        return self._attempt(self._timeout if timeout is None else _seconds(timeout, "timeout"))

    def __enter__(self) -> "KeyRefresher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- worker ------------------------------------------------------------------------------------
    def _call_client(self, box: list) -> None:
        try:
            if self._mode == "refresh":
                check_result(self._client.refresh())
            else:
                self._client.refresh_keys()
            box.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported by _attempt
            box.append(exc)

    def _attempt(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        if not self._lock.acquire(timeout=timeout):
            return self._failed(KeyRefreshError(f"another refresh attempt held the refresher for {timeout:g} s"))
        try:
            previous = self._inflight
            if previous is not None and previous.is_alive():
                return self._failed(KeyRefreshError("the previous refresh attempt is still running (abandoned "
                                                    "after its timeout); not starting another"))
            box: list = []
            worker = threading.Thread(target=self._call_client, args=(box,), name="uid2fast-key-refresh-attempt",
                                      daemon=True)
            self._inflight = worker
            worker.start()
            worker.join(max(0.0, end - time.monotonic()))
            if worker.is_alive():
                return self._failed(KeyRefreshError(f"the refresh did not finish within {timeout:g} s; abandoned "
                                                    "(it keeps the last good keys)"))
            error = box[0] if box else KeyRefreshError("refresh failed")
            if error is not None:
                if not isinstance(error, Exception):
                    raise error  # KeyboardInterrupt, SystemExit from the client: not ours to swallow
                return self._failed(error)
            return self._succeeded()
        finally:
            self._lock.release()

    def _run(self) -> None:
        while not self._stop.is_set():
            ok = self._attempt(self._timeout)
            self._wake.wait(self._interval if ok else self._retry_interval)
            self._wake.clear()
