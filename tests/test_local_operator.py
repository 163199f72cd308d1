"""The local operator itself: keys JSON, roles, tokens, rotation, EUID, faults, shutdown."""
import base64
import json
import socket
import threading
import time

import pytest

import uid2fast
from uid2fast import DecryptionStatus, IdentityScope, IdentityType
from uid2fast._http import HttpConfig, Uid2HttpError
from tests.helpers import post_enveloped
from uid2fast.identity_map_client import IdentityMapClient
from uid2fast.identity_map_input import IdentityMapInput
from uid2fast.identity_map_v3_client import IdentityMapV3Client
from uid2fast.identity_map_v3_input import IdentityMapV3Input
from uid2fast.publisher_client import Uid2PublisherClient
from uid2fast.testing import MASTER_KEYSET_ID, LocalOperator
from uid2fast.token_generate_input import TokenGenerateInput

# identity map v2 is deprecated (a DeprecationWarning per call); these tests exercise it on purpose
pytestmark = pytest.mark.filterwarnings("ignore:/v2/identity:DeprecationWarning")

FAST = HttpConfig(backoff_base=0.001)


def keys_json(op, role, path):
    api_key, secret = op.credentials(role)
    return json.loads(post_enveloped(op.base_url, path, api_key, base64.b64decode(secret), config=FAST))


@pytest.mark.parametrize("scope", ["UID2", "EUID"])
def test_generated_token_decrypts_to_the_identity_map_raw_uid(scope):
    with LocalOperator(identity_scope=scope) as op:
        email = "Jane.Doe+ads@gmail.com"
        publisher = Uid2PublisherClient(op.base_url, *op.credentials("publisher"), http=FAST)
        token = publisher.generate_token(TokenGenerateInput.from_email(email)).get_identity().get_advertising_token()

        mapped = IdentityMapClient(op.base_url, *op.credentials("mapper"), http=FAST).generate_identity_map(
            IdentityMapInput.from_emails([email])).mapped_identities[email].get_raw_uid()
        mapped_v3 = IdentityMapV3Client(op.base_url, *op.credentials("mapper"), http=FAST).generate_identity_map(
            IdentityMapV3Input.from_emails([email])).mapped_identities[email].current_raw_uid

        bidstream = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
        refresh = bidstream.refresh()
        assert refresh.success, refresh.reason
        result = bidstream.decrypt_token_into_raw_uid(token, "example.com")
        assert result.status == DecryptionStatus.SUCCESS
        assert result.uid == mapped == mapped_v3 == op.raw_uid(email=email)
        assert result.site_id == op.publisher_site_id
        assert result.identity_scope == (IdentityScope.EUID if scope == "EUID" else IdentityScope.UID2)
        assert result.identity_type == IdentityType.Email
        assert result.advertising_token_version == 128
        assert not result.is_client_side_generated

        phone_token = op.issue_token(phone="+447946095800")
        phone = bidstream.decrypt_token_into_raw_uid(phone_token, None)
        assert phone.identity_type == IdentityType.Phone and phone.uid == op.raw_uid(phone="+447946095800")


def test_keys_json_shapes():
    with LocalOperator(site_data={1001: ["example.com", "com.example.app"]}) as op:
        sharing = keys_json(op, "sharer", "/v2/key/sharing")
        assert sharing["status"] == "success"
        body = sharing["body"]
        assert body["caller_site_id"] == op.sharer_site_id
        assert body["master_keyset_id"] == MASTER_KEYSET_ID
        assert body["token_expiry_seconds"] == "2592000"  # a string, as the operator sends it
        assert body["identity_scope"] == "UID2" and body["allow_clock_skew_seconds"] == 1800
        assert body["max_sharing_lifetime_seconds"] == 30 * 86400 + 10
        keysets = {k.get("keyset_id") for k in body["keys"]}
        assert keysets == {MASTER_KEYSET_ID, body["default_keyset_id"], None}  # others' keys have no keyset
        for k in body["keys"]:
            assert len(base64.b64decode(k["secret"])) == 32 and k["created"] <= k["activates"] < k["expires"]

        bid = keys_json(op, "bidstream", "/v2/key/bidstream")["body"]
        assert all("keyset_id" not in k for k in bid["keys"])
        assert bid["site_data"] == [{"id": 1001, "domain_names": ["com.example.app", "example.com"]}]
        assert bid["max_bidstream_lifetime_seconds"] == 3 * 86400 + 10
        assert "caller_site_id" not in bid and "master_keyset_id" not in bid
        # the key endpoints parse with the lead's parser
        parsed = uid2fast.parse_keys_json(sharing["body"])
        assert parsed.success and parsed.keys.get_master_keyset_id() == MASTER_KEYSET_ID


