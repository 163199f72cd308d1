"""Shared fixtures: the ``engine`` fixture runs a test once per engine module (C, when built and usable here,
and the Python twin), as propcache's tests do with their C and Python modules.

A test passes the engine on explicitly: key sets are built on it (``helpers.make_keys(now, engine=engine)``,
``helpers.parse_keys(body, engine)``, ``EncryptionKeysCollection(..., engine=engine)``) and clients are
created with ``engine=engine``; every call with those keys then runs on that engine. Nothing is switched
globally.
"""
import json
import pathlib

import pytest

from uid2fast import _engine

VECTORS = pathlib.Path(__file__).parent / "vectors"

ENGINES = ["c", "py"]


@pytest.fixture(params=ENGINES)
def engine(request):
    """The engine module the test runs on (``uid2fast._engine_c`` or ``uid2fast._engine_py``)."""
    if request.param == "c" and _engine.c_engine is None:
        pytest.skip(f"C engine not available ({_engine.import_error})")
    return _engine.by_name(request.param)


@pytest.fixture(scope="session")
def decrypt_vectors():
    return json.loads((VECTORS / "decrypt.json").read_text())


@pytest.fixture(scope="module")
def server(server_secret: bytes):
    """A fault-injecting operator (tests/faultserver.py) for the module; the module defines ``server_secret``
    (the client secret's bytes)."""
    from tests.faultserver import FaultServer, gzip_bomb

    gzip_bomb(256 << 20)  # built before any measurement
    with FaultServer(server_secret) as srv:
        yield srv


@pytest.fixture
def fault(server):
    """``fault(name, **attrs)`` switches the module's server to a fault and clears its request log; back to ok after."""
    def set_fault(name, **attrs):
        server.fault = name
        for k, v in attrs.items():
            setattr(server, k, v)
        server.requests.clear()
        return server

    yield set_fault
    server.fault = "ok"


def pytest_collection_modifyitems(config, items):
    for item in items:
        # engine_path: the tests that drive the engines' token paths. The CI stages that change how the engine
        # runs (fast paths off, multi-buffer kernel off, sanitizers, the installed wheel) run these; the
        # default stages run everything. A test takes it by running on the `engine` fixture, by needing the C
        # engine (c_engine) or from its module's pytestmark.
        if "engine" in getattr(item, "fixturenames", ()) or item.get_closest_marker("c_engine"):
            item.add_marker(pytest.mark.engine_path)
        # A test left out of the sanitizer run must say why (scripts/sanitize_check.sh deselects the marker).
        for mark in item.iter_markers("no_sanitizer"):
            if not (mark.kwargs.get("reason") or (mark.args and mark.args[0])):
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.no_sanitizer needs a reason")
