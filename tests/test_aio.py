"""uid2fast.aio end to end against a LocalOperator: every asyncio client, on both engines where keys are held.

Each test drives its coroutines with ``asyncio.run`` (no asyncio test plugin needed). The asyncio clients
are checked against their blocking twins: the same results, the same signatures, the same failures.
"""
import asyncio
import datetime as dt
import inspect
import os
import subprocess
import sys

import pytest

import uid2fast
from uid2fast import (
    BidstreamClient, DecryptionStatus, HttpConfig, IdentityMapV3Client, IdentityMapV3Input, OptOutClient,
    SharingClient, TokenGenerateInput, Uid2HttpError, Uid2PublisherClient,
)

httpx = pytest.importorskip("httpx")  # the [async] extra

from uid2fast.aio import (  # noqa: E402
    AsyncBidstreamClient, AsyncHttpTransport, AsyncIdentityMapV3Client, AsyncKeyRefresher, AsyncOptOutClient,
    AsyncPublisherClient, AsyncSharingClient,
)
from uid2fast.testing import LocalOperator  # noqa: E402

FAST = HttpConfig(retries=2, backoff_base=0.001, backoff_max=0.01, connect_timeout=2, read_timeout=5)
DOMAIN = "news.example.com"
SITE = 1001
SRC = os.path.dirname(os.path.dirname(uid2fast.__file__))


@pytest.fixture(scope="module")
def op():
    with LocalOperator(site_data={SITE: [DOMAIN]}) as operator:
        yield operator


def run(coro):
    return asyncio.run(coro)


# ---------------------------------------------------------------------------------------------------
# key holders, both engines
# ---------------------------------------------------------------------------------------------------
def test_bidstream_refresh_then_decrypt_as_the_blocking_client(op, engine):
    tokens = [op.issue_token(email=f"a{i}@example.com") for i in range(20)]
    tokens += [op.issue_token(email="cstg@example.com", client_side=True), "not a token", tokens[0][:-4]]
    domains = [DOMAIN] * (len(tokens) - 3) + ["elsewhere.example", DOMAIN, DOMAIN]

    async def main():
        async with AsyncBidstreamClient(op.base_url, *op.credentials("bidstream"), http=FAST, engine=engine) as c:
            assert c.keys is None
            r = await c.refresh()
            assert r.success, r.reason
            assert c.keys._engine is engine
            return c, [c.decrypt_token_into_raw_uid(t, d) for t, d in zip(tokens, domains)], \
                c.decrypt_tokens_into_raw_uids(tokens, domains)

    client, scalar, batch = run(main())
    sync = BidstreamClient(op.base_url, *op.credentials("bidstream"), engine=engine)
    assert sync.refresh().success
    want = [sync.decrypt_token_into_raw_uid(t, d) for t, d in zip(tokens, domains)]
    assert [(r.status, r.uid, r.site_id) for r in scalar] == [(r.status, r.uid, r.site_id) for r in want]
    assert list(batch.status) == [r.status for r in want] or [batch[i].status for i in range(len(tokens))] == \
        [r.status for r in want]
    assert scalar[0].uid == op.raw_uid(email="a0@example.com")
    assert scalar[-3].status == DecryptionStatus.DOMAIN_NAME_CHECK_FAILED
    assert scalar[-2].status == DecryptionStatus.INVALID_PAYLOAD
    assert "secret" not in repr(client).lower() and op.credentials("bidstream")[0] not in repr(client)


def test_sharing_round_trip(op, engine):
    raw = [op.raw_uid(email=f"s{i}@example.com") for i in range(10)]

    async def main():
        async with AsyncSharingClient(op.base_url, *op.credentials("sharer"), http=FAST, engine=engine) as c:
            assert (await c.refresh()).success
            one = c.encrypt_raw_uid_into_token(raw[0])
            many = c.encrypt_raw_uids_into_tokens(raw)
            return one, many, c.decrypt_token_into_raw_uid(one.encrypted_data), \
                c.decrypt_tokens_into_raw_uids(many.tokens)

    one, many, back, batch = run(main())
    assert one.success and back.uid == raw[0]
    assert [batch[i].uid for i in range(len(raw))] == raw


