"""Metrics without wrappers: client.metrics() and refresher.metrics() (key-set age, refresh outcomes, status
counts) against the LocalOperator, on both engines, and their Prometheus exposition parsed back."""
import collections
import datetime as dt
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import uid2fast
from tests.helpers import run_threads
from uid2fast import DecryptionStatus, EncryptionError, EncryptionStatus
from uid2fast._http import HttpConfig
from uid2fast._results import DECRYPTION_STATUSES, ENCRYPTION_STATUSES
from uid2fast.metrics import Metrics, RefreshRecorder
from uid2fast.refresher import KeyRefresher
from uid2fast.testing import LocalOperator

NO_RETRY = HttpConfig(retries=0, connect_timeout=2, read_timeout=2)
DOMAIN = "news.example.com"


@pytest.fixture(scope="module")
def op():
    with LocalOperator() as operator:
        yield operator


@pytest.fixture(autouse=True)
def _no_faults(op):
    op.clear_faults()
    yield
    op.clear_faults()


def _bidstream(op, engine):
    return uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"), http=NO_RETRY, engine=engine)


def _sharing(op, engine):
    return uid2fast.SharingClient(op.base_url, *op.credentials("sharer"), http=NO_RETRY, engine=engine)


def _tally(results):
    return collections.Counter(r.status.name for r in results)


def _nonzero(mapping):
    return {k: v for k, v in mapping.items() if v}


# --- key set and refreshes -------------------------------------------------------------------------------------
def test_a_new_client_has_no_key_set_and_no_refresh(op, engine):
    m = _bidstream(op, engine).metrics()
    assert isinstance(m, Metrics)
    assert (m.keyset_age_seconds, m.newest_key_age_seconds, m.keyset_installed_time, m.key_count) == (None,) * 4
    assert (m.last_refresh_time, m.last_refresh_success, m.last_refresh_reason, m.last_success_time) == (None,) * 4
    assert (m.refresh_successes, m.refresh_failures) == (0, 0)
    assert set(m.decrypt) == {s.name for s in DecryptionStatus} and not any(m.decrypt.values())
    assert m.encrypt == {}  # a bidstream client does not encrypt
    assert set(_sharing(op, engine).metrics().encrypt) == {s.name for s in EncryptionStatus}


def test_refresh_success_then_failure_keeps_the_key_set(op, engine):
    client = _bidstream(op, engine)
    before = dt.datetime.now(dt.timezone.utc)
    assert client.refresh().success
    ok = client.metrics()
    assert ok.refresh_successes == 1 and ok.refresh_failures == 0
    assert ok.last_refresh_success is True and ok.last_refresh_reason is None
    assert before <= ok.last_refresh_time == ok.last_success_time <= dt.datetime.now(dt.timezone.utc)
    assert before <= ok.keyset_installed_time <= ok.last_refresh_time
    assert ok.key_count == len(client.keys)
    newest = max(k.created for k in client.keys.values())
    assert ok.newest_key_age_seconds == pytest.approx((dt.datetime.now(dt.timezone.utc) - newest).total_seconds(),
                                                      abs=5)
    assert 0 <= ok.keyset_age_seconds < 5
    time.sleep(0.05)
    assert client.metrics().keyset_age_seconds >= ok.keyset_age_seconds + 0.04  # the age grows

    op.fail_next(1, status=503, path="/v2/key/bidstream")
    assert not client.refresh().success
    bad = client.metrics()
    assert bad.refresh_successes == 1 and bad.refresh_failures == 1
    assert bad.last_refresh_success is False and "503" in bad.last_refresh_reason
    assert bad.last_refresh_time > ok.last_refresh_time
    assert bad.last_success_time == ok.last_success_time  # the last good refresh
    assert bad.keyset_installed_time == ok.keyset_installed_time  # the key set stayed
    assert bad.keyset_age_seconds > ok.keyset_age_seconds

    op.rotate_keys()
    assert client.refresh().success
    again = client.metrics()
    assert (again.refresh_successes, again.refresh_failures, again.last_refresh_success) == (2, 1, True)
    assert again.last_refresh_reason is None and again.keyset_installed_time > ok.keyset_installed_time
    assert again.key_count == len(client.keys) > ok.key_count


