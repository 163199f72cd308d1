"""Peer-SDK behaviours (issue: a real drop-in): the legacy EUID client's scope, v2 privacy bits, site_data
validation, the identity type of sharing tokens for 33-byte raw UIDs, identity map v2 deprecation.

Each engine-dependent case runs on both engines (the ``engine`` fixture).
"""
import base64
import datetime as dt
import json
import os
import re
import warnings

import pytest

import uid2fast as U
from uid2fast import DecryptionStatus as S
from uid2fast import EncryptionStatus as E
from uid2fast.keys import EncryptionKeysCollection

from .helpers import RAW_UID, SITE_ID, keys_body, make_keys, make_token

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
SECRET = base64.b64encode(b"s" * 32).decode()
DOMAIN = "news.example.com"


def bid(keys):
    c = U.BidstreamClient("http://127.0.0.1:1", "api-key", SECRET)
    c._keys = keys
    return c


def share(keys):
    c = U.SharingClient("http://127.0.0.1:1", "api-key", SECRET)
    c._keys = keys
    return c


# -- the legacy EUID client's scope -------------------------------------------------------------
def _body_without_scope(now):
    body = keys_body(now, scope="EUID")
    del body["identity_scope"]
    return body


@pytest.mark.parametrize("make", [
    lambda: U.Uid2Client.create_euid("http://127.0.0.1:1", "k", SECRET),
    lambda: U.EuidClientFactory.create("http://127.0.0.1:1", "k", SECRET),
])
@pytest.mark.parametrize("shape", ["no identity_scope", "legacy array"])
def test_legacy_euid_client_uses_its_own_scope_when_the_keys_have_none(engine, make, shape):
    body = _body_without_scope(NOW)
    if shape == "legacy array":
        body = body["keys"]
    client = make()
    keys = client.refresh_json(json.dumps({"body": body}))
    assert keys.get_identity_scope() == U.IdentityScope.EUID
    euid_token = make_token(keys, NOW, scope=U.IdentityScope.EUID)
    t = client.decrypt(euid_token)
    assert t.status == S.SUCCESS and t.uid == RAW_UID and t.identity_scope == U.IdentityScope.EUID
    if shape == "no identity_scope":  # the array body has no keysets: nothing to encrypt with
        own = client.encrypt(RAW_UID)
        assert client.decrypt(own).uid == RAW_UID
    # a UID2 token is the wrong scope for this client
    with pytest.raises(U.EncryptionError, match="INVALID_IDENTITY_SCOPE"):
        client.decrypt(make_token(keys, NOW, scope=U.IdentityScope.UID2))


def test_legacy_client_keeps_a_stated_scope(engine):
    # identity_scope in the JSON wins over the client's (and the UID2 client is unchanged).
    euid = U.Uid2Client.create_euid("http://127.0.0.1:1", "k", SECRET)
    keys = euid.refresh_json(json.dumps({"body": keys_body(NOW, scope="UID2")}))
    assert keys.get_identity_scope() == U.IdentityScope.UID2
    uid2 = U.Uid2Client.create_uid2("http://127.0.0.1:1", "k", SECRET)
    keys = uid2.refresh_json(json.dumps({"body": _body_without_scope(NOW)}))
    assert keys.get_identity_scope() == U.IdentityScope.UID2
    assert uid2.decrypt(make_token(keys, NOW)).uid == RAW_UID


# -- v2 privacy bits ---------------------------------------------------------------------------
def test_v2_opt_out_bit(engine):
    keys = make_keys(NOW)
    token = make_token(keys, NOW, version=2, privacy_bits=0x4)
    t = bid(keys)._decrypt_token_into_raw_uid(token, DOMAIN, NOW)
    assert t.status == S.USER_OPTED_OUT and t.uid is None and t.site_id == SITE_ID
    assert t.advertising_token_version == 2
    # sharing and legacy do not apply the bidstream opt-out rule (as in v3/v4)
    assert share(keys)._decrypt_token_into_raw_uid(token, NOW).uid == RAW_UID
    assert U.decrypt(token, keys, NOW).uid == RAW_UID
    batch = U.decrypt_tokens([token, make_token(keys, NOW, version=2)], keys, now=NOW, domain_names=DOMAIN)
    assert [batch[i].status for i in range(2)] == [S.USER_OPTED_OUT, S.SUCCESS]
    assert batch[0] == t


