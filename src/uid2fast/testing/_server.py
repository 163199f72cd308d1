"""HTTP plumbing of the local operator: a bounded HTTP/1.1 server on 127.0.0.1.

This module knows nothing about UID2. It accepts connections, parses requests, enforces its limits and hands
each request to an application callable; :mod:`uid2fast.testing.operator` is that application.

Limits (each chosen so a misbehaving or hostile client cannot exhaust the process):

- The listen backlog is :data:`LISTEN_BACKLOG` (1,024): a burst of connections waits in the kernel's queue
  instead of being reset.
- Idle connections cost no thread. One dispatcher thread holds every connection that has not sent anything
  yet (a fresh one, or a kept-alive one between requests) in a selector; only a connection with bytes to read
  is handed to a worker. At most ``max_connections`` connections are open at once: beyond that the dispatcher
  stops accepting and new connections wait in the backlog.
- At most ``max_workers`` worker threads handle requests; further ready connections queue for the next free
  worker. So the thread count is bounded by ``max_workers + 1`` however many clients connect.
- ``idle_timeout`` seconds: a connection that sends nothing for that long is closed, both while it waits in
  the selector and for every read inside a request (a client that stalls mid-request frees its worker).
- ``request_timeout`` seconds: the whole request (request line, headers and body) must arrive within that
  time of its first byte, or the dispatcher shuts the connection down; so a client that trickles a byte just
  before each idle timeout cannot hold a worker for long either (checked about once a second).
- Request bodies must carry a ``Content-Length`` of at most ``max_body`` bytes. A malformed value
  (not a decimal number, negative, or several different values) gets ``400``, one over the cap ``413``, a
  missing one ``411``; the connection is then closed without reading the body.

Nothing reaches stderr: connection errors and request parse errors go to the ``uid2fast.testing.operator``
logger at DEBUG, a failure of the application to that logger with its traceback.
"""
from __future__ import annotations

import http.server
import json
import logging
import queue
import selectors
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Set, Tuple

__all__ = ["LISTEN_BACKLOG", "MAX_BODY", "Application", "HttpResponse", "LoopbackServer", "json_response"]

logger = logging.getLogger("uid2fast.testing.operator")

LISTEN_BACKLOG = 1024
MAX_BODY = 8 * 1024 * 1024

HttpResponse = Tuple[int, Dict[str, str], bytes]
# (path without the query, headers with lower-case names, body, the client's TCP port) -> response
Application = Callable[[str, Mapping[str, str], bytes, int], HttpResponse]


def json_response(status: int, obj: Mapping[str, Any]) -> HttpResponse:
    return status, {"Content-Type": "application/json"}, json.dumps(obj).encode()


