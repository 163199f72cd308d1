"""The engine choice is made once at import; a key set carries the engine that built its table, and the table is
built with the key set (a refresh swaps in a finished one); no import cycle among the package's modules."""
import ast
import base64
import datetime as dt
import json
import os
import pathlib
import pickle
import re
import subprocess
import sys

import pytest

import uid2fast as U
from uid2fast import _engine, _engine_py, _results
from uid2fast.keys import EncryptionKey, EncryptionKeysCollection

from .helpers import RAW_UID, keys_body, make_keys, make_token, parse_keys

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
SRC = pathlib.Path(U.__file__).resolve().parent


def test_the_dispatcher_has_no_switch():
    assert not hasattr(_engine, "use") and not hasattr(_engine, "impl") and not hasattr(_engine, "_select")
    assert _engine.engine in _engine.engines.values()
    assert _engine.backend == ("c" if _engine.engine is _engine.c_engine else "python") == U.backend
    assert _engine.by_name("py") is _engine.py_engine is _engine_py
    with pytest.raises(ValueError):
        _engine.by_name("fast")
    with pytest.raises(TypeError):
        _engine.engines["py"] = _engine_py  # read-only


def test_module_state_does_not_change_after_import(engine):
    """Decrypting, encrypting and batches on either engine leave the dispatcher's and the engines' module
    attributes as they were (same objects)."""
    modules = [_engine, _results, engine, _engine_py]
    before = [dict(vars(m)) for m in modules]
    keys = make_keys(NOW, engine=engine)
    token = make_token(keys, NOW)
    client = U.BidstreamClient("http://127.0.0.1:1", "k", "AAAA", engine=engine)
    client._adopt(keys)
    assert client.decrypt_token_into_raw_uid(token).uid == RAW_UID
    assert U.decrypt_tokens([token, "x"], keys).status.tolist() == [0, 4]
    assert U.encrypt(RAW_UID, None, keys).success
    for m, b in zip(modules, before):
        after = vars(m)
        changed = [k for k in set(b) | set(after) if k != "__warningregistry__" and b.get(k) is not after.get(k)]
        assert not changed, (m.__name__, changed)