def test_v2_client_side_generated_flag_and_domain_check(engine):
    keys = make_keys(NOW, site_data=[{"id": SITE_ID, "domain_names": [DOMAIN]}])
    csg = make_token(keys, NOW, version=2, privacy_bits=0x2)
    ok = bid(keys)._decrypt_token_into_raw_uid(csg, DOMAIN.upper(), NOW)
    assert ok.status == S.SUCCESS and ok.is_client_side_generated and ok.uid == RAW_UID
    bad = bid(keys)._decrypt_token_into_raw_uid(csg, "elsewhere.example", NOW)
    assert bad.status == S.DOMAIN_NAME_CHECK_FAILED and bad.uid is None and bad.is_client_side_generated
    assert bad.site_id == SITE_ID and bad.established == NOW - dt.timedelta(days=1)
    assert share(keys)._decrypt_token_into_raw_uid(csg, NOW).is_client_side_generated  # sharing: no check
    plain = bid(keys)._decrypt_token_into_raw_uid(make_token(keys, NOW, version=2), "elsewhere.example", NOW)
    assert plain.status == S.SUCCESS and not plain.is_client_side_generated
    # bit 30 is not the flag (the official SDK's bitarray reading)
    high = make_token(keys, NOW, version=2, privacy_bits=0x40000000)
    assert not share(keys)._decrypt_token_into_raw_uid(high, NOW).is_client_side_generated
    batch = U.decrypt_tokens([csg, csg], keys, now=NOW, domain_names=[DOMAIN, "elsewhere.example"])
    assert batch[0] == ok and batch[1] == bad


# -- site_data ------------------------------------------------------------------------------------
@pytest.mark.parametrize("site_data, message", [
    ({}, "site_data must be an array, not dict"),
    (123, "site_data must be an array, not int"),
    ("x", "site_data must be an array, not str"),
    ([{}], r"site_data\[0\] must be an object with an id"),
    ([1], r"site_data\[0\] must be an object"),
    ([{"id": "x7"}], r"site_data\[0\]\.id"),
    ([{"id": 2**40}], r"site_data\[0\]\.id"),
    ([{"id": 7, "domain_names": "a.com"}], r"site_data\[0\]\.domain_names must be an array of strings"),
    ([{"id": 7, "domain_names": ["a.com"], "app_names": [5]}], r"site_data\[0\]\.app_names must be"),
])
def test_malformed_site_data_is_a_failed_refresh(site_data, message):
    r = U.parse_keys_json(keys_body(NOW, site_data=site_data))
    assert not r.success and r.keys is None
    assert "ValueError" in r.reason and "keys response" not in r.reason
    assert re.search(message, r.reason), r.reason


@pytest.mark.parametrize("site_data", [None, [], [{"id": 0, "domain_names": ["x.com"]}],
                                       [{"id": 7, "domain_names": ["A.com"], "app_names": ["com.app"]}]])
def test_well_formed_site_data(site_data):
    r = U.parse_keys_json(keys_body(NOW, site_data=site_data))
    assert r.success, r.reason
    want = {7: ["a.com", "com.app"]} if site_data and site_data[0]["id"] == 7 else {}
    assert r.keys.get_site_data() == want


@pytest.mark.parametrize("site_data, message", [
    (123, "site_data must be an array, not int"), ("x", "site_data must be an array, not str"),
    ([{}], r"site_data\[0\] must be an object with an id"), ([{"id": "x"}], r"site_data\[0\]\.id"),
    ({7: "a.com"}, r"site_data\[0\]\.domain_names must be an array of strings"),
])
def test_collection_constructor_validates_site_data(site_data, message):
    with pytest.raises(ValueError, match=message):
        EncryptionKeysCollection([], site_data=site_data)
    assert EncryptionKeysCollection([], site_data={7: ["A.com"]}).get_site_data() == {7: ["a.com"]}
    assert EncryptionKeysCollection([], site_data={}).get_site_data() == {}