def _parse_content_length(values: List[str], max_body: int) -> Tuple[int, Optional[HttpResponse]]:
    """(length, None) or (-1, the error response)."""
    if not values:
        return -1, json_response(411, {"status": "client_error", "message": "Content-Length required"})
    distinct = {v.strip() for v in values}
    text = distinct.pop()
    if distinct or not (text.isascii() and text.isdigit()):
        return -1, json_response(400, {"status": "client_error", "message": "bad Content-Length"})
    # No int() of an arbitrarily long digit string: anything longer than the cap's digits is over the cap.
    if len(text.lstrip("0")) > len(str(max_body)) or int(text) > max_body:
        return -1, json_response(413, {"status": "client_error",
                                       "message": f"body over {max_body} bytes"})
    return int(text), None


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves the requests of one connection that are ready now, then hands the connection back."""

    protocol_version = "HTTP/1.1"
    server_version = "uid2fast-local-operator"
    # Headers and body go out in separate writes; without TCP_NODELAY a kept-alive connection waits on the
    # client's delayed ACK (~40 ms) before the body.
    disable_nagle_algorithm = True
    server: "LoopbackServer"  # type: ignore[assignment]
    keep_alive = False
    timeout = None  # the dispatcher gave the socket its idle timeout when it accepted it

    def handle(self) -> None:
        self.close_connection = True
        try:
            self._one_request()
            # A pipelined request already in our read buffer would be lost if the connection went back to the
            # dispatcher, so serve it here.
            while not self.close_connection and self._buffered():
                self._one_request()
        finally:
            self.server.request_read(self.connection)
        self.keep_alive = not self.close_connection and not self.server.closing

    def _one_request(self) -> None:
        self.server.request_started(self.connection)  # the request_timeout runs from here to the body read
        self.handle_one_request()

    def _buffered(self) -> bool:
        self.connection.setblocking(False)
        try:
            return bool(self.rfile.peek(1))  # type: ignore[attr-defined]
        except OSError:
            return False
        finally:
            self.connection.settimeout(self.server.idle_timeout)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802
        self.server.request_read(self.connection)
        self.close_connection = True  # a body it may carry is not read
        self._send(*json_response(405, {"status": "client_error", "message": "POST only"}))

    def do_POST(self) -> None:  # noqa: N802
        try:
            response = self._respond()
            if response is not None:
                self._send(*response)
        except OSError:  # the client went away or stalled past the idle timeout
            self.close_connection = True

    def _respond(self) -> Optional[HttpResponse]:
        length, error = _parse_content_length(self.headers.get_all("Content-Length") or [], self.server.max_body)
        if error is not None:
            self.server.request_read(self.connection)  # nothing more is read: the answer is not cut short
            self.close_connection = True  # the body (if any) is not read: the connection cannot be reused
            return error
        body = self.rfile.read(length)
        self.server.request_read(self.connection)
        if len(body) != length:  # the client closed mid-body, or ran out of time: nobody to answer
            self.close_connection = True
            return None
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            return self.server.app(self.path.split("?", 1)[0], headers, body, int(self.client_address[1]))
        except Exception:  # noqa: BLE001 - a bug in the application must not kill the connection silently
            logger.exception("local operator failed handling %s", self.path)
            return json_response(500, {"status": "error", "message": "internal error"})


class LoopbackServer:
    """Serves ``app`` on ``127.0.0.1:port`` (0 picks a free port) until :meth:`close`."""

    def __init__(self, app: Application, *, port: int = 0, max_workers: int = 32, max_connections: int = 1024,
                 idle_timeout: float = 10.0, request_timeout: float = 30.0, max_body: int = MAX_BODY) -> None:
        if max_workers < 1 or max_connections < 1:
            raise ValueError("max_workers and max_connections must be >= 1")
        if not idle_timeout > 0:
            raise ValueError("idle_timeout must be > 0")
        if not request_timeout > 0:
            raise ValueError("request_timeout must be > 0")
        self.request_timeout = float(request_timeout)
        self._reading: Dict[socket.socket, float] = {}  # connection -> deadline of the request being read
        self.app = app
        self.max_workers = int(max_workers)
        self.max_connections = int(max_connections)
        self.idle_timeout = float(idle_timeout)
        self.max_body = int(max_body)
        self.closing = False
        self._lock = threading.Lock()
        self._open: Set[socket.socket] = set()  # every accepted connection not yet closed
        self._returned: "queue.SimpleQueue[Tuple[socket.socket, Tuple[str, int]]]" = queue.SimpleQueue()
        self._jobs: "queue.SimpleQueue[Optional[Tuple[socket.socket, Tuple[str, int]]]]" = queue.SimpleQueue()
        self._workers: List[threading.Thread] = []
        self._free_workers = 0  # idle workers minus queued jobs (negative: jobs are waiting)
        self._listener = socket.create_server(("127.0.0.1", port), backlog=LISTEN_BACKLOG)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._dispatcher = threading.Thread(target=self._dispatch, name="uid2fast-local-operator", daemon=True)
        self._dispatcher.start()

    def thread_count(self) -> int:
        """Threads this server runs now: the dispatcher and the workers started (at most ``max_workers``)."""
        with self._lock:
            return 1 + len(self._workers)

    def close(self) -> None:
        """Stop accepting, close every connection, stop the threads (bounded: about 5 s at worst)."""
        with self._lock:
            if self.closing:
                return
            self.closing = True
            conns = list(self._open)
            workers = list(self._workers)
        self._wake()
        for conn in conns:  # unblocks a worker reading from it
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _ in workers:
            self._jobs.put(None)
        deadline = time.monotonic() + 5
        self._dispatcher.join(max(0.0, deadline - time.monotonic()))
        for t in workers:
            t.join(max(0.0, deadline - time.monotonic()))
        self._wake_r.close()
        self._wake_w.close()

    def request_started(self, conn: socket.socket) -> None:
        """A worker begins reading a request on ``conn``: it has ``request_timeout`` seconds to arrive."""
        with self._lock:
            self._reading[conn] = time.monotonic() + self.request_timeout

    def request_read(self, conn: socket.socket) -> None:
        """The request on ``conn`` is read (or abandoned): no deadline runs for it any more."""
        with self._lock:
            self._reading.pop(conn, None)

    def _reap_slow_requests(self) -> None:
        """Shut down the connections whose request is still arriving past its deadline: the worker's blocked
        read then returns and the worker closes the connection."""
        now = time.monotonic()
        with self._lock:
            late = [c for c, d in self._reading.items() if d <= now]
            for c in late:
                del self._reading[c]
        for conn in late:
            logger.debug("request not complete within %.1f s: closing", self.request_timeout)
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # -- dispatcher thread ----------------------------------------------------------------------------
    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # the pipe is full (a wake-up is pending anyway) or closed
            pass

    def _dispatch(self) -> None:
        sel = selectors.DefaultSelector()
        idle: Dict[socket.socket, Tuple[float, Tuple[str, int]]] = {}  # connection -> (deadline, address)
        listening = False
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self.closing:
                with self._lock:
                    room = len(self._open) < self.max_connections
                if room and not listening:
                    sel.register(self._listener, selectors.EVENT_READ, "listen")
                    listening = True
                elif not room and listening:  # full: new connections wait in the backlog
                    sel.unregister(self._listener)
                    listening = False
                now = time.monotonic()
                timeout = min((d for d, _ in idle.values()), default=now + 1.0) - now
                for key, _ in sel.select(max(0.0, min(timeout, 1.0))):
                    if key.data == "wake":
                        self._drain_wake(sel, idle)
                    elif key.data == "listen":
                        self._accept(sel, idle)
                    else:
                        conn = key.fileobj
                        assert isinstance(conn, socket.socket)
                        sel.unregister(conn)
                        _, addr = idle.pop(conn)
                        self._submit(conn, addr)
                now = time.monotonic()
                for conn in [c for c, (d, _) in idle.items() if d <= now]:
                    sel.unregister(conn)
                    del idle[conn]
                    self._close_conn(conn)
                self._reap_slow_requests()
        except Exception:  # noqa: BLE001 - logged; close() still cleans up
            logger.exception("local operator dispatcher failed")
        finally:
            for conn in list(idle):
                self._close_conn(conn)
            while True:
                try:
                    self._close_conn(self._returned.get_nowait()[0])
                except queue.Empty:
                    break
            sel.close()
            self._listener.close()

    def _drain_wake(self, sel: selectors.BaseSelector, idle: Dict[socket.socket, Tuple[float, Any]]) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass
        while True:
            try:
                conn, addr = self._returned.get_nowait()
            except queue.Empty:
                return
            try:
                sel.register(conn, selectors.EVENT_READ, "conn")
                idle[conn] = (time.monotonic() + self.idle_timeout, addr)
            except (OSError, ValueError):  # closed meanwhile
                self._close_conn(conn)

    def _accept(self, sel: selectors.BaseSelector, idle: Dict[socket.socket, Tuple[float, Any]]) -> None:
        while True:
            with self._lock:
                if len(self._open) >= self.max_connections:
                    return
            try:
                conn, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: leave the rest in the backlog
                logger.debug("accept failed: %s", exc)
                return
            conn.settimeout(self.idle_timeout)
            with self._lock:
                self._open.add(conn)
            sel.register(conn, selectors.EVENT_READ, "conn")
            idle[conn] = (time.monotonic() + self.idle_timeout, addr)

    def _close_conn(self, conn: socket.socket) -> None:
        with self._lock:
            self._open.discard(conn)
        try:
            conn.close()
        except OSError:
            pass

    # -- workers -----------------------------------------------------------------------------------------
    def _submit(self, conn: socket.socket, addr: Tuple[str, int]) -> None:
        with self._lock:
            if self.closing:
                self._open.discard(conn)
                conn.close()
                return
            self._free_workers -= 1
            if self._free_workers < 0 and len(self._workers) < self.max_workers:
                t = threading.Thread(target=self._work, name=f"uid2fast-local-operator-{len(self._workers)}",
                                     daemon=True)
                self._workers.append(t)
                self._free_workers += 1
                t.start()
        self._jobs.put((conn, addr))

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            conn, addr = job
            keep = False
            try:
                keep = _Handler(conn, addr, self).keep_alive  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - a broken connection; never a traceback on stderr
                logger.debug("connection from %s failed: %r", addr, exc)
            if keep and not self.closing:
                self._returned.put((conn, addr))
                self._wake()
            else:
                self._close_conn(conn)
                self._wake()  # the dispatcher may be waiting for room to accept again
            with self._lock:
                self._free_workers += 1