def test_no_extensions_switch_in_a_fresh_interpreter():
    code = ("import uid2fast; from uid2fast import _engine, parse_keys_json\n"
            "print(uid2fast.backend, _engine.engine.NAME, _engine.c_engine is None)")
    env = dict(os.environ, UID2FAST_NO_EXTENSIONS="1", PYTHONPATH=str(SRC.parent))
    env.pop("UID2FAST_REQUIRE_EXTENSIONS", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["python", "python", "True"]


def test_a_key_set_builds_its_table_with_itself(engine):
    keys = make_keys(NOW, engine=engine)
    table = keys._table
    assert type(table) is engine.KeyTable and keys._engine is engine
    assert table.public_scope is keys.get_identity_scope()
    keys.set_keys([EncryptionKey(7, -1, NOW, NOW, NOW + dt.timedelta(days=1), bytes(32), 1)])
    assert keys._table is not table and type(keys._table) is engine.KeyTable and len(keys) == 3


def test_decrypting_never_builds_a_table_and_a_refresh_builds_one(engine, monkeypatch):
    builds = []
    real = EncryptionKeysCollection._build_table

    def counting(self):
        builds.append(self)
        real(self)

    monkeypatch.setattr(EncryptionKeysCollection, "_build_table", counting)
    body = keys_body(NOW)
    client = U.BidstreamClient("http://127.0.0.1:1", "k", "AAAA", engine=engine)
    assert client._refresh_json(json.dumps({"body": body})).success
    assert client.keys._engine is engine and client.keys._table is not None
    assert 1 <= len(builds) <= 2  # parsed on the default engine, copied onto the client's when that differs
    token = make_token(client.keys, NOW)
    builds.clear()
    for _ in range(5):
        assert client.decrypt_token_into_raw_uid(token).uid == RAW_UID
        client.decrypt_tokens_into_raw_uids([token])
    assert builds == []


def test_clients_carry_their_engine():
    body = json.dumps({"body": keys_body(NOW)})
    secret = base64.b64encode(bytes(32)).decode()
    results = []
    for engine in _engine.engines.values():
        for cls in (U.BidstreamClient, U.SharingClient):
            c = cls("http://127.0.0.1:1", "k", secret, engine=engine)
            assert c._refresh_json(body).success and c.keys._engine is engine
        short = "py" if engine is _engine_py else "c"  # by name, as a user would pick one
        legacy = U.Uid2Client("http://127.0.0.1:1", "k", secret, engine=short)
        assert legacy.refresh_json(body)._engine is engine
        token = make_token(legacy.keys, NOW)
        results.append(legacy.decrypt(token))
    assert all(r == results[0] for r in results) and results[0].uid == RAW_UID
    with pytest.raises(ValueError):
        U.BidstreamClient("http://127.0.0.1:1", "k", secret, engine="gpu")


def test_a_key_set_on_another_engine_is_an_independent_copy():
    keys = make_keys(NOW)
    assert keys._on_engine(keys._engine) is keys
    twin = keys._on_engine(_engine_py)
    if _engine.engine is _engine_py:
        assert twin is keys
        return
    assert twin is not keys and twin._engine is _engine_py and type(twin._table) is _engine_py.KeyTable
    twin.set_keys([EncryptionKey(7, -1, NOW, NOW, NOW + dt.timedelta(days=1), bytes(32), 1)])
    assert len(twin) == 3 and len(keys) == 2 and keys._table.key_index(7) is None


def test_pickling_keeps_the_engine_and_rebuilds_the_table(engine):
    keys = make_keys(NOW, engine=engine)
    token = make_token(keys, NOW)
    back = pickle.loads(pickle.dumps(keys))
    assert back._engine is engine and type(back._table) is engine.KeyTable and back._table is not keys._table
    assert U.decrypt(token, back).uid == RAW_UID


def test_keys_that_cannot_make_a_table_answer_not_initialized(engine, caplog):
    naive = dt.datetime(2026, 1, 1)  # key times without a timezone: no table, one warning when it is built
    keys = EncryptionKeysCollection([EncryptionKey(1, -1, naive, naive, naive + dt.timedelta(days=1), bytes(32), 1)],
                                    engine=engine)
    assert keys._table is None and "not usable" in caplog.text
    client = U.BidstreamClient("http://127.0.0.1:1", "k", "AAAA", engine=engine)
    client._adopt(keys)
    for _ in range(2):
        assert client.decrypt_token_into_raw_uid("AIAAAAAA").status == U.DecryptionStatus.NOT_INITIALIZED
    assert U.decrypt_tokens(["AIAAAAAA"], keys).status_enum(0) == U.DecryptionStatus.NOT_INITIALIZED


def test_the_same_answers_on_both_engines_through_every_public_path():
    if _engine.c_engine is None:
        pytest.skip("C engine not available")
    c_keys = make_keys(NOW, engine=_engine.c_engine)
    py_keys = parse_keys(keys_body(NOW), _engine_py)  # other secrets: their own tokens
    for keys in (c_keys, py_keys):
        other = keys._on_engine(_engine_py if keys._engine is not _engine_py else _engine.c_engine)
        for version in (2, 3, 4):
            token = make_token(keys, NOW, version=version)
            for client_type in (U.ClientType.BIDSTREAM, U.ClientType.SHARING):
                assert U.decrypt_token(token, keys, None, client_type) == \
                    U.decrypt_token(token, other, None, client_type)
            assert U.decrypt_tokens([token], keys)[0] == U.decrypt_tokens([token], other)[0]


def _package_imports():
    """uid2fast module -> the uid2fast modules it imports when it is imported (module level, not in functions)."""
    modules = {}
    for p in SRC.rglob("*.py"):
        parts = p.relative_to(SRC).with_suffix("").parts
        name = ".".join(("uid2fast",) + (parts[:-1] if parts[-1] == "__init__" else parts))
        modules[name] = p
    graph = {}
    for name, p in modules.items():
        package = name if p.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.parse(p.read_text()).body:
            for n in ast.walk(node) if isinstance(node, (ast.If, ast.Try)) else [node]:
                if isinstance(n, ast.ImportFrom) and n.level:
                    base = package.split(".")[:len(package.split(".")) - (n.level - 1)]
                    target = ".".join(base + ([n.module] if n.module else []))
                    for alias in n.names:
                        sub = f"{target}.{alias.name}"
                        deps.add(sub if sub in modules else target)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def test_no_import_cycle():
    graph = _package_imports()
    assert "uid2fast._results" in graph and graph["uid2fast._engine_py"] >= {"uid2fast._results", "uid2fast._codes"}
    # the engines and the results module never import the public layer above them
    public = {"uid2fast.encryption", "uid2fast.keys", "uid2fast.batch", "uid2fast.bidstream_client",
              "uid2fast.sharing_client", "uid2fast.client", "uid2fast"}
    for low in ("uid2fast._engine", "uid2fast._engine_py", "uid2fast._results", "uid2fast._codes"):
        assert not graph[low] & public, (low, graph[low] & public)
    c_parts = [p for p in SRC.glob("_engine_c*.p*") if p.suffix in (".pyx", ".pxi", ".pxd")]
    if c_parts:  # the C engine imports only the code and result tables
        c_imports = {m for p in c_parts for m in re.findall(r"^\s*from \.(\w*) (?:c?import)", p.read_text(), re.M)}
        assert c_imports <= {"_codes", ""}, c_imports
        assert all(re.findall(r"^\s*from \. import (\w+)", p.read_text(), re.M) in ([], ["_results"]) for p in c_parts)
    state, path = {}, []

    def visit(m):
        state[m] = 1
        path.append(m)
        for d in sorted(graph[m]):
            assert state.get(d) != 1, "import cycle: " + " -> ".join(path[path.index(d):] + [d])
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
