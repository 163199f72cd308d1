"""HTTP behaviour against the local operator: timeouts, retries, 429, connection reuse, error messages."""
import base64
import json
import pickle
import socket
import time
import urllib.error

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uid2fast import _envelope, _http
from uid2fast._http import HttpConfig, HttpTransport, Uid2HttpError
from tests.helpers import post_enveloped
from uid2fast.identity_map_client import IdentityMapClient
from uid2fast.identity_map_input import IdentityMapInput
from uid2fast.publisher_client import Uid2PublisherClient
from uid2fast.request_response_util import auth_headers
from uid2fast.testing import LocalOperator
from uid2fast.token_generate_input import TokenGenerateInput

# identity map v2 is deprecated (a DeprecationWarning per call); these tests exercise it on purpose
pytestmark = pytest.mark.filterwarnings("ignore:/v2/identity:DeprecationWarning")

FAST = HttpConfig(backoff_base=0.01, backoff_max=0.02)
GEN = "/v2/token/generate"


@pytest.fixture(scope="module")
def operator():
    with LocalOperator() as op:
        yield op


@pytest.fixture
def op(operator):
    operator.clear_faults()
    operator.requests.clear()
    operator.time_offset = operator.time_offset * 0
    yield operator
    operator.clear_faults()


def publisher(op, config=FAST, **kw):
    return Uid2PublisherClient(op.base_url, *op.credentials("publisher"), http=config, **kw)


def generate(client, email="user@example.com"):
    return client.generate_token(TokenGenerateInput.from_email(email))


def test_success_and_connection_reuse(op):
    client = publisher(op)
    for _ in range(3):
        assert generate(client).is_success()
    records = [r for r in op.requests if r.path == GEN]
    assert len(records) == 3
    assert len({r.peer_port for r in records}) == 1  # one TCP connection, reused
    assert records[0].headers["x-uid2-client-version"].startswith("uid2-client-python-")
    assert records[0].headers["authorization"] == "***"  # the operator's log never holds the key


def test_retries_5xx_with_a_fresh_envelope_each_time(op):
    op.fail_next(2, status=503, path=GEN)
    assert generate(publisher(op)).is_success()
    records = [r for r in op.requests if r.path == GEN]
    assert [r.status for r in records] == [503, 503, 200]
    assert len({r.body_digest for r in records}) == 3  # new timestamp/nonce/IV per attempt


def test_retries_exhausted_error_names_endpoint_and_status_but_no_secret(op):
    api_key, secret = op.credentials("publisher")
    op.fail_next(10, status=502, path=GEN)
    client = Uid2PublisherClient(op.base_url, api_key, secret, http=HttpConfig(retries=2, backoff_base=0.001))
    with pytest.raises(Uid2HttpError) as info:
        generate(client)
    err = info.value
    assert isinstance(err, urllib.error.HTTPError) and isinstance(err, urllib.error.URLError)
    assert err.status == 502 and err.code == 502 and err.endpoint == GEN and err.attempts == 3
    assert op.request_count(GEN) == 3
    for text in (str(err), repr(err), str(err.args), err.reason):
        assert GEN in text or text == err.reason
        assert api_key not in text and secret not in text
    assert "502" in str(err) and "injected failure" in str(err)
    assert pickle.loads(pickle.dumps(err)).endpoint == GEN


def test_429_honours_retry_after(op):
    op.rate_limit_next(1, retry_after=0.4, path=GEN)
    start = time.monotonic()
    assert generate(publisher(op, HttpConfig(backoff_base=0.0))).is_success()
    assert time.monotonic() - start >= 0.4
    assert [r.status for r in op.requests if r.path == GEN] == [429, 200]


def test_429_with_retry_after_beyond_the_bound_is_not_waited_for(op):
    op.rate_limit_next(1, retry_after=120, path=GEN)
    start = time.monotonic()
    with pytest.raises(Uid2HttpError) as info:
        generate(publisher(op, HttpConfig(max_retry_after=5)))
    assert info.value.status == 429 and info.value.retry_after == 120
    assert time.monotonic() - start < 2
    assert op.request_count(GEN) == 1


def test_4xx_is_not_retried(op):
    api_key, secret = op.credentials("mapper")  # mapper may not generate tokens
    with pytest.raises(Uid2HttpError) as info:
        generate(Uid2PublisherClient(op.base_url, api_key, secret, http=FAST))
    assert info.value.status == 401 and "unauthorized" in str(info.value)
    assert op.request_count(GEN) == 1


def test_wrong_secret_is_rejected_without_leaking_it(op):
    api_key, _ = op.credentials("publisher")
    wrong = base64.b64encode(bytes(32)).decode()
    with pytest.raises(urllib.error.HTTPError) as info:
        generate(Uid2PublisherClient(op.base_url, api_key, wrong, http=FAST))
    assert info.value.code == 400
    assert wrong not in str(info.value) and api_key not in str(info.value)


def test_wrong_api_key_is_401(op):
    _, secret = op.credentials("publisher")
    with pytest.raises(Uid2HttpError) as info:
        generate(Uid2PublisherClient(op.base_url, "not-a-key", secret, http=FAST))
    assert info.value.status == 401


