"""Identity map v2/v3 and buckets against the local operator, including chunking beyond 5,000."""
import base64
import datetime as dt
import hashlib
import json
import time

import pytest

from uid2fast._http import HttpConfig, Uid2HttpError
from uid2fast.identity_map_client import IdentityMapClient
from uid2fast.identity_map_input import IdentityMapInput
from uid2fast.identity_map_v3_client import IdentityMapV3Client
from uid2fast.identity_map_v3_input import IdentityMapV3Input
from uid2fast.identity_map_v3_response import IdentityMapV3Response
from uid2fast.input_util import normalize_and_hash_email, normalize_and_hash_phone
from uid2fast.testing import LocalOperator
from uid2fast.unmapped_identity_reason import UnmappedIdentityReason

# identity map v2 is deprecated (a DeprecationWarning per call); these tests exercise it on purpose
pytestmark = pytest.mark.filterwarnings("ignore:/v2/identity:DeprecationWarning")

FAST = HttpConfig(backoff_base=0.001)


@pytest.fixture(scope="module")
def operator():
    with LocalOperator() as op:
        yield op


@pytest.fixture
def op(operator):
    operator.requests.clear()
    operator.clear_faults()
    return operator


def v2(op, **kw):
    return IdentityMapClient(op.base_url, *op.credentials("mapper"), http=FAST, **kw)


def v3(op, **kw):
    return IdentityMapV3Client(op.base_url, *op.credentials("mapper"), http=FAST, **kw)


def fake_hash(i):
    return base64.b64encode(hashlib.sha256(str(i).encode()).digest()).decode()


# -- v2 ---------------------------------------------------------------------------------------------
def test_v2_emails(op):
    emails = ["hopefully-not-opted-out@example.com", "Some.Thing+x@gmail.com", "something@gmail.com",
              "optout@example.com", "something@gmail.com"]
    response = v2(op).generate_identity_map(IdentityMapInput.from_emails(emails))
    assert response.is_success() and response.status == "success"
    for email in ("hopefully-not-opted-out@example.com", "Some.Thing+x@gmail.com", "something@gmail.com"):
        mapped = response.mapped_identities[email]
        assert mapped.get_raw_uid() == op.raw_uid(email=email)
        assert mapped.get_bucket_id() == op.bucket_id(email=email)
    # two raw inputs normalizing to one hash both get the result
    assert response.mapped_identities["Some.Thing+x@gmail.com"].get_raw_uid() == \
        response.mapped_identities["something@gmail.com"].get_raw_uid()
    assert response.unmapped_identities["optout@example.com"].get_reason() == "optout"
    assert set(response.mapped_identities) | set(response.unmapped_identities) == set(emails)


def test_v2_phones_and_hashes(op):
    r = v2(op).generate_identity_map(IdentityMapInput.from_phones(["+12345678901", "+00000000002"]))
    assert r.mapped_identities["+12345678901"].get_raw_uid() == op.raw_uid(phone="+12345678901")
    assert r.unmapped_identities["+00000000002"].get_reason() == "optout"
    h = normalize_and_hash_email("user@example.com")
    r = v2(op).generate_identity_map(IdentityMapInput.from_hashed_emails([h, "not-a-hash"]))
    assert r.mapped_identities[h].get_raw_uid() == op.raw_uid(email="user@example.com")
    assert r.unmapped_identities["not-a-hash"].get_reason() == "invalid identifier"
    ph = normalize_and_hash_phone("+12345678901")
    r = v2(op).generate_identity_map(IdentityMapInput.from_hashed_phones([ph]))
    assert r.mapped_identities[ph].get_raw_uid() == op.raw_uid(phone="+12345678901")


def test_v2_invalid_input_raises():
    with pytest.raises(ValueError):
        IdentityMapInput.from_emails(["email@example.com", "this is not an email"])
    with pytest.raises(ValueError):
        IdentityMapInput.from_phones(["+12345678901", "this is not a phone number"])


def test_v2_needs_the_mapper_role(op):
    client = IdentityMapClient(op.base_url, *op.credentials("publisher"), http=FAST)
    with pytest.raises(Uid2HttpError) as info:
        client.generate_identity_map(IdentityMapInput.from_emails(["a@example.com"]))
    assert info.value.status == 401


