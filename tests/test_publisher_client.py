"""Publisher client against the local operator: generate, refresh, opt-out, EUID, validate."""
import datetime as dt
import json
import logging
import urllib.error
import warnings

import pytest

from uid2fast._http import HttpConfig, Uid2HttpError
from uid2fast.identity_tokens import IdentityTokens
from uid2fast.publisher_client import Uid2PublisherClient
from uid2fast.testing import INSUFFICIENT_CONSENT_TCF, LocalOperator
from uid2fast.token_generate_input import TokenGenerateInput
from uid2fast.token_generate_response import TokenGenerateResponse
from uid2fast.token_refresh_response import TokenRefreshResponse

FAST = HttpConfig(backoff_base=0.001)
TCF = "CPhJRpMPhJRpMABAMBFRACBoALAAAEJAAIYgAKwAQAKgArABAAqAAA"


@pytest.fixture(scope="module")
def op():
    with LocalOperator() as operator:
        yield operator


@pytest.fixture(scope="module")
def client(op):
    return Uid2PublisherClient(op.base_url, *op.credentials("publisher"), http=FAST)


def assert_fresh_identity(identity):
    assert identity is not None
    assert not identity.is_due_for_refresh()
    assert identity.is_refreshable()
    assert identity.get_advertising_token() and identity.get_refresh_token() and identity.get_json_string()
    assert identity.get_refresh_from() < identity.get_identity_expires() < identity.get_refresh_expires()


def test_generate_and_refresh(op, client):
    response = client.generate_token(TokenGenerateInput.from_email("Hopefully.Not.Opted.Out@gmail.com"))
    assert response.is_success() and not response.is_optout()
    identity = response.get_identity()
    assert_fresh_identity(identity)
    expected_uid = op.raw_uid(email="hopefullynotoptedout@gmail.com")
    assert op.decrypt_token(identity.get_advertising_token())[:2] == (expected_uid, op.publisher_site_id)
    assert json.loads(response.get_identity_json_string())["user_token"]  # unknown fields are kept

    refreshed = client.refresh_token(identity)
    assert refreshed.is_success() and not refreshed.is_optout()
    new = refreshed.get_identity()
    assert_fresh_identity(new)
    assert new.get_refresh_token() != identity.get_refresh_token()
    assert op.decrypt_token(new.get_advertising_token())[0] == expected_uid
    # The new identity refreshes again with its own refresh_response_key.
    assert client.refresh_token(new).is_success()


@pytest.mark.parametrize("make", [
    lambda: TokenGenerateInput.from_phone("+12345678901"),
    lambda: TokenGenerateInput.from_hashed_email("tMmiiTI7IaAcPpQPFQ65uMVCWH8av9jw4cwf/F5HVRQ="),
    lambda: TokenGenerateInput.from_hashed_phone("EObwtHBUqDNZR33LNSMdtt5cafsYFuGmuY4ZLenlue4="),
    lambda: TokenGenerateInput.from_email("user@example.com").do_not_hash(),
])
def test_every_input_kind(op, client, make):
    identity = client.generate_token(make()).get_identity()
    assert_fresh_identity(identity)
    uid = op.decrypt_token(identity.get_advertising_token())[0]
    assert uid in (op.raw_uid(phone="+12345678901"), op.raw_uid(email="user@example.com"))


def test_optout_on_generate(op, client):
    response = client.generate_token(TokenGenerateInput.from_email("optout@example.com"))
    assert response.is_optout() and not response.is_success()
    assert response.get_identity() is None and response.get_identity_json_string() is None
    op.opt_out(phone="+19998887777")
    assert client.generate_token(TokenGenerateInput.from_phone("+19998887777")).is_optout()


def test_optout_on_refresh(op, client):
    identity = client.generate_token(TokenGenerateInput.from_email("refresh-optout@example.com")).get_identity()
    assert_fresh_identity(identity)
    refreshed = client.refresh_token(identity)
    assert refreshed.is_optout() and not refreshed.is_success()
    assert refreshed.get_identity() is None and refreshed.get_identity_json_string() is None

    identity = client.generate_token(TokenGenerateInput.from_email("later@example.com")).get_identity()
    op.opt_out(email="later@example.com")
    assert client.refresh_token(identity).is_optout()


def test_invalid_and_expired_refresh_tokens_are_http_errors(op, client):
    bogus = IdentityTokens.from_json({"refresh_token": "AAAAAARomrP3NjjH", "refresh_response_key":
                                      "P941vVeuyjaDRVnFQ8DPd0AZnW4bPeiJPXER2K9QXcU="})
    with pytest.raises(urllib.error.HTTPError) as info:
        client.refresh_token(bogus)
    assert info.value.code == 400 and "invalid_token" in str(info.value)

    identity = client.generate_token(TokenGenerateInput.from_email("expiring@example.com")).get_identity()
    op.time_offset = dt.timedelta(days=31)
    try:
        with pytest.raises(Uid2HttpError) as info:
            client.refresh_token(identity)
    finally:
        op.time_offset = dt.timedelta(0)
    assert info.value.status == 400 and "expired_token" in str(info.value)
    with pytest.raises(AttributeError):
        client.refresh_token(None)


def test_v1_session_refresh_reads_plain_json(op, client):
    # docs/differences.md#refresh-without-key: without refresh_response_key the operator answers in plain JSON (the
    # official crashed).
    body = op.generate_identity(email="v1@example.com", v1_session=True)
    assert "refresh_response_key" not in body
    identity = IdentityTokens.from_json(body)
    refreshed = client.refresh_token(identity)
    assert refreshed.is_success()
    assert refreshed.get_identity().get_refresh_response_key() is None


