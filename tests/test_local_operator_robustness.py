"""The local operator under load and abuse: a burst of clients, idle and stalled connections, bad headers.

Every test is bounded in time: sockets carry timeouts and threads are joined with a deadline, so a regression
fails instead of hanging the suite.
"""
import base64
import http.client
import json
import select
import socket
import threading
import time

import pytest

from tests.helpers import post_enveloped
from uid2fast._http import HttpConfig
from uid2fast.testing import LocalOperator
from uid2fast.testing._server import LISTEN_BACKLOG, MAX_BODY

REFRESH = "/v2/token/refresh"


def refresh_request(port, refresh_token, timeout=60.0):
    """One plain (un-enveloped) refresh on a fresh connection: (HTTP status, decoded JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", REFRESH, refresh_token.encode(), {"Content-Type": "text/plain"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def raw_exchange(port, data, timeout=10.0):
    """Send raw bytes and read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def status_of(response):
    return int(response.split(b" ", 2)[1])


def wait_until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize("max_connections", [1024, 1], ids=["default", "one-connection-at-a-time"])
def test_200_concurrent_clients_all_get_a_good_response(max_connections):
    # With one connection open at a time, 199 of the 200 wait in the listen backlog: a backlog of 5 resets or
    # drops them.
    assert LISTEN_BACKLOG >= 1024
    with LocalOperator(max_connections=max_connections) as op:
        token = op.generate_identity(email="burst@example.com", v1_session=True)["refresh_token"]
        n = 200
        barrier = threading.Barrier(n, timeout=60)
        results, errors = [], []

        def client():
            try:
                barrier.wait()
                results.append(refresh_request(op.port, token))
            except Exception as exc:  # noqa: BLE001 - every failure is reported below
                errors.append(repr(exc))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(n)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.0, 120 - (time.monotonic() - start)))
        assert not any(t.is_alive() for t in threads), "clients still waiting after 120 s"
        assert errors == []
        assert len(results) == n
        assert all(status == 200 and body["status"] == "success" for status, body in results)
        assert op.request_count(REFRESH) == n
        assert op.thread_count() <= 1 + 32


def test_idle_connections_cost_no_thread_and_a_real_request_is_served():
    before = threading.active_count()
    with LocalOperator(max_workers=4, idle_timeout=30) as op:
        idle = [socket.create_connection(("127.0.0.1", op.port), timeout=10) for _ in range(300)]
        try:
            time.sleep(0.3)  # let the operator accept them all
            api_key, secret = op.credentials("bidstream")
            start = time.monotonic()
            body = post_enveloped(op.base_url, "/v2/key/bidstream", api_key, base64.b64decode(secret),
                                  config=HttpConfig(retries=0, read_timeout=10))
            assert time.monotonic() - start < 10
            assert json.loads(body)["body"]["keys"]
            assert op.thread_count() <= 1 + 4
            assert threading.active_count() - before <= 1 + 4
        finally:
            for sock in idle:
                sock.close()


