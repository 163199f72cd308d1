"""The asyncio clients against a hostile operator (tests/faultserver.py, loopback only).

The bounds of tests/test_hostile_operator.py, for uid2fast.aio: each call returns within
``call_timeout + 2 s``, the traced memory grows by less than the body limit + 16 MB, the error names the
problem, and no form of the API key or the secret (given with a trailing newline, as read from a secrets
file) appears in any exception, its chain and traceback, or any log record.
"""
import asyncio
import logging
import time
import traceback
import tracemalloc

import pytest

from uid2fast import IdentityMapV3Input, TokenGenerateInput, Uid2HttpError
from uid2fast._netpolicy import HttpConfig

pytest.importorskip("httpx")  # the [async] extra

from uid2fast.aio import (  # noqa: E402
    AsyncBidstreamClient, AsyncIdentityMapV3Client, AsyncKeyRefresher, AsyncOptOutClient, AsyncPublisherClient,
    AsyncSharingClient,
)

from tests.test_hostile_operator import API_KEY, CALL_TIMEOUT, CFG, FAST_FAULTS, LIMIT, SECRET, SECRET_BYTES  # noqa: E402
from tests.test_hostile_operator import _assert_no_secret  # noqa: E402


@pytest.fixture(scope="module")
def server_secret():
    return SECRET_BYTES


RAW_UID = "ywsvDNINiZOVSsfkHpLpSJzXzhr6Jx9Z/4Q0+lsEUvM="


def _calls(base, http=CFG):
    email = TokenGenerateInput.from_email("someone@example.com")

    def using(cls, method):
        async def call():
            async with cls(base, API_KEY, SECRET, http=http) as client:
                return await method(client)
        return call

    return {
        "publisher.generate_token": using(AsyncPublisherClient, lambda c: c.generate_token(email)),
        "publisher.validate_token": using(AsyncPublisherClient, lambda c: c.validate_token("AgAAAAN", email)),
        "identity_map_v3": using(AsyncIdentityMapV3Client, lambda c: c.generate_identity_map(
            IdentityMapV3Input.from_emails(["someone@example.com"]))),
        "optout": using(AsyncOptOutClient, lambda c: c.get_optout_status([RAW_UID])),
        "bidstream.refresh": using(AsyncBidstreamClient, lambda c: c.refresh()),
        "sharing.refresh": using(AsyncSharingClient, lambda c: c.refresh()),
    }


