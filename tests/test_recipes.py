"""The README's Polars and Dask recipes (and, from tests/test_spark.py, its Spark one), run as written.

Each recipe is the ```python block after a ``<!-- recipe: NAME -->`` line in README.md. It runs in a
directory holding ``keys.json`` (from a LocalOperator) and ``bids.parquet`` (tokens, domains), and must
leave ``decrypted`` (a frame with the result columns) or ``decrypted/`` (a Parquet directory) that
matches the batch API row for row.
"""
import pathlib
import re

import pytest

import uid2fast
from uid2fast.keyfile import keys_body, save_keys
from uid2fast.testing import LocalOperator

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
DOMAIN = "news.example.com"
SITE = 1001


def readme_recipe(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"<!-- recipe: %s -->\s*```python\n(.*?)```" % re.escape(name), text, re.S)
    assert m, f"README.md has no recipe {name!r}"
    return m.group(1)


def make_inputs(directory: pathlib.Path, op: LocalOperator):
    """keys.json and bids.parquet in ``directory``; returns (keys, tokens, domains)."""
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
    assert client.refresh().success
    save_keys(keys_body(client.keys), directory / "keys.json")
    tokens = [op.issue_token(email=f"recipe{i}@example.com") for i in range(300)]
    tokens += [op.issue_token(phone=f"+1555{i:07d}", version=3) for i in range(50)]
    cstg = op.issue_token(email="cstg@example.com", client_side=True)
    tokens += [cstg, cstg, "not a token", tokens[0][:-6]]
    domains = [DOMAIN] * 351 + ["elsewhere.example", DOMAIN, DOMAIN]
    pq.write_table(pa.table({"id": list(range(len(tokens))), "token": tokens, "domain": domains}),
                   directory / "bids.parquet")
    return client.keys, tokens, domains


def expected_frame(keys, tokens, domains):
    return uid2fast.decrypt_tokens(tokens, keys, domain_names=domains).to_pandas()


def assert_matches(got, keys, tokens, domains):
    """``got``: a pandas frame with id, token, domain and the result columns (any row order)."""
    import pandas as pd

    want = expected_frame(keys, tokens, domains)
    got = got.sort_values("id").reset_index(drop=True)
    assert list(got["token"]) == tokens
    for col in want.columns:
        pd.testing.assert_series_equal(got[col], want[col], check_dtype=False, check_names=False,
                                       check_index_type=False, obj=col)
    statuses = set(want["status"])
    assert {"SUCCESS", "DOMAIN_NAME_CHECK_FAILED", "INVALID_PAYLOAD"} <= statuses, statuses


@pytest.fixture(scope="module")
def op():
    with LocalOperator(site_data={SITE: [DOMAIN]}) as operator:
        yield operator


def test_polars_recipe(tmp_path, monkeypatch, op):
    pytest.importorskip("polars")
    keys, tokens, domains = make_inputs(tmp_path, op)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(readme_recipe("polars"), "README.md:polars", "exec"), ns)
    assert_matches(ns["decrypted"].to_pandas(), keys, tokens, domains)


def test_dask_recipe(tmp_path, monkeypatch, op):
    pytest.importorskip("dask.dataframe")
    import pandas as pd

    keys, tokens, domains = make_inputs(tmp_path, op)
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(readme_recipe("dask"), "README.md:dask", "exec"), ns)
    assert (tmp_path / "decrypted").is_dir()
    got = pd.read_parquet(tmp_path / "decrypted")
    assert_matches(got, keys, tokens, domains)


def test_keys_collection_pickles_and_decrypts_the_same(op):
    import pickle

    client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
    assert client.refresh().success
    tokens = [op.issue_token(email=f"p{i}@example.com") for i in range(20)] + ["junk"]
    before = uid2fast.decrypt_tokens(tokens, client.keys)
    clone = pickle.loads(pickle.dumps(client.keys))
    assert clone is not client.keys and len(clone) == len(client.keys)
    after = uid2fast.decrypt_tokens(tokens, clone)
    assert list(after.status) == list(before.status) and list(after.uid) == list(before.uid)
    assert [clone[k].secret for k in clone.key_ids()] == [client.keys[k].secret for k in client.keys.key_ids()]
