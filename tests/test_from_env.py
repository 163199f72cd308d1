"""``from_env()`` on every client: built from ``UID2_*`` / ``EUID_*`` variables, used against a LocalOperator.

Errors name the missing or bad variable and never show a value; no credential read from the environment
appears in an exception or a log (the detector of tests/test_secrets.py, every spelling and 16-character
piece).
"""
import datetime as dt

import pytest

import uid2fast
from uid2fast import (
    EuidClientFactory, HttpConfig, IdentityMapClient, IdentityMapInput, IdentityMapV3Client, IdentityMapV3Input,
    IdentityScope, OptOutClient, TokenGenerateInput, Uid2Client, Uid2ClientFactory, Uid2HttpError,
    Uid2PublisherClient,
)
from uid2fast.testing import LocalOperator

from .test_secrets import Secrets, _all_logs

FAST = HttpConfig(retries=2, backoff_base=0.001, connect_timeout=2, read_timeout=5)
DOMAIN = "news.example.com"
SITE = 1001
NAMES = ("BASE_URL", "API_KEY", "SECRET_KEY")


@pytest.fixture(scope="module", params=["UID2", "EUID"])
def op(request):
    with LocalOperator(request.param, site_data={SITE: [DOMAIN]}) as operator:
        yield operator


def env_for(op, role, prefix=None, *, pad=""):
    """The three variables of ``role`` under ``prefix`` (the operator's scope by default)."""
    prefix = prefix or op.identity_scope
    api_key, secret = op.credentials(role)
    return {f"{prefix}_BASE_URL": op.base_url + pad, f"{prefix}_API_KEY": api_key + pad,
            f"{prefix}_SECRET_KEY": secret + pad}


# ---------------------------------------------------------------------------------------------------
# each client, end to end
# ---------------------------------------------------------------------------------------------------
def test_bidstream_refresh_and_decrypt(op, engine):
    # A trailing newline, as read from a secrets file, is stripped as by the constructor.
    client = uid2fast.BidstreamClient.from_env(op.identity_scope, environ=env_for(op, "bidstream", pad="\n"),
                                               http=FAST)
    assert type(client) is uid2fast.BidstreamClient
    assert client.refresh().success
    token = op.issue_token(email="bid@example.com", client_side=True)
    result = client.decrypt_token_into_raw_uid(token, DOMAIN)
    assert result.success and result.uid == op.raw_uid(email="bid@example.com")
    assert result.identity_scope == IdentityScope[op.identity_scope]
    assert client.decrypt_token_into_raw_uid(token, "other.example").status.name == "DOMAIN_NAME_CHECK_FAILED"


def test_sharing_encrypt_and_decrypt(op, engine):
    client = uid2fast.SharingClient.from_env(op.identity_scope, environ=env_for(op, "sharer"))
    assert client.refresh().success
    raw_uid = op.raw_uid(email="share@example.com")
    response = client.encrypt_raw_uid_into_token(raw_uid)
    assert response.success
    decrypted = client.decrypt_token_into_raw_uid(response.encrypted_data)
    assert decrypted.uid == raw_uid and decrypted.identity_scope == IdentityScope[op.identity_scope]


def test_publisher_generate_refresh_and_validate(op):
    client = Uid2PublisherClient.from_env(op.identity_scope, environ=env_for(op, "publisher"))
    tgi = TokenGenerateInput.from_email("pub@example.com")
    response = client.generate_token(tgi)
    assert response.is_success()
    identity = response.get_identity()
    assert op.decrypt_token(identity.get_advertising_token())[:2] == (op.raw_uid(email="pub@example.com"),
                                                                      op.publisher_site_id)
    assert client.refresh_token(identity).is_success()
    assert client.validate_token(identity.get_advertising_token(), tgi) is True


def test_identity_map_v3_and_v2(op):
    emails = ["map@example.com", "other@example.com"]
    # Extra keyword arguments reach the constructor: one identity per request here.
    before = sum(r.path == "/v3/identity/map" for r in op.requests)
    v3 = IdentityMapV3Client.from_env(op.identity_scope, environ=env_for(op, "mapper"), max_batch_size=1)
    response = v3.generate_identity_map(IdentityMapV3Input.from_emails(emails))
    assert {e: response.mapped_identities[e].current_raw_uid for e in emails} == \
        {e: op.raw_uid(email=e) for e in emails}
    assert sum(r.path == "/v3/identity/map" for r in op.requests) - before == 2

    v2 = IdentityMapClient.from_env(op.identity_scope, environ=env_for(op, "mapper"))
    with pytest.warns(DeprecationWarning):
        mapped = v2.generate_identity_map(IdentityMapInput.from_emails(emails[:1])).mapped_identities
    assert mapped[emails[0]].get_raw_uid() == op.raw_uid(email=emails[0])