def test_a_failed_refresh_keeps_the_last_good_keys(op, engine):
    token = op.issue_token(email="keep@example.com")

    async def main():
        async with AsyncBidstreamClient(op.base_url, *op.credentials("bidstream"), http=FAST, engine=engine) as c:
            assert (await c.refresh()).success
            good = c.keys
            op.fail_next(10, 503, path="/v2/key/bidstream")
            r503 = await c.refresh()
            op.clear_faults()
            op.malformed_next(1, path="/v2/key/bidstream")
            bad = await c.refresh()
            assert c.keys is good
            return r503, bad, c.decrypt_token_into_raw_uid(token, None)

    r503, bad, decrypted = run(main())
    assert not r503.success and "HTTP 503" in r503.reason and "after 3 attempts" in r503.reason
    assert not bad.success and bad.reason
    assert decrypted.uid == op.raw_uid(email="keep@example.com")


def test_metrics_are_kept_as_by_the_blocking_clients(op, engine):
    from uid2fast.metrics.prometheus import register

    prometheus_client = pytest.importorskip("prometheus_client")
    token = op.issue_token(email="metrics@example.com")

    async def main():
        async with AsyncBidstreamClient(op.base_url, *op.credentials("bidstream"), http=FAST, engine=engine) as c:
            assert (await c.refresh()).success
            op.fail_next(3, 503, path="/v2/key/bidstream")
            assert not (await c.refresh()).success
            c.decrypt_token_into_raw_uid(token, None)
            c.decrypt_token_into_raw_uid("not a token")
            c.decrypt_tokens_into_raw_uids([token, token])
            refresher = AsyncKeyRefresher(c, interval=60)
            op.fail_next(3, 500, path="/v2/key/bidstream")  # every try of one refresh (FAST retries twice)
            assert await refresher.refresh_now(timeout=10) is False
            assert await refresher.refresh_now(timeout=10) is True
            assert repr(refresher) == ("<AsyncKeyRefresher AsyncBidstreamClient running=False ready=True "
                                       "refreshes=1 failures=1>")
            return c.metrics(), refresher.metrics(), c

    m, r, client = run(main())
    assert (m.refresh_successes, m.refresh_failures) == (2, 2)  # the refresher's attempts go through refresh()
    assert m.last_refresh_success is True and m.key_count > 0 and m.keyset_age_seconds >= 0
    assert m.decrypt["SUCCESS"] == 3 and m.decrypt["INVALID_PAYLOAD"] == 1
    assert (r.refresh_successes, r.refresh_failures) == (1, 1) and r.decrypt["SUCCESS"] == 3
    registry = prometheus_client.CollectorRegistry()
    register({"bid": client}, registry)
    scrape = prometheus_client.generate_latest(registry).decode()
    assert 'uid2fast_decrypt_total{client="bid",status="success"} 3.0' in scrape
    assert 'uid2fast_key_refresh_total{client="bid",result="failure"} 2.0' in scrape


def test_a_cancelled_refresh_swaps_nothing_in(op, engine):
    async def main():
        async with AsyncBidstreamClient(op.base_url, *op.credentials("bidstream"), http=FAST, engine=engine) as c:
            assert (await c.refresh()).success
            good = c.keys
            op.rotate_keys()
            op.delay_next(1, 3.0, path="/v2/key/bidstream")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(c.refresh(), 0.3)
            assert c.keys is good
            assert (await c.refresh()).success and c.keys is not good  # the client still works

    run(main())


