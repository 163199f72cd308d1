"""Every operator client against a hostile operator (tests/faultserver.py, loopback only).

Each case asserts the three bounds the clients promise whatever the server does:

- time: the call returns within ``call_timeout + 2 s``;
- memory: the traced peak grows by less than the configured body limit + 16 MB (the promise is + 100 MB);
- the error: a clear message naming the problem, and no form of the API key or the secret in any exception
  (with its chain and traceback), log record or CLI output. The API key and the secret are given with a
  trailing newline, as read from a secrets file.
"""
import base64
import logging
import os
import time
import traceback
import tracemalloc

import pytest

import uid2fast
from uid2fast import cli
from uid2fast._http import HttpConfig, Uid2HttpError
from uid2fast._netpolicy import BoundedBody, BodyTooLarge, check_api_key, check_secret_key, scrub, secret_forms
from uid2fast.identity_map_client import IdentityMapClient
from uid2fast.identity_map_input import IdentityMapInput
from uid2fast.identity_map_v3_client import IdentityMapV3Client
from uid2fast.identity_map_v3_input import IdentityMapV3Input
from uid2fast.optout_client import OptOutClient
from uid2fast.publisher_client import Uid2PublisherClient
from uid2fast.refresh_keys_util import refresh_bidstream_keys
from uid2fast.token_generate_input import TokenGenerateInput

from tests.faultserver import gzip_bomb

LIMIT = 1 << 20
CALL_TIMEOUT = 2.0
CFG = HttpConfig(attempt_timeout=1.0, call_timeout=CALL_TIMEOUT, connect_timeout=1.0, read_timeout=1.0, retries=1,
                 backoff_base=0.01, backoff_max=0.02, max_response_bytes=LIMIT,
                 response_limits={p: LIMIT for p in ("/v2/key/sharing", "/v2/key/bidstream", "/v2/identity/map",
                                                     "/v3/identity/map", "/v2/optout/status", "/v2/token/generate",
                                                     "/v2/token/validate")})
SECRET_BYTES = os.urandom(32)
API_KEY = "UID2-C-L-4242-" + base64.b64encode(os.urandom(18)).decode() + "\n"
SECRET = base64.b64encode(SECRET_BYTES).decode() + "\n"


@pytest.fixture(scope="module")
def server_secret():
    return SECRET_BYTES


def _client_calls(base):
    email = TokenGenerateInput.from_email("someone@example.com")
    return {
        "publisher.generate_token": lambda: Uid2PublisherClient(base, API_KEY, SECRET, http=CFG).generate_token(email),
        "publisher.validate_token": lambda: Uid2PublisherClient(base, API_KEY, SECRET, http=CFG).validate_token(
            "AgAAAAN", email),
        "identity_map_v2": lambda: IdentityMapClient(base, API_KEY, SECRET, http=CFG).generate_identity_map(
            IdentityMapInput.from_emails(["someone@example.com"])),
        "identity_map_v3": lambda: IdentityMapV3Client(base, API_KEY, SECRET, http=CFG).generate_identity_map(
            IdentityMapV3Input.from_emails(["someone@example.com"])),
        "optout": lambda: OptOutClient(base, API_KEY, SECRET, http=CFG).get_optout_status(
            ["ywsvDNINiZOVSsfkHpLpSJzXzhr6Jx9Z/4Q0+lsEUvM="]),
        "bidstream.refresh": lambda: uid2fast.BidstreamClient(base, API_KEY, SECRET, http=CFG).refresh(),
        "sharing.refresh": lambda: uid2fast.SharingClient(base, API_KEY, SECRET, http=CFG).refresh(),
        "refresh_keys_util": lambda: refresh_bidstream_keys(base, API_KEY, SECRET_BYTES, http=CFG),
    }


def _assert_no_secret(text, where):
    for form in secret_forms(API_KEY) + secret_forms(SECRET) + secret_forms(SECRET_BYTES):
        assert form not in text, f"a form of a secret ({len(form)} chars) appears in {where}"


