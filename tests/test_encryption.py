"""Scalar decrypt/encrypt semantics on both engines, each docs/differences.md fix asserted by name."""
import base64
import datetime as dt

import pytest

import uid2fast as U
from uid2fast import DecryptionStatus as S
from uid2fast import EncryptionStatus as E

from .helpers import MASTER_ID, RAW_UID, SITE_ID, SITE_KEY_ID, keys_body, make_keys, make_token, parse_keys

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def bid(keys):
    c = U.BidstreamClient("http://127.0.0.1:1", "api-key", base64.b64encode(b"s" * 32).decode())
    c._keys = keys
    return c


def share(keys):
    c = U.SharingClient("http://127.0.0.1:1", "api-key", base64.b64encode(b"s" * 32).decode())
    c._keys = keys
    return c


@pytest.mark.parametrize("version", [2, 3, 4])
def test_round_trip_every_version(engine, version):
    keys = make_keys(NOW, engine=engine)
    token = make_token(keys, NOW, version=version)
    t = bid(keys)._decrypt_token_into_raw_uid(token, None, NOW)
    assert t.status == S.SUCCESS and t.uid == RAW_UID and t.site_id == SITE_ID
    assert t.advertising_token_version == {2: 2, 3: 112, 4: 128}[version]
    assert t.established == NOW - dt.timedelta(days=1)
    assert t.expiry == NOW + dt.timedelta(hours=1)
    assert t.identity_scope == U.IdentityScope.UID2
    assert U.decrypt(token, keys, NOW) == t


def test_scope_mismatch_spec_2_4(engine):
    uid2_keys = make_keys(NOW, engine=engine)
    euid_token = make_token(uid2_keys, NOW, scope=U.IdentityScope.EUID)
    t = bid(uid2_keys)._decrypt_token_into_raw_uid(euid_token, None, NOW)
    assert t.status == S.INVALID_IDENTITY_SCOPE and t.uid is None and t.identity_scope is None
    with pytest.raises(U.EncryptionError, match="INVALID_IDENTITY_SCOPE"):
        U.decrypt(euid_token, uid2_keys, NOW)


def test_opt_out_bit_spec_2_5(engine):
    keys = make_keys(NOW, engine=engine)
    token = make_token(keys, NOW, privacy_bits=0x4)
    t = bid(keys)._decrypt_token_into_raw_uid(token, None, NOW)
    assert t.status == S.USER_OPTED_OUT and t.uid is None and t.site_id == SITE_ID
    # Sharing and legacy paths do not apply the bidstream opt-out rule.
    assert share(keys)._decrypt_token_into_raw_uid(token, NOW).status == S.SUCCESS
    assert U.decrypt(token, keys, NOW).uid == RAW_UID


def test_csg_flag_bit_spec_2_1(engine):
    keys = make_keys(NOW, engine=engine)
    csg = make_token(keys, NOW, privacy_bits=0x2)
    assert share(keys)._decrypt_token_into_raw_uid(csg, NOW).is_client_side_generated
    assert not share(keys)._decrypt_token_into_raw_uid(make_token(keys, NOW, privacy_bits=0x40000000),
                                                        NOW).is_client_side_generated


def test_lifetime_and_clock_skew(engine):
    keys = make_keys(NOW, engine=engine)  # bidstream max 259200 s, skew 1800 s
    gen = NOW - dt.timedelta(minutes=1)
    exact = make_token(keys, NOW, generated=gen, expires=gen + dt.timedelta(seconds=259200))
    over = make_token(keys, NOW, generated=gen, expires=gen + dt.timedelta(seconds=259200, milliseconds=1))
    assert bid(keys)._decrypt_token_into_raw_uid(exact, None, NOW).status == S.SUCCESS
    t = bid(keys)._decrypt_token_into_raw_uid(over, None, NOW)
    assert t.status == S.INVALID_TOKEN_LIFETIME and t.uid is None and t.established is not None
    assert U.decrypt(over, keys, NOW).status == S.SUCCESS  # legacy: no lifetime check
    skew_ok = make_token(keys, NOW, generated=NOW + dt.timedelta(seconds=1800), expires=NOW + dt.timedelta(hours=2))
    skew_bad = make_token(keys, NOW, generated=NOW + dt.timedelta(seconds=1801), expires=NOW + dt.timedelta(hours=2))
    assert bid(keys)._decrypt_token_into_raw_uid(skew_ok, None, NOW).status == S.SUCCESS
    assert bid(keys)._decrypt_token_into_raw_uid(skew_bad, None, NOW).status == S.INVALID_TOKEN_LIFETIME


