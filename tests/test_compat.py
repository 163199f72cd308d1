"""uid2fast exposes the official ``uid2_client`` 2.9.0 surface: names, signatures, enums, submodules.

The reference is the installed official package (a test-only dependency). "Public" means every name
of ``uid2_client`` that the package itself defines, a submodule of it, or a plain constant
(``BINARY``, ``encryption_block_size``, ``base64_url_special_chars``); third-party names that leak
into the official namespace through its ``from x import *`` chain (docs/differences.md#namespace: ``AES``,
``base64``, ``bitarray``, ``dt``, ``json``, ``os``, ``request``, ``metadata``, ``threading``, typing
names, ``Enum``, ``datetime``, ``timezone``, ``bisect_*``, ``deprecated``…) are not part of the promise.

A signature is compatible when every call the official one accepts is accepted by ours: the same
positional parameters in the same order with the same names, defaults where the official has them,
``*args``/``**kwargs`` where the official has them; ours may add optional or keyword-only parameters.
"""
import enum
import importlib
import inspect
import pkgutil
import types

import pytest

uid2_client = pytest.importorskip("uid2_client")
import uid2fast  # noqa: E402

# Private hooks the official tests and users rely on (docs/differences.md#drop-in-promise); checked like public methods.
PRIVATE_HOOKS = {
    "BidstreamClient": ["_refresh_json", "_decrypt_token_into_raw_uid"],
    "SharingClient": ["_refresh_json", "_encrypt_raw_uid_into_token", "_decrypt_token_into_raw_uid"],
}

# Enum members uid2fast adds on purpose, by docs/differences.md section.
ADDED_ENUM_MEMBERS = {
    "DecryptionStatus": {
        "INVALID_IDENTITY_SCOPE": "docs/differences.md#identity-scope (identity scope check, as Java/.NET)",
        "USER_OPTED_OUT": "docs/differences.md#cstg-opt-out (CSTG opt-out bit, as .NET)",
    },
}


def _is_official_object(obj) -> bool:
    if isinstance(obj, types.ModuleType):
        return obj.__name__.startswith("uid2_client.")
    module = getattr(obj, "__module__", None)
    if module is None:  # plain constants: ints, strings, sets
        return isinstance(obj, (int, str, bytes, frozenset, set, tuple))
    return module == "uid2_client" or module.startswith("uid2_client.")


def _public_names(module) -> list:
    return sorted(n for n in dir(module) if not n.startswith("_") and _is_official_object(getattr(module, n)))


OFFICIAL_NAMES = _public_names(uid2_client)
OFFICIAL_SUBMODULES = sorted(m.name for m in pkgutil.iter_modules(uid2_client.__path__))
CALLABLES = [n for n in OFFICIAL_NAMES
             if callable(getattr(uid2_client, n)) and not isinstance(getattr(uid2_client, n), types.ModuleType)]
CLASSES = [n for n in CALLABLES if inspect.isclass(getattr(uid2_client, n))]
ENUMS = [n for n in CLASSES if issubclass(getattr(uid2_client, n), enum.Enum)]


def test_the_reference_surface_is_what_we_think():
    # Guard against the filter silently dropping everything (e.g. another uid2-client version).
    assert uid2_client.__name__ == "uid2_client"
    for name in ("BidstreamClient", "SharingClient", "Uid2Client", "DecryptionStatus", "decrypt", "encrypt",
                 "EncryptionKeysCollection", "UID2TokenGenerator", "Params", "BINARY", "encryption_block_size",
                 "base64_url_special_chars", "encryption", "refresh_keys_util"):
        assert name in OFFICIAL_NAMES
    for leak in ("AES", "base64", "bitarray", "dt", "json", "os", "request", "metadata", "threading", "Optional",
                 "Enum", "datetime", "timezone", "bisect_left", "deprecated", "sys", "hashlib"):
        assert leak not in OFFICIAL_NAMES
    assert len(OFFICIAL_SUBMODULES) >= 30