def test_stalled_requests_time_out_and_free_their_workers():
    with LocalOperator(max_workers=2, idle_timeout=0.5) as op:
        token = op.generate_identity(email="stall@example.com", v1_session=True)["refresh_token"]
        # Each sends half a request and then nothing: it occupies a worker until the idle timeout.
        stalled = []
        for _ in range(8):
            sock = socket.create_connection(("127.0.0.1", op.port), timeout=10)
            sock.sendall(b"POST /v2/token/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
            stalled.append(sock)
        try:
            time.sleep(0.2)
            assert op.thread_count() <= 1 + 2
            start = time.monotonic()
            status, body = refresh_request(op.port, token, timeout=20)
            assert status == 200 and body["status"] == "success"
            assert time.monotonic() - start < 15
            for sock in stalled:  # each was closed by the operator (EOF or reset), none answered
                try:
                    assert sock.recv(1024) == b""
                except ConnectionResetError:
                    pass
            assert op.thread_count() <= 1 + 2
        finally:
            for sock in stalled:
                sock.close()


@pytest.mark.parametrize("where", ["headers", "body"])
def test_a_trickled_request_is_closed_after_the_request_timeout(where):
    """A client that sends a byte well within each idle timeout still gets its connection closed once the
    whole request has taken longer than request_timeout, in the headers or in the body."""
    with LocalOperator(idle_timeout=1.0, request_timeout=1.5) as op:
        head = b"POST /v2/token/refresh HTTP/1.1\r\nHost: x\r\n"
        if where == "body":
            head += b"Content-Length: 1000\r\n\r\n"
        with socket.create_connection(("127.0.0.1", op.port), timeout=10) as sock:
            sock.sendall(head)
            start = time.monotonic()
            closed = False
            while time.monotonic() - start < 8:  # without the deadline this trickle would go on for ever
                try:
                    sock.sendall(b"X-Slow: 1\r\n" if where == "headers" else b"a")
                except OSError:
                    closed = True
                    break
                ready, _, _ = select.select([sock], [], [], 0.3)
                if ready:
                    try:
                        closed = sock.recv(1024) == b""
                    except ConnectionResetError:
                        closed = True
                    if closed:
                        break
            elapsed = time.monotonic() - start
            assert closed and 1.2 < elapsed < 6, elapsed
        assert op.thread_count() <= 1 + 32


def test_a_silent_connection_is_closed_after_the_idle_timeout():
    with LocalOperator(idle_timeout=0.3) as op:
        with socket.create_connection(("127.0.0.1", op.port), timeout=10) as sock:
            start = time.monotonic()
            assert sock.recv(1) == b""
            assert 0.2 < time.monotonic() - start < 5


def test_kept_alive_and_pipelined_requests_are_served_on_one_connection():
    with LocalOperator() as op:
        token = op.generate_identity(email="pipe@example.com", v1_session=True)["refresh_token"].encode()
        request = (b"POST /v2/token/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(token)) + token
        closing = request.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
        with socket.create_connection(("127.0.0.1", op.port), timeout=10) as sock:
            sock.sendall(request)  # served, then the connection goes back to waiting
            first = sock.recv(65536)
            assert status_of(first) == 200
            time.sleep(0.1)
            sock.sendall(request + request + closing)  # three at once: the second and third are buffered
            data = first
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        assert data.count(b"HTTP/1.1 200 ") == 4
        assert len({r.peer_port for r in op.requests}) == 1


@pytest.mark.parametrize("value, expected", [
    (b"abc", 400), (b"-1", 400), (b"1e3", 400), (b"+5", 400), (b"0x10", 400), (b"", 400), (b"\xd9\xa3", 400),
    (b"99999999999999999999999999999999999999", 413), (str(MAX_BODY + 1).encode(), 413),
])
def test_a_bad_content_length_gets_an_error_response_and_nothing_on_stderr(capfd, value, expected):
    with LocalOperator() as op:
        response = raw_exchange(op.port, b"POST /v2/token/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: " + value
                                + b"\r\n\r\nAAAA")
        assert status_of(response) == expected
        body = json.loads(response.split(b"\r\n\r\n", 1)[1])
        assert body["status"] == "client_error" and body["message"]
        # the operator is still serving
        token = op.generate_identity(email="after@example.com", v1_session=True)["refresh_token"]
        assert refresh_request(op.port, token, timeout=10)[0] == 200
    captured = capfd.readouterr()
    assert captured.err == "" and "Traceback" not in captured.out


def test_conflicting_or_missing_content_length():
    with LocalOperator() as op:
        both = raw_exchange(op.port, b"POST /v2/token/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                                     b"Content-Length: 5\r\n\r\nAAAAA")
        assert status_of(both) == 400
        missing = raw_exchange(op.port, b"POST /v2/token/refresh HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(missing) == 411
        chunked = raw_exchange(op.port, b"POST /v2/token/refresh HTTP/1.1\r\nHost: x\r\n"
                                        b"Transfer-Encoding: chunked\r\n\r\n4\r\nAAAA\r\n0\r\n\r\n")
        assert status_of(chunked) == 411


def test_broken_clients_leave_nothing_on_stderr(capfd):
    with LocalOperator(idle_timeout=0.5) as op:
        assert b"400" in raw_exchange(op.port, b"NOT HTTP AT ALL\r\n\r\n")  # the stdlib's HTTP/0.9-style error
        # closes mid-body
        with socket.create_connection(("127.0.0.1", op.port), timeout=5) as sock:
            sock.sendall(b"POST /v2/token/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nshort")
        # resets right after sending
        sock = socket.create_connection(("127.0.0.1", op.port), timeout=5)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.sendall(b"POST /v2/token/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        sock.close()
        time.sleep(0.2)
        token = op.generate_identity(email="alive@example.com", v1_session=True)["refresh_token"]
        assert refresh_request(op.port, token, timeout=10)[0] == 200
        assert wait_until(lambda: op.request_count() == 1, 5)  # the broken requests were never dispatched
    captured = capfd.readouterr()
    assert captured.err == "" and "Traceback" not in captured.out


def test_limits_are_validated():
    with pytest.raises(ValueError):
        LocalOperator(max_workers=0)
    with pytest.raises(ValueError):
        LocalOperator(idle_timeout=0)
    with pytest.raises(ValueError):
        LocalOperator(request_timeout=0)