def test_roles_authorise_endpoints():
    with LocalOperator() as op:
        cases = [("publisher", "/v2/key/bidstream"), ("publisher", "/v2/key/sharing"),
                 ("mapper", "/v2/key/sharing"), ("sharer", "/v2/key/bidstream"), ("bidstream", "/v2/token/generate"),
                 ("sharer", "/v2/identity/map"), ("publisher", "/v3/identity/map")]
        for role, path in cases:
            with pytest.raises(Uid2HttpError) as info:
                keys_json(op, role, path)
            assert info.value.status == 401, (role, path)
        assert keys_json(op, "bidstream", "/v2/key/sharing")["status"] == "success"  # ID_READER may
        api_key, secret = op.add_client(["sharer", "bidstream"], site_id=77)
        assert json.loads(post_enveloped(op.base_url, "/v2/key/sharing", api_key,
                                         base64.b64decode(secret)))["body"]["caller_site_id"] == 77


def test_cstg_token_and_domain_check():
    with LocalOperator(site_data={1001: ["example.com"]}) as op:
        bidstream = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
        assert bidstream.refresh().success
        cstg = op.issue_token(email="c@example.com", client_side=True)
        ok = bidstream.decrypt_token_into_raw_uid(cstg, "Example.COM")
        assert ok.status == DecryptionStatus.SUCCESS and ok.is_client_side_generated
        bad = bidstream.decrypt_token_into_raw_uid(cstg, "evil.com")
        assert bad.status == DecryptionStatus.DOMAIN_NAME_CHECK_FAILED and bad.uid is None
        assert op.decrypt_token(cstg)[2] == 0x2
        opted = bidstream.decrypt_token_into_raw_uid(
            op.issue_token(email="c@example.com", client_side=True, client_side_opted_out=True), "example.com")
        assert opted.status == DecryptionStatus.USER_OPTED_OUT


def test_rotation_old_tokens_still_decrypt_and_new_keys_are_used():
    with LocalOperator() as op:
        bidstream = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
        assert bidstream.refresh().success
        old = op.issue_token(email="r@example.com")
        new_ids = op.rotate_keys()
        assert len(new_ids) == 3  # master, publisher, sharer keysets
        new = op.issue_token(email="r@example.com")
        assert bidstream.decrypt_token_into_raw_uid(new, None).status == DecryptionStatus.NOT_AUTHORIZED_FOR_MASTER_KEY
        assert bidstream.refresh().success
        for token in (old, new):
            assert bidstream.decrypt_token_into_raw_uid(token, None).uid == op.raw_uid(email="r@example.com")
        op.expire_keys()
        assert bidstream.refresh().success
        assert bidstream.decrypt_token_into_raw_uid(old, None).status != DecryptionStatus.SUCCESS
        assert bidstream.decrypt_token_into_raw_uid(new, None).status == DecryptionStatus.SUCCESS


def test_sharer_round_trip_and_cross_site_decrypt():
    with LocalOperator() as op:
        sharer = uid2fast.SharingClient(op.base_url, *op.credentials("sharer"))
        assert sharer.refresh().success
        uid = op.raw_uid(email="s@example.com")
        encrypted = sharer.encrypt_raw_uid_into_token(uid)
        assert encrypted.success
        assert op.decrypt_token(encrypted.encrypted_data)[:2] == (uid, op.sharer_site_id)
        other = uid2fast.SharingClient(op.base_url, *op.add_client(["sharer"], site_id=2000))
        assert other.refresh().success
        assert other.decrypt_token_into_raw_uid(encrypted.encrypted_data).uid == uid
        # A sharing token lives token_expiry_seconds (30 days): too long for the bidstream limit (3 days).
        bidstream = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
        assert bidstream.refresh().success
        assert bidstream.decrypt_token_into_raw_uid(encrypted.encrypted_data, None).status == \
            DecryptionStatus.INVALID_TOKEN_LIFETIME
        publisher_token = op.issue_token(email="s@example.com")
        assert sharer.decrypt_token_into_raw_uid(publisher_token).uid == uid


