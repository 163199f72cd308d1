"""Key sets with broken settings: a failed refresh with a reason, the last good keys kept, and never an
exception from decrypt or encrypt, on both engines, in the batch, the key-file loader and Spark's driver."""
import base64
import copy
import datetime as dt
import json
import os

import numpy as np
import pytest

import uid2fast as U
from uid2fast import keyfile, spark
from uid2fast._http import HttpConfig
from uid2fast.keys import EncryptionKeysCollection

from tests.faultserver import FaultServer
from tests.helpers import RAW_UID, keys_body, make_keys, make_token

NOW = dt.datetime.now(dt.timezone.utc)
SECRET_BYTES = os.urandom(32)
SECRET = base64.b64encode(SECRET_BYTES).decode()
CFG = HttpConfig(attempt_timeout=2, call_timeout=3, retries=0)


def _broken(change):
    body = keys_body(NOW)
    change(body)
    return body


def _setter(name, value):
    return lambda b: b.__setitem__(name, value)


def _key_setter(name, value):
    return lambda b: b["keys"][0].__setitem__(name, value)


BROKEN = {
    "allow_clock_skew_seconds '1800s'": (_setter("allow_clock_skew_seconds", "1800s"), "allow_clock_skew_seconds"),
    "max_bidstream_lifetime_seconds '1800s'": (_setter("max_bidstream_lifetime_seconds", "1800s"),
                                               "max_bidstream_lifetime_seconds"),
    "caller_site_id 2**80": (_setter("caller_site_id", 2 ** 80), "caller_site_id"),
    "token_expiry_seconds 2**80": (_setter("token_expiry_seconds", 2 ** 80), "token_expiry_seconds"),
    "max_sharing_lifetime_seconds -1": (_setter("max_sharing_lifetime_seconds", -1), "max_sharing_lifetime_seconds"),
    "master_keyset_id 1.5": (_setter("master_keyset_id", 1.5), "master_keyset_id"),
    "default_keyset_id true": (_setter("default_keyset_id", True), "default_keyset_id"),
    "identity_scope 'XYZ'": (_setter("identity_scope", "XYZ"), "identity_scope"),
    "site_data a string": (_setter("site_data", "example.com"), "site_data"),
    "empty key list": (_setter("keys", []), "no keys"),
    "null key list": (_setter("keys", None), "no keys"),
    "key id a string": (_key_setter("id", "164"), "keys[0].id"),
    "key expires 1e20": (_key_setter("expires", 1e20), "keys[0].expires"),
    "key secret 16 bytes": (_key_setter("secret", base64.b64encode(bytes(16)).decode()), "keys[0].secret"),
    "key keyset_id 2**40": (_key_setter("keyset_id", 2 ** 40), "keys[0].keyset_id"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_parser_refuses_with_a_reason(case):
    change, word = BROKEN[case]
    body = _broken(change)
    r = U.parse_keys_json(body)
    assert not r.success and word in r.reason
    for key in body.get("keys") or []:  # a key's secret is never part of the reason
        assert key["secret"] not in r.reason and key["secret"][:12] not in r.reason


def test_decimal_strings_stay_accepted_as_the_official_tests_send_them():
    body = keys_body(NOW)
    body.update(caller_site_id="9000", allow_clock_skew_seconds="300", max_bidstream_lifetime_seconds=" 100 ")
    r = U.parse_keys_json(body)
    assert r.success and r.keys.get_caller_site_id() == "9000"


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_refresh_keeps_the_last_good_keys(engine, case):
    change, word = BROKEN[case]
    good = keys_body(NOW)
    with FaultServer(SECRET_BYTES) as srv:
        client = U.BidstreamClient(srv.base_url, "UID2-C-L-1-key", SECRET, http=CFG)
        srv.payload = {"status": "success", "body": good}
        assert client.refresh().success
        before = client.keys
        token = make_token(before, NOW)
        srv.payload = {"status": "success", "body": _broken(change)}
        r = client.refresh()
        assert not r.success and word in r.reason
        assert client.keys is before
        d = client.decrypt_token_into_raw_uid(token, None)
        assert d.status == U.DecryptionStatus.SUCCESS and d.uid == RAW_UID
        assert client.decrypt_tokens_into_raw_uids([token]).status_enum(0) == U.DecryptionStatus.SUCCESS
        refresher = U.KeyRefresher(client, interval=60)
        assert refresher.refresh_now() is False and word in str(refresher.last_error)
        assert client.keys is before


@pytest.mark.parametrize("case", list(BROKEN))
def test_key_files_and_spark_refuse_them(tmp_path, case):
    change, word = BROKEN[case]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(_broken(change)))
    with pytest.raises(ValueError) as info:
        keyfile.load_keys(path)
    assert word in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ValueError):
        spark._keys_json(_broken(change))


