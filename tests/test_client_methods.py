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


# The C method reads `_keys`, `_decrypts` and the collection's `_table` from their slots when the attribute
# lookup would land there; every other case must behave as the attribute lookup does.

def test_the_hot_attributes_are_slots():
    from uid2fast._client_base import _KeyHolder
    from uid2fast.keys import EncryptionKeysCollection

    assert {"_keys", "_decrypts"} <= set(_KeyHolder.__slots__)
    assert "_table" in EncryptionKeysCollection.__slots__
    if C_IN_USE:  # registered at import; registering again is harmless and says whether slot reads are on
        assert _engine.c_engine.client_slots(_KeyHolder, EncryptionKeysCollection) is True
        with pytest.raises(TypeError, match="not a slot"):
            _engine.c_engine.client_slots(U.BidstreamClient, EncryptionKeysCollection)


def test_a_collection_keeps_its_dict_weakrefs_and_pickling(engine):
    import copy
    import pickle
    import weakref

    keys = make_keys(NOW, engine=engine)
    token = make_token(keys, NOW)
    assert "_table" not in vars(keys) and keys._table is not None
    assert weakref.ref(keys)() is keys
    for again in (pickle.loads(pickle.dumps(keys)), copy.copy(keys), copy.deepcopy(keys)):
        assert "_table" not in vars(again) and again._table is not None and again._table is not keys._table
        assert _client(U.BidstreamClient, again).decrypt_token_into_raw_uid(token).status == U.DecryptionStatus.SUCCESS


def test_properties_in_subclasses_are_honoured(engine):
    from uid2fast._client_base import _KeyHolder
    from uid2fast.keys import EncryptionKeysCollection

    keys, other = make_keys(NOW, engine=engine), make_keys(NOW, engine=engine)
    token = make_token(keys, NOW)
    counted = []

    class Counter:
        def add_status(self, status):
            counted.append(status)

    # Each property answers one thing while the slot underneath holds another: reading the slot would be wrong.
    class Mine(U.BidstreamClient):
        @property
        def _keys(self):
            return keys

        @_keys.setter
        def _keys(self, value):
            _KeyHolder.__dict__["_keys"].__set__(self, value)

        @property
        def _decrypts(self):
            return Counter()

        @_decrypts.setter
        def _decrypts(self, value):
            _KeyHolder.__dict__["_decrypts"].__set__(self, value)

    c = _client(Mine, other)
    assert _KeyHolder.__dict__["_keys"].__get__(c) is other
    assert c.decrypt_token_into_raw_uid(token).status == U.DecryptionStatus.SUCCESS
    assert counted == [U.DecryptionStatus.SUCCESS]
    assert sum(_KeyHolder.__dict__["_decrypts"].__get__(c).counts()) == 0

    class OtherTable(EncryptionKeysCollection):
        @property
        def _table(self):  # the table of another key set: the token no longer opens
            return other._table

    swapped = copy_as(keys, OtherTable)
    EncryptionKeysCollection.__dict__["_table"].__set__(swapped, keys._table)  # the slot: a table that opens it
    plain = _client(U.BidstreamClient, swapped)
    assert plain.decrypt_token_into_raw_uid(token).status != U.DecryptionStatus.SUCCESS
    plain._keys = keys
    assert plain.decrypt_token_into_raw_uid(token).status == U.DecryptionStatus.SUCCESS


def test_a_class_changed_after_calls_is_looked_through_again(engine):
    """The C method remembers which type it found a slot through; a property added to that class, or to a
    base, after calls were made (so the type is the one remembered) wins from the next call, and removing it
    gives the slot back."""
    from uid2fast.keys import EncryptionKeysCollection

    keys, other = make_keys(NOW, engine=engine), make_keys(NOW, engine=engine)
    token = make_token(keys, NOW)
    ok = U.DecryptionStatus.SUCCESS

    class Base(U.BidstreamClient):
        pass

    class Mine(Base):
        pass

    c = _client(Mine, keys)
    for _ in range(3):
        assert c.decrypt_token_into_raw_uid(token).status == ok
    for owner in (Mine, Base, U.BidstreamClient):
        owner._keys = property(lambda self: other, lambda self, v: None)  # on the class, after the calls
        try:
            assert c.decrypt_token_into_raw_uid(token).status != ok, owner
        finally:
            del owner._keys  # _KeyHolder's slot is found again
        assert c.decrypt_token_into_raw_uid(token).status == ok, owner

    class Coll(EncryptionKeysCollection):
        pass

    mine = copy_as(keys, Coll)
    EncryptionKeysCollection.__dict__["_table"].__set__(mine, keys._table)
    d = _client(U.BidstreamClient, mine)
    for _ in range(3):
        assert d.decrypt_token_into_raw_uid(token).status == ok
    Coll._table = property(lambda self: other._table)
    try:
        assert d.decrypt_token_into_raw_uid(token).status != ok
    finally:
        del Coll._table
    assert d.decrypt_token_into_raw_uid(token).status == ok


def copy_as(keys, cls):
    """A collection of class ``cls`` with the instance dict of ``keys`` (its `_table` slot unset)."""
    clone = cls.__new__(cls)
    clone.__dict__.update(vars(keys))
    return clone


def test_a_borrowed_descriptor_or_an_empty_slot_is_not_read_as_a_slot(engine):
    from uid2fast.keys import EncryptionKeysCollection

    keys = make_keys(NOW, engine=engine)
    token = make_token(keys, NOW)

    class Impostor:  # finds the collection's own `_table` descriptor; its own first slot lies where that one does
        __slots__ = ("table",)
        _table = EncryptionKeysCollection.__dict__["_table"]

    impostor = Impostor()
    impostor.table = keys._table  # a table that would open the token, were the slot read

    empty = copy_as(keys, EncryptionKeysCollection)  # its dict only: the `_table` slot was never set
    for held in (impostor, empty):
        c = _client(U.BidstreamClient, held)
        with pytest.raises((TypeError, AttributeError)) as fast_error:
            c.decrypt_token_into_raw_uid(token)
        with pytest.raises(fast_error.type):  # the Python method fails the same way
            c._decrypt_slow(token, None)
    assert sum(c.metrics().decrypt.values()) == 0  # neither call answered

    bare = U.BidstreamClient.__new__(U.BidstreamClient)  # __init__ never ran: the slots are empty
    with pytest.raises(AttributeError, match="_keys"):
        bare.decrypt_token_into_raw_uid(token)
