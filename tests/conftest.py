"""Shared fixtures: the ``engine`` fixture runs a test once per engine (C, when built, and Python)."""
import json
import pathlib

import pytest

from uid2fast import _engine

VECTORS = pathlib.Path(__file__).parent / "vectors"

ENGINES = ["c", "py"]


@pytest.fixture(params=ENGINES)
def engine(request):
    """The name of the engine the test runs on; the package's dispatcher is switched to it."""
    name = request.param
    if name == "c" and _engine.c_engine is None:
        pytest.skip(f"C engine not built ({_engine.import_error})")
    with _engine.use(name):
        yield name


@pytest.fixture(scope="session")
def decrypt_vectors():
    return json.loads((VECTORS / "decrypt.json").read_text())


def pytest_collection_modifyitems(config, items):
    # A test left out of the sanitizer run must say why (scripts/sanitize_check.sh deselects the marker).
    for item in items:
        for mark in item.iter_markers("no_sanitizer"):
            if not (mark.kwargs.get("reason") or (mark.args and mark.args[0])):
                raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.no_sanitizer needs a reason")