def test_a_secret_that_is_not_base64_fails_refresh_with_a_reason_as_the_blocking_client(op):
    async def main():
        async with AsyncBidstreamClient(op.base_url, op.credentials("bidstream")[0], "not-base64!") as c:
            return await c.refresh()

    r = run(main())
    want = BidstreamClient(op.base_url, op.credentials("bidstream")[0], "not-base64!").refresh()
    assert not r.success and r.reason == want.reason


# ---------------------------------------------------------------------------------------------------
# operator clients
# ---------------------------------------------------------------------------------------------------
def test_publisher_generate_refresh_validate(op):
    email = TokenGenerateInput.from_email("pub@example.com")

    async def main():
        async with AsyncPublisherClient(op.base_url, *op.credentials("publisher"), http=FAST) as p:
            generated = await p.generate_token(email)
            identity = generated.get_identity()
            refreshed = await p.refresh_token(identity)
            valid = await p.validate_token(identity.get_advertising_token(), email)
            opted = await p.generate_token(TokenGenerateInput.from_email("optout@example.com"))
            return generated, refreshed, valid, opted

    generated, refreshed, valid, opted = run(main())
    sync = Uid2PublisherClient(op.base_url, *op.credentials("publisher"))
    want = sync.generate_token(email)
    assert type(generated) is type(want) and type(refreshed) is type(sync.refresh_token(want.get_identity()))
    assert generated.is_success() and refreshed.get_identity() is not None and valid is True
    assert opted.is_optout()
    bid = BidstreamClient(op.base_url, *op.credentials("bidstream"))
    assert bid.refresh().success
    uid = bid.decrypt_token_into_raw_uid(refreshed.get_identity().get_advertising_token(), None).uid
    assert uid == op.raw_uid(email="pub@example.com")


def test_identity_map_v3_split_and_whole_match_the_blocking_client(op):
    emails = [f"m{i}@example.com" for i in range(11)]
    phones = ["+15551230000", "+15551230001"]

    def make():
        return IdentityMapV3Input.from_emails(emails).with_phones(phones)

    async def main():
        async with AsyncIdentityMapV3Client(op.base_url, *op.credentials("mapper"), http=FAST) as whole, \
                AsyncIdentityMapV3Client(op.base_url, *op.credentials("mapper"), http=FAST, max_batch_size=3,
                                         max_in_flight=2) as split:
            return await whole.generate_identity_map(make()), await split.generate_identity_map(make())

    before = op.request_count("/v3/identity/map")
    whole, split = run(main())
    assert op.request_count("/v3/identity/map") - before == 1 + 5
    want = IdentityMapV3Client(op.base_url, *op.credentials("mapper")).generate_identity_map(make())
    for got in (whole, split):
        assert type(got) is type(want)
        assert {k: v.current_raw_uid for k, v in got.mapped_identities.items()} == \
            {k: v.current_raw_uid for k, v in want.mapped_identities.items()}
    assert whole.mapped_identities["m0@example.com"].current_raw_uid == op.raw_uid(email="m0@example.com")


def test_optout_status(op):
    uids = [op.raw_uid(email=f"o{i}@example.com") for i in range(7)]
    op.opt_out(email="o3@example.com")

    async def main():
        async with AsyncOptOutClient(op.base_url, *op.credentials("mapper"), http=FAST, max_batch_size=2) as c:
            return await c.get_optout_status(uids + uids[:2])

    got = run(main())
    assert list(got) == uids and isinstance(got[uids[3]], dt.datetime)
    assert [k for k, v in got.items() if v is not None] == [uids[3]]
    assert got == OptOutClient(op.base_url, *op.credentials("mapper")).get_optout_status(uids)


