"""Background key refresh for any client.

A :class:`KeyRefresher` calls the client's ``refresh()`` (``BidstreamClient``, ``SharingClient``: returns
an object with ``success``/``reason``) or ``refresh_keys()`` (legacy ``Uid2Client``: raises on failure)
every ``interval``, and every ``retry_interval`` after a failure. The clients only replace their key set
on success, with one attribute assignment, so a failed refresh leaves decryption running on the last good
keys and no thread ever sees a half-built set.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, Callable, Optional, Union

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


class KeyRefresher:
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

    Examples
    --------
    >>> client = BidstreamClient(base_url, api_key, secret)  # doctest: +SKIP
    >>> with KeyRefresher(client, interval=timedelta(minutes=5)) as refresher:  # doctest: +SKIP
    ...     refresher.wait_ready(timeout=10)
    ...     client.decrypt_token_into_raw_uid(token, domain)
    """

    def __init__(self, client: Any, interval: Interval = dt.timedelta(hours=1),
                 retry_interval: Interval = dt.timedelta(seconds=30), *,
                 on_error: Optional[Callable[[BaseException], Any]] = None) -> None:
        if callable(getattr(client, "refresh", None)):
            self._mode = "refresh"
        elif callable(getattr(client, "refresh_keys", None)):
            self._mode = "refresh_keys"
        else:
            raise TypeError(f"client must have refresh() or refresh_keys(), got {type(client).__name__}")
        self._client = client
        self._interval = _seconds(interval, "interval")
        self._retry_interval = _seconds(retry_interval, "retry_interval")
        self._on_error = on_error
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()  # serializes attempts (thread vs refresh_now)
        self._thread: Optional[threading.Thread] = None
        self.last_success_time: Optional[dt.datetime] = None
        self.last_error: Optional[BaseException] = None
        self.refresh_count = 0
        self.failure_count = 0

    def __repr__(self) -> str:
        return (f"<KeyRefresher {type(self._client).__name__} running={self.running} ready={self.ready} "
                f"refreshes={self.refresh_count} failures={self.failure_count}>")

    # -- health ------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        """True once a refresh has succeeded (the client has keys, possibly no longer the latest)."""
        return self._ready.is_set()

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

    def refresh_now(self) -> bool:
        """Run one attempt on the calling thread; return whether it succeeded."""
        return self._attempt()

    def __enter__(self) -> "KeyRefresher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- worker ------------------------------------------------------------------------------------
    def _attempt(self) -> bool:
        with self._lock:
            try:
                if self._mode == "refresh":
                    result = self._client.refresh()
                    if not getattr(result, "success", False):
                        raise KeyRefreshError(getattr(result, "reason", None) or "refresh failed")
                else:
                    self._client.refresh_keys()
            except Exception as exc:  # noqa: BLE001 - every failure keeps the last good keys
                self.last_error = exc
                self.failure_count += 1
                logger.warning("key refresh failed (%s): %s", type(exc).__name__, exc)
                if self._on_error is not None:
                    try:
                        self._on_error(exc)
                    except Exception:  # noqa: BLE001
                        logger.exception("on_error callback raised")
                return False
            self.last_success_time = dt.datetime.now(dt.timezone.utc)
            self.last_error = None
            self.refresh_count += 1
            self._ready.set()
            return True

    def _run(self) -> None:
        while not self._stop.is_set():
            ok = self._attempt()
            self._wake.wait(self._interval if ok else self._retry_interval)
            self._wake.clear()
