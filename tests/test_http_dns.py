"""Name resolution is under the attempt's time: a resolver that never answers costs a call no more than a server
that never accepts (uid2fast._http._Resolver), and what it resolves is what the connection uses."""
import base64
import multiprocessing
import socket
import threading
import time
import urllib.error
import urllib.parse

import pytest

from tests.helpers import run_threads
from uid2fast import _http
from uid2fast._http import HttpConfig
from uid2fast.publisher_client import Uid2PublisherClient
from uid2fast.testing import LocalOperator
from uid2fast.token_generate_input import TokenGenerateInput

SECRET = base64.b64encode(bytes(32)).decode()
HUNG = "resolver-never-answers.test"


@pytest.fixture
def resolver(monkeypatch):
    """socket.getaddrinfo with fake names: HUNG blocks until the test ends, ``names[host]`` lists the
    addresses of a host, any other *.test name fails as an unknown name. Everything else resolves as usual."""
    real = socket.getaddrinfo
    release = threading.Event()
    names = {}
    calls = []

    def fake(host, port, *args, **kwargs):
        if isinstance(host, bytes):  # anyio (under httpx) passes the IDNA-encoded name
            host = host.decode("ascii")
        calls.append(host)
        if host == HUNG:
            release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "gave up")
        if host in names:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in names[host]]
        if isinstance(host, str) and host.endswith(".test"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield names, calls
    release.set()


def _client(url, **config):
    return Uid2PublisherClient(url, "key", SECRET, http=HttpConfig(retries=0, **config))


def _generate(client):
    return client.generate_token(TokenGenerateInput.from_email("user@example.com"))


@pytest.mark.parametrize("config, bound", [
    ({"connect_timeout": 0.3}, "connect"),                                               # the connect timeout
    ({"connect_timeout": 5.0, "attempt_timeout": 0.4, "call_timeout": 0.4}, "deadline"),  # the deadline, sooner
])
def test_a_resolver_that_never_answers_is_cut_off(resolver, config, bound):
    client = _client(f"http://{HUNG}:9", **config)
    t0 = time.monotonic()
    with pytest.raises(urllib.error.URLError) as info:
        _generate(client)
    took = time.monotonic() - t0
    limit = config.get("attempt_timeout", config["connect_timeout"])
    assert took < limit + 1.0, f"{took:.2f} s for a {limit} s bound"
    assert "timed out" in str(info.value) or "deadline" in str(info.value)


def test_stuck_lookups_hold_a_bounded_number_of_threads(resolver):
    def resolver_threads():
        return [t for t in threading.enumerate() if t.name == "uid2fast-resolver"]

    before = len(resolver_threads())
    errors = []

    def one():
        try:
            _http._RESOLVER.resolve(HUNG, 80, 0.3)
        except socket.timeout as exc:
            errors.append(exc)

    run_threads(one, 10, 5)
    assert len(errors) == 10  # every caller got its timeout
    assert before <= len(resolver_threads()) <= 4


def test_the_resolved_address_is_used_and_the_host_name_kept():
    with LocalOperator() as op:
        port = urllib.parse.urlsplit(op.base_url).port
        key, secret = op.credentials("publisher")
        names = {"operator.test": ["127.0.0.1"], "two-addresses.test": ["127.0.0.2", "127.0.0.1"]}
        real = socket.getaddrinfo

        def fake(host, p, *args, **kwargs):
            if host in names:
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, p)) for ip in names[host]]
            return real(host, p, *args, **kwargs)

        mp = pytest.MonkeyPatch()
        mp.setattr(socket, "getaddrinfo", fake)
        try:
            for host in names:  # the second: 127.0.0.2 refuses (the operator listens on 127.0.0.1), the next is tried
                client = Uid2PublisherClient(f"http://{host}:{port}", key, secret, http=HttpConfig(retries=0))
                assert _generate(client).is_success()
                assert op.requests[-1].headers["host"] == f"{host}:{port}"
        finally:
            mp.undo()


def test_an_unknown_name_fails_at_once_and_says_so(resolver):
    client = _client("http://no-such-operator.test:9", connect_timeout=5)
    t0 = time.monotonic()
    with pytest.raises(urllib.error.URLError) as info:
        _generate(client)
    assert time.monotonic() - t0 < 2
    assert "resolve" in str(info.value) or "connection failed" in str(info.value)


def _child_lookup(out):
    out.put(_http._RESOLVER.resolve("localhost", 80, 10)[0][4][1])


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_child_gets_a_working_resolver():
    assert _http._RESOLVER.resolve("localhost", 80, 10)  # the parent's pool has a worker now
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child_lookup, args=(out,))
    child.start()
    try:
        assert out.get(timeout=20) == 80
    finally:
        child.join(20)
    assert child.exitcode == 0


def test_the_async_client_cuts_a_hung_resolver_off_too(resolver):
    pytest.importorskip("httpx")  # the [async] extra
    import asyncio

    from uid2fast.aio import AsyncPublisherClient

    async def call():
        cfg = HttpConfig(retries=0, connect_timeout=5.0, attempt_timeout=0.4, call_timeout=0.4)
        async with AsyncPublisherClient(f"http://{HUNG}:9", "key", SECRET, http=cfg) as client:
            t0 = time.monotonic()
            try:
                await client.generate_token(TokenGenerateInput.from_email("user@example.com"))
            except urllib.error.URLError as exc:
                return time.monotonic() - t0, str(exc)
            raise AssertionError("no error")

    loop = asyncio.new_event_loop()
    try:
        took, text = loop.run_until_complete(call())
    finally:
        # (not asyncio.run, whose ending waits for the executor thread still inside the hung lookup)
        loop.close()
    assert took < 1.5 and "deadline" in text, (took, text)
