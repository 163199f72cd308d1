"""The scalar result (``DecryptedToken``) as both engines build it: the official datetimes (UTC, from
``datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc)``) for every timestamp a token can carry, the same enum
members, the same class, plain slots, and a ``now`` datetime read as exactly as before."""
import base64
import datetime as dt
import pickle
import zoneinfo

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

import uid2fast as U
from uid2fast import _codes, _engine, _results
from uid2fast._time import to_us

from .helpers import MASTER_ID, SITE_ID, SITE_KEY_ID, keys_body, parse_keys

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
NOW_MS = int(NOW.timestamp()) * 1000
SECRETS = {MASTER_ID: bytes(range(32)), SITE_KEY_ID: bytes(range(32, 64))}
EXACT_LIMIT_MS = (1 << 32) * 1000  # timestamps below this convert exactly; both engines build them up front


def _be(v, n):
    return (v % (1 << (8 * n))).to_bytes(n, "big")


def _v4(established_ms, expires_ms=None, privacy=0, prefix=0x03, raw=bytes(range(32)), site_id=SITE_ID):
    """A v4 token (the layout of docs/formats.md) carrying the given timestamps, site id and 32-byte raw UID,
    under SECRETS."""
    expires_ms = NOW_MS + 3_600_000 if expires_ms is None else expires_ms
    raw = bytes([2 << 6 | 1 << 5]) + raw
    site = (_be(site_id, 4) + bytes(12) + _be(privacy, 4) + _be(established_ms, 8) + _be(NOW_MS, 8) + raw)
    master = (_be(expires_ms, 8) + _be(NOW_MS - 60_000, 8) + bytes(4) + b"\x01" + bytes(8) + _be(SITE_KEY_ID, 4)
              + bytes(12) + AESGCM(SECRETS[SITE_KEY_ID]).encrypt(bytes(12), site, None))
    blob = bytes(12) + AESGCM(SECRETS[MASTER_ID]).encrypt(bytes(12), master, None)
    return base64.urlsafe_b64encode(bytes([prefix, 128]) + _be(MASTER_ID, 4) + blob).decode().rstrip("=")


def _keys(engine):
    return parse_keys(keys_body(NOW, secrets=SECRETS), engine)


def _official(ms):
    """What the official SDK's conversion gives for ``ms``: a datetime, or the exception's type and text."""
    try:
        return dt.datetime.fromtimestamp(ms / 1000.0, tz=dt.timezone.utc)
    except (OverflowError, ValueError, OSError) as exc:
        return (type(exc), str(exc))


# Both sides of the exact-conversion limit, leap days, the end of datetime's range and past it.
ESTABLISHED = [0, 1, 999, 86_399_999, 951_782_400_000, 1_709_164_800_123, NOW_MS - 86_400_000,
               EXACT_LIMIT_MS - 1, EXACT_LIMIT_MS, EXACT_LIMIT_MS + 1, EXACT_LIMIT_MS + 999, 253_402_300_799_999,
               253_402_300_800_000, (1 << 62), (1 << 64) - 1]


def _check_time(t, ms, name):
    expected = _official(ms)
    if isinstance(expected, dt.datetime):
        assert t.status is U.DecryptionStatus.SUCCESS
        got = getattr(t, name)
        assert got == expected and type(got) is dt.datetime and got.tzinfo is dt.timezone.utc
        assert got.utcoffset() == dt.timedelta(0)
    else:  # the official decrypt raises EncryptionError('invalid payload'): the clients answer INVALID_PAYLOAD
        assert t._fields() == U.DecryptedToken.make_error(U.DecryptionStatus.INVALID_PAYLOAD)._fields()
    assert type(t) is _results.DecryptedToken


@pytest.mark.parametrize("ms", ESTABLISHED)
def test_established_is_the_official_datetime(engine, ms):
    keys = _keys(engine)
    t = engine.decrypt_result(keys._table, _v4(ms), _codes.CLIENT_SHARING, None, NOW_MS * 1000)
    _check_time(t, ms, "established")
    if t.status is U.DecryptionStatus.SUCCESS:
        assert t.expiry == dt.datetime.fromtimestamp((NOW_MS + 3_600_000) / 1000.0, tz=dt.timezone.utc)