def test_optout_status(op):
    opted = op.opt_out(email="gone@example.com")
    active = op.raw_uid(email="here@example.com")
    client = OptOutClient.from_env(op.identity_scope, environ=env_for(op, "mapper"))
    status = client.get_optout_status([opted, active])
    assert isinstance(status[opted], dt.datetime) and status[active] is None


def test_legacy_factories_give_the_scope_of_their_service(op):
    factory = EuidClientFactory if op.identity_scope == "EUID" else Uid2ClientFactory
    client = factory.from_env(environ=env_for(op, "sharer"), http=FAST)  # the factory's own prefix by default
    assert type(client) is Uid2Client and client._identity_scope == IdentityScope[op.identity_scope]
    client.refresh_keys()
    raw_uid = op.raw_uid(email="legacy@example.com")
    decrypted = client.decrypt(client.encrypt(raw_uid))
    assert decrypted.uid == raw_uid and decrypted.identity_scope == IdentityScope[op.identity_scope]
    # Uid2Client.from_env builds as Uid2Client(...) does (no scope of its own), for any prefix.
    plain = Uid2Client.from_env("LEGACY", environ=env_for(op, "sharer", "LEGACY"))
    assert plain._identity_scope is None and plain.refresh().success


def test_reads_os_environ_at_call_time(monkeypatch):
    with LocalOperator("EUID") as euid, LocalOperator() as uid2:
        for op in (euid, uid2):
            for name, value in env_for(op, "bidstream").items():
                monkeypatch.setenv(name, value)
        token = euid.issue_token(email="env@example.com")
        client = uid2fast.BidstreamClient.from_env("EUID")
        assert client.refresh().success
        assert client.decrypt_token_into_raw_uid(token, None).uid == euid.raw_uid(email="env@example.com")
        default = uid2fast.BidstreamClient.from_env()  # UID2_* by default
        assert default.refresh().success and default.keys.get_identity_scope() == IdentityScope.UID2
        monkeypatch.delenv("UID2_SECRET_KEY")
        with pytest.raises(ValueError, match=r"^missing or empty environment variable: UID2_SECRET_KEY$"):
            uid2fast.BidstreamClient.from_env()


# ---------------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------------
ALL_CLIENTS = [uid2fast.BidstreamClient, uid2fast.SharingClient, Uid2PublisherClient, IdentityMapClient,
               IdentityMapV3Client, OptOutClient, Uid2Client, Uid2ClientFactory, EuidClientFactory]