@pytest.mark.parametrize("name", OFFICIAL_NAMES)
def test_every_official_name_exists(name):
    assert hasattr(uid2fast, name), f"uid2fast has no {name!r} (uid2_client.{name} exists)"


@pytest.mark.parametrize("name", [n for n in OFFICIAL_NAMES if not callable(getattr(uid2_client, n))
                                  and not isinstance(getattr(uid2_client, n), types.ModuleType)])
def test_constants_have_the_official_value(name):
    assert getattr(uid2fast, name) == getattr(uid2_client, name)


def test_star_import_gives_every_official_name():
    # Users (and the official tests: test_client.py uses `encryption` this way) write
    # `from uid2_client import *`; without __all__ the official package exports every public
    # attribute, submodules included.
    ours: dict = {}
    exec("from uid2fast import *", ours)  # noqa: S102
    missing = [n for n in OFFICIAL_NAMES if n not in ours]
    assert not missing, f"`from uid2fast import *` lacks: {missing}"


# -- signatures --------------------------------------------------------------------------------
_P = inspect.Parameter


def incompatibilities(official: inspect.Signature, ours: inspect.Signature) -> list:
    """Why a call accepted by ``official`` might be rejected by ``ours`` (empty when compatible)."""
    problems = []
    o_params = list(official.parameters.values())
    u_params = list(ours.parameters.values())
    u_by_name = {p.name: p for p in u_params}
    u_positional = [p for p in u_params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)]
    u_var_pos = any(p.kind is _P.VAR_POSITIONAL for p in u_params)
    u_var_kw = any(p.kind is _P.VAR_KEYWORD for p in u_params)
    o_positional = [p for p in o_params if p.kind in (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)]

    for i, op in enumerate(o_positional):
        if i < len(u_positional):
            up = u_positional[i]
            if op.kind is _P.POSITIONAL_OR_KEYWORD and up.name != op.name and not u_var_kw:
                problems.append(f"parameter {i} is {up.name!r}, official {op.name!r}")
            if op.default is not _P.empty and up.default is _P.empty:
                problems.append(f"{op.name!r} is optional in the official signature, required in ours")
        elif not u_var_pos:
            problems.append(f"official positional parameter {op.name!r} (#{i}) is not accepted positionally")
    for op in o_params:
        if op.kind is _P.KEYWORD_ONLY:
            up = u_by_name.get(op.name)
            if up is None and not u_var_kw:
                problems.append(f"keyword {op.name!r} not accepted")
            elif up is not None and op.default is not _P.empty and up.default is _P.empty:
                problems.append(f"keyword {op.name!r} is optional officially, required in ours")
        if op.kind is _P.VAR_POSITIONAL and not u_var_pos:
            problems.append("official takes *args, ours does not")
        if op.kind is _P.VAR_KEYWORD and not u_var_kw:
            problems.append("official takes **kwargs, ours does not")
    # Whatever ours adds must be optional.
    for up in u_positional[len(o_positional):]:
        if up.default is _P.empty and not any(p.name == up.name for p in o_params):
            problems.append(f"added positional parameter {up.name!r} is required")
    for up in u_params:
        if up.kind is _P.KEYWORD_ONLY and up.default is _P.empty and up.name not in {p.name for p in o_params}:
            problems.append(f"added keyword-only parameter {up.name!r} is required")
    return problems


def _signature(obj):
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


def _members(cls) -> list:
    """Public (and hook) methods, static/class methods and properties defined by the official class
    and its uid2_client bases."""
    names = set()
    for klass in cls.__mro__:
        if not (klass.__module__ or "").startswith("uid2_client"):
            continue
        for n in vars(klass):
            if not n.startswith("_") or n == "__init__" or n in PRIVATE_HOOKS.get(cls.__name__, ()):
                names.add(n)
    return sorted(names)