@pytest.fixture(scope="module")
def every_engine_table():
    return [(engine, _keys(engine)._table) for engine in _engine.engines.values()]


@given(ms=st.one_of(st.integers(0, EXACT_LIMIT_MS - 1), st.integers(EXACT_LIMIT_MS, 253_402_300_799_999)))
@settings(max_examples=150, deadline=None)
def test_any_established_is_the_official_datetime(every_engine_table, ms):
    """Random timestamps through the C engine's calendar arithmetic and the twin's conversion alike."""
    tok = _v4(ms)
    for engine, table in every_engine_table:
        _check_time(engine.decrypt_result(table, tok, _codes.CLIENT_SHARING, None, NOW_MS * 1000), ms, "established")


@pytest.mark.parametrize("expires_ms", [NOW_MS + 1, EXACT_LIMIT_MS - 1, EXACT_LIMIT_MS, EXACT_LIMIT_MS + 777,
                                        253_402_300_799_999, 253_402_300_800_000])
def test_expiry_is_the_official_datetime(engine, expires_ms):
    """Legacy decrypt has no lifetime limit, so a token may expire past 2106 or past year 9999."""
    keys = _keys(engine)
    t = engine.decrypt_result(keys._table, _v4(NOW_MS, expires_ms), _codes.CLIENT_LEGACY, None, NOW_MS * 1000)
    _check_time(t, expires_ms, "expiry")
    if t.status is U.DecryptionStatus.SUCCESS:
        assert t.established == dt.datetime.fromtimestamp(NOW_MS / 1000.0, tz=dt.timezone.utc)


def test_results_keep_the_official_class_behaviour(engine):
    keys = _keys(engine)
    t = engine.decrypt_result(keys._table, _v4(NOW_MS), _codes.CLIENT_SHARING, None, NOW_MS * 1000)
    back = pickle.loads(pickle.dumps(t))
    assert type(back) is U.DecryptedToken and back == t and back.established == t.established
    t.established = None  # every field settable, as on the official class; instances keep a __dict__
    t.extra = 1
    assert t.established is None and t != back and repr(t).startswith("DecryptedToken(status=DecryptionStatus.")


def test_both_engines_build_the_same_result(engine):
    """Field for field, enum member for enum member, against the other engine and the official SDK."""
    import uid2_client as O

    keys_c = _keys(engine)
    keys_p = keys_c._on_engine(_engine.py_engine)
    off = O.BidstreamClient("http://127.0.0.1:1", "k", base64.b64encode(bytes(32)).decode())
    off._keys = O.refresh_keys_util.parse_keys_json(keys_body(NOW, secrets=SECRETS)).keys
    for prefix in (0x03, 0x07):  # email, phone
        tok = _v4(NOW_MS - 86_400_000, prefix=prefix)
        ours = U.BidstreamClient("http://127.0.0.1:1", "k", "AAAA", engine=engine)
        ours._keys = keys_c
        t = ours.decrypt_token_into_raw_uid(tok, "example.com")
        twin = _engine.py_engine.decrypt_result(keys_p._table, tok, _codes.CLIENT_BIDSTREAM, "example.com")
        o = off.decrypt_token_into_raw_uid(tok, "example.com")
        assert type(t) is type(twin) is _results.DecryptedToken
        assert t._fields() == twin._fields()
        assert t.status is U.DecryptionStatus.SUCCESS and t.identity_scope is U.IdentityScope.UID2
        assert t.identity_type is (U.IdentityType.Phone if prefix & 4 else U.IdentityType.Email)
        assert t.advertising_token_version is U.AdvertisingTokenVersion.ADVERTISING_TOKEN_V4
        for name in ("uid", "established", "site_id", "site_key_site_id", "expiry"):
            assert getattr(t, name) == getattr(o, name), name
            assert type(getattr(t, name)) is type(getattr(o, name)), name
        assert t.established.tzinfo is o.established.tzinfo is dt.timezone.utc
        assert t.success is True and t.uid2 == t.uid