def test_a_wrong_secret_is_a_recorded_failure_without_the_secret(op, engine):
    api_key, _ = op.credentials("bidstream")
    wrong = "A" * 43 + "="  # base64 of 32 zero-ish bytes: a valid shape, not the client's secret
    client = uid2fast.BidstreamClient(op.base_url, api_key, wrong, http=NO_RETRY, engine=engine)
    assert not client.refresh().success
    m = client.metrics()
    assert (m.refresh_successes, m.refresh_failures, m.last_refresh_success) == (0, 1, False)
    assert m.last_refresh_reason and wrong not in m.last_refresh_reason and api_key not in m.last_refresh_reason
    assert m.keyset_age_seconds is None and m.last_success_time is None


def test_refresh_json_counts_as_a_refresh(op, engine):
    import json

    client = _sharing(op, engine)
    client._refresh_json(json.dumps({"body": {"keys": "not a list"}}))
    assert (client.metrics().refresh_failures, client.metrics().keyset_age_seconds) == (1, None)
    legacy = uid2fast.Uid2Client.create_uid2(op.base_url, *op.credentials("sharer"), http=NO_RETRY, engine=engine)
    with pytest.raises(Exception, match="keys body"):  # the official client raises a bare Exception(reason)
        legacy.refresh_json(json.dumps({"body": None}))
    assert legacy.metrics().refresh_failures == 1 and legacy.metrics().last_refresh_success is False


# --- status counts --------------------------------------------------------------------------------------------
def test_bidstream_decrypt_counts_each_status(op, engine):
    client = _bidstream(op, engine)
    token = op.issue_token(email="alice@example.com")
    assert client.decrypt_token_into_raw_uid(token, DOMAIN).status is DecryptionStatus.NOT_INITIALIZED
    assert client.refresh().success
    results = [client.decrypt_token_into_raw_uid(token, DOMAIN) for _ in range(3)]
    results.append(client.decrypt_token_into_raw_uid("not a token"))
    results.append(client.decrypt_token_into_raw_uid(None))  # malformed input: a status, counted too
    results.append(client.decrypt_token_into_raw_uid(op.issue_token(email="bob@example.com", client_side=True),
                                                     "other.example.org"))
    results.append(client.decrypt_token_into_raw_uid(op.issue_token(email="c@example.com",
                                                                    expires=op.now_ms() - 60_000), DOMAIN))
    expected = _tally(results) + collections.Counter({"NOT_INITIALIZED": 1})
    assert expected["SUCCESS"] == 3 and expected["INVALID_PAYLOAD"] == 2 and len(expected) >= 4
    assert _nonzero(client.metrics().decrypt) == dict(expected)

    batch = client.decrypt_tokens_into_raw_uids([token, "junk", token, None], [DOMAIN] * 4)
    expected += collections.Counter({s.name: n for s, n in batch.status_counts().items()})
    assert _nonzero(client.metrics().decrypt) == dict(expected)
    assert client.metrics().decrypt["SUCCESS"] == 5


def test_sharing_encrypt_and_decrypt_counts(op, engine):
    client = _sharing(op, engine)
    uid = op.raw_uid(email="alice@example.com")
    assert client.encrypt_raw_uid_into_token(uid).status is EncryptionStatus.NOT_INITIALIZED
    assert client.refresh().success
    tokens = [client.encrypt_raw_uid_into_token(uid) for _ in range(4)]
    assert all(t.success for t in tokens)
    bad_keyset = client.encrypt_raw_uid_into_token(uid, keyset_id=987654)
    assert not bad_keyset.success
    decrypted = [client.decrypt_token_into_raw_uid(t.encrypted_data) for t in tokens]
    decrypted.append(client.decrypt_token_into_raw_uid(None))
    m = client.metrics()
    assert _nonzero(m.encrypt) == {"NOT_INITIALIZED": 1, "SUCCESS": 4, bad_keyset.status.name: 1}
    assert _nonzero(m.decrypt) == dict(_tally(decrypted)) and m.decrypt["SUCCESS"] == 4

    enc = client.encrypt_raw_uids_into_tokens([uid, uid, uid])
    dec = client.decrypt_tokens_into_raw_uids(list(enc.tokens) + [None])
    m = client.metrics()
    assert m.encrypt["SUCCESS"] == 7 and m.decrypt["SUCCESS"] == 7
    assert m.decrypt["INVALID_PAYLOAD"] == 2 and int(dec.success.sum()) == 3