def test_v2_chunking_beyond_5000(op):
    n = 12_001
    emails = [f"user{i}@example.com" for i in range(n)] + ["optout@example.com", "user7@example.com"]
    response = v2(op).generate_identity_map(IdentityMapInput.from_emails(emails))
    assert op.request_count("/v2/identity/map") == 3  # 5,000 + 5,000 + 2,003
    assert len(response.mapped_identities) == n
    assert response.unmapped_identities["optout@example.com"].get_reason() == "optout"
    for i in (0, 4999, 5000, 9999, 10000, n - 1):
        assert response.mapped_identities[f"user{i}@example.com"].get_raw_uid() == \
            op.raw_uid(email=f"user{i}@example.com")


def test_v2_chunked_equals_single_request(op):
    hashes = [fake_hash(i) for i in range(53)] + ["bad"] + [fake_hash(3)]
    op.opt_out(email_hash=fake_hash(10))
    single = v2(op).generate_identity_map(IdentityMapInput.from_hashed_emails(hashes))
    op.requests.clear()
    chunked = v2(op, max_batch_size=7, max_in_flight=3).generate_identity_map(
        IdentityMapInput.from_hashed_emails(hashes))
    assert op.request_count("/v2/identity/map") == 8
    assert {k: (m.get_raw_uid(), m.get_bucket_id()) for k, m in single.mapped_identities.items()} == \
        {k: (m.get_raw_uid(), m.get_bucket_id()) for k, m in chunked.mapped_identities.items()}
    assert {k: u.get_reason() for k, u in single.unmapped_identities.items()} == \
        {k: u.get_reason() for k, u in chunked.unmapped_identities.items()} == \
        {"bad": "invalid identifier", fake_hash(10): "optout"}


def test_v2_chunk_failure_propagates(op):
    op.fail_next(1, status=500, path="/v2/identity/map")
    client = IdentityMapClient(op.base_url, *op.credentials("mapper"), http=HttpConfig(retries=0),
                               max_batch_size=10, max_in_flight=1)
    with pytest.raises(Uid2HttpError) as info:
        client.generate_identity_map(IdentityMapInput.from_hashed_emails([fake_hash(1000 + i) for i in range(35)]))
    assert info.value.status == 500 and info.value.endpoint == "/v2/identity/map"
    # a transient failure of one chunk is retried and the merge is complete
    op.fail_next(2, status=503, path="/v2/identity/map")
    r = v2(op, max_batch_size=10).generate_identity_map(
        IdentityMapInput.from_hashed_emails([fake_hash(1000 + i) for i in range(35)]))
    assert len(r.mapped_identities) == 35


def test_client_arguments_are_validated(op):
    with pytest.raises(ValueError):
        v2(op, max_batch_size=5001)
    with pytest.raises(ValueError):
        v3(op, max_in_flight=0)


# -- buckets ----------------------------------------------------------------------------------------
def test_identity_buckets():
    with LocalOperator(n_buckets=8) as op:
        client = v2(op)
        now = dt.datetime.now(dt.timezone.utc)
        assert client.get_identity_buckets(now - dt.timedelta(days=1)).buckets == []
        all_buckets = client.get_identity_buckets(now - dt.timedelta(days=365)).buckets
        assert sorted(b.get_bucket_id() for b in all_buckets) == [f"b{i:04d}" for i in range(8)]
        bucket = op.bucket_id(email="user@example.com")
        before = op.raw_uid(email="user@example.com")
        op.rotate_salts([bucket])
        response = client.get_identity_buckets(now - dt.timedelta(minutes=1))
        assert response.is_success() and [b.get_bucket_id() for b in response.buckets] == [bucket]
        updated = dt.datetime.fromisoformat(response.buckets[0].get_last_updated())
        assert abs(updated.replace(tzinfo=dt.timezone.utc) - now) < dt.timedelta(seconds=30)
        assert op.raw_uid(email="user@example.com") != before
        with pytest.raises(AttributeError):
            client.get_identity_buckets("2024-07-01T12:00:00")


