"""The clients' scalar decrypt, ``decrypt_token_into_raw_uid``: where the C engine is in use it is a C function
installed as the method (``_engine_c_client.pxi``). It must answer and count exactly as the Python method
(``_decrypt_slow``) does, for every input and every state of the client, on both engines' key sets."""
import base64
import datetime as dt
import inspect
import threading

import pytest

import uid2fast as U
from uid2fast import _engine

from .helpers import make_keys, make_token

NOW = dt.datetime.now(dt.timezone.utc)
SECRET = base64.b64encode(bytes(32)).decode()
C_IN_USE = _engine.c_engine is not None


def _client(cls, keys):
    c = cls("http://127.0.0.1:1", "ak", SECRET)
    c._keys = keys  # as the official tests do: the method reads the keys afresh on every call
    return c


def _fields(t):
    return (t.status, t.uid, t.established, t.site_id, t.site_key_site_id, t.identity_scope, t.identity_type,
            t.advertising_token_version, t.is_client_side_generated, t.expiry)


def _inputs(keys):
    good = [make_token(keys, NOW, version=v) for v in (2, 3, 4)]
    return good + [
        make_token(keys, NOW, version=4, expires=NOW - dt.timedelta(seconds=5)),  # expired
        make_token(keys, NOW, version=4, privacy_bits=1 << 1),  # client-side generated: the domain decides
        good[2][:-3] + "AAA",  # a failed tag
        "", "abc", "A" * 5000, "é" * 40, good[2].encode(), bytearray(good[1].encode()), None, 7, object(),
    ]


@pytest.mark.parametrize("cls", [U.BidstreamClient, U.SharingClient])
def test_the_method_is_the_c_function_where_the_c_engine_is_in_use(cls):
    method = cls.__dict__["decrypt_token_into_raw_uid"]
    if C_IN_USE:
        assert type(method).__name__ == "cython_function_or_method"
        assert method.__qualname__ == f"{cls.__name__}.decrypt_token_into_raw_uid"
    else:
        assert inspect.isfunction(method)
    params = list(inspect.signature(method).parameters)
    assert params == (["self", "token", "domain_name"] if cls is U.BidstreamClient else ["self", "token"])
    assert "Decrypt" in method.__doc__


@pytest.mark.parametrize("cls", [U.BidstreamClient, U.SharingClient])
def test_answers_and_counts_as_the_python_method(engine, cls):
    keys = make_keys(NOW, engine=engine)
    fast, slow = _client(cls, keys), _client(cls, keys)
    domains = [None, "example.com", "", "ex\udcffample", b"example.com", 3]
    for token in _inputs(keys):
        for domain in (domains if cls is U.BidstreamClient else [None]):
            args = (token, domain) if cls is U.BidstreamClient else (token,)
            try:
                expected = _fields(slow._decrypt_slow(token, domain))
            except Exception as exc:  # noqa: BLE001 - the same exception is expected of both
                with pytest.raises(type(exc)):
                    fast.decrypt_token_into_raw_uid(*args)
                continue
            got = fast.decrypt_token_into_raw_uid(*args)
            assert type(got) is U.DecryptedToken
            assert _fields(got) == expected, (token, domain)
            assert [type(x) for x in _fields(got)] == [type(x) for x in expected]
    assert fast.metrics().decrypt == slow.metrics().decrypt
    assert sum(fast.metrics().decrypt.values()) > 0


def test_keywords_and_a_missing_domain(engine):
    keys = make_keys(NOW, engine=engine)
    c = _client(U.BidstreamClient, keys)
    token = make_token(keys, NOW)
    a = c.decrypt_token_into_raw_uid(token=token, domain_name="example.com")
    b = c.decrypt_token_into_raw_uid(token)
    assert a.status == b.status == U.DecryptionStatus.SUCCESS and a.uid == b.uid
    with pytest.raises(TypeError):
        c.decrypt_token_into_raw_uid()
    with pytest.raises(TypeError):
        c.decrypt_token_into_raw_uid(token, "example.com", "extra")
    with pytest.raises(TypeError):
        U.SharingClient.decrypt_token_into_raw_uid(_client(U.SharingClient, keys), token, "example.com")


def test_every_state_of_the_keys(engine):
    keys = make_keys(NOW, engine=engine)
    token = make_token(keys, NOW)
    c = _client(U.BidstreamClient, None)
    assert c.decrypt_token_into_raw_uid(token).status == U.DecryptionStatus.NOT_INITIALIZED
    c._keys = keys  # a direct assignment is seen by the next call
    assert c.decrypt_token_into_raw_uid(token).status == U.DecryptionStatus.SUCCESS
    other = make_keys(NOW, engine=engine)  # other secrets: the same token no longer opens
    c._adopt(other)
    assert c.decrypt_token_into_raw_uid(token).status != U.DecryptionStatus.SUCCESS
    c._keys = keys._on_engine(_engine.py_engine)  # keys on the Python engine: the Python path answers
    assert c.decrypt_token_into_raw_uid(token).status == U.DecryptionStatus.SUCCESS
    c._keys = object()  # not a key collection: the Python method's own error
    with pytest.raises(AttributeError):
        c.decrypt_token_into_raw_uid(token)
    counts = c.metrics().decrypt
    assert counts["NOT_INITIALIZED"] == 1 and counts["SUCCESS"] == 2 and sum(counts.values()) == 4


def test_a_subclass_override_wins(engine):
    keys = make_keys(NOW, engine=engine)

    class Mine(U.BidstreamClient):
        def decrypt_token_into_raw_uid(self, token, domain_name=None):
            t = super().decrypt_token_into_raw_uid(token, domain_name)
            return ("mine", t.status)

    c = _client(Mine, keys)
    assert c.decrypt_token_into_raw_uid(make_token(keys, NOW)) == ("mine", U.DecryptionStatus.SUCCESS)


def test_counts_are_exact_across_threads(engine):
    keys = make_keys(NOW, engine=engine)
    c = _client(U.BidstreamClient, keys)
    good, bad = make_token(keys, NOW), "AAAA" * 10

    def work():
        for _ in range(500):
            c.decrypt_token_into_raw_uid(good, "example.com")
            c.decrypt_token_into_raw_uid(bad)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counts = c.metrics().decrypt
    assert counts["SUCCESS"] == 2000
    assert sum(counts.values()) == 4000