def test_bidstream_refresh_json_rejects_malformed_site_data():
    client = U.BidstreamClient("http://127.0.0.1:1", "k", SECRET)
    good = client._refresh_json(json.dumps({"body": keys_body(NOW)}))
    assert good.success
    bad = client._refresh_json(json.dumps({"body": keys_body(NOW, site_data={})}))
    assert not bad.success and client.keys is good.keys  # the last good key set stays


# -- sharing encryption: the identity type of a 33-byte raw UID ------------------------------------
def _raw33(metadata: int) -> str:
    return base64.b64encode(bytes([metadata]) + os.urandom(32)).decode()


@pytest.mark.parametrize("metadata, want", [
    (0 << 4 | 0 << 2, U.IdentityType.Email),                  # v3 UID2 email
    (0 << 4 | 1 << 2, U.IdentityType.Phone),                  # v3 UID2 phone
    (2 << 6 | 1 << 5 | 0 << 4 | 1 << 2, U.IdentityType.Phone),  # v4 prod UID2 phone: text starts 'p'
    (2 << 6 | 1 << 5 | 0 << 4 | 0 << 2, U.IdentityType.Email),  # v4 prod UID2 email
    (1 << 6 | 1 << 5 | 0 << 4 | 1 << 2, U.IdentityType.Phone),  # v4 integ phone: starts 'b'... not 'B'
])
def test_sharing_encrypt_takes_the_type_from_a_33_byte_raw_uid(engine, metadata, want):
    keys = make_keys(NOW)
    uid = _raw33(metadata)
    response = share(keys)._encrypt_raw_uid_into_token(uid, None, NOW)
    assert response.status == E.SUCCESS
    t = share(keys)._decrypt_token_into_raw_uid(response.encrypted_data, NOW)
    assert t.status == S.SUCCESS and t.uid == uid and t.identity_type == want
    batch = share(keys).encrypt_raw_uids_into_tokens([uid])
    assert share(keys)._decrypt_token_into_raw_uid(batch.tokens[0], NOW).identity_type == want


def test_sharing_encrypt_keeps_the_first_character_rule_for_32_byte_raw_uids(engine):
    keys = make_keys(NOW)
    for uid, want in [(RAW_UID, U.IdentityType.Email), ("F" + RAW_UID[1:], U.IdentityType.Phone),
                      ("B" + RAW_UID[1:], U.IdentityType.Phone), ("p" + RAW_UID[1:], U.IdentityType.Email)]:
        enc = share(keys)._encrypt_raw_uid_into_token(uid, None, NOW)
        assert share(keys)._decrypt_token_into_raw_uid(enc.encrypted_data, NOW).identity_type == want, uid


# -- identity map v2: deprecated ------------------------------------------------------------------
def test_identity_map_v2_warns_and_still_works():
    from uid2fast.testing import LocalOperator

    with LocalOperator() as op:
        client = U.IdentityMapClient(op.base_url, *op.credentials("mapper"))
        with pytest.warns(DeprecationWarning, match=r"/v2/identity/map .*IdentityMapV3Client"):
            mapped = client.generate_identity_map(U.IdentityMapInput.from_emails(["a@example.com"]))
        assert mapped.is_success() and "a@example.com" in mapped.mapped_identities
        with pytest.warns(DeprecationWarning, match=r"/v2/identity/buckets .*identity map v3"):
            buckets = client.get_identity_buckets(NOW - dt.timedelta(days=1))
        assert buckets.is_success()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            U.IdentityMapV3Client(op.base_url, *op.credentials("mapper")).generate_identity_map(
                U.IdentityMapV3Input.from_emails(["a@example.com"]))