def test_the_fields_a_bidder_reads_are_plain_slots():
    """status, uid, established and site_id are read straight from the object (no Python property between)."""
    member = type(_results.DecryptedToken.__dict__["uid"])
    for name in ("status", "uid", "established", "site_id", "expiry"):
        assert type(_results.DecryptedToken.__dict__[name]) is member, name


# --- results filled again -------------------------------------------------------------------------------
# The C engine fills a dropped scalar result again instead of freeing it and allocating the next
# (uid2_pool_get in _engine_c.pxd). Nothing a caller holds or can reach may change through that.
def _client(engine):
    c = U.BidstreamClient("http://127.0.0.1:1", "k", "AAAA", engine=engine)
    c._keys = _keys(engine)
    return c


def _tokens(n, offset=0):
    """n v4 tokens with distinct raw UIDs (and distinct timestamps), and each one's raw UID."""
    out = []
    for i in range(offset, offset + n):
        raw = bytes((i + k) % 256 for k in range(32))
        out.append((_v4(NOW_MS - 1000 * i, raw=raw), base64.b64encode(bytes([2 << 6 | 1 << 5]) + raw).decode()))
    return out


def test_a_result_held_by_the_caller_never_changes(engine):
    c = _client(engine)
    tokens = _tokens(40)
    kept = []
    for k in range(5):  # results kept, dropped at once, and dropped a call later, in every order
        last = None
        for i, (tok, uid) in enumerate(tokens):
            t = c.decrypt_token_into_raw_uid(tok, None)
            assert t.uid == uid and t.established == dt.datetime.fromtimestamp((NOW_MS - 1000 * i) / 1000.0,
                                                                               tz=dt.timezone.utc)
            if (i + k) % 3 == 0:
                kept.append((t, t._fields()))
            last = t  # noqa: F841 - dropped one call later
        del last
    for t, fields in kept:
        assert t._fields() == fields