def test_retries_and_the_statuses_never_retried(op):
    email = TokenGenerateInput.from_email("retry@example.com")

    async def main():
        async with AsyncPublisherClient(op.base_url, *op.credentials("publisher"), http=FAST) as p:
            op.fail_next(2, 503, path="/v2/token/generate")
            before = op.request_count("/v2/token/generate")
            assert (await p.generate_token(email)).is_success()
            assert op.request_count("/v2/token/generate") - before == 3
            for status in (400, 401, 403):
                op.fail_next(1, status, path="/v2/token/generate")
                before = op.request_count("/v2/token/generate")
                with pytest.raises(Uid2HttpError) as info:
                    await p.generate_token(email)
                assert info.value.code == status and op.request_count("/v2/token/generate") - before == 1
            op.clear_faults()

    run(main())


def test_many_calls_at_once_on_one_client_and_a_429_retry_after(op):
    emails = [f"c{i}@example.com" for i in range(40)]

    async def main():
        async with AsyncPublisherClient(op.base_url, *op.credentials("publisher"), http=FAST) as p:
            results = await asyncio.gather(*(p.generate_token(TokenGenerateInput.from_email(e)) for e in emails))
            op.rate_limit_next(1, retry_after=0.3, path="/v2/token/generate")
            loop = asyncio.get_running_loop()
            start = loop.time()
            late = await p.generate_token(TokenGenerateInput.from_email("late@example.com"))
            return results, late, loop.time() - start

    results, late, waited = run(main())
    assert all(r.is_success() for r in results) and late.is_success()
    assert len({r.get_identity().get_advertising_token() for r in results}) == len(emails)
    assert waited >= 0.3, "Retry-After was honoured"


def test_wrong_credentials_are_an_http_401_without_the_key(op):
    key = op.credentials("publisher")[0][::-1]

    async def main():
        async with AsyncPublisherClient(op.base_url, key, op.credentials("publisher")[1], http=FAST) as p:
            await p.generate_token(TokenGenerateInput.from_email("x@example.com"))

    with pytest.raises(Uid2HttpError) as info:
        run(main())
    assert info.value.code == 401 and key not in str(info.value) + repr(info.value)


# ---------------------------------------------------------------------------------------------------
# the refresh task
# ---------------------------------------------------------------------------------------------------
def test_auto_refresh_goes_on_through_failures_and_stops_with_the_client(op, engine):
    errors = []

    async def main():
        c = AsyncBidstreamClient(op.base_url, *op.credentials("bidstream"), http=HttpConfig(retries=0), engine=engine)
        async with c:
            op.fail_next(2, 500, path="/v2/key/bidstream")
            refresher = c.start_auto_refresh(interval=0.1, retry_interval=0.05, timeout=10)
            refresher._on_error = errors.append
            assert await refresher.wait_ready(timeout=10)
            for _ in range(200):  # every 0.1 s after a success: a few more within seconds, however loaded
                if refresher.refresh_count >= 3:
                    break
                await asyncio.sleep(0.05)
            assert refresher.running and refresher.refresh_count >= 3
            assert refresher.failure_count == 2 and refresher.last_error is None
            with pytest.raises(RuntimeError):
                c.start_auto_refresh()
        assert not refresher.running
        count = refresher.refresh_count
        await asyncio.sleep(0.2)
        assert refresher.refresh_count == count, "the task ended with the client"
        return refresher

    refresher = run(main())
    assert len(errors) == 2 and all("HTTP 500" in str(e) for e in errors)
    assert refresher.last_success_time is not None


def test_refresh_now_is_bounded_and_cancels_a_stuck_attempt():
    # An operator of its own: the module's one also records other tests' stuck requests when they end.
    with LocalOperator(site_data={SITE: [DOMAIN]}) as op:
        run(_bounded_refresh_now(op))


