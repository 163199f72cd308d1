"""Fixtures for the pytest-benchmark suite (``python -m pytest benchmarks --benchmark-only``)."""
import datetime as dt
import json
import pathlib

import pytest

VECTORS = pathlib.Path(__file__).resolve().parent.parent / "tests" / "vectors" / "decrypt.json"
RAW_UID = "ywsvDNINiZOVSsfkHpLpSJzXzhr6Jx9Z/4Q0+lsEUvM="


@pytest.fixture(scope="session")
def keys_body():
    data = json.loads(VECTORS.read_text())
    return next(v["body"] for v in data["vectors"] if v["kind"] == "keyset" and v["name"] == "keys_uid2")


@pytest.fixture(scope="session")
def official_keys(keys_body):
    uid2_client = pytest.importorskip("uid2_client")
    return uid2_client.parse_keys_json(keys_body).keys


@pytest.fixture(scope="session")
def ours_keys(keys_body):
    import uid2fast

    return uid2fast.parse_keys_json(keys_body).keys


@pytest.fixture(scope="session", params=[2, 3, 4])
def token(request, official_keys):
    """A token of each version made by the official generator, valid for a day."""
    import uid2_client

    now = dt.datetime.now(dt.timezone.utc)
    master = official_keys.get(237)
    site = official_keys.get(2674)
    params = uid2_client.Params(expiry=now + dt.timedelta(hours=12), token_generated=now,
                                identity_established=now - dt.timedelta(days=1))
    gen = {2: uid2_client.UID2TokenGenerator.generate_uid2_token_v2,
           3: uid2_client.UID2TokenGenerator.generate_uid2_token_v3,
           4: uid2_client.UID2TokenGenerator.generate_uid2_token_v4}[request.param]
    return request.param, gen(RAW_UID, master, 9000, site, params)