def _measure(call):
    """Run the coroutine function ``call``; return (seconds, error text, traced peak growth in bytes)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        start = time.monotonic()
        try:
            result = asyncio.run(call())
        except Exception as exc:  # noqa: BLE001
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) + repr(exc)
        else:
            assert getattr(result, "success", True) is False, "the call succeeded against a hostile server"
            text = str(result.reason)
        seconds = time.monotonic() - start
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return seconds, text, peak


def _assert_clean_logs(caplog):
    _assert_no_secret(caplog.text, "the log")
    for rec in caplog.records:
        _assert_no_secret(rec.getMessage(), "a log record")


@pytest.mark.parametrize("name", list(_calls("http://x")))
@pytest.mark.parametrize("fault_name", list(FAST_FAULTS))
def test_hostile_bodies_are_bounded(server, fault, caplog, name, fault_name):
    caplog.set_level(logging.DEBUG)
    fault(fault_name, bomb_bytes=256 << 20, huge_bytes=64 << 20)
    seconds, text, peak = _measure(_calls(server.base_url)[name])
    assert seconds < CALL_TIMEOUT + 2, f"{name} took {seconds:.1f} s"
    assert peak < LIMIT + (16 << 20), f"{name} grew traced memory by {peak / 1e6:.0f} MB"
    assert FAST_FAULTS[fault_name] in text, text
    if fault_name == "reset":
        assert "connection" in text.lower() or "broken off" in text
    _assert_no_secret(text, "the error")
    _assert_clean_logs(caplog)
    if fault_name != "reset":  # an oversized body is not worth a retry
        assert len(server.requests) == 1
    else:
        assert len(server.requests) == 2  # retried once (CFG.retries)


@pytest.mark.parametrize("name", ["publisher.generate_token", "bidstream.refresh", "identity_map_v3"])
@pytest.mark.parametrize("fault_name", ["trickle", "trickle_headers"])
def test_a_byte_a_second_is_cut_off_at_the_deadline(server, fault, caplog, name, fault_name):
    caplog.set_level(logging.DEBUG)
    fault(fault_name, trickle_delay=0.2)
    seconds, text, _ = _measure(_calls(server.base_url)[name])
    assert seconds < CALL_TIMEOUT + 2, f"{name} took {seconds:.1f} s"
    assert 0.9 < seconds, "the deadline is the configured one, not an early give-up"
    assert "deadline" in text, text
    _assert_no_secret(text, "the error")
    _assert_clean_logs(caplog)


def test_the_call_deadline_bounds_the_retries(server, fault):
    # Each attempt may take 1 s, the call 2.5 s: four tries would need 4 s; the call ends at its deadline.
    cfg = HttpConfig(attempt_timeout=1.0, call_timeout=2.5, retries=3, backoff_base=0.01, backoff_max=0.02)
    fault("trickle", trickle_delay=0.2)
    seconds, text, _ = _measure(_calls(server.base_url, cfg)["publisher.generate_token"])
    assert 1.9 < seconds < 2.5 + 2 and "deadline" in text
    assert len(server.requests) <= 3


def test_non_retryable_statuses_are_sent_once(server, fault, caplog):
    caplog.set_level(logging.DEBUG)
    calls = _calls(server.base_url)
    for status, tries in ((401, 1), (400, 1), (403, 1), (503, 2)):
        fault("status", status=status, message="nope " + API_KEY)  # a server echoing the key
        with pytest.raises(Uid2HttpError) as info:
            asyncio.run(calls["publisher.generate_token"]())
        assert info.value.code == status and len(server.requests) == tries
        _assert_no_secret(str(info.value) + repr(info.value), "the error")
        fault("status", status=status)
        r = asyncio.run(calls["bidstream.refresh"]())
        assert not r.success and f"HTTP {status}" in r.reason and len(server.requests) == tries
        _assert_no_secret(r.reason, "the refresh reason")
    _assert_clean_logs(caplog)


def test_credentials_are_stripped_and_the_request_succeeds(server, fault):
    fault("ok", payload={"status": "success", "body": {}})

    async def main():
        async with AsyncIdentityMapV3Client(server.base_url, API_KEY, SECRET, http=CFG) as client:
            await client.generate_identity_map(IdentityMapV3Input.from_emails(["someone@example.com"]))

    asyncio.run(main())
    headers = server.requests[-1]["headers"]
    assert headers["authorization"] == "Bearer " + API_KEY.strip()
    assert headers["accept-encoding"] == "gzip, deflate" and headers["content-type"] == "application/octet-stream"


def test_the_refresher_is_never_blocked_by_a_stuck_attempt(server, fault, caplog):
    caplog.set_level(logging.DEBUG)
    fault("trickle_headers", trickle_delay=0.5)
    slow = HttpConfig(attempt_timeout=30, call_timeout=60, read_timeout=30)

    async def main():
        async with AsyncBidstreamClient(server.base_url, API_KEY, SECRET, http=slow) as client:
            refresher = AsyncKeyRefresher(client, interval=1.0, retry_interval=0.2, timeout=0.5)
            loop = asyncio.get_running_loop()
            start = loop.time()
            assert await refresher.refresh_now() is False
            assert loop.time() - start < 0.5 + 2
            assert "did not finish within 0.5 s" in str(refresher.last_error)
            async with refresher:
                await asyncio.sleep(2.5)
            assert refresher.failure_count >= 3  # the schedule went on: each stuck attempt was cancelled
            return refresher

    refresher = asyncio.run(main())
    # One request per attempt: each failed one, and perhaps the one stop() cancelled.
    assert refresher.failure_count <= len(server.requests) <= refresher.failure_count + 1
    _assert_no_secret(str(refresher.last_error), "the refresher's error")
    _assert_clean_logs(caplog)