async def _bounded_refresh_now(op):
    first = op.request_count("/v2/key/bidstream")  # (0: nothing else used this operator)
    async with AsyncBidstreamClient(op.base_url, *op.credentials("bidstream"), http=FAST) as c:
        assert (await c.refresh()).success
        good = c.keys
        refresher = AsyncKeyRefresher(c, interval=60, retry_interval=60, timeout=0.4)
        op.delay_next(1, 3.0, path="/v2/key/bidstream")
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await refresher.refresh_now() is False
        assert loop.time() - start < 0.4 + 2
        assert "did not finish within 0.4 s" in str(refresher.last_error) and refresher.failure_count == 1
        assert c.keys is good
        assert await refresher.refresh_now(timeout=10) is True and refresher.ready
        # Two callers at once share one attempt. The operator records a request when it has answered it, so
        # the stuck one (answered to nobody after its 3 s) must be on the record before the count is taken.
        while op.request_count("/v2/key/bidstream") - first < 3 and loop.time() - start < 10:
            await asyncio.sleep(0.05)
        before = op.request_count("/v2/key/bidstream")
        assert before - first == 3  # the first refresh, the stuck one, the one that worked
        assert await asyncio.gather(refresher.refresh_now(timeout=10), refresher.refresh_now(timeout=10)) == \
            [True, True]
        assert op.request_count("/v2/key/bidstream") - before == 1


def test_stop_cancels_an_attempt_in_progress(op):
    async def main():
        async with AsyncBidstreamClient(op.base_url, *op.credentials("bidstream"), http=FAST) as c:
            op.delay_next(1, 5.0, path="/v2/key/bidstream")
            async with AsyncKeyRefresher(c, interval=60, timeout=30) as refresher:
                await asyncio.sleep(0.2)
                assert refresher.running and not refresher.ready
                loop = asyncio.get_running_loop()
                start = loop.time()
            assert loop.time() - start < 1.0, "stop() waited for the stuck attempt"
            assert not refresher.running and c.keys is None and refresher.failure_count == 0

    run(main())


def test_the_refresher_refuses_a_blocking_client(op):
    with pytest.raises(TypeError, match="KeyRefresher"):
        AsyncKeyRefresher(BidstreamClient(op.base_url, *op.credentials("bidstream")))


# ---------------------------------------------------------------------------------------------------
# construction, from_env, the twins' API
# ---------------------------------------------------------------------------------------------------
TWINS = [(AsyncPublisherClient, Uid2PublisherClient), (AsyncIdentityMapV3Client, IdentityMapV3Client),
         (AsyncOptOutClient, OptOutClient), (AsyncBidstreamClient, BidstreamClient),
         (AsyncSharingClient, SharingClient)]


@pytest.mark.parametrize("async_cls, sync_cls", TWINS, ids=[a.__name__ for a, _ in TWINS])
def test_the_same_public_methods_and_arguments_as_the_blocking_twin(async_cls, sync_cls):
    public = [n for n, v in vars(sync_cls).items() if callable(v) and not n.startswith("_")]
    assert public
    network = {"generate_token", "refresh_token", "validate_token", "generate_identity_map", "get_optout_status",
               "refresh"}
    for name in public + (["refresh"] if sync_cls in (BidstreamClient, SharingClient) else []):
        if name == "start_auto_refresh":
            continue
        mine, theirs = getattr(async_cls, name), getattr(sync_cls, name)
        assert inspect.iscoroutinefunction(mine) == (name in network), name
        assert list(inspect.signature(mine).parameters) == list(inspect.signature(theirs).parameters), name
    ctor = [p for p in inspect.signature(sync_cls.__init__).parameters if p != "session"]
    assert [p for p in inspect.signature(async_cls.__init__).parameters if p != "client"] == ctor


@pytest.mark.parametrize("async_cls, role", [(AsyncPublisherClient, "publisher"), (AsyncIdentityMapV3Client, "mapper"),
                                             (AsyncOptOutClient, "mapper"), (AsyncBidstreamClient, "bidstream"),
                                             (AsyncSharingClient, "sharer")])