def _measure(call):
    """Run ``call``; return (seconds, error text, traced peak growth in bytes)."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        start = time.monotonic()
        try:
            result = call()
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


FAST_FAULTS = {
    "gzip_bomb": "exceeds the 1,048,576 byte limit",
    "endless_chunked": "exceeds the 1,048,576 byte limit",
    "huge": "exceeds the 1,048,576 byte limit",
    "huge_unframed": "exceeds the 1,048,576 byte limit",
    "reset": "",
}
CLIENTS = list(_client_calls("http://x"))


@pytest.mark.parametrize("name", CLIENTS)
@pytest.mark.parametrize("fault_name", list(FAST_FAULTS))
def test_hostile_bodies_are_bounded(server, fault, caplog, name, fault_name):
    caplog.set_level(logging.DEBUG)
    fault(fault_name, bomb_bytes=256 << 20, huge_bytes=64 << 20)
    seconds, text, peak = _measure(_client_calls(server.base_url)[name])
    assert seconds < CALL_TIMEOUT + 2, f"{name} took {seconds:.1f} s"
    assert peak < LIMIT + (16 << 20), f"{name} grew traced memory by {peak / 1e6:.0f} MB"
    assert FAST_FAULTS[fault_name] in text
    if fault_name == "reset":
        assert "Connection" in text or "connection" in text or "broken off" in text
    _assert_no_secret(text, "the error")
    _assert_no_secret(caplog.text, "the log")
    for rec in caplog.records:
        _assert_no_secret(rec.getMessage(), "a log record")
    if fault_name != "reset":  # an oversized body is not worth a retry
        assert len(server.requests) == 1


@pytest.mark.parametrize("name", ["publisher.generate_token", "bidstream.refresh", "identity_map_v3"])
@pytest.mark.parametrize("fault_name", ["trickle", "trickle_headers"])
def test_a_byte_a_second_is_cut_off_at_the_deadline(server, fault, caplog, name, fault_name):
    caplog.set_level(logging.DEBUG)
    fault(fault_name, trickle_delay=0.2)
    seconds, text, peak = _measure(_client_calls(server.base_url)[name])
    assert seconds < CALL_TIMEOUT + 2, f"{name} took {seconds:.1f} s"
    assert 0.9 < seconds, "the deadline is the configured one, not an early give-up"
    assert "deadline" in text
    _assert_no_secret(text + caplog.text, "the error or the log")


def test_non_retryable_statuses_are_sent_once(server, fault):
    for status, tries in ((401, 1), (400, 1), (403, 1), (503, 2)):
        fault("status", status=status, message="nope")
        with pytest.raises(Uid2HttpError) as info:
            _client_calls(server.base_url)["publisher.generate_token"]()
        assert info.value.code == status and len(server.requests) == tries
        fault("status", status=status)
        r = _client_calls(server.base_url)["bidstream.refresh"]()
        assert not r.success and f"HTTP {status}" in r.reason and len(server.requests) == tries


def test_credentials_are_stripped_and_the_request_succeeds(server, fault):
    fault("ok", payload={"status": "success", "body": {"mapped": [], "unmapped": []}})
    client = IdentityMapClient(server.base_url, API_KEY, SECRET, http=CFG)
    client.generate_identity_map(IdentityMapInput.from_emails(["someone@example.com"]))
    assert server.requests[-1]["headers"]["authorization"] == "Bearer " + API_KEY.strip()


@pytest.mark.parametrize("bad", ["UID2-key\x00x", "UID2-key\x1bx", "UID2-\nkey", "UID2 key", "UID2-key\u2028x", ""])
def test_bad_api_keys_are_refused_without_echo(bad):
    ctors = [lambda k: Uid2PublisherClient("http://x", k, SECRET), lambda k: IdentityMapClient("http://x", k, SECRET),
             lambda k: IdentityMapV3Client("http://x", k, SECRET), lambda k: OptOutClient("http://x", k, SECRET),
             lambda k: uid2fast.BidstreamClient("http://x", k, SECRET),
             lambda k: uid2fast.SharingClient("http://x", k, SECRET),
             lambda k: uid2fast.Uid2ClientFactory.create("http://x", k, SECRET)]
    for ctor in ctors:
        with pytest.raises(ValueError) as info:
            ctor(bad)
        if bad.strip():
            assert bad.strip() not in str(info.value) and repr(bad)[1:-1] not in str(info.value)
    r = refresh_bidstream_keys("http://127.0.0.1:9", bad, SECRET_BYTES, http=CFG)
    assert not r.success and (bad.strip() == "" or bad.strip() not in r.reason)


@pytest.mark.parametrize("bad", ["AAAA\x00AAAA", "AAAA\x7fAAAA", "AA\nAA"])
def test_bad_secrets_are_refused_without_echo(bad):
    for ctor in (Uid2PublisherClient, IdentityMapClient, OptOutClient, uid2fast.BidstreamClient):
        with pytest.raises(ValueError) as info:
            ctor("http://x", "UID2-key", bad)
        assert bad not in str(info.value) and "AAAA" not in str(info.value)
    with pytest.raises(ValueError):
        check_secret_key("not base64!")


def test_scrub_covers_every_printed_form():
    key = "k3y/with+odd=chars"
    for text in (f"Bearer {key}", repr(f"Bearer {key}\n"), f"'{key}\\n'", "key=k3y%2Fwith%2Bodd%3Dchars",
                 "key=k3y/with%2Bodd%3Dchars", '{"auth": "k3y/with+odd=chars\\n"}', "k3y%2Fwith%2Bodd%3Dchars%0A"):
        out = scrub(text, [key + "\n"])
        assert "k3y" not in out, (text, out)
    raw = bytes(range(32))
    assert "***" == scrub(repr(raw)[2:-1], [raw]) and "***" == scrub(base64.b64encode(raw).decode(), [raw])
    assert check_api_key("  UID2-abc\r\n") == "UID2-abc"


def test_bounded_body_stops_a_bomb_at_the_limit():
    body = BoundedBody(1000, "gzip")
    bomb = gzip_bomb(16 << 20)
    with pytest.raises(BodyTooLarge):
        for i in range(0, len(bomb), 4096):
            body.feed(bomb[i:i + 4096])
    assert len(body._buf) <= 1001
    ok = BoundedBody(1 << 20, "deflate")
    c = __import__("zlib").compressobj(wbits=-15)
    ok.feed(c.compress(b"x" * 5000) + c.flush())
    assert ok.finish() == b"x" * 5000


def test_cli_keys_fetch_is_bounded(server, fault, capsys, tmp_path):
    target = tmp_path / "keys.json"
    for fault_name, bound, expect in (("gzip_bomb", 2, "exceeds"), ("endless_chunked", 2, "exceeds"),
                                      ("trickle", 2, "deadline"), ("status", 2, "check the API key")):
        fault(fault_name, status=401, trickle_delay=0.2)
        codes = []

        def fetch(codes=codes, bound=bound):
            codes.append(cli.main(["keys", "fetch", "--base-url", server.base_url, "--kind", "bidstream", "-o",
                                   str(target), "--api-key", API_KEY, "--secret-key", SECRET, "--timeout", str(bound),
                                   "--max-response-bytes", str(LIMIT)]))
            raise RuntimeError("the exit status is checked below")

        seconds, _, peak = _measure(fetch)
        out, err = capsys.readouterr()
        assert codes == [1] and not target.exists()
        assert seconds < bound + 2, f"{fault_name}: {seconds:.1f} s"
        assert peak < LIMIT + (16 << 20), f"{fault_name}: traced memory grew by {peak / 1e6:.0f} MB"
        assert expect in err, err
        _assert_no_secret(out + err, "CLI output")


def test_refresher_is_never_blocked_by_a_stuck_attempt(server, fault):
    fault("trickle_headers", trickle_delay=0.5)
    slow = HttpConfig(attempt_timeout=30, call_timeout=60, read_timeout=30)
    client = uid2fast.BidstreamClient(server.base_url, API_KEY, SECRET, http=slow)
    refresher = uid2fast.KeyRefresher(client, interval=1.0, retry_interval=0.2, timeout=0.5)
    start = time.monotonic()
    assert refresher.refresh_now() is False
    assert time.monotonic() - start < 0.5 + 2
    assert "did not finish within 0.5 s" in str(refresher.last_error)
    start = time.monotonic()
    assert refresher.refresh_now(timeout=0.3) is False  # the stuck attempt is not doubled
    assert time.monotonic() - start < 0.3 + 2
    assert "still running" in str(refresher.last_error)
    with refresher:
        time.sleep(1.0)
        assert refresher.failure_count >= 3  # the schedule went on past the stuck attempt
    _assert_no_secret(str(refresher.last_error), "the refresher's error")


def test_the_deadline_holds_with_a_session_of_your_own(server, fault):
    import requests

    fault("trickle", trickle_delay=0.2)
    with requests.Session() as session:
        client = Uid2PublisherClient(server.base_url, API_KEY, SECRET, http=CFG, session=session)
        start = time.monotonic()
        with pytest.raises(Uid2HttpError) as info:
            client.generate_token(TokenGenerateInput.from_email("someone@example.com"))
        assert time.monotonic() - start < CALL_TIMEOUT + 2 and "deadline" in str(info.value)


@pytest.mark.parametrize("kind", ["v2", "v3", "optout"])
def test_a_split_call_shares_one_deadline(server, fault, kind):
    fault("trickle", trickle_delay=0.2)
    emails = [f"user{i}@example.com" for i in range(6)]
    if kind == "v2":
        client = IdentityMapClient(server.base_url, API_KEY, SECRET, http=CFG, max_batch_size=1, max_in_flight=2)
        call = lambda: client.generate_identity_map(IdentityMapInput.from_emails(emails))  # noqa: E731
    elif kind == "v3":
        client = IdentityMapV3Client(server.base_url, API_KEY, SECRET, http=CFG, max_batch_size=1, max_in_flight=2)
        call = lambda: client.generate_identity_map(IdentityMapV3Input.from_emails(emails))  # noqa: E731
    else:
        client = OptOutClient(server.base_url, API_KEY, SECRET, http=CFG, max_batch_size=1, max_in_flight=2)
        call = lambda: client.get_optout_status([f"uid{i}" for i in range(6)])  # noqa: E731
    start = time.monotonic()
    with pytest.raises(Uid2HttpError) as info:
        call()
    assert time.monotonic() - start < CALL_TIMEOUT + 2, "6 requests, 2 at a time, still one call deadline"
    assert "deadline" in str(info.value)