def test_read_timeout_then_retry(op):
    op.delay_next(1, 1.0, path=GEN)
    cfg = HttpConfig(read_timeout=0.2, retries=0)
    with pytest.raises(Uid2HttpError) as info:
        generate(publisher(op, cfg))
    assert info.value.status is None and "timed out" in str(info.value) and GEN in str(info.value)
    op.delay_next(1, 1.0, path=GEN)
    start = time.monotonic()
    assert generate(publisher(op, HttpConfig(read_timeout=0.2, retries=1, backoff_base=0))).is_success()
    assert time.monotonic() - start < 0.9
    # the two delayed requests are recorded when the operator finishes them, after the client gave up: wait,
    # so that they do not land in the next test's counts
    deadline = time.monotonic() + 30
    while op.request_count(GEN) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert op.request_count(GEN) == 3


def test_connection_refused_is_a_urlerror():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    client = Uid2PublisherClient(f"http://127.0.0.1:{port}", "key", base64.b64encode(bytes(32)).decode(),
                                 http=HttpConfig(retries=1, backoff_base=0.001, connect_timeout=1))
    with pytest.raises(urllib.error.URLError) as info:
        generate(client)
    assert info.value.status is None and info.value.attempts == 2
    assert "connection failed" in str(info.value)


def test_malformed_response_is_a_value_error_not_retried(op):
    op.malformed_next(1, path=GEN)
    with pytest.raises(ValueError, match="GCM tag"):
        generate(publisher(op))
    assert op.request_count(GEN) == 1


def test_stale_envelope_is_rejected(op):
    from datetime import timedelta

    op.time_offset = timedelta(minutes=3)
    try:
        with pytest.raises(Uid2HttpError) as info:
            generate(publisher(op))
    finally:
        op.time_offset = timedelta(0)
    assert info.value.status == 400 and "Request too old or client time drift" in str(info.value)


def test_post_enveloped_text_and_binary(op):
    api_key, secret = op.credentials("mapper")
    key = base64.b64decode(secret)
    data = json.dumps({"email_hash": [base64.b64encode(bytes(32)).decode()]}).encode()
    v2 = json.loads(post_enveloped(op.base_url, "/v2/identity/map", api_key, key, data, config=FAST))
    assert v2["status"] == "success" and len(v2["body"]["mapped"]) == 1
    v3 = json.loads(post_enveloped(op.base_url, "/v3/identity/map", api_key, key, data, binary=True))
    assert v3["body"]["email_hash"][0]["u"] == v2["body"]["mapped"][0]["advertising_id"]
    assert [r.binary for r in op.requests][-2:] == [False, True]
    with HttpTransport(FAST) as t:
        out = post_enveloped(op.base_url, "/v2/key/bidstream", *op.credentials("bidstream")[:1],
                             base64.b64decode(op.credentials("bidstream")[1]), transport=t)
    assert json.loads(out)["body"]["keys"]


def test_operator_limits_a_single_request_to_5000(op):
    api_key, secret = op.credentials("mapper")
    data = json.dumps({"email_hash": [base64.b64encode(bytes(32)).decode()] * 5001}).encode()
    with pytest.raises(Uid2HttpError) as info:
        post_enveloped(op.base_url, "/v2/identity/map", api_key, base64.b64decode(secret), data)
    assert info.value.status == 400 and "Too many" in str(info.value)


def test_unknown_endpoint_is_404(op):
    with pytest.raises(Uid2HttpError) as info:
        post_enveloped(op.base_url, "/v2/nope", "k", bytes(32))
    assert info.value.status == 404


def test_module_post_uses_the_callers_transport(op):
    # make_request/post keep the official signatures; the client's session is found through a context
    # variable, so requests from one client share that client's connection.
    client = IdentityMapClient(op.base_url, *op.credentials("mapper"), http=FAST)
    for _ in range(2):
        client.generate_identity_map(IdentityMapInput.from_emails(["a@example.com"]))
    ports = {r.peer_port for r in op.requests if r.path == "/v2/identity/map"}
    assert len(ports) == 1
    assert _http.current_transport() is _http.default_transport()


def test_auth_headers_format():
    headers = auth_headers("my-key")
    assert headers["Authorization"] == "Bearer my-key"
    assert headers["X-UID2-Client-Version"].startswith("uid2-client-python-")


@given(attempt=st.integers(min_value=0, max_value=200), base=st.floats(0, 10), cap=st.floats(0, 30))
def test_backoff_is_bounded(attempt, base, cap):
    cfg = HttpConfig(backoff_base=base, backoff_max=cap)
    assert 0 <= cfg.backoff(attempt) <= min(cap, base * 2 ** min(attempt, 30))


def test_config_validation_and_retryable_statuses():
    with pytest.raises(ValueError):
        HttpConfig(retries=-1)
    with pytest.raises(ValueError):
        HttpConfig(read_timeout=0)
    cfg = HttpConfig()
    assert (cfg.connect_timeout, cfg.read_timeout, cfg.retries) == (5.0, 30.0, 3)
    assert cfg.is_retryable_status(None) and cfg.is_retryable_status(500) and cfg.is_retryable_status(429)
    assert not cfg.is_retryable_status(400) and not cfg.is_retryable_status(401)


def test_envelope_module_used_by_the_wire_is_the_vector_one(op):
    # A hand-built envelope (the vectors' code path) is accepted by the operator.
    api_key, secret = op.credentials("bidstream")
    key = base64.b64decode(secret)
    env, nonce = _envelope.encrypt_envelope(key, int(time.time() * 1000), None)
    t = _http.default_transport()
    resp = t.post(op.base_url + "/v2/key/bidstream", auth_headers(api_key), base64.b64encode(env),
                  endpoint="/v2/key/bidstream")
    body = json.loads(_envelope.decrypt_response(key, base64.b64decode(resp.read()), nonce))
    assert body["status"] == "success"
