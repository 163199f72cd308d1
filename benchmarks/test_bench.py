"""pytest-benchmark suite: ``python -m pytest benchmarks --benchmark-only``.

Every benchmark first checks the answer, then times. Compare runs with ``--benchmark-compare``.
The table with ratios measured side by side is ``python benchmarks/bench_decrypt.py``.
"""
import pytest

import uid2fast
from uid2fast import _engine

from .conftest import RAW_UID

N_BATCH = 20_000


def _bidstream(keys, cls):
    client = cls("http://127.0.0.1:1", "key", "AAAA")
    client._keys = keys
    return client


def test_official_decrypt(benchmark, token, official_keys):
    import uid2_client

    version, tok = token
    client = _bidstream(official_keys, uid2_client.BidstreamClient)
    assert client.decrypt_token_into_raw_uid(tok, None).uid == RAW_UID
    benchmark.extra_info["version"] = version
    benchmark(client.decrypt_token_into_raw_uid, tok, None)


@pytest.mark.parametrize("engine_name", ["c", "py"])
def test_uid2fast_decrypt_scalar(benchmark, token, ours_keys, engine_name):
    if engine_name == "c" and _engine.c_engine is None:
        pytest.skip("C engine not built")
    version, tok = token
    client = _bidstream(ours_keys._on_engine(_engine.by_name(engine_name)), uid2fast.BidstreamClient)
    assert client.decrypt_token_into_raw_uid(tok, None).uid == RAW_UID
    benchmark.extra_info["version"] = version
    benchmark(client.decrypt_token_into_raw_uid, tok, None)


def _bidder_call(call, tok):
    """The bidder's call: decrypt with the bid's domain, then read what a bidder reads."""
    r = call(tok, "example.com")
    return r.status, r.uid, r.established, r.site_id


def test_official_bidder_call(benchmark, token, official_keys):
    import uid2_client

    version, tok = token
    call = _bidstream(official_keys, uid2_client.BidstreamClient).decrypt_token_into_raw_uid
    assert _bidder_call(call, tok)[1] == RAW_UID
    benchmark.extra_info["version"] = version
    benchmark(_bidder_call, call, tok)


@pytest.mark.parametrize("engine_name", ["c", "py"])
def test_uid2fast_bidder_call(benchmark, token, ours_keys, official_keys, engine_name):
    import uid2_client

    if engine_name == "c" and _engine.c_engine is None:
        pytest.skip("C engine not built")
    version, tok = token
    client = _bidstream(ours_keys._on_engine(_engine.by_name(engine_name)), uid2fast.BidstreamClient)
    call = client.decrypt_token_into_raw_uid
    ours = _bidder_call(call, tok)
    official = _bidder_call(_bidstream(official_keys, uid2_client.BidstreamClient).decrypt_token_into_raw_uid, tok)
    assert ours[0].name == official[0].name and ours[1:] == official[1:]
    assert [type(v) for v in ours[1:]] == [type(v) for v in official[1:]]  # str, UTC datetime, int
    benchmark.extra_info["version"] = version
    benchmark(_bidder_call, call, tok)


@pytest.mark.parametrize("threads", [1, None])
def test_uid2fast_decrypt_batch(benchmark, token, ours_keys, threads):
    version, tok = token
    tokens = [tok] * N_BATCH
    out = uid2fast.decrypt_tokens(tokens, ours_keys, threads=threads)
    assert out.status_counts() == {uid2fast.DecryptionStatus.SUCCESS: N_BATCH}
    benchmark.extra_info.update(version=version, tokens=N_BATCH, threads=threads or "all")
    benchmark(uid2fast.decrypt_tokens, tokens, ours_keys, threads=threads)


def test_uid2fast_encrypt_batch(benchmark, ours_keys):
    uids = [RAW_UID] * N_BATCH
    out = uid2fast.encrypt_tokens(uids, ours_keys, threads=1)
    assert int(out.success.sum()) == N_BATCH
    benchmark.extra_info["tokens"] = N_BATCH
    benchmark(uid2fast.encrypt_tokens, uids, ours_keys, threads=1)