def test_expiry_before_site_key(engine):
    # Official check order: an expired token with an unknown site key is EXPIRED_TOKEN.
    body = keys_body(NOW)
    keys = parse_keys(body, engine)
    token = make_token(keys, NOW, expires=NOW - dt.timedelta(seconds=1), generated=NOW - dt.timedelta(hours=1))
    body["keys"] = [k for k in body["keys"] if k["id"] != SITE_KEY_ID]
    t = bid(parse_keys(body, engine))._decrypt_token_into_raw_uid(token, None, NOW)
    assert t.status == S.EXPIRED_TOKEN


BAD_TOKENS = [None, 12, 3.5, b"AIAA", bytearray(b"xx"), "", "A", "AIA", "AIAA", "????????", "é" * 300, "\x00" * 220,
              "AIAAAAAA" * 27 + "A", "A4" + "_" * 300, "AgAA" + "A" * 200, "A3" + "/" * 300, ["AIAA"], object()]


@pytest.mark.parametrize("token", BAD_TOKENS, ids=range(len(BAD_TOKENS)))
def test_malformed_never_raises_from_clients_spec_2_3(engine, token):
    keys = make_keys(NOW, engine=engine)
    for t in (bid(keys).decrypt_token_into_raw_uid(token, "x.com"), share(keys).decrypt_token_into_raw_uid(token)):
        assert t.status in (S.INVALID_PAYLOAD, S.VERSION_NOT_SUPPORTED, S.NOT_AUTHORIZED_FOR_MASTER_KEY), t
        assert t.uid is None
    try:
        U.decrypt(token, keys, NOW)
    except U.EncryptionError:
        pass  # the legacy path raises EncryptionError, and only that


def test_key_selection_is_latest_activated_spec_2_6(engine):
    body = keys_body(NOW)
    older = dict(body["keys"][1], id=300, activates=int((NOW - dt.timedelta(seconds=100)).timestamp()))
    newer = dict(body["keys"][1], id=301, activates=int((NOW - dt.timedelta(seconds=10)).timestamp()))
    for order in ([older, newer], [newer, older]):
        b = dict(body, keys=[body["keys"][0]] + order)
        keys = parse_keys(b, engine)
        token = share(keys)._encrypt_raw_uid_into_token(RAW_UID, None, NOW).encrypted_data
        # The site key id sits inside the master payload; decrypting with only key 301 proves it was chosen.
        only_newer = parse_keys(dict(b, keys=[body["keys"][0], newer]), engine)
        assert share(only_newer)._decrypt_token_into_raw_uid(token, NOW).uid == RAW_UID
        assert keys.get_default_keyset_key(NOW).key_id == 301