# -- v3 ---------------------------------------------------------------------------------------------
def test_v3_mixed_input(op):
    hashed_email = normalize_and_hash_email("hashed@example.com")
    inp = (IdentityMapV3Input()
           .with_emails(["a@example.com", "optout@example.com"])
           .with_phone("+12345678901")
           .with_hashed_email(hashed_email)
           .with_hashed_phones(["not a hash"]))
    response = v3(op).generate_identity_map(inp)
    assert response.is_success()
    assert op.requests[-1].binary and op.requests[-1].path == "/v3/identity/map"
    mapped = response.mapped_identities
    assert mapped["a@example.com"].current_raw_uid == op.raw_uid(email="a@example.com")
    assert mapped["a@example.com"].previous_raw_uid is None
    assert mapped["+12345678901"].current_raw_uid == op.raw_uid(phone="+12345678901")
    assert mapped[hashed_email].current_raw_uid == op.raw_uid(email="hashed@example.com")
    assert mapped["a@example.com"].refresh_from.tzinfo is not None
    assert mapped["a@example.com"].refresh_from > dt.datetime.now(dt.timezone.utc)
    assert response.unmapped_identities["optout@example.com"].reason is UnmappedIdentityReason.OPTOUT
    bad = response.unmapped_identities["not a hash"]
    assert bad.reason is UnmappedIdentityReason.INVALID_IDENTIFIER and bad.raw_reason == "invalid identifier"
    response.mapped_identities.clear()  # a copy, as the official
    assert len(response.mapped_identities) == 3


def test_v3_previous_uid_after_salt_rotation():
    with LocalOperator() as op:
        client = v3(op)
        first = client.generate_identity_map(IdentityMapV3Input.from_emails(["r@example.com"]))
        old = first.mapped_identities["r@example.com"].current_raw_uid
        op.rotate_salts([op.bucket_id(email="r@example.com")])
        second = client.generate_identity_map(IdentityMapV3Input.from_emails(["r@example.com"]))
        m = second.mapped_identities["r@example.com"]
        assert m.previous_raw_uid == old and m.current_raw_uid != old
        assert m.current_raw_uid == op.raw_uid(email="r@example.com")


def test_v3_chunking_keeps_index_alignment(op):
    emails = [f"e{i}@example.com" for i in range(6_000)]
    phones = [f"+1{i:010d}" for i in range(4_500)]
    inp = IdentityMapV3Input.from_emails(emails).with_phones(phones).with_email("optout@example.com")
    response = v3(op).generate_identity_map(inp)
    assert op.request_count("/v3/identity/map") == 3  # 10,501 identities
    mapped = response.mapped_identities
    assert len(mapped) == 10_500
    for i in (0, 4_999, 5_000, 5_999):
        assert mapped[emails[i]].current_raw_uid == op.raw_uid(email=emails[i])
    for i in (0, 3_999, 4_000, 4_499):
        assert mapped[phones[i]].current_raw_uid == op.raw_uid(phone=phones[i])
    assert response.unmapped_identities["optout@example.com"].reason is UnmappedIdentityReason.OPTOUT


def test_v3_chunked_equals_single():
    def inp():
        return IdentityMapV3Input.from_hashed_emails([fake_hash(i) for i in range(9)]).with_hashed_phones(
            [fake_hash(100 + i) for i in range(8)] + ["x"])
    # A frozen operator clock: refresh_from is "now + 1 day" in seconds, which differs between two calls
    # that straddle a second boundary.
    now_ms = int(time.time() * 1000)
    with LocalOperator(clock=lambda: now_ms) as op:
        single = v3(op).generate_identity_map(inp())
        chunked = v3(op, max_batch_size=4).generate_identity_map(inp())
    assert {k: (m.current_raw_uid, m.previous_raw_uid, m.refresh_from) for k, m in single.mapped_identities.items()} \
        == {k: (m.current_raw_uid, m.previous_raw_uid, m.refresh_from) for k, m in chunked.mapped_identities.items()}
    assert {k: u.raw_reason for k, u in single.unmapped_identities.items()} == \
        {k: u.raw_reason for k, u in chunked.unmapped_identities.items()} == {"x": "invalid identifier"}


def test_v3_response_tolerates_unknown_keys():
    # docs/differences.md#identity-map-v3-keys: the official SDK raised ValueError for keys outside
    # email/phone/email_hash/phone_hash.
    inp = IdentityMapV3Input.from_emails(["a@example.com"])
    payload = json.dumps({"status": "success", "body": {
        "email_hash": [{"u": "uid", "p": None, "r": 1735689601}], "phone_hash": [], "future_field": [1]}})
    response = IdentityMapV3Response(payload, inp)
    assert response.mapped_identities["a@example.com"].current_raw_uid == "uid"
    with pytest.raises(ValueError, match="correct keys"):
        IdentityMapV3Response(json.dumps({"status": "success", "body": {"email_hash": [{"u": "x"}]}}), inp)
    with pytest.raises(ValueError, match="Got unexpected identity map status: error"):
        IdentityMapV3Response('{"status":"error","body":{}}', inp)