def test_legacy_client_counts_the_statuses_it_raises(op, engine):
    client = uid2fast.Uid2Client.create_uid2(op.base_url, *op.credentials("sharer"), http=NO_RETRY, engine=engine)
    with pytest.raises(EncryptionError):
        client.encrypt(op.raw_uid(email="alice@example.com"))  # no keys yet
    client.refresh_keys()
    token = client.encrypt(op.raw_uid(email="alice@example.com"))
    assert client.decrypt(token).uid == op.raw_uid(email="alice@example.com")
    with pytest.raises(EncryptionError, match="invalid payload"):
        client.decrypt(None)
    with pytest.raises(EncryptionError):
        client.decrypt(op.issue_token(email="x@example.com", expires=op.now_ms() - 60_000))
    m = client.metrics()
    assert _nonzero(m.encrypt) == {"NOT_INITIALIZED": 1, "SUCCESS": 1}
    assert m.decrypt["SUCCESS"] == 1 and m.decrypt["INVALID_PAYLOAD"] == 1 and sum(m.decrypt.values()) == 3
    assert (m.refresh_successes, m.last_refresh_success, m.key_count) == (1, True, len(client.keys))


def test_counts_are_exact_under_threads(op, engine):
    client = _sharing(op, engine)
    assert client.refresh().success
    uid = op.raw_uid(email="alice@example.com")
    token = client.encrypt_raw_uid_into_token(uid).encrypted_data
    assert client.metrics().encrypt["SUCCESS"] == 1
    n_threads, calls = 8, (400 if engine.NAME == "c" else 60)
    start = threading.Barrier(n_threads)

    def work(i):
        start.wait()
        for j in range(calls):
            if j % 2:
                client.decrypt_token_into_raw_uid(token)
            else:
                client.decrypt_token_into_raw_uid(None if i % 2 else token)
            if j % 10 == 0:
                client.decrypt_tokens_into_raw_uids([token, None])
            client.encrypt_raw_uid_into_token(uid)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    batches = n_threads * len(range(0, calls, 10))
    bad = (n_threads // 2) * (calls // 2)
    m = client.metrics()
    assert m.decrypt["INVALID_PAYLOAD"] == bad + batches
    assert m.decrypt["SUCCESS"] == n_threads * calls - bad + batches
    assert m.encrypt["SUCCESS"] == n_threads * calls + 1 and sum(m.encrypt.values()) == n_threads * calls + 1


def test_status_counter_both_engines(engine):
    counter = engine.StatusCounter(DECRYPTION_STATUSES)
    counter.add_status(DecryptionStatus.INVALID_PAYLOAD)  # codes 4 and 13 are both INVALID_PAYLOAD: the first
    counter.add(5, 3)
    counter.add_codes(np.array([0, 0, 12, 4], dtype=np.uint8))
    counter.add_codes(np.zeros(0, dtype=np.uint8))
    assert counter.counts() == (2, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 1, 0)
    with pytest.raises(ValueError):
        counter.add_codes(np.array([0, 14], dtype=np.uint8))  # out of range: nothing of it counted
    with pytest.raises(ValueError):
        counter.add_status(EncryptionStatus.SUCCESS)
    with pytest.raises(ValueError):
        counter.add(14)
    with pytest.raises(ValueError):
        counter.add_codes(np.array([0], dtype=np.int64))
    assert counter.counts() == (2, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 1, 0)
    assert engine.StatusCounter(ENCRYPTION_STATUSES).counts() == (0,) * 6
    with pytest.raises(ValueError):
        engine.StatusCounter(())

    shared = engine.StatusCounter(ENCRYPTION_STATUSES)
    column = np.array([0, 1, 1, 5], dtype=np.uint8)

    def hammer():
        for _ in range(2000):
            shared.add_status(EncryptionStatus.KEYS_NOT_SYNCED)
            shared.add(0)
        for _ in range(200):
            shared.add_codes(column)

    run_threads(hammer, 6, 60)
    assert shared.counts() == (6 * 2200, 6 * 400, 0, 0, 6 * 2000, 6 * 200)


# --- refreshers -----------------------------------------------------------------------------------------------
def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_key_refresher_metrics(op, engine):
    client = _bidstream(op, engine)
    refresher = KeyRefresher(client, interval=60, retry_interval=60, timeout=10)
    assert refresher.metrics().refresh_successes == 0 and refresher.metrics().keyset_age_seconds is None
    assert refresher.refresh_now()
    op.fail_next(1, status=500, path="/v2/key/bidstream")
    assert not refresher.refresh_now()
    client.decrypt_token_into_raw_uid(op.issue_token(email="a@example.com"), DOMAIN)
    m = refresher.metrics()
    assert (m.refresh_successes, m.refresh_failures, m.last_refresh_success) == (1, 1, False)
    assert "500" in m.last_refresh_reason
    assert m.key_count == len(client.keys) and m.keyset_age_seconds is not None
    assert m.decrypt["SUCCESS"] == 1  # the client's counts

    op.delay_next(1, 1.0, path="/v2/key/bidstream")  # an attempt the refresher abandons; the client finishes it
    assert not refresher.refresh_now(timeout=0.2)
    m = refresher.metrics()
    assert m.refresh_failures == 2 and "did not finish" in m.last_refresh_reason
    assert _wait(lambda: client.metrics().refresh_successes == 2)  # the abandoned attempt ends on the client


def test_key_refresher_without_client_metrics_records_the_keys_it_installed():
    class Plain:
        keys = None

        def refresh(self):
            return uid2fast.RefreshResponse.make_error("no operator here") if self.keys is None else \
                uid2fast.RefreshResponse.make_success(self.keys)

    plain = Plain()
    refresher = KeyRefresher(plain, interval=60, timeout=5)
    assert not refresher.refresh_now()
    m = refresher.metrics()
    assert (m.refresh_failures, m.last_refresh_reason, m.keyset_age_seconds) == (1, "no operator here", None)
    plain.keys = uid2fast.EncryptionKeysCollection([])
    assert refresher.refresh_now()
    m = refresher.metrics()
    assert m.refresh_successes == 1 and m.key_count == 0 and m.keyset_age_seconds is not None
    assert m.decrypt == {} and m.newest_key_age_seconds is None


def test_auto_refresher_metrics(op, engine):
    from uid2fast.auto_refresh import EncryptionKeysAutoRefresher

    client = uid2fast.Uid2Client.create_uid2(op.base_url, *op.credentials("sharer"), http=NO_RETRY, engine=engine)
    op.fail_next(1, status=503, path="/v2/key/sharing")
    with EncryptionKeysAutoRefresher(client, dt.timedelta(seconds=60), dt.timedelta(seconds=0.05)) as refresher:
        assert _wait(lambda: refresher.current_result().ready)
        m = refresher.metrics()
    assert (m.refresh_successes, m.refresh_failures, m.last_refresh_success) == (1, 1, True)
    assert m.key_count == len(client.keys) and m.keyset_age_seconds is not None and m.encrypt["SUCCESS"] == 0


def test_refresh_recorder_for_other_refreshers():
    now = [1000.0]
    mono = [50.0]
    recorder = RefreshRecorder(clock=lambda: now[0], monotonic=lambda: mono[0])
    recorder.record(False, ValueError("boom"))
    recorder.record_response(uid2fast.RefreshResponse.make_error("HTTP 503"))
    keys = uid2fast.EncryptionKeysCollection([uid2fast.EncryptionKey(
        1, -1, dt.datetime.fromtimestamp(900, dt.timezone.utc), dt.datetime.fromtimestamp(900, dt.timezone.utc),
        dt.datetime.fromtimestamp(5000, dt.timezone.utc), b"\0" * 32)])
    recorder.keys_installed(keys)
    recorder.record(True)
    now[0], mono[0] = 1030.0, 80.5
    m = recorder.snapshot()
    assert (m.refresh_successes, m.refresh_failures, m.last_refresh_success) == (1, 2, True)
    assert m.last_refresh_reason is None
    assert m.keyset_age_seconds == 30.5 and m.newest_key_age_seconds == 130.0 and m.key_count == 1
    assert m.last_success_time == dt.datetime.fromtimestamp(1000, dt.timezone.utc)
    d = m.as_dict()
    assert d["last_success_time"] == "1970-01-01T00:16:40+00:00" and d["decrypt"] == {}
    with pytest.raises(dataclasses_frozen_error()):
        m.refresh_failures = 0


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


# --- Prometheus -----------------------------------------------------------------------------------------------
def _scrape(registry):
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    samples = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_prometheus_exposition_parses_back(op, engine):
    pytest.importorskip("prometheus_client", reason="the [prometheus] extra is not installed")
    from prometheus_client import CollectorRegistry

    from uid2fast.metrics.prometheus import register

    bid, sharer = _bidstream(op, engine), _sharing(op, engine)
    registry = CollectorRegistry()
    collector = register({"bids": bid}, registry)
    collector.add("sharing", sharer)
    assert bid.refresh().success and sharer.refresh().success
    op.fail_next(1, status=503, path="/v2/key/sharing")
    assert not sharer.refresh().success
    token = op.issue_token(email="alice@example.com")
    for _ in range(3):
        bid.decrypt_token_into_raw_uid(token, DOMAIN)
    bid.decrypt_token_into_raw_uid(None)
    sharer.encrypt_raw_uids_into_tokens([op.raw_uid(email="alice@example.com")] * 2)

    age_before = bid.metrics().keyset_age_seconds
    s = _scrape(registry)
    bm, sm = bid.metrics(), sharer.metrics()
    assert s[("uid2fast_decrypt_total", (("client", "bids"), ("status", "success")))] == 3
    assert s[("uid2fast_decrypt_total", (("client", "bids"), ("status", "invalid_payload")))] == 1
    assert s[("uid2fast_decrypt_total", (("client", "bids"), ("status", "expired_token")))] == 0
    assert ("uid2fast_encrypt_total", (("client", "bids"), ("status", "success"))) not in s
    assert s[("uid2fast_encrypt_total", (("client", "sharing"), ("status", "success")))] == 2
    assert s[("uid2fast_key_refresh_total", (("client", "bids"), ("result", "success")))] == 1
    assert s[("uid2fast_key_refresh_total", (("client", "sharing"), ("result", "failure")))] == 1
    assert s[("uid2fast_last_refresh_success", (("client", "sharing"),))] == 0
    assert s[("uid2fast_last_refresh_success", (("client", "bids"),))] == 1
    assert s[("uid2fast_keyset_keys", (("client", "bids"),))] == bm.key_count
    assert s[("uid2fast_last_successful_refresh_timestamp_seconds", (("client", "sharing"),))] == \
        pytest.approx(sm.last_success_time.timestamp())
    assert s[("uid2fast_last_refresh_timestamp_seconds", (("client", "sharing"),))] == \
        pytest.approx(sm.last_refresh_time.timestamp())
    age = s[("uid2fast_keyset_age_seconds", (("client", "bids"),))]
    assert age_before <= age <= bm.keyset_age_seconds  # read at scrape time
    assert s[("uid2fast_newest_key_age_seconds", (("client", "bids"),))] == \
        pytest.approx(bm.newest_key_age_seconds, abs=5)
    info = [k for k in s if k[0] == "uid2fast_last_refresh_info" and ("client", "sharing") in k[1]]
    assert len(info) == 1 and ("result", "failure") in info[0][1]
    assert "503" in dict(info[0][1])["reason"]

    with pytest.raises(ValueError):
        collector.add("bids", sharer)
    collector.remove("bids")
    assert not [k for k in _scrape(registry) if ("client", "bids") in k[1]]


def test_prometheus_leaves_out_what_has_no_value_and_a_broken_source(op, engine):
    pytest.importorskip("prometheus_client", reason="the [prometheus] extra is not installed")
    from prometheus_client import CollectorRegistry

    from uid2fast.metrics.prometheus import MetricsCollector

    class Broken:
        def metrics(self):
            raise RuntimeError("broken")

    registry = CollectorRegistry()
    registry.register(MetricsCollector({"fresh": _bidstream(op, engine), "broken": Broken()}))
    s = _scrape(registry)
    assert not [k for k in s if ("client", "broken") in k[1]]
    assert not [k for k in s if k[0] in ("uid2fast_keyset_age_seconds", "uid2fast_last_refresh_info",
                                         "uid2fast_last_refresh_timestamp_seconds")]
    assert s[("uid2fast_key_refresh_total", (("client", "fresh"), ("result", "failure")))] == 0
    with pytest.raises(TypeError):
        MetricsCollector({"x": object()})
    with pytest.raises(ValueError):
        registry.register(MetricsCollector())  # the same metric names twice in one registry


def test_prometheus_module_without_prometheus_client_names_the_extra():
    code = ("import sys; sys.modules['prometheus_client'] = None\n"
            "try:\n    import uid2fast.metrics.prometheus\n"
            "except ImportError as e:\n    print(e)\nelse:\n    print('imported')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "uid2fast[prometheus]" in out.stdout and "prometheus_client" in out.stdout
    out = subprocess.run([sys.executable, "-c", "import sys; sys.modules['prometheus_client'] = None\n"
                          "import uid2fast, uid2fast.metrics; print('ok')"], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "ok"  # the base package never needs it


def test_overhead_benchmark_checks_then_times(capsys, engine):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_metrics.py"
    spec = importlib.util.spec_from_file_location("bench_metrics", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--calls", "200", "--reps", "2", "--threads", "1", "2", "--engine", engine.NAME[:2]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"engine={engine.NAME[:2]}") and len(lines) == 4
    assert [line.split()[0] for line in lines[2:]] == ["1", "2"]