def test_from_env(op, async_cls, role):
    api_key, secret = op.credentials(role)
    env = {"EUID_BASE_URL": op.base_url, "EUID_API_KEY": api_key + "\n", "EUID_SECRET_KEY": secret}
    client = async_cls.from_env("EUID", environ=env, http=FAST)
    assert type(client) is async_cls
    if async_cls in (AsyncBidstreamClient, AsyncSharingClient):
        assert run(client.refresh()).success and client.keys is not None
    else:
        run(client.aclose())
    del env["EUID_SECRET_KEY"]
    with pytest.raises(ValueError, match="EUID_SECRET_KEY") as info:
        async_cls.from_env("EUID", environ=env)
    assert api_key not in str(info.value)


@pytest.mark.parametrize("bad", ["UID2-key\x00x", "UID2-\nkey", "UID2 key", ""])
def test_bad_credentials_are_refused_without_echo(bad):
    for cls, _ in TWINS:
        with pytest.raises(ValueError) as info:
            cls("http://127.0.0.1:9", bad, "AAAA")
        if bad.strip():
            assert bad.strip() not in str(info.value)


def test_a_shared_transport_and_an_httpx_client_of_your_own(op):
    async def main():
        async with httpx.AsyncClient() as mine:
            p = AsyncPublisherClient(op.base_url, *op.credentials("publisher"), client=mine)
            assert (await p.generate_token(TokenGenerateInput.from_email("own@example.com"))).is_success()
            await p.aclose()
            assert not mine.is_closed, "a client of your own is not closed for you"
        transport = AsyncHttpTransport(FAST)
        a = AsyncBidstreamClient(op.base_url, *op.credentials("bidstream"), http=transport)
        b = AsyncSharingClient(op.base_url, *op.credentials("sharer"), http=transport)
        assert (await a.refresh()).success and (await b.refresh()).success
        assert a.transport is b.transport is transport
        await a.aclose()  # a transport passed in is its owner's to close
        assert (await b.refresh()).success
        await transport.aclose()
        r = await a.refresh()
        assert not r.success and "closed" in r.reason and a.keys is not None  # the last good keys stay
        p = AsyncPublisherClient(op.base_url, *op.credentials("publisher"))
        await p.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await p.generate_token(TokenGenerateInput.from_email("late@example.com"))
        with pytest.raises(TypeError):
            AsyncPublisherClient(op.base_url, *op.credentials("publisher"), client=object())

    run(main())


def test_importing_without_httpx_names_the_extra():
    code = "import sys; sys.modules['httpx'] = None\nimport uid2fast\nimport uid2fast.aio\n"
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC}, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "uid2fast[async]" in r.stderr


# --- split requests: which failure is raised --------------------------------------------------------------------
def test_split_requests_raise_the_first_failure_in_input_order_like_the_blocking_clients():
    """Chunks 0 and 1 fail in the same step of the event loop, 1 first in time: the chunk first in input order
    is raised, as the blocking clients' run_chunks does; results come back in input order."""
    from uid2fast._batching import run_chunks
    from uid2fast.aio._clients import gather_chunks

    async def scenario():
        loop = asyncio.get_running_loop()
        gates = [loop.create_future() for _ in range(3)]

        async def func(i):
            await gates[i]
            if i < 2:
                raise ValueError(f"chunk {i}")
            return i

        async def release():
            await asyncio.sleep(0.01)
            gates[1].set_result(None)  # chunk 1 wakes (and fails) first ...
            gates[0].set_result(None)  # ... chunk 0 in the same step

        releaser = asyncio.ensure_future(release())
        with pytest.raises(ValueError, match="chunk 0"):
            await gather_chunks(func, [0, 1, 2], 3)
        await releaser

        async def ok(i):
            await asyncio.sleep(0.01 * (3 - i))  # the last chunk finishes first
            return i * 10

        assert await gather_chunks(ok, [0, 1, 2], 3) == [0, 10, 20]

    asyncio.run(scenario())
    assert run_chunks(lambda i: i * 10, [0, 1, 2], 3) == [0, 10, 20]