def test_encrypt_statuses_and_expiry_spec_2_9(engine, caplog):
    keys = make_keys(NOW, engine=engine, token_expiry_seconds=0)
    r = share(keys)._encrypt_raw_uid_into_token(RAW_UID, None, NOW + dt.timedelta(milliseconds=123))
    assert r.success
    t = share(keys)._decrypt_token_into_raw_uid(r.encrypted_data, NOW)
    # 0 means 30 days (docs/differences.md#encrypt-settings), and the milliseconds are kept.
    assert t.expiry == NOW + dt.timedelta(days=30, milliseconds=123)
    body = keys_body(NOW)
    del body["caller_site_id"]
    no_site = parse_keys(body, engine)
    assert share(no_site)._encrypt_raw_uid_into_token(RAW_UID, None, NOW).status == E.ENCRYPTION_FAILURE
    assert "caller_site_id" in caplog.text
    assert share(None).encrypt_raw_uid_into_token(RAW_UID).status == E.NOT_INITIALIZED
    later = NOW + dt.timedelta(days=3650)
    assert share(keys)._encrypt_raw_uid_into_token(RAW_UID, None, later).status == E.KEYS_NOT_SYNCED
    assert share(keys)._encrypt_raw_uid_into_token(RAW_UID, 12345, NOW).status == E.NOT_AUTHORIZED_FOR_KEY
    assert share(keys)._encrypt_raw_uid_into_token("", None, NOW).status == E.ENCRYPTION_FAILURE
    body = keys_body(NOW)
    body["master_keyset_id"] = 77
    assert share(parse_keys(body, engine))._encrypt_raw_uid_into_token(RAW_UID, None, NOW).status \
        == E.NOT_AUTHORIZED_FOR_MASTER_KEY


def test_legacy_client_raises(engine):
    keys = make_keys(NOW, engine=engine)
    client = U.Uid2ClientFactory.create("http://127.0.0.1:1", "k", base64.b64encode(b"s" * 32).decode())
    client._keys = keys
    token = client.encrypt(RAW_UID)
    assert client.decrypt(token).uid == RAW_UID
    with pytest.raises(U.EncryptionError, match="invalid payload"):
        client.decrypt(token[:-4])
    client._keys = None
    with pytest.raises(U.EncryptionError, match="keys not initialized"):
        client.encrypt(RAW_UID)


def test_encrypt_data_round_trip():
    keys = make_keys(NOW)
    site_key = keys.get(SITE_KEY_ID)
    data = b"hello uid2"
    enc = U.encrypt_data(data, U.IdentityScope.UID2, key=site_key, now=NOW)
    out = U.decrypt_data(enc, keys)
    assert out.data == data and out.encrypted_at == NOW
    with pytest.raises(U.EncryptionError):
        U.decrypt_data(enc[:-8], keys)
    with pytest.raises(ValueError):
        U.encrypt_data(data, U.IdentityScope.UID2, key=site_key, keys=keys)


def test_nothing_printed_and_no_secret_in_repr(engine, capsys):
    body = keys_body(NOW)
    keys = parse_keys(body, engine)
    secret_b64 = body["keys"][0]["secret"]
    secret_hex = base64.b64decode(secret_b64).hex()
    del body["caller_site_id"]
    share(parse_keys(body, engine)).encrypt_raw_uid_into_token(RAW_UID)
    bid(keys).decrypt_token_into_raw_uid("garbage-token", None)
    assert capsys.readouterr().out == ""
    client_secret = base64.b64encode(b"s" * 32).decode()
    texts = [repr(keys), repr(keys.get(MASTER_ID)), repr(bid(keys)), str(keys.get(MASTER_ID)),
             repr(U.BidstreamClient("http://h", "k", client_secret))]
    for text in texts:
        assert secret_b64 not in text and secret_hex not in text and client_secret not in text


def test_site_data_parsing():
    keys = make_keys(NOW, site_data=[{"id": 9000, "domain_names": ["Example.COM", "app.id"], "x": 1},
                                     {"id": 0, "domain_names": ["zero.com"]}])
    assert keys.get_site_data() == {9000: ["example.com", "app.id"]}


def test_keys_json_variants():
    body = keys_body(NOW)
    legacy = U.parse_keys_json([dict(k, site_id=SITE_ID) for k in body["keys"]])
    assert legacy.success and len(legacy.keys) == 2 and legacy.keys.get(MASTER_ID).site_id == SITE_ID
    bad = U.parse_keys_json({"identity_scope": "UID2"})
    assert not bad.success and isinstance(bad.reason, str) and "keys" in bad.reason
    assert U.parse_keys_json(dict(body, identity_scope="EUID")).keys.get_identity_scope() == U.IdentityScope.EUID