@pytest.mark.parametrize("cls", ALL_CLIENTS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("missing", [("BASE_URL",), ("API_KEY",), ("SECRET_KEY",), ("API_KEY", "SECRET_KEY"),
                                     NAMES])
@pytest.mark.parametrize("how", ["absent", "empty", "blank"])
def test_missing_variables_are_named_without_values(cls, missing, how):
    prefix = "EUID" if cls is EuidClientFactory else "UID2"
    env = {f"{prefix}_BASE_URL": "https://base.invalid", f"{prefix}_API_KEY": "KEY-visible-only-here",
           f"{prefix}_SECRET_KEY": "c2VjcmV0LXZpc2libGUtb25seS1oZXJl"}
    for name in missing:
        if how == "absent":
            del env[f"{prefix}_{name}"]
        else:
            env[f"{prefix}_{name}"] = "" if how == "empty" else " \n"
    with pytest.raises(ValueError) as info:
        cls.from_env(environ=env)
    message = str(info.value)
    expected = ", ".join(f"{prefix}_{n}" for n in missing)
    assert message == f"missing or empty environment variable{'s' if len(missing) > 1 else ''}: {expected}"
    for value in env.values():
        assert value.strip() not in message or value.strip() == ""


BAD = [("API_KEY", "KEY-abc\x07def", "API key in {p}_API_KEY contains a control character"),
       ("API_KEY", "KEY-abc def", "API key in {p}_API_KEY contains whitespace"),
       ("SECRET_KEY", "c2VjcmV0\x1bLXZpc2libGU=", "secret key in {p}_SECRET_KEY contains a control character"),
       ("SECRET_KEY", "c2VjcmV0 LXZpc2libGU=", "secret key in {p}_SECRET_KEY contains whitespace"),
       ("SECRET_KEY", "c2VjcmV0\u2028LXZpc2libGU=", "secret key in {p}_SECRET_KEY contains a control character")]


@pytest.mark.parametrize("cls", ALL_CLIENTS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("name", "value", "expected"), BAD, ids=range(len(BAD)))
def test_bad_credentials_name_the_variable_not_the_value(cls, name, value, expected):
    prefix = "EUID" if cls is EuidClientFactory else "UID2"
    env = {f"{prefix}_BASE_URL": "https://base.invalid", f"{prefix}_API_KEY": "KEY-fine",
           f"{prefix}_SECRET_KEY": "c2VjcmV0LXZpc2libGUtb25seS1oZXJl", f"{prefix}_{name}": value}
    with pytest.raises(ValueError, match=expected.format(p=prefix)) as info:
        cls.from_env(environ=env)
    pieces = [p for p in value.replace("\x07", " ").replace("\x1b", " ").replace("\u2028", " ").split() if p]
    assert not [p for p in pieces if p in str(info.value)]


def test_constructor_checks_apply_unchanged():
    env = {"UID2_BASE_URL": "https://base.invalid", "UID2_API_KEY": "KEY-fine", "UID2_SECRET_KEY": "not*base64"}
    # The operator clients refuse a secret that is not base64, as their constructors do (value not shown) ...
    for cls in (Uid2PublisherClient, IdentityMapV3Client, OptOutClient):
        with pytest.raises(ValueError, match=r"^the secret key is not valid base64 \(value not shown\)$"):
            cls.from_env(environ=env)
    # ... the key-holding clients accept it and their refresh fails, as when it is passed directly.
    client = uid2fast.BidstreamClient.from_env(environ=env)
    assert client._secret_key == uid2fast.BidstreamClient(*env.values())._secret_key == "not*base64"
    # And constructor arguments are checked by the constructor.
    with pytest.raises(ValueError, match="max_batch_size"):
        OptOutClient.from_env(environ=env | {"UID2_SECRET_KEY": "c2VjcmV0"}, max_batch_size=0)
    with pytest.raises(TypeError, match="unexpected keyword"):
        uid2fast.SharingClient.from_env(environ=env, max_batch_size=1)


@pytest.mark.parametrize("prefix", ["", "UID2_", "1UID2", "UID2-X", None, b"UID2"])
def test_prefix_must_be_a_variable_name_prefix(prefix):
    with pytest.raises(ValueError, match="prefix must be"):
        uid2fast.BidstreamClient.from_env(prefix, environ={})


def test_non_str_value_is_named_not_shown():
    with pytest.raises(TypeError, match=r"^UID2_API_KEY must be a str, not bytes$"):
        uid2fast.BidstreamClient.from_env(environ={"UID2_BASE_URL": "x", "UID2_API_KEY": b"KEY-bytes",
                                                    "UID2_SECRET_KEY": "c2VjcmV0"})


def test_no_credential_from_the_environment_in_any_exception_or_log(op, capfd):
    secrets = Secrets()
    secrets.add_operator(op)
    caught = []

    def expect(exc_type, fn, *args, **kwargs):
        with pytest.raises(exc_type) as info:
            fn(*args, **kwargs)
        caught.append(info.value)

    with _all_logs() as logs:
        for role, cls in (("bidstream", uid2fast.BidstreamClient), ("sharer", uid2fast.SharingClient),
                          ("publisher", Uid2PublisherClient), ("mapper", IdentityMapV3Client),
                          ("mapper", OptOutClient)):
            env = env_for(op, role, "X")
            client = cls.from_env("X", environ=env, http=FAST)
            for missing in NAMES:  # every other variable holds a real credential
                expect(ValueError, cls.from_env, "X", {k: v for k, v in env.items() if k != f"X_{missing}"})
            for name, value in (("API_KEY", env["X_API_KEY"] + "\x00"), ("SECRET_KEY", "\t" + env["X_SECRET_KEY"][:-4]
                                                                          + " " + env["X_SECRET_KEY"][-4:])):
                expect(ValueError, cls.from_env, "X", env | {f"X_{name}": value})
            op.fail_next(3, 503)  # retries exhausted: the error comes from the operator's answers
            if role in ("bidstream", "sharer"):
                assert not client.refresh().success
            elif role == "publisher":
                expect(Uid2HttpError, client.generate_token, TokenGenerateInput.from_email("s@example.com"))
            elif cls is OptOutClient:
                expect(Uid2HttpError, client.get_optout_status, [op.raw_uid(email="s@example.com")])
            else:
                expect(Uid2HttpError, client.generate_identity_map, IdentityMapV3Input.from_emails(["s@example.com"]))
            op.clear_faults()
        # A wrong secret for a real API key: the operator refuses it.
        wrong = env_for(op, "sharer", "X") | {"X_SECRET_KEY": "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="}
        secrets.add(wrong["X_SECRET_KEY"], "a wrong secret")
        legacy = Uid2ClientFactory.from_env("X", wrong, http=FAST)
        expect(Exception, legacy.refresh_keys)
    assert len(caught) == 5 * 5 + 3 + 1  # 3 missing + 2 bad values per client, 3 HTTP errors, the legacy refresh
    for exc in caught:
        secrets.check_exception(exc, f"{type(exc).__name__}: {exc}")
    text = logs.getvalue()
    assert "uid2fast.http" in text  # the capture saw the retries
    secrets.check(text, "the DEBUG log")
    out, err = capfd.readouterr()
    secrets.check(out + err, "stdout/stderr")
