"""Metrics the key-holding clients and the refreshers keep without any wrapper: key-set age, refresh outcomes
and per-status decrypt and encrypt counts.

``client.metrics()`` (``BidstreamClient``, ``SharingClient``, the legacy ``Uid2Client``) and
``refresher.metrics()`` (``KeyRefresher``, ``EncryptionKeysAutoRefresher``) return a :class:`Metrics`
snapshot. :mod:`uid2fast.metrics.prometheus` exposes the same snapshots to ``prometheus_client``.

:class:`RefreshRecorder` is what records refreshes: the clients hold one (``_apply`` and ``refresh_keys`` feed
it), each refresher holds its own, and any other refresher (an asyncio task, a scheduler job) can keep one and
call :meth:`RefreshRecorder.record` and :meth:`RefreshRecorder.keys_installed`.

>>> from uid2fast.metrics import RefreshRecorder
>>> recorder = RefreshRecorder()
>>> recorder.record(False, "HTTP 503")
>>> m = recorder.snapshot()
>>> (m.refresh_successes, m.refresh_failures, m.last_refresh_success, m.last_refresh_reason)
(0, 1, False, 'HTTP 503')
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
import types
from typing import Any, Callable, Mapping, Optional, Tuple

__all__ = ["Metrics", "RefreshRecorder", "status_counts", "refresher_metrics", "error_reason"]

_EMPTY: Mapping[str, int] = types.MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class Metrics:
    """One snapshot of a client's or a refresher's metrics (values as of the call; take a new one to update).

    Attributes
    ----------
    keyset_age_seconds : float or None
        Seconds since the current key set was installed (by a refresh or ``refresh_json``); None before the
        first. Monotonic: a wall-clock step does not change it.
    newest_key_age_seconds : float or None
        Seconds since the newest key of that set was created (by the operator's ``created`` time, against this
        machine's clock); None without keys. It grows when the operator stops rotating keys even though
        refreshes succeed.
    keyset_installed_time : datetime or None
        UTC time the current key set was installed.
    key_count : int or None
        Keys in the current set (None before the first, or when the refresher's client does not say).
    last_refresh_time : datetime or None
        UTC time the last refresh attempt ended, successful or not.
    last_refresh_success : bool or None
        Whether it succeeded (None before the first attempt).
    last_refresh_reason : str or None
        Why it failed (the ``RefreshResponse.reason`` or the exception's text); None after a success.
    last_success_time : datetime or None
        UTC time of the last successful refresh.
    refresh_successes, refresh_failures : int
        Refresh attempts so far, by outcome.
    decrypt, encrypt : Mapping[str, int]
        Calls so far by status name (``DecryptionStatus`` / ``EncryptionStatus`` member names, every status
        listed, zeros included); empty where the object does not decrypt (encrypt). Batch calls count each row.
    """

    keyset_age_seconds: Optional[float] = None
    newest_key_age_seconds: Optional[float] = None
    keyset_installed_time: Optional[dt.datetime] = None
    key_count: Optional[int] = None
    last_refresh_time: Optional[dt.datetime] = None
    last_refresh_success: Optional[bool] = None
    last_refresh_reason: Optional[str] = None
    last_success_time: Optional[dt.datetime] = None
    refresh_successes: int = 0
    refresh_failures: int = 0
    decrypt: Mapping[str, int] = dataclasses.field(default_factory=lambda: _EMPTY)
    encrypt: Mapping[str, int] = dataclasses.field(default_factory=lambda: _EMPTY)

    def as_dict(self) -> dict:
        """The snapshot as a plain dict (datetimes as ISO 8601 text), e.g. for a JSON health endpoint."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dt.datetime):
                value = value.isoformat()
            elif isinstance(value, Mapping):
                value = dict(value)
            out[f.name] = value
        return out


def status_counts(counter: Any) -> Mapping[str, int]:
    """A status counter's counts (``StatusCounter`` of either engine) by status name, read-only: the codes of one
    status summed (the decrypt codes MALFORMED and INVALID_PAYLOAD are both INVALID_PAYLOAD), codes no result
    carries left out."""
    if counter is None:
        return _EMPTY
    out: dict = {}
    for status, n in zip(counter.statuses, counter.counts()):
        if status is not None:
            out[status.name] = out.get(status.name, 0) + n
    return types.MappingProxyType(out)


def _newest_created(keys: Any) -> Tuple[Optional[int], Optional[dt.datetime]]:
    """(number of keys, newest ``created``) of a key collection; (None, None) for something that is not one."""
    values = getattr(keys, "values", None)
    if keys is None or not callable(values):
        return None, None
    try:
        created = [k.created for k in values()]
        return len(created), max(created, default=None)
    except (AttributeError, TypeError):  # not EncryptionKeys, or naive and aware times mixed: no newest key
        return None, None


class RefreshRecorder:
    """Records refresh attempts and key-set installs; thread-safe (a lock around each update and snapshot).

    Parameters
    ----------
    clock : callable, optional
        Wall-clock seconds (default ``time.time``): the recorded times.
    monotonic : callable, optional
        Monotonic seconds (default ``time.monotonic``): the key-set age.
    """

    __slots__ = ("_lock", "_clock", "_monotonic", "_successes", "_failures", "_last_time", "_last_success",
                 "_last_reason", "_last_success_time", "_installed_mono", "_installed_time", "_key_count",
                 "_newest_created")

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._monotonic = monotonic
        self._successes = 0
        self._failures = 0
        self._last_time: Optional[float] = None
        self._last_success: Optional[bool] = None
        self._last_reason: Optional[str] = None
        self._last_success_time: Optional[float] = None
        self._installed_mono: Optional[float] = None
        self._installed_time: Optional[float] = None
        self._key_count: Optional[int] = None
        self._newest_created: Optional[dt.datetime] = None

    def __repr__(self) -> str:
        return f"<RefreshRecorder successes={self._successes} failures={self._failures}>"

    def record(self, success: bool, reason: Any = None) -> None:
        """Record one refresh attempt: ``success``, and on failure its ``reason`` (any object; kept as text)."""
        now = self._clock()
        with self._lock:
            self._last_time = now
            if success:
                self._successes += 1
                self._last_success = True
                self._last_reason = None
                self._last_success_time = now
            else:
                self._failures += 1
                self._last_success = False
                self._last_reason = "refresh failed" if reason is None else str(reason)

    def record_response(self, response: Any) -> None:
        """Record a ``RefreshResponse`` (or anything with ``success`` and ``reason``)."""
        self.record(bool(getattr(response, "success", False)), getattr(response, "reason", None))

    def keys_installed(self, keys: Any) -> None:
        """Record that ``keys`` (an ``EncryptionKeysCollection``, or None when unknown) are now in use."""
        count, newest = _newest_created(keys)
        mono, now = self._monotonic(), self._clock()
        with self._lock:
            self._installed_mono = mono
            self._installed_time = now
            self._key_count = count
            self._newest_created = newest

    def snapshot(self, decrypt: Mapping[str, int] = _EMPTY, encrypt: Mapping[str, int] = _EMPTY) -> Metrics:
        """A :class:`Metrics` of what was recorded, with the given status counts."""
        with self._lock:
            installed_mono, installed_time = self._installed_mono, self._installed_time
            key_count, newest = self._key_count, self._newest_created
            last_time, last_success, last_reason = self._last_time, self._last_success, self._last_reason
            last_success_time, successes, failures = self._last_success_time, self._successes, self._failures
        now_mono, now = self._monotonic(), self._clock()
        newest_age = None
        if newest is not None and newest.tzinfo is not None:
            newest_age = now - newest.timestamp()
        return Metrics(
            keyset_age_seconds=None if installed_mono is None else max(0.0, now_mono - installed_mono),
            newest_key_age_seconds=newest_age,
            keyset_installed_time=_utc(installed_time),
            key_count=key_count,
            last_refresh_time=_utc(last_time),
            last_refresh_success=last_success,
            last_refresh_reason=last_reason,
            last_success_time=_utc(last_success_time),
            refresh_successes=successes,
            refresh_failures=failures,
            decrypt=decrypt,
            encrypt=encrypt,
        )


def _utc(seconds: Optional[float]) -> Optional[dt.datetime]:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


_REFRESH_FIELDS = ("last_refresh_time", "last_refresh_success", "last_refresh_reason", "last_success_time",
                   "refresh_successes", "refresh_failures")


def refresher_metrics(recorder: RefreshRecorder, client: Any) -> Metrics:
    """A refresher's :class:`Metrics`: its own attempts (timeouts and abandoned attempts included, which its
    client never sees) over its client's snapshot (key set, status counts) when the client has ``metrics()``;
    otherwise the key set as the refresher saw it installed."""
    own = recorder.snapshot()
    client_metrics = getattr(client, "metrics", None)
    if not callable(client_metrics):
        return own
    base = client_metrics()
    if not isinstance(base, Metrics):
        return own
    return dataclasses.replace(base, **{name: getattr(own, name) for name in _REFRESH_FIELDS})


def error_reason(exc: BaseException) -> str:
    """The reason text recorded for a failed attempt that raised ``exc``."""
    text = str(exc)
    if type(exc).__name__ == "KeyRefreshError" and text:  # its text is the refresh's own reason
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
