"""A hostile operator on 127.0.0.1 for the network tests: each request gets the fault set on the server.

Faults (``server.fault``):

- ``"ok"``: a correct enveloped response carrying ``server.payload`` (a dict, JSON-encoded).
- ``"gzip_bomb"``: 200 with ``Content-Encoding: gzip`` and a small body that inflates to ``bomb_bytes``.
- ``"endless_chunked"``: 200, ``Transfer-Encoding: chunked``, 64 KB chunks until the client hangs up.
- ``"trickle"``: 200 with a ``Content-Length`` of 10,000, one byte per ``trickle_delay`` seconds.
- ``"trickle_headers"``: the status line and headers themselves, one byte per ``trickle_delay`` seconds.
- ``"reset"``: reads the request, then closes the connection with a TCP reset.
- ``"huge"``: 200 with a true ``Content-Length`` of ``huge_bytes`` and the bytes, as fast as possible.
- ``"huge_unframed"``: 200 without ``Content-Length``, ``huge_bytes`` then close.
- ``"status"``: ``server.status`` with a JSON error body.

Every request is recorded (path and headers) in ``server.requests``. Only ever binds loopback.
"""
import base64
import json
import socket
import socketserver
import struct
import threading
import time
import zlib
from typing import Any, Dict, List, Optional

from uid2fast import _envelope

_BOMB_CACHE: Dict[int, bytes] = {}


def gzip_bomb(size: int) -> bytes:
    """A gzip stream of ``size`` zero bytes (about size/1000 bytes long)."""
    if size not in _BOMB_CACHE:
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        block = bytes(1 << 20)
        parts = [c.compress(block) for _ in range(size >> 20)]
        parts.append(c.flush())
        _BOMB_CACHE[size] = b"".join(parts)
    return _BOMB_CACHE[size]


class _Handler(socketserver.BaseRequestHandler):
    server: "FaultServer"

    def handle(self) -> None:
        sock = self.request
        sock.settimeout(10)
        f = sock.makefile("rb")
        try:
            while not self.server.stopping.is_set():
                line = f.readline(65536)
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: Dict[str, str] = {}
                while True:
                    h = f.readline(65536)
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = f.read(int(headers.get("content-length", "0") or 0))
                self.server.requests.append({"path": path, "headers": headers})
                if not self._respond(sock, path, headers, body):
                    return
        except (OSError, ValueError):
            return

    def _send(self, sock: socket.socket, data: bytes) -> None:
        sock.sendall(data)

    def _respond(self, sock: socket.socket, path: str, headers: Dict[str, str], body: bytes) -> bool:
        srv = self.server
        fault = srv.fault
        if fault == "ok":
            payload = json.dumps(srv.payload).encode()
            binary = headers.get("content-type") == "application/octet-stream"
            raw = body if binary else base64.b64decode(body)
            _, nonce, _ = _envelope.decrypt_envelope(srv.secret, raw)
            out = _envelope.encrypt_response(srv.secret, int(time.time() * 1000), nonce, payload)
            if not binary:
                out = base64.b64encode(out)
            self._send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(out) + out)
            return True
        if fault == "status":
            out = json.dumps({"status": "error", "message": srv.message}).encode()
            self._send(sock, b"HTTP/1.1 %d Error\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                       % (srv.status, len(out)) + out)
            return True
        if fault == "gzip_bomb":
            out = gzip_bomb(srv.bomb_bytes)
            self._send(sock, b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                       % len(out) + out)
            return True
        if fault == "endless_chunked":
            self._send(sock, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"%x\r\n" % 65536 + b"A" * 65536 + b"\r\n"
            while not srv.stopping.is_set():
                self._send(sock, chunk)
            return False
        if fault in ("trickle", "trickle_headers"):
            head = b"HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n"
            if fault == "trickle":
                self._send(sock, head)
                data = b"A" * 10000
            else:
                data = head + b"A" * 10000
            for i in range(len(data)):
                if srv.stopping.is_set():
                    return False
                self._send(sock, data[i:i + 1])
                time.sleep(srv.trickle_delay)
            return False
        if fault == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            return False
        if fault in ("huge", "huge_unframed"):
            length = b"Content-Length: %d\r\n" % srv.huge_bytes if fault == "huge" else b""
            self._send(sock, b"HTTP/1.1 200 OK\r\n" + length + b"Connection: close\r\n\r\n")
            block = b"A" * (1 << 16)
            sent = 0
            while sent < srv.huge_bytes and not srv.stopping.is_set():
                self._send(sock, block)
                sent += len(block)
            return False
        raise AssertionError(f"unknown fault {fault!r}")


class FaultServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, secret: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.secret = secret
        self.fault = "ok"
        self.payload: Any = {"status": "success", "body": {}}
        self.status = 500
        self.message = "injected"
        self.bomb_bytes = 256 << 20
        self.huge_bytes = 200 << 20
        self.trickle_delay = 1.0
        self.requests: List[Dict[str, Any]] = []
        self.stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> "FaultServer":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()

