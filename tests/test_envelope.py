"""The operator envelope: official vectors byte for byte, response checks, refresh responses."""
import base64
import datetime as dt
import json
import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uid2fast import _envelope
from uid2fast.envelope import Envelope
from uid2fast.request_response_util import create_envelope, parse_response
from uid2fast.token_generate_input import TokenGenerateInput
from uid2fast.uid2_response import Uid2Response

VECTORS = json.loads((pathlib.Path(__file__).parent / "vectors" / "envelope.json").read_text())["vectors"]
SECRET = bytes(range(32))


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: f"{v['now_ms']}")
def test_official_vectors_byte_for_byte(v):
    secret = base64.b64decode(v["secret"])
    data = v["payload"].encode() if v["payload"] is not None else None
    env, nonce = _envelope.encrypt_envelope(secret, v["now_ms"], data, nonce=base64.b64decode(v["nonce"]),
                                            iv=base64.b64decode(v["iv"]))
    assert base64.b64encode(env).decode() == v["envelope_b64"]
    assert nonce == base64.b64decode(v["nonce"])
    decrypted = _envelope.decrypt_response(secret, base64.b64decode(v["response_b64"]), nonce)
    assert decrypted == v["response_json"].encode()
    # The official text path gives the same bytes.
    assert parse_response(secret, Uid2Response.from_string(v["response_b64"].encode()), nonce) == decrypted


def test_json_spacing_matches_official_vector():
    # The vectors' payload is what the official SDK's json.dumps produced; our TokenGenerateInput must
    # produce the same bytes so the envelope is identical.
    v = next(v for v in VECTORS if v["payload"])
    email_hash = json.loads(v["payload"])["email_hash"]
    assert TokenGenerateInput.from_hashed_email(email_hash).get_as_json_string() == v["payload"]


def test_key_endpoint_envelope_has_no_json():
    env, nonce = _envelope.encrypt_envelope(SECRET, 123, None)
    assert len(env) == 1 + 12 + 16 + 16
    assert _envelope.decrypt_envelope(SECRET, env) == (123, nonce, b"")
    env2, _ = _envelope.encrypt_envelope(SECRET, 123, b"")  # empty data adds nothing, as `if data:`
    assert len(env2) == len(env)


def test_create_envelope_and_envelope_object():
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)
    e = create_envelope(SECRET, now, b'{"a": 1}')
    assert isinstance(e, Envelope)
    assert isinstance(e.envelope, bytes)  # the official returns bytes, not str
    assert base64.b64decode(e.envelope) == e.binary_envelope
    ts, nonce, data = _envelope.decrypt_envelope(SECRET, e.binary_envelope)
    assert (ts, nonce, data) == (int(now.timestamp() * 1000), e.nonce, b'{"a": 1}')
    assert len(e.nonce) == 8
    assert create_envelope(SECRET, now).nonce != e.nonce  # random per envelope
    assert "bytes" in repr(e) and SECRET.hex() not in repr(e)


def test_response_nonce_mismatch_and_tampering():
    nonce = b"12345678"
    resp = _envelope.encrypt_response(SECRET, 1, nonce, b'{"status": "success"}')
    assert _envelope.decrypt_response(SECRET, resp, nonce) == b'{"status": "success"}'
    with pytest.raises(ValueError, match="nonce mismatch"):
        _envelope.decrypt_response(SECRET, resp, b"87654321")
    tampered = bytearray(resp)
    tampered[20] ^= 1
    with pytest.raises(ValueError, match="GCM tag"):
        _envelope.decrypt_response(SECRET, bytes(tampered), nonce)
    with pytest.raises(ValueError):
        _envelope.decrypt_response(bytes(32), resp, nonce)
    with pytest.raises(ValueError, match="too short"):
        _envelope.decrypt_response(SECRET, resp[:20], nonce)


def test_parse_response_binary_and_text():
    nonce = b"abcdefgh"
    resp = _envelope.encrypt_response(SECRET, 1, nonce, b"{}")
    assert parse_response(SECRET, Uid2Response.from_bytes(resp), nonce) == b"{}"
    assert parse_response(SECRET, Uid2Response.from_string(base64.b64encode(resp).decode()), nonce) == b"{}"
    with pytest.raises(ValueError):
        parse_response(SECRET, Uid2Response(None, None), nonce)


def test_decrypt_envelope_rejects_bad_version_and_short():
    env, _ = _envelope.encrypt_envelope(SECRET, 1, b"x")
    with pytest.raises(ValueError, match="version"):
        _envelope.decrypt_envelope(SECRET, b"\x02" + env[1:])
    with pytest.raises(ValueError, match="too short"):
        _envelope.decrypt_envelope(SECRET, env[:44])


def test_refresh_response_with_and_without_key():
    key = bytes(range(100, 132))
    body = base64.b64encode(_envelope.encrypt_gcm(key, b'{"status": "optout"}'))
    assert _envelope.decrypt_refresh_response(body, base64.b64encode(key).decode()) == b'{"status": "optout"}'
    assert _envelope.decrypt_refresh_response(body.decode(), key) == b'{"status": "optout"}'
    # docs/differences.md#refresh-without-key: a v1 session (no refresh_response_key) is answered in plain JSON.
    assert _envelope.decrypt_refresh_response(b'{"status": "success"}', None) == b'{"status": "success"}'
    with pytest.raises(ValueError, match="not base64"):
        _envelope.decrypt_refresh_response(b"{not base64}", key)
    with pytest.raises(ValueError):
        _envelope.decrypt_refresh_response(body, bytes(32))


def test_bad_iv_nonce_and_key_lengths():
    with pytest.raises(ValueError, match="nonce"):
        _envelope.encrypt_envelope(SECRET, 1, None, nonce=b"short")
    with pytest.raises(ValueError, match="iv"):
        _envelope.encrypt_envelope(SECRET, 1, None, iv=b"short")
    with pytest.raises(ValueError, match="key"):
        _envelope.encrypt_envelope(b"\x01" * 7, 1, None)


@settings(max_examples=50, deadline=None)
@given(now=st.integers(min_value=0, max_value=2**63 - 1), data=st.binary(max_size=300),
       secret=st.binary(min_size=32, max_size=32))
def test_envelope_round_trip(now, data, secret):
    env, nonce = _envelope.encrypt_envelope(secret, now, data)
    assert _envelope.decrypt_envelope(secret, env) == (now, nonce, data)
    resp = _envelope.encrypt_response(secret, now, nonce, data)
    assert _envelope.decrypt_response(secret, resp, nonce) == data
