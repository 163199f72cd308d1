"""Opt-out status client (/v2/optout/status) against the local operator."""
import base64
import datetime as dt
import hashlib

import pytest

from uid2fast._http import HttpConfig, Uid2HttpError
from uid2fast.optout_client import OptOutClient
from uid2fast.testing import LocalOperator

FAST = HttpConfig(backoff_base=0.001)


@pytest.fixture(scope="module")
def op():
    with LocalOperator() as operator:
        yield operator


def client(op, role="mapper", **kw):
    return OptOutClient(op.base_url, *op.credentials(role), http=FAST, **kw)


def fake_uid(i):
    return base64.b64encode(hashlib.sha256(b"uid%d" % i).digest()).decode()


def test_status_of_opted_out_and_active_uids(op):
    when = dt.datetime(2025, 3, 4, 5, 6, 7, 891000, tzinfo=dt.timezone.utc)
    opted = op.opt_out(email="gone@example.com", at=when)
    active = op.raw_uid(email="here@example.com")
    status = client(op).get_optout_status([opted, active, opted])
    assert status == {opted: when, active: None}
    assert status[opted].tzinfo is dt.timezone.utc


def test_test_identity_and_direct_raw_uid(op):
    uid = op.raw_uid(email="optout@example.com")  # opted out by default, as on the integration env
    op.opt_out(raw_uid=fake_uid(1), at=1_700_000_000_123)
    status = client(op, "sharer").get_optout_status([uid, fake_uid(1), fake_uid(2)])
    assert status[uid] is not None
    assert status[fake_uid(1)] == dt.datetime.fromtimestamp(1_700_000_000.123, tz=dt.timezone.utc)
    assert status[fake_uid(2)] is None


def test_chunks_of_5000(op):
    uids = [fake_uid(i) for i in range(100, 10_101)]  # 10,001
    op.opt_out(raw_uid=uids[-1])
    op.opt_out(raw_uid=uids[5000])
    op.requests.clear()
    status = client(op).get_optout_status(uids)
    assert op.request_count("/v2/optout/status") == 3
    assert len(status) == 10_001
    assert {u for u, t in status.items() if t is not None} == {uids[-1], uids[5000]}


def test_small_batches_in_parallel_equal_one_request(op):
    uids = [fake_uid(i) for i in range(20_000, 20_050)]
    for u in uids[::7]:
        op.opt_out(raw_uid=u)
    assert client(op, max_batch_size=6, max_in_flight=4).get_optout_status(uids) == \
        client(op).get_optout_status(uids)


def test_needs_an_authorised_role(op):
    with pytest.raises(Uid2HttpError) as info:
        client(op, "publisher").get_optout_status([fake_uid(1)])
    assert info.value.status == 401 and info.value.endpoint == "/v2/optout/status"


def test_input_validation(op):
    assert client(op).get_optout_status([]) == {}
    with pytest.raises(TypeError):
        client(op).get_optout_status([b"bytes"])