def test_bad_input_raises_before_any_request(op, client):
    before = op.request_count()
    for bad in (TokenGenerateInput.from_email("this is not an email address"),
                TokenGenerateInput.from_phone("this is not a phone number"),
                TokenGenerateInput.from_phone(" +123 44 55-66-77")):
        with pytest.raises(ValueError):
            client.generate_token(bad)
    with pytest.raises(TypeError):
        client.generate_token(TokenGenerateInput.from_email(None))
    assert op.request_count() == before


def test_operator_rejects_an_invalid_raw_email(op, client):
    with pytest.raises(Uid2HttpError) as info:
        client.generate_token(TokenGenerateInput.from_email("not an email").do_not_hash())
    assert info.value.status == 400


def test_validate_token(op, client):
    identity = client.generate_token(TokenGenerateInput.from_email("validate@example.com")).get_identity()
    token = identity.get_advertising_token()
    assert client.validate_token(token, TokenGenerateInput.from_email("validate@example.com")) is True
    assert client.validate_token(token, TokenGenerateInput.from_email("other@example.com")) is False
    assert client.validate_token("garbage", TokenGenerateInput.from_email("validate@example.com")) is False
    assert op.request_count("/v2/token/validate") >= 3


def test_euid_operator_with_tcf_consent():
    with LocalOperator(identity_scope="EUID") as op:
        client = Uid2PublisherClient(op.base_url, *op.credentials("publisher"), http=FAST)
        response = client.generate_token(
            TokenGenerateInput.from_email("user@example.com").with_transparency_and_consent_string(TCF))
        assert response.is_success()
        token = response.get_identity().get_advertising_token()
        from uid2fast.uid2_base64_url_coder import Uid2Base64UrlCoder

        assert Uid2Base64UrlCoder.decode(token)[0] == 0x13  # EUID email prefix
        with pytest.raises(ValueError, match="insufficient_user_consent"):
            client.generate_token(TokenGenerateInput.from_email("user@example.com")
                                  .with_transparency_and_consent_string(INSUFFICIENT_CONSENT_TCF))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            optout = TokenGenerateInput.from_email("optout@example.com").do_not_generate_tokens_for_opted_out()
        assert client.generate_token(optout.with_transparency_and_consent_string(TCF)).is_optout()


def test_token_generate_input_json_and_deprecation():
    tgi = TokenGenerateInput.from_hashed_email("h").with_transparency_and_consent_string("tc")
    assert tgi.get_as_json_string() == '{"email_hash": "h", "tcf_consent_string": "tc"}'
    with pytest.warns(DeprecationWarning, match="removed"):
        assert tgi.do_not_generate_tokens_for_opted_out() is tgi
    assert tgi.get_as_json_string() == '{"email_hash": "h", "tcf_consent_string": "tc"}'  # no "policy"
    assert TokenGenerateInput.do_not_generate_tokens_for_opted_out.__deprecated__
    assert TokenGenerateInput.from_phone("+12345678901").do_not_hash().get_as_json_string() == \
        '{"phone": "+12345678901"}'
    assert "user@example.com" not in repr(TokenGenerateInput.from_email("user@example.com"))


def test_identity_tokens_compare_milliseconds():
    # docs/differences.md#identity-tokens-ms (Java's vector): 2022 timestamps are long past, so not refreshable and due
    # for refresh.
    old = IdentityTokens.from_json({"advertising_token": "a", "refresh_token": "r", "identity_expires": 1668059799628,
                                    "refresh_expires": 1668142599628, "refresh_from": 1668056202628})
    assert not old.is_refreshable() and old.is_due_for_refresh()
    now = dt.datetime.now(dt.timezone.utc)
    ms = int(now.timestamp() * 1000)
    fresh = IdentityTokens.from_json({"refresh_token": "SECRET-REFRESH", "identity_expires": ms + 10_000,
                                      "refresh_expires": ms + 20_000, "refresh_from": ms + 5_000})
    assert fresh.is_refreshable_impl(now) and not fresh.is_due_for_refresh_impl(now)
    later = now + dt.timedelta(seconds=6)
    assert fresh.is_due_for_refresh_impl(later) and not fresh.has_identity_expired(later)
    assert fresh.has_identity_expired(now + dt.timedelta(seconds=11))
    assert not fresh.is_refreshable_impl(now + dt.timedelta(seconds=21))
    assert "SECRET-REFRESH" not in repr(fresh)  # no token in the repr


def test_refresh_response_checks_the_identity_now():
    now = dt.datetime.now(dt.timezone.utc)
    ms = int(now.timestamp() * 1000)
    expired = json.dumps({"status": "success", "body": {"advertising_token": "secret-token", "refresh_token": "r",
                                                        "identity_expires": ms - 1, "refresh_expires": ms + 1000,
                                                        "refresh_from": ms - 2}})
    with pytest.raises(Exception, match="Invalid identity in token refresh response") as info:
        TokenRefreshResponse(expired, now)
    assert "secret-token" not in str(info.value)
    with pytest.raises(Exception, match="unexpected token refresh status"):
        TokenRefreshResponse('{"status": "expired_token"}', now)
    with pytest.raises(ValueError, match="unexpected token generate status"):
        TokenGenerateResponse('{"status": "client_error"}')


def test_from_json_string_logs_and_returns_none(caplog, capsys):
    with caplog.at_level(logging.WARNING, logger="uid2fast.publisher"):
        assert IdentityTokens.from_json_string("{not json") is None
    assert "Invalid json string" in caplog.text
    assert capsys.readouterr().out == ""  # never printed
    ok = IdentityTokens.from_json_string('{"advertising_token": "a", "refresh_from": 1}')
    assert ok.get_advertising_token() == "a" and ok.get_refresh_from() == 1
    with pytest.raises(AssertionError):
        IdentityTokens.from_json_string(None)