def _signature_cases():
    for name in CALLABLES:
        obj = getattr(uid2_client, name)
        if name in ENUMS:
            continue
        if not inspect.isclass(obj):
            yield pytest.param(name, None, id=name)
            continue
        for member in _members(obj):
            yield pytest.param(name, member, id=f"{name}.{member}")


def test_private_hooks_are_checked():
    cases = {(p.values[0], p.values[1]) for p in _signature_cases()}
    for cls, hooks in PRIVATE_HOOKS.items():
        for hook in hooks:
            assert (cls, hook) in cases


@pytest.mark.parametrize(("name", "member"), list(_signature_cases()))
def test_signature_is_compatible(name, member):
    official = getattr(uid2_client, name)
    ours = getattr(uid2fast, name, None)
    assert ours is not None, f"uid2fast.{name} missing"
    if member is not None:
        o_static = inspect.getattr_static(official, member)
        u_static = None
        for klass in inspect.getmro(ours):
            if member in vars(klass):
                u_static = vars(klass)[member]
                break
        assert u_static is not None or hasattr(ours, member), f"uid2fast.{name}.{member} missing"
        if isinstance(o_static, property):
            # A property reads like an attribute; ours may be a property or a slot/descriptor.
            assert u_static is not None and not callable(u_static) or isinstance(u_static, property), \
                f"uid2fast.{name}.{member} is not readable as an attribute"
            return
        for kind in (staticmethod, classmethod):
            if isinstance(o_static, kind):
                assert isinstance(u_static, kind), f"uid2fast.{name}.{member} should be a {kind.__name__}"
        official, ours = getattr(official, member), getattr(ours, member)
        if not callable(official):
            return
    o_sig, u_sig = _signature(official), _signature(ours)
    if o_sig is None:
        pytest.skip(f"official {name}.{member} has no introspectable signature")
    assert u_sig is not None, f"uid2fast {name}.{member} has no signature"
    problems = incompatibilities(o_sig, u_sig)
    assert not problems, f"{name}{'.' + member if member else ''}: official {o_sig}, ours {u_sig}: {problems}"


def test_incompatibilities_checker_itself():
    def sig(f):
        return inspect.signature(f)

    def off(a, b=1, *, c=2): ...
    assert incompatibilities(sig(off), sig(lambda a, b=1, *, c=2, d=3: 0)) == []
    assert incompatibilities(sig(off), sig(lambda a, b=1, e=0, *, c=2: 0)) == []
    assert incompatibilities(sig(off), sig(lambda a, *, b=1, c=2: 0))  # b no longer positional
    assert incompatibilities(sig(off), sig(lambda a, x=1, *, c=2: 0))  # renamed
    assert incompatibilities(sig(off), sig(lambda a, b, *, c=2: 0))  # default dropped
    assert incompatibilities(sig(off), sig(lambda a, b=1, *, c=2, d: 0))  # required addition
    assert incompatibilities(sig(lambda **kw: 0), sig(lambda: 0))
    assert incompatibilities(sig(off), sig(lambda *args, **kwargs: 0)) == []


# -- enums -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ENUMS)
def test_enum_members_and_values(name):
    official, ours = getattr(uid2_client, name), getattr(uid2fast, name)
    assert issubclass(ours, enum.Enum)
    assert issubclass(ours, int) == issubclass(official, int), "IntEnum-ness differs"
    o_members = {m.name: m.value for m in official}
    u_members = {m.name: m.value for m in ours}
    for member, value in o_members.items():
        assert member in u_members, f"{name}.{member} missing"
        assert u_members[member] == value, f"{name}.{member}: {u_members[member]!r} != {value!r}"
    added = set(u_members) - set(o_members)
    assert added == set(ADDED_ENUM_MEMBERS.get(name, {})), f"{name} adds {sorted(added)}, docs/differences.md lists " \
                                                           f"{sorted(ADDED_ENUM_MEMBERS.get(name, {}))}"
    # Same declaration order for the official members (iteration order is observable).
    assert [m for m in u_members if m in o_members] == list(o_members)


