"""Reading, the engine and writing overlap for the file commands.

A reader thread pulls batches from the input and a writer thread writes finished batches, around the
calling thread, which runs the engine. Bounded queues join the three, so the rows and their order are
unchanged and at most ``depth`` batches wait between two stages: memory stays bounded whatever the file
size. Arrow releases the GIL while it reads, parses and writes, and the engine releases it while it
decrypts, so the stages run at once.

The calling thread stays the main thread: it waits on the queues with a timeout, so SIGINT, SIGTERM and
SIGHUP are handled as soon as they arrive. ``close()`` stops and joins both threads before the output is
committed or discarded.
"""
import queue
import threading
from typing import Any, Callable, Iterator, Optional

_DONE = object()
_POLL = 0.1  # seconds a stage waits on a queue before it checks whether the job was stopped


class _Failure:
    __slots__ = ("exc",)

    def __init__(self, exc: BaseException):
        self.exc = exc


class Pipeline:
    """``for batch in p.batches(): p.write(f(batch))``, then ``p.finish()``; ``close()`` always."""

    def __init__(self, source: Iterator[Any], sink: Callable[[Any], None], depth: int = 2):
        self._source = source
        self._sink = sink
        self._read_q: "queue.Queue[Any]" = queue.Queue(depth)
        self._write_q: "queue.Queue[Any]" = queue.Queue(depth)
        self._stop = threading.Event()
        self._write_error: Optional[BaseException] = None
        # Daemon threads: a stage stuck in a read can never keep the process alive; close() joins them.
        self._reader = threading.Thread(target=self._read, name="uid2fast-read", daemon=True)
        self._writer = threading.Thread(target=self._write, name="uid2fast-write", daemon=True)

    # --- the stages ----------------------------------------------------------------------------------
    def _put(self, q: "queue.Queue[Any]", item: Any) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _get(self, q: "queue.Queue[Any]") -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                continue
        return _DONE

    def _read(self) -> None:
        try:
            for batch in self._source:
                if not self._put(self._read_q, batch):
                    return
            self._put(self._read_q, _DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
            self._put(self._read_q, _Failure(exc))

    def _write(self) -> None:
        while True:
            item = self._get(self._write_q)
            if item is _DONE:
                return
            try:
                self._sink(item)
            except BaseException as exc:  # noqa: BLE001 - raised in the calling thread at its next step
                self._write_error = exc
                self._stop.set()
                return

    def _check_writer(self) -> None:
        if self._write_error is not None:
            raise self._write_error

    # --- the calling thread --------------------------------------------------------------------------
    def batches(self) -> Iterator[Any]:
        self._reader.start()
        self._writer.start()
        while True:
            self._check_writer()
            item = self._get(self._read_q)
            if item is _DONE:
                self._check_writer()
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item

    def write(self, batch: Any) -> None:
        self._check_writer()
        if not self._put(self._write_q, batch):
            self._check_writer()

    def finish(self) -> None:
        """Wait until every batch handed to :meth:`write` is written."""
        self._put(self._write_q, _DONE)
        while self._writer.is_alive():
            self._writer.join(_POLL)
        self._check_writer()

    def close(self) -> None:
        self._stop.set()
        for thread in (self._reader, self._writer):
            while thread.is_alive():
                thread.join(_POLL)

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Serial:
    """The same interface, every stage on the calling thread (standard input is read there: a reader thread
    blocked on a pipe could not be stopped)."""

    def __init__(self, source: Iterator[Any], sink: Callable[[Any], None]):
        self._source = source
        self.write = sink

    def batches(self) -> Iterator[Any]:
        return iter(self._source)

    def finish(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> "Serial":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass
