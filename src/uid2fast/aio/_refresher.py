"""The asyncio key refresher: the event-loop twin of :class:`uid2fast.KeyRefresher`.

It keeps the thread refresher's contract (the bookkeeping is its :class:`~uid2fast.refresher.RefreshRecord`:
the same counters, log lines and ``on_error`` calls): a refresh now, then every ``interval``, every
``retry_interval`` after a failure, and the last good key set stays in use whatever a refresh does. What
asyncio changes is how an attempt is bounded: an attempt still running after ``timeout`` seconds is
*cancelled*, not abandoned, so no attempt outlives its bound and none piles up behind a stuck server. A
cancelled refresh swaps nothing in: the clients adopt a key set in one assignment after it is complete.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import inspect
from typing import Any, Callable, Optional

from ..refresher import Interval, KeyRefreshError, RefreshRecord, _seconds, check_result

__all__ = ["AsyncKeyRefresher"]


class AsyncKeyRefresher(RefreshRecord):
    """Refresh an asyncio client's keys from a task on the running event loop.

    Parameters
    ----------
    client : object
        Has ``async refresh()`` returning an object with ``.success`` and ``.reason`` (the asyncio
        bidstream and sharing clients), or ``async refresh_keys()`` that raises on failure. For a blocking
        client use :class:`uid2fast.KeyRefresher`.
    interval : timedelta or float
        Time between refreshes after a success (default 1 hour).
    retry_interval : timedelta or float
        Time before the next attempt after a failure (default 30 s).
    on_error : callable, optional
        Called with the exception after each failed attempt; an exception it raises is logged and ignored.
    timeout : timedelta or float, optional
        The longest one attempt may run (default ``min(interval, 120 s)``); it is cancelled then.

    Attributes
    ----------
    last_success_time, last_error, refresh_count, failure_count
        As on :class:`uid2fast.KeyRefresher`.

    Examples
    --------
    >>> async with AsyncKeyRefresher(client, interval=300) as refresher:  # doctest: +SKIP
    ...     await refresher.wait_ready(timeout=10)
    ...     client.decrypt_token_into_raw_uid(token, domain)
    """

    def __init__(self, client: Any, interval: Interval = dt.timedelta(hours=1),
                 retry_interval: Interval = dt.timedelta(seconds=30), *,
                 on_error: Optional[Callable[[BaseException], Any]] = None,
                 timeout: Optional[Interval] = None) -> None:
        self._init_record(client, interval, retry_interval, on_error, timeout)
        method = getattr(client, self._mode)
        if not inspect.iscoroutinefunction(method):
            raise TypeError(f"{type(client).__name__}.{self._mode}() is not a coroutine function; "
                            "use uid2fast.KeyRefresher for a blocking client")
        self._ready = asyncio.Event()
        self._task: Optional["asyncio.Task[None]"] = None
        self._current: Optional["asyncio.Task[bool]"] = None

    # -- health ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the refresh task is scheduled."""
        return self._task is not None and not self._task.done()

    async def wait_ready(self, timeout: Optional[float] = None) -> bool:
        """Wait for the first successful refresh (at most ``timeout`` seconds); return :attr:`ready`."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        return self.ready

    # -- control -----------------------------------------------------------------------------------
    def start(self) -> "AsyncKeyRefresher":
        """Start the refresh task on the running loop (its first attempt is immediate). Idempotent."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="uid2fast-key-refresher")
        return self

    async def stop(self) -> None:
        """Cancel the task and an attempt in progress, and wait until both have ended."""
        tasks = [t for t in (self._task, self._current) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._task = None

    async def refresh_now(self, timeout: Optional[float] = None) -> bool:
        """Run one attempt (or join the one in progress) and wait for it at most ``timeout`` seconds
        (default: the refresher's ``timeout``); return whether it succeeded.

        An attempt that takes longer is cancelled and counts as a failure. Joining an attempt in progress
        and waiting less than it takes returns False and leaves it running: it ends by its own bound and
        records its own result.
        """
        return await self._attempt(self._timeout if timeout is None else _seconds(timeout, "timeout"))

    async def __aenter__(self) -> "AsyncKeyRefresher":
        return self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # -- worker ------------------------------------------------------------------------------------
    async def _call_client(self) -> None:
        if self._mode == "refresh":
            check_result(await self._client.refresh())
        else:
            await self._client.refresh_keys()

    async def _one(self, timeout: float) -> bool:
        """One attempt, cancelled after ``timeout`` seconds; records and returns its outcome."""
        try:
            await asyncio.wait_for(self._call_client(), timeout)
        except asyncio.TimeoutError:
            return self._failed(KeyRefreshError(f"the refresh did not finish within {timeout:g} s; "
                                                "cancelled (the last good keys stay)"))
        except Exception as exc:  # noqa: BLE001 - reported; CancelledError (a stop) propagates
            return self._failed(exc)
        return self._succeeded()

    async def _attempt(self, timeout: float) -> bool:
        task = self._current
        if task is None or task.done():
            # A new attempt, bounded by this caller's timeout: it ends (and records why) by then.
            task = self._current = asyncio.ensure_future(self._one(timeout))
            return await asyncio.shield(task)
        # Join the attempt in progress (it ends by its own bound); shield: a caller that stops waiting
        # leaves it running for whoever else waits on it.
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            return False

    async def _run(self) -> None:
        while True:
            ok = await self._attempt(self._timeout)
            await asyncio.sleep(self._interval if ok else self._retry_interval)
