"""One writer per format: LocalOperator mints through the test token generator and writes its keys JSON with the
keys JSON writer; its raw UIDs follow the operator's current layouts (33 bytes by default)."""
import base64
import datetime as dt
import json

import pytest

import uid2fast
from uid2fast import DecryptionStatus as S
from uid2fast import _keys_json, encryption, keyfile, uid2_token_generator
from uid2fast.refresh_keys_util import parse_keys_json
from uid2fast.testing import LocalOperator
from uid2fast.testing import _state as operator_state

from .helpers import make_keys

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
def op():
    with LocalOperator(site_data={1001: ["news.example.com"]}) as operator:
        yield operator


def test_production_code_does_not_use_the_test_generator_for_gcm():
    assert encryption._encrypt_gcm is not uid2_token_generator._encrypt_gcm
    assert encryption._decrypt_gcm is not getattr(uid2_token_generator, "_decrypt_gcm", None)
    blob = encryption._encrypt_gcm(b"data", None, bytes(32))
    assert uid2_token_generator._decrypt_gcm(blob, bytes(32)) == b"data"  # the same framing
    assert encryption._decrypt_gcm(uid2_token_generator._encrypt_gcm(b"x", bytes(12), bytes(32)), bytes(32)) == b"x"


def test_local_operator_mints_through_the_test_generator(op, monkeypatch):
    calls = []
    real = uid2_token_generator.token_v3_v4

    def spy(*args, **kwargs):
        calls.append(kwargs["version"])
        return real(*args, **kwargs)

    monkeypatch.setattr(operator_state, "token_v3_v4", spy)
    op.issue_token(email="a@example.com")
    op.issue_token(email="a@example.com", version=3)
    op.generate_identity(email="b@example.com")
    assert calls == [128, 112, 128]


@pytest.mark.parametrize("version", [112, 128])
def test_generator_round_trip_on_both_engines(engine, version):
    keys = make_keys(NOW)
    master, site = keys.get(164), keys.get(165)
    raw = bytes([1 << 6 | 1 << 5 | 1 << 2]) + bytes(range(32))
    ms = int(NOW.timestamp()) * 1000
    tok = uid2_token_generator.token_v3_v4(
        raw, site_id=9000, master_key_id=master.key_id, master_secret=master.secret, site_key_id=site.key_id,
        site_secret=site.secret, identity_scope=0, identity_type=1, version=version, privacy_bits=2,
        established_ms=ms - 86_400_000, generated_ms=ms - 60_000, expires_ms=ms + 3_600_000)
    t = uid2fast.decrypt(tok, keys, NOW)
    assert t.uid == base64.b64encode(raw).decode() and t.identity_type == uid2fast.IdentityType.Phone
    assert t.is_client_side_generated and t.advertising_token_version == version and t.site_id == 9000


# -- the keys JSON writer ----------------------------------------------------------------------------
def test_keyfile_body_round_trips_through_the_parser():
    keys = make_keys(NOW, site_data=[{"id": 9000, "domain_names": ["a.com"]}])
    body = keyfile.keys_body(keys)
    again = parse_keys_json(body)
    assert again.success, again.reason
    assert keyfile.keys_body(again.keys) == body
    assert again.keys.get_site_data() == {9000: ["a.com"]}
    assert body["token_expiry_seconds"] == "2592000" and body["identity_scope"] == "UID2"


def test_writer_rejects_unknown_settings_and_scopes():
    with pytest.raises(TypeError, match="unknown key-set setting"):
        _keys_json.keys_json_body([], caller_site=1)
    with pytest.raises(ValueError, match="identity_scope"):
        _keys_json.keys_json_body([], identity_scope="uid2")
    body = _keys_json.keys_json_body(
        [{"id": 1, "created": 1, "activates": 2, "expires": 3, "secret": bytes(32), "site_id": -1, "keyset_id": None}],
        identity_scope="EUID", caller_site_id=None, master_keyset_id=7, site_data={5: [], 6: ["x.com"]})
    assert body == {"identity_scope": "EUID", "master_keyset_id": 7,
                    "keys": [{"id": 1, "created": 1, "activates": 2, "expires": 3,
                              "secret": base64.b64encode(bytes(32)).decode()}],
                    "site_data": [{"id": 6, "domain_names": ["x.com"]}]}