HAND_BUILT = {
    "allow_clock_skew_seconds '1800s'": dict(allow_clock_skew_seconds="1800s"),
    "max_bidstream_lifetime_seconds '1800s'": dict(max_bidstream_lifetime_seconds="1800s"),
    "caller_site_id 2**80": dict(caller_site_id=2 ** 80),
    "token_expiry_seconds 2**80": dict(token_expiry_seconds=2 ** 80),
    "master_keyset_id 'x'": dict(master_keyset_id="x"),
}


@pytest.mark.parametrize("case", list(HAND_BUILT))
def test_a_hand_built_bad_collection_gives_a_status_never_an_exception(engine, case):
    good = make_keys(NOW, engine=engine)
    token = make_token(good, NOW)
    settings = dict(identity_scope=good.get_identity_scope(), caller_site_id=good.get_caller_site_id(),
                    master_keyset_id=good.get_master_keyset_id(), default_keyset_id=good.get_default_keyset_id(),
                    token_expiry_seconds=good.get_token_expiry_seconds(), allow_clock_skew_seconds=1800)
    settings.update(HAND_BUILT[case])
    bad = EncryptionKeysCollection(list(good.values()), **settings, engine=engine)
    assert bad._table is None and bad._engine is engine
    bidstream = U.BidstreamClient("http://127.0.0.1:9", "UID2-key", SECRET, engine=engine)
    sharing = U.SharingClient("http://127.0.0.1:9", "UID2-key", SECRET, engine=engine)
    bidstream._keys = sharing._keys = bad
    assert bidstream.decrypt_token_into_raw_uid(token, None).status == U.DecryptionStatus.NOT_INITIALIZED
    assert sharing.decrypt_token_into_raw_uid(token).status == U.DecryptionStatus.NOT_INITIALIZED
    assert sharing.encrypt_raw_uid_into_token(RAW_UID).status == U.EncryptionStatus.NOT_INITIALIZED
    batch = U.decrypt_tokens([token, token], bad)
    assert [batch.status_enum(i) for i in range(2)] == [U.DecryptionStatus.NOT_INITIALIZED] * 2
    enc = U.encrypt_tokens([RAW_UID], bad)
    assert int(enc.status[0]) != 0
    with pytest.raises(ValueError):
        spark._keys_json(bad)
    # A copy with the settings fixed works again: the refusal is about the settings, not the keys.
    fixed = copy.copy(settings)
    fixed.update(allow_clock_skew_seconds=1800, max_bidstream_lifetime_seconds=None, caller_site_id=9000,
                 token_expiry_seconds=None, master_keyset_id=1)
    ok = EncryptionKeysCollection(list(good.values()), **fixed, engine=engine)
    assert U.decrypt_tokens([token], ok).status_enum(0) == U.DecryptionStatus.SUCCESS


def test_batch_shapes_are_refused_like_a_str(engine):
    keys = make_keys(NOW, engine=engine)
    token = make_token(keys, NOW)
    for bad in (np.array(token), np.array([[token, token], [token, token]]), token):
        with pytest.raises(TypeError):
            U.decrypt_tokens(bad, keys)
    with pytest.raises(TypeError):
        U.encrypt_tokens(np.array([[RAW_UID]]), keys)
    with pytest.raises(TypeError):
        U.decrypt_tokens([token], keys, domain_names=np.array([["a.com"]]))


def test_list_subclasses_are_read_for_what_they_hold(engine):
    keys = make_keys(NOW, engine=engine)
    token = make_token(keys, NOW)

    class Liar(list):
        def __len__(self):
            return 10

        def __iter__(self):
            return iter(list.__getitem__(self, slice(0, 1)))

    out = U.decrypt_tokens(Liar([token] * 1010), keys)
    assert len(out.status) == 1010 and out.status_enum(1009) == U.DecryptionStatus.SUCCESS
    assert len(U.encrypt_tokens(Liar([RAW_UID] * 25), keys).status) == 25
