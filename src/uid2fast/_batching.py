"""Run independent request chunks with a bounded number in flight, results in input order."""
from __future__ import annotations

from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Callable, List, Sequence, TypeVar

__all__ = ["run_chunks", "check_batch_options", "MAX_IDENTITIES_PER_REQUEST", "DEFAULT_MAX_IN_FLIGHT"]

#: The operator's documented limit for identity map and opt-out status requests.
MAX_IDENTITIES_PER_REQUEST = 5000
#: Requests in flight at once per call; the operator asks for at most 20 in parallel per client.
DEFAULT_MAX_IN_FLIGHT = 4

A = TypeVar("A")
R = TypeVar("R")


def check_batch_options(max_batch_size: int, max_in_flight: int) -> None:
    """``ValueError`` unless ``1 <= max_batch_size <= 5000`` and ``max_in_flight >= 1`` (the split clients'
    options, sync and asyncio alike)."""
    if not 1 <= max_batch_size <= MAX_IDENTITIES_PER_REQUEST:
        raise ValueError(f"max_batch_size must be in 1..{MAX_IDENTITIES_PER_REQUEST}, got {max_batch_size!r}")
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")


def run_chunks(func: Callable[[A], R], chunks: Sequence[A], max_in_flight: int) -> List[R]:
    """``[func(c) for c in chunks]``, at most ``max_in_flight`` at a time.

    The first exception is raised once running chunks finish; chunks not yet started are cancelled.
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight!r}")
    if len(chunks) <= 1 or max_in_flight == 1:
        return [func(c) for c in chunks]
    with ThreadPoolExecutor(max_workers=min(max_in_flight, len(chunks)),
                            thread_name_prefix="uid2fast-chunk") as pool:
        futures: List[Future[R]] = [pool.submit(func, c) for c in chunks]
        _, not_done = wait(futures, return_when=FIRST_EXCEPTION)
        for f in futures:  # the first failure in input order among those that ran
            if f.done() and not f.cancelled() and f.exception() is not None:
                for other in not_done:
                    other.cancel()
                raise f.exception()  # type: ignore[misc]
        return [f.result() for f in futures]