def test_operator_and_bench_key_sets_parse(op):
    for role in ("bidstream", "sharer"):
        client = uid2fast.BidstreamClient(op.base_url, *op.credentials(role)) if role == "bidstream" else \
            uid2fast.SharingClient(op.base_url, *op.credentials(role))
        r = client.refresh()
        assert r.success, r.reason
    assert client.keys.get_caller_site_id() == op.sharer_site_id
    from uid2fast import _bench

    body = _bench._keys_body()
    assert parse_keys_json(json.loads(json.dumps(body))).success
    assert len(body["keys"]) == 2 + _bench._SITES


# -- raw UIDs ----------------------------------------------------------------------------------
def _raw(op, **ident):
    return base64.b64decode(op.raw_uid(**ident))


@pytest.mark.parametrize("scope, version, env, first", [
    ("UID2", 4, "integ", 1 << 6 | 1 << 5), ("EUID", 4, "prod", 2 << 6 | 1 << 5 | 1 << 4),
    ("UID2", 3, "integ", 0), ("EUID", 3, "test", 1 << 4),
])
def test_raw_uids_follow_the_operator_layouts(scope, version, env, first):
    with LocalOperator(scope, raw_uid_version=version, environment=env, salt=b"s" * 32) as op:
        email, phone = _raw(op, email="a@example.com"), _raw(op, phone="+12345678901")
        assert len(email) == len(phone) == 33
        assert email[0] == first and phone[0] == first | 1 << 2
        if version == 4:  # metadata | key id (3) | IV (12) | encrypted hash tail (16) | XOR checksum
            for raw in (email, phone):
                check = 0
                for b in raw:
                    check ^= b
                assert check == 0
        with LocalOperator(scope, raw_uid_version=version, environment=env, salt=b"s" * 32) as same:
            assert _raw(same, email="a@example.com") == email  # deterministic for a seed
        bucket = op.bucket_id(email="a@example.com")
        op.rotate_salts([bucket])
        assert _raw(op, email="a@example.com") != email


def test_legacy_32_byte_raw_uids_stay_an_option():
    with LocalOperator(raw_uid_version=2) as op:
        assert len(_raw(op, email="a@example.com")) == 32
    with pytest.raises(ValueError, match="raw_uid_version"):
        LocalOperator(raw_uid_version=5)


def test_33_byte_raw_uids_end_to_end(engine, op):
    """Identity map, bidstream decrypt (scalar and batch, with domains) and sharing agree on a 33-byte raw
    UID and its identity type, on both engines."""
    phone = "+12345678901"
    raw = op.raw_uid(phone=phone)
    mapper = uid2fast.IdentityMapV3Client(op.base_url, *op.credentials("mapper"))
    mapped = mapper.generate_identity_map(uid2fast.IdentityMapV3Input.from_phones([phone]))
    assert mapped.mapped_identities[phone].current_raw_uid == raw
    bid = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
    assert bid.refresh().success
    tokens = [op.issue_token(phone=phone), op.issue_token(phone=phone, client_side=True)] * 50
    t = bid.decrypt_token_into_raw_uid(tokens[0], "news.example.com")
    assert t.status == S.SUCCESS and t.uid == raw and t.identity_type == uid2fast.IdentityType.Phone
    batch = bid.decrypt_tokens_into_raw_uids(tokens, ["news.example.com", "other.example"] * 50)
    assert [batch[i].status for i in range(4)] == [S.SUCCESS, S.DOMAIN_NAME_CHECK_FAILED] * 2
    assert batch[0] == t
    share = uid2fast.SharingClient(op.base_url, *op.credentials("sharer"))
    assert share.refresh().success
    back = share.decrypt_token_into_raw_uid(share.encrypt_raw_uid_into_token(raw).encrypted_data)
    assert back.uid == raw and back.identity_type == uid2fast.IdentityType.Phone