def test_added_enum_members_are_listed():
    assert set(uid2fast.DecryptionStatus.__members__) - set(uid2_client.DecryptionStatus.__members__) == \
        {"INVALID_IDENTITY_SCOPE", "USER_OPTED_OUT"}


# -- submodules --------------------------------------------------------------------------------
@pytest.mark.parametrize("mod", OFFICIAL_SUBMODULES)
def test_submodule_exports_the_official_names(mod):
    official = importlib.import_module(f"uid2_client.{mod}")
    ours = importlib.import_module(f"uid2fast.{mod}")
    missing = [n for n in _public_names(official) if not hasattr(ours, n)]
    assert not missing, f"uid2fast.{mod} lacks {missing}"


@pytest.mark.parametrize("mod", OFFICIAL_SUBMODULES)
def test_submodule_is_an_attribute_of_the_package(mod):
    importlib.import_module(f"uid2fast.{mod}")
    assert isinstance(getattr(uid2fast, mod, None), types.ModuleType)


# -- smoke: `import uid2fast as uid2_client` ---------------------------------------------------
def test_import_as_uid2_client_smoke():
    import base64
    import datetime as dt
    import json

    import uid2fast as uid2_client  # noqa: F811 - the point of the test

    now = dt.datetime.now(dt.timezone.utc)
    secret = base64.b64encode(bytes(range(32))).decode()
    t0 = int(now.timestamp()) - 60
    body = {"body": {
        "caller_site_id": 9000, "master_keyset_id": 1, "default_keyset_id": 99, "token_expiry_seconds": 3600,
        "identity_scope": "UID2", "allow_clock_skew_seconds": 1800, "max_sharing_lifetime_seconds": 86400 * 30,
        "max_bidstream_lifetime_seconds": 86400 * 3,
        "keys": [{"id": 164, "keyset_id": 1, "created": t0, "activates": t0, "expires": t0 + 86400, "secret": secret},
                 {"id": 165, "keyset_id": 99, "created": t0, "activates": t0, "expires": t0 + 86400,
                  "secret": secret}],
    }}
    sharing = uid2_client.SharingClient("https://prod.uidapi.com", "key", secret)
    assert sharing._refresh_json(json.dumps(body)).success
    uid = "ywsvDNINiZOVSsfkHpLpSJzXzhr6Jx9Z/4Q0+lsEUvM="
    enc = sharing.encrypt_raw_uid_into_token(uid)
    assert enc.success and enc.status == uid2_client.EncryptionStatus.SUCCESS
    dec = sharing.decrypt_token_into_raw_uid(enc.encrypted_data)
    assert dec.success and dec.uid == uid and dec.status is uid2_client.DecryptionStatus.SUCCESS
    assert dec.advertising_token_version == uid2_client.AdvertisingTokenVersion.ADVERTISING_TOKEN_V4

    bid = uid2_client.BidstreamClient("https://prod.uidapi.com", "key", secret)
    assert bid._refresh_json(json.dumps(body)).success
    r = bid.decrypt_token_into_raw_uid(enc.encrypted_data, "example.com")
    assert r.uid == uid and r.identity_type == uid2_client.IdentityType.Email
    assert r.identity_scope == uid2_client.IdentityScope.UID2

    # The legacy entry points still raise with the official messages.
    with pytest.raises(uid2_client.EncryptionError, match="invalid payload"):
        uid2_client.decrypt("not a token at all", bid._keys, now)
    client = uid2_client.Uid2ClientFactory.create("https://prod.uidapi.com", "key", secret)
    assert isinstance(client, uid2_client.Uid2Client)
    keys = client.refresh_json(json.dumps(body))
    assert isinstance(keys, uid2_client.EncryptionKeysCollection)
    assert client.decrypt(client.encrypt(uid)).uid == uid