def test_euid_tokens_and_keys():
    with LocalOperator(identity_scope="EUID") as op:
        token = op.issue_token(email="e@example.com")
        assert uid2fast.Uid2Base64UrlCoder.decode(token)[0] == 0x13
        assert uid2fast.Uid2Base64UrlCoder.decode(op.issue_token(phone="+12345678901"))[0] == 0x17
        assert keys_json(op, "sharer", "/v2/key/sharing")["body"]["identity_scope"] == "EUID"
        with LocalOperator(salt=b"s" * 32) as a, LocalOperator(salt=b"s" * 32, identity_scope="EUID") as b:
            assert a.raw_uid(email="x@y.z") != b.raw_uid(email="x@y.z")  # scopes never share raw UIDs
        with pytest.raises(ValueError):
            LocalOperator(identity_scope="XYZ")


def test_v3_token_and_raw_uid_token():
    with LocalOperator() as op:
        bidstream = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
        assert bidstream.refresh().success
        v3 = op.issue_token(email="v3@example.com", version=3)
        r = bidstream.decrypt_token_into_raw_uid(v3, None)
        assert r.advertising_token_version == 112 and r.uid == op.raw_uid(email="v3@example.com")
        raw = base64.b64encode(bytes(range(32))).decode()
        assert bidstream.decrypt_token_into_raw_uid(op.issue_token(raw_uid=raw), None).uid == raw


def test_deterministic_raw_uids_with_a_salt():
    with LocalOperator(salt=b"k" * 32) as a, LocalOperator(salt=b"k" * 32) as b:
        assert a.raw_uid(email="Same@Example.com") == b.raw_uid(email_hash=uid2fast.normalize_and_hash_email(
            "same@example.com"))
        assert len(base64.b64decode(a.raw_uid(phone="+12345678901"))) == 33  # the operator's current layout
        with pytest.raises(ValueError):
            a.raw_uid(email="x@y.z", phone="+12345678901")


def test_faults_are_consumed_in_order_and_by_path():
    with LocalOperator() as op:
        api_key, secret = op.credentials("bidstream")
        key = base64.b64decode(secret)
        op.fail_next(1, status=500, path="/v2/key/sharing")
        op.rate_limit_next(1, retry_after=0)
        cfg = HttpConfig(retries=0)
        with pytest.raises(Uid2HttpError) as info:
            post_enveloped(op.base_url, "/v2/key/bidstream", api_key, key, config=cfg)
        assert info.value.status == 429 and info.value.retry_after == 0
        assert json.loads(post_enveloped(op.base_url, "/v2/key/bidstream", api_key, key, config=cfg))
        with pytest.raises(Uid2HttpError) as info:
            post_enveloped(op.base_url, "/v2/key/sharing", api_key, key, config=cfg)
        assert info.value.status == 500
        op.malformed_next(1)
        with pytest.raises(ValueError):
            post_enveloped(op.base_url, "/v2/key/bidstream", api_key, key, config=cfg)
        op.delay_next(1, 0.3)
        start = time.monotonic()
        post_enveloped(op.base_url, "/v2/key/bidstream", api_key, key, config=cfg)
        assert time.monotonic() - start >= 0.3
        assert [r.status for r in op.requests] == [429, 200, 500, 200, 200]


def test_close_is_bounded_even_with_a_delayed_request_and_idle_connections():
    op = LocalOperator()
    api_key, secret = op.credentials("bidstream")
    post_enveloped(op.base_url, "/v2/key/bidstream", api_key, base64.b64decode(secret))  # keep-alive conn
    op.delay_next(1, 60)
    errors = []

    def slow():
        try:
            post_enveloped(op.base_url, "/v2/key/bidstream", api_key, base64.b64decode(secret),
                           config=HttpConfig(retries=0, read_timeout=30))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.2)
    start = time.monotonic()
    op.close()
    t.join(10)
    assert time.monotonic() - start < 5 and not t.is_alive()
    assert errors and isinstance(errors[0], Uid2HttpError)
    op.close()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", op.port), timeout=1).close()


def test_generate_identity_helper_and_repr():
    with LocalOperator() as op:
        body = op.generate_identity(email="h@example.com")
        assert set(body) >= {"advertising_token", "refresh_token", "refresh_response_key", "identity_expires",
                             "refresh_expires", "refresh_from"}
        assert op.decrypt_token(body["advertising_token"])[0] == op.raw_uid(email="h@example.com")
        assert "127.0.0.1" in repr(op) and op.base_url.startswith("http://127.0.0.1:")
        with pytest.raises(ValueError):
            op.credentials("admin")
        with pytest.raises(ValueError):
            op.decrypt_token("AAAA")
