"""KeyRefresher and EncryptionKeysAutoRefresher against the local operator."""
import datetime as dt
import threading
import time

import pytest

from uid2fast._http import HttpConfig
from uid2fast.auto_refresh import EncryptionKeysAutoRefreshResult, EncryptionKeysAutoRefresher
from uid2fast.refresher import KeyRefresher, KeyRefreshError
from uid2fast.testing import LocalOperator

NO_RETRY = HttpConfig(retries=0, connect_timeout=2, read_timeout=2)


def _bidstream_client(op):
    import uid2fast

    return uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"), http=NO_RETRY)


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_keeps_keys_while_the_operator_fails_then_recovers():
    from uid2fast import DecryptionStatus

    with LocalOperator() as op:
        client = _bidstream_client(op)
        errors = []
        refresher = KeyRefresher(client, interval=dt.timedelta(seconds=0.05),
                                 retry_interval=dt.timedelta(seconds=0.02), on_error=errors.append,
                                 timeout=10)
        with refresher:
            assert refresher.wait_ready(10)
            token = op.issue_token(email="alice@example.com")
            uid = op.raw_uid(email="alice@example.com")
            stop = threading.Event()
            results = []

            def decrypt_loop():
                while not stop.is_set():
                    r = client.decrypt_token_into_raw_uid(token, None)
                    results.append((r.status, r.uid))

            reader = threading.Thread(target=decrypt_loop)
            reader.start()
            try:
                assert _wait(lambda: refresher.refresh_count >= 2)
                op.fail_next(5, status=503, path="/v2/key/bidstream")
                assert _wait(lambda: refresher.failure_count >= 5)
                successes_before = refresher.refresh_count
                assert _wait(lambda: refresher.refresh_count > successes_before)  # recovered
                assert refresher.last_error is None
            finally:
                stop.set()
                reader.join(10)
        assert not refresher.running
        assert len(errors) == 5 and all(isinstance(e, KeyRefreshError) for e in errors)
        assert "503" in str(errors[0]) and "/v2/key/bidstream" in str(errors[0])
        assert results and all(r == (DecryptionStatus.SUCCESS, uid) for r in results)
        failed = [r for r in op.requests if r.path == "/v2/key/bidstream" and r.status == 503]
        assert len(failed) == 5


def test_rotation_is_picked_up():
    with LocalOperator() as op:
        client = _bidstream_client(op)
        with KeyRefresher(client, interval=0.05, retry_interval=0.05, timeout=10) as refresher:
            assert refresher.wait_ready(10)
            op.rotate_keys()
            new_token = op.issue_token(email="bob@example.com")  # signed with the new keys
            assert _wait(lambda: client.decrypt_token_into_raw_uid(new_token, None).uid ==
                         op.raw_uid(email="bob@example.com"))
            assert refresher.last_success_time is not None and refresher.ready


def test_never_ready_when_the_operator_is_down():
    with LocalOperator() as op:
        client = _bidstream_client(op)
        op.fail_next(1000, status=500)
        refresher = KeyRefresher(client, retry_interval=0.02).start()
        try:
            assert not refresher.wait_ready(0.3)
            assert refresher.failure_count >= 2 and not refresher.ready
            assert refresher.last_success_time is None and refresher.last_error is not None
            assert repr(refresher).startswith("<KeyRefresher BidstreamClient running=True ready=False ")
        finally:
            refresher.stop()
        op.clear_faults()
        assert refresher.refresh_now() and refresher.ready and refresher.last_error is None


class _Legacy:
    """A client with only refresh_keys(), like the legacy Uid2Client: raises on failure."""

    def __init__(self, fail_times):
        self.fail_times = fail_times
        self.calls = 0
        self.keys = None

    def refresh_keys(self):
        self.calls += 1
        if self.calls <= self.fail_times:
            raise ConnectionError(f"down {self.calls}")
        self.keys = f"keys-{self.calls}"
        return self.keys


def test_works_with_a_refresh_keys_client_and_survives_a_bad_callback():
    legacy = _Legacy(fail_times=3)

    def bad_callback(exc):
        raise RuntimeError("callback bug")

    with KeyRefresher(legacy, interval=10, retry_interval=0.01, on_error=bad_callback) as refresher:
        assert refresher.wait_ready(5)
    assert refresher.failure_count == 3 and refresher.refresh_count == 1 and legacy.keys == "keys-4"


def test_legacy_uid2client_with_key_refresher():
    import uid2fast

    with LocalOperator() as op:
        client = uid2fast.Uid2ClientFactory.create(op.base_url, *op.credentials("sharer"))
        with KeyRefresher(client, interval=60) as refresher:
            assert refresher.wait_ready(10)
        encrypted = client.encrypt(op.raw_uid(email="c@example.com"))
        assert client.decrypt(encrypted).uid == op.raw_uid(email="c@example.com")


def test_argument_checks():
    with pytest.raises(TypeError):
        KeyRefresher(object())
    with pytest.raises(ValueError):
        KeyRefresher(_Legacy(0), interval=0)
    with pytest.raises(ValueError):
        KeyRefresher(_Legacy(0), retry_interval=dt.timedelta(seconds=-1))


# -- the official EncryptionKeysAutoRefresher -------------------------------------------------------
def test_auto_refresher_keeps_previous_keys_on_failure():
    legacy = _Legacy(fail_times=0)
    refresher = EncryptionKeysAutoRefresher(legacy, dt.timedelta(seconds=0.02), dt.timedelta(seconds=0.02))
    initial = refresher.current_result()
    assert not initial.ready and isinstance(initial.last_error[1], RuntimeError)
    assert not refresher.daemon  # as the official
    with refresher:
        assert _wait(lambda: refresher.current_result().ready)
        good = refresher.current_result()
        assert good.last_error is None and good.last_success_time is not None
        assert repr(good) == f"<{good.keys}, None>"  # the official __repr__ crashed here
        legacy.fail_times = 10 ** 9  # every later call fails
        assert _wait(lambda: refresher.current_result().last_error is not None)
        failed = refresher.current_result()
        assert failed.ready and failed.keys.startswith("keys-")
        assert failed.last_success_time is not None
        assert isinstance(failed.last_error[1], ConnectionError) and "down" in repr(failed)
    assert not refresher.is_alive()


def test_auto_refresh_result_repr_with_error():
    r = EncryptionKeysAutoRefreshResult(None, (ValueError, ValueError("x"), None), None)
    assert repr(r) == "<None, x>" and not r.ready