def test_fields_kept_from_dropped_results_never_change(engine):
    """A refilled result's datetimes are written in place only when its slots alone hold them: a field the
    caller kept stays as it was, and a datetime written in place hashes and compares as a new one would."""
    c = _client(engine)
    tokens = _tokens(30)
    kept = []
    for k in range(4):
        for i, (tok, uid) in enumerate(tokens):
            t = c.decrypt_token_into_raw_uid(tok, None)
            want = dt.datetime.fromtimestamp((NOW_MS - 1000 * i) / 1000.0, tz=dt.timezone.utc)
            assert t.uid == uid and t.site_id == SITE_ID
            assert t.established == want and hash(t.established) == hash(want)  # (the hash is cached now)
            assert t.expiry == dt.datetime.fromtimestamp((NOW_MS + 3_600_000) / 1000.0, tz=dt.timezone.utc)
            assert hash(t.expiry) == hash(t.expiry.replace()) and t.expiry.fold == 0
            assert type(t.established) is dt.datetime and t.established.tzinfo is dt.timezone.utc
            if (i + k) % 4 == 0:
                field = ("established", "expiry", "uid", "site_id")[(i + k) // 4 % 4]
                value = getattr(t, field)
                kept.append((value, repr(value), field))
                del value  # held by the list alone (and the dropped result's slot, until it is refilled)
            del t
    for value, text, field in kept:
        assert repr(value) == text, field


def test_a_datetime_of_the_callers_own_in_a_dropped_result(engine):
    """What the caller put in a slot is never written to: a datetime it still holds, or a datetime subclass
    (held by the slot alone, seen through its finalizer)."""
    seen = []

    class Stamp(dt.datetime):
        def __del__(self):
            seen.append(str(self))

    c = _client(engine)
    (tok, _), (tok2, _) = _tokens(2)
    mine = dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
    t = c.decrypt_token_into_raw_uid(tok, None)
    t.established = mine
    t.expiry = Stamp(2001, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
    del t
    for _ in range(6):
        c.decrypt_token_into_raw_uid(tok2, None)
    assert mine == dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=dt.timezone.utc)
    assert str(mine) == "2001-02-03 04:05:06+00:00"
    assert seen == ["2001-02-03 04:05:06+00:00"]


def test_a_result_with_an_attribute_of_its_own_is_not_filled_again(engine):
    c = _client(engine)
    (tok, uid), (tok2, uid2) = _tokens(2)
    t = c.decrypt_token_into_raw_uid(tok, None)
    t.note = "mine"
    del t
    for _ in range(10):
        t = c.decrypt_token_into_raw_uid(tok2, None)
        assert t.uid == uid2 and not hasattr(t, "note") and t.__dict__ == {}
        del t


def test_a_slot_value_whose_finalizer_decrypts_again(engine):
    """A dropped result's old values go only once the object is whole: a finalizer that decrypts meanwhile
    gets a result of its own."""
    c = _client(engine)
    (tok, uid), (tok2, uid2) = _tokens(2)
    seen = []

    class Reenters:
        def __del__(self):
            seen.append(c.decrypt_token_into_raw_uid(tok2, None))

    for _ in range(6):
        t = c.decrypt_token_into_raw_uid(tok, None)
        t.site_id = Reenters()
        del t
    t = c.decrypt_token_into_raw_uid(tok, None)
    assert t.uid == uid and t.site_id == SITE_ID
    del t
    for _ in range(4):
        c.decrypt_token_into_raw_uid(tok, None)
    assert seen and all(s.uid == uid2 and s.site_id == SITE_ID for s in seen)
    assert len({id(s) for s in seen}) == len(seen)  # each one its own object, still held here


def test_results_on_many_threads_are_their_own(engine):
    from .helpers import run_threads

    c = _client(engine)
    tokens = _tokens(64)
    errors = []

    def work():
        try:
            kept = []
            for k in range(300):
                tok, uid = tokens[k % len(tokens)]
                t = c.decrypt_token_into_raw_uid(tok, None)
                if t.uid != uid:
                    errors.append((uid, t.uid))
                if k % 7 == 0:
                    kept.append((t, uid))
            errors.extend((uid, t.uid) for t, uid in kept if t.uid != uid)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    run_threads(work, 4, 60)
    assert errors == []


def test_the_c_engine_fills_a_dropped_result_again():
    """The recycling is really there where it should be (a GIL build of CPython before 3.14): the engine keeps
    a reference to the results it may fill again, and a dropped one comes back as the next result."""
    import sys
    import sysconfig

    if _engine.c_engine is None:
        pytest.skip("C engine not built")
    on = _engine.c_engine.result_recycling()
    assert on == (sys.version_info < (3, 14) and not sysconfig.get_config_var("Py_GIL_DISABLED"))
    c = _client(_engine.c_engine)
    (tok, uid), (tok2, uid2) = _tokens(2)
    t = c.decrypt_token_into_raw_uid(tok, None)
    first = id(t)
    assert sys.getrefcount(t) == (3 if on else 2)  # here, the call's argument (and the engine's pool)
    del t
    t = c.decrypt_token_into_raw_uid(tok2, None)
    assert t.uid == uid2 and (id(t) == first or not on)


def test_a_dropped_results_uid_str_is_reused_only_when_nothing_else_holds_it():
    """The C engine writes a v3/v4 uid into the dropped result's old uid str when its slot alone holds it: the
    rewritten str hashes as a new one would (its cached hash is reset), and a str the caller still holds, an
    interned one, or one used as a dict key keeps its value."""
    import sys

    if _engine.c_engine is None:
        pytest.skip("C engine not built")
    on = _engine.c_engine.result_recycling()
    c = _client(_engine.c_engine)
    tokens = _tokens(12)
    t = c.decrypt_token_into_raw_uid(tokens[0][0], None)
    first = id(t.uid)
    del t
    t = c.decrypt_token_into_raw_uid(tokens[1][0], None)
    assert t.uid == tokens[1][1] and (id(t.uid) == first) == on  # the same str object, rewritten
    # an interned str is never rewritten (the interpreter's table still files it under its old value): the next
    # result gets a new str, made while the old one is still alive, so at another address
    s = sys.intern(t.uid)
    sid = id(s)
    del s, t
    t = c.decrypt_token_into_raw_uid(tokens[2][0], None)
    assert t.uid == tokens[2][1] and id(t.uid) != sid
    del t
    kept, interned, keyed = [], [], {}
    for k in range(6):
        for i, (tok, uid) in enumerate(tokens):
            t = c.decrypt_token_into_raw_uid(tok, None)
            assert t.uid == uid and hash(t.uid) == hash(uid[:-1] + uid[-1:])  # hash cached now, in the old str
            if (i + k) % 5 == 0:
                kept.append((t.uid, uid))
            elif (i + k) % 5 == 1:
                interned.append((sys.intern(t.uid), uid))
            elif (i + k) % 5 == 2:
                keyed[t.uid] = uid
            del t
    for value, uid in kept + interned + list(keyed.items()):
        assert value == uid and hash(value) == hash(uid[:-1] + uid[-1:])
    for value, uid in interned:
        assert sys.intern(uid[:-1] + uid[-1:]) is value
    assert all(keyed[uid[:-1] + uid[-1:]] == uid for uid in keyed)


def test_site_id_ints_are_shared_and_right():
    """The C engine keeps the site id ints it made lately (256, by the low 8 bits): two results for one site
    share one int, and a site whose id shares the low bits with another's still gets its own value."""
    if _engine.c_engine is None:
        pytest.skip("C engine not built")
    on = _engine.c_engine.result_recycling()
    c = _client(_engine.c_engine)
    (tok, _), (tok2, _) = _tokens(2)
    a, b = c.decrypt_token_into_raw_uid(tok, None), c.decrypt_token_into_raw_uid(tok2, None)
    assert a.site_id == b.site_id == SITE_ID > 256 and (a.site_id is b.site_id) == on
    for site in (SITE_ID + 256, SITE_ID + 512, SITE_ID, (1 << 31) + (SITE_ID & 255), SITE_ID):
        t = c.decrypt_token_into_raw_uid(_v4(NOW_MS, site_id=site), None)
        assert t.site_id == site and type(t.site_id) is int, site


# --- a `now` datetime ------------------------------------------------------------------------------------
class _SubDatetime(dt.datetime):
    pass


_ZONES = [dt.timezone.utc, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(-dt.timedelta(hours=8)),
          zoneinfo.ZoneInfo("America/New_York"), zoneinfo.ZoneInfo("UTC")]


@given(d=st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
       zone=st.sampled_from(_ZONES), sub=st.booleans())
@settings(max_examples=400, deadline=None)
def test_now_is_read_as_to_us_reads_it(d, zone, sub):
    from uid2fast import encryption

    value = d.replace(tzinfo=zone)
    if sub:
        value = _SubDatetime.fromisoformat(value.isoformat())
    assert encryption._datetime_us(value) == to_us(value)
    if _engine.c_engine is not None:  # the C fast case: exactly a datetime, exactly timezone.utc
        fast = zone is dt.timezone.utc and not sub
        assert _engine.c_engine.utc_datetime_us(value) == (to_us(value) if fast else None)
        assert _engine.c_engine.utc_datetime_us(d) is None
    with pytest.raises(TypeError):
        encryption._datetime_us(d)  # naive: to_us refuses it, as comparing it with aware datetimes does
    with pytest.raises(TypeError):
        encryption._datetime_us(_SubDatetime.fromisoformat(d.isoformat()))


@pytest.mark.parametrize("now", [NOW, NOW.astimezone(dt.timezone(dt.timedelta(hours=-3))),
                                 NOW.astimezone(zoneinfo.ZoneInfo("Europe/Paris")), NOW + dt.timedelta(hours=2)])
def test_decrypt_with_now_on_both_engines(engine, now):
    keys = _keys(engine)
    c = U.BidstreamClient("http://127.0.0.1:1", "k", "AAAA", engine=engine)
    c._keys = keys
    t = c._decrypt_token_into_raw_uid(_v4(NOW_MS - 86_400_000), None, now)
    later = now - NOW > dt.timedelta(hours=1)
    assert t.status is (U.DecryptionStatus.EXPIRED_TOKEN if later else U.DecryptionStatus.SUCCESS)
    with pytest.raises(U.EncryptionError, match="invalid payload"):
        c._decrypt_token_into_raw_uid(_v4(NOW_MS), None, now.replace(tzinfo=None))
