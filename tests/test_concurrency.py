"""Decryption from many threads while another thread refreshes the keys against a rotating local operator.

Eight reader threads decrypt (scalar and batch, on the C engine through the client and on the Python twin
through its own table of the same key collection) while one thread refreshes the client's keys a thousand
times over loopback HTTP, the operator rotating, adding (active now or later) and expiring keys between
refreshes. Every key set the operator serves carries a generation marker (``allow_clock_skew_seconds``) and
a site's domain list naming that generation, and the refresher records, before each refresh, which key ids
the generation holds. So every answer can be checked against the key sets that were current while the
call ran:

- a result is one of the answers a generation in ``[marker before the call, marker after]`` gives, with the
  right raw UID on success (never another identity's, never a success after the token's keys were removed);
- a batch is answered by **one** generation for all of its rows: keys and site data of two refreshes never
  mix (a torn key set would show as rows needing two different generations, or a domain check passing
  under keys of a generation whose site data does not name the domain);
- keys that expire while readers run give ``KEYS_NOT_SYNCED`` (a key set is valid while one key has not
  expired: docs/keys-and-envelope.md#key-set-validity) from the first call that starts at or after the
  expiry, never a stale success, and a batch checks all its rows at the same instant (its ``now`` is read
  once), so a batch straddling the expiry is all success or all ``KEYS_NOT_SYNCED``.
"""
import base64
import collections
import datetime as dt
import random
import sys
import threading
import time

import pytest

import uid2fast
from uid2fast import DecryptionStatus as S
from uid2fast import _engine_py
from uid2fast._http import HttpConfig
from uid2fast.batch import DecryptedTokens
from uid2fast._results import DECRYPTION_STATUSES as _STATUS
from uid2fast.refresher import KeyRefresher
from uid2fast.testing import LocalOperator

from .helpers import keys_body, make_token, parse_keys

pytestmark = pytest.mark.engine_path

REFRESHES = 1000
SKEW_BASE = 1800  # allow_clock_skew_seconds = SKEW_BASE + generation
STABLE = "stable.example"
NAP = 0.002  # seconds a reader sleeps between bursts (8 scalar calls or one batch)
HTTP = HttpConfig(retries=2, backoff_base=0.001, connect_timeout=5, read_timeout=10)


def _gen_name(g):
    return f"g{g}.example"


def _generation(keys):
    return keys.get_allow_clock_skew_seconds() - SKEW_BASE


class _Pool:
    """Tokens issued so far: (token, raw uid, master key id, site key id, client-side generated)."""

    def __init__(self):
        self.items = []  # append-only: readers index a prefix while the refresher appends

    def issue(self, op, rng, n):
        for _ in range(n):
            i = rng.randrange(10**9)
            cstg = rng.random() < 0.4
            if rng.random() < 0.3:
                kind, value = "phone", f"+1555{i % 10**7:07d}"
            else:
                kind, value = "email", f"user{i}@example.com"
            token = op.issue_token(**{kind: value}, client_side=cstg, version=rng.choice((3, 4, 4)))
            master_id, site_key_id = op.token_key_ids(token)
            self.items.append((token, op.raw_uid(**{kind: value}), master_id, site_key_id, cstg))


def _expected(history, g, item, domain):
    """(status, uid) a key set of generation ``g`` gives for a pool item and a domain name."""
    _, uid, master_id, site_key_id, cstg = item
    key_ids, names = history[g]
    if master_id not in key_ids:
        return S.NOT_AUTHORIZED_FOR_MASTER_KEY, None
    if site_key_id not in key_ids:
        return S.NOT_AUTHORIZED_FOR_KEY, None
    if cstg and (domain is None or domain not in names):
        return S.DOMAIN_NAME_CHECK_FAILED, None
    return S.SUCCESS, uid


def _check_generations(history, g_lo, g_hi, items, domains, results):
    """None if one generation in ``g_lo..g_hi`` gives exactly ``results`` for the whole call, else why not."""
    if len(results) != len(items):
        return f"{len(results)} results for {len(items)} tokens"
    candidates = range(g_lo, g_hi + 1)
    for g in candidates:
        if results == [_expected(history, g, it, d) for it, d in zip(items, domains)]:
            return None
    for it, d, got in zip(items, domains, results):  # name the first row no generation explains
        allowed = {_expected(history, g, it, d) for g in candidates}
        if got not in allowed:
            return _describe(it, d, got, allowed) + f" (generations {g_lo}..{g_hi})"
    return f"rows answered by different generations in {g_lo}..{g_hi} (torn key set)"


def _describe(item, domain, got, allowed):
    _, uid, master_id, site_key_id, cstg = item
    return (f"token(master={master_id}, site_key={site_key_id}, cstg={cstg}) domain={domain!r}: "
            f"got {got[0].name} uid={'right' if got[1] == uid else got[1]!r}, allowed "
            f"{sorted({a[0].name for a in allowed})}")


def _pick(rng, pool, n, g):
    # Mostly recent tokens (their keys are live or about to be), some from anywhere (removed keys).
    size = len(pool.items)
    items = [pool.items[rng.randrange(max(0, size - 16), size) if rng.random() < 0.7 else rng.randrange(size)]
             for _ in range(n)]
    domains = [rng.choice((None, STABLE, _gen_name(g), _gen_name(g + 1), "other.example")) for _ in range(n)]
    return items, domains


class _Readers:
    """Eight decrypting threads, two of each kind; failures are recorded, never raised in the thread.

    ``c-*`` go through the client (the C engine when it is built, else the dispatcher's twin) and bracket
    the call with the generation before and after; ``py-*`` take one snapshot of the client's keys and
    run the Python twin on it, so their generation is exact.
    """

    KINDS = ("c-scalar", "c-batch", "py-scalar", "py-batch")

    def __init__(self, client, pool, check):
        self.client = client
        self.pool = pool
        self.check = check  # check(kind, g_lo, g_hi, items, domains, results, t0_us, t1_us) -> error or None
        self.stop = threading.Event()
        self.failures = []
        self.calls = collections.Counter()
        self.statuses = collections.Counter()
        self.generations = set()
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(kind, seed), name=f"reader-{kind}-{seed}",
                                         daemon=True)
                        for seed, kind in enumerate(self.KINDS * 2)]

    def _decrypt(self, kind, keys, items, domains, now_us):
        tokens = [it[0] for it in items]
        if kind == "c-scalar":  # the client's own path (C engine when built): it reads its key set once
            r = self.client.decrypt_token_into_raw_uid(tokens[0], domains[0])
            return [(r.status, r.uid)]
        if kind == "c-batch":
            res = self.client.decrypt_tokens_into_raw_uids(tokens, domains)
            return list(zip((res.status_enum(i) for i in range(len(res))), res.uids()))
        table = keys._on_engine(_engine_py)._table  # the twin, on its own table of the same snapshot
        if kind == "py-scalar":
            r = _engine_py.decrypt_token(table, tokens[0], now_us, _engine_py.CLIENT_BIDSTREAM, domains[0])
            return [(_STATUS[r[0]], r[1])]
        cols = _engine_py.decrypt_tokens(table, tokens, now_us, _engine_py.CLIENT_BIDSTREAM, domains, None)
        res = DecryptedTokens(cols, keys.get_identity_scope())
        return list(zip((res.status_enum(i) for i in range(len(res))), res.uids()))

    def _run(self, kind, seed):
        rng = random.Random(seed)
        batch = kind.endswith("batch")
        n = 200 if kind == "c-batch" else 24 if batch else 1
        try:
            while not self.stop.is_set():
                keys = self.client.keys
                g_lo = _generation(keys)
                items, domains = _pick(rng, self.pool, n, g_lo)
                t0 = time.time_ns() // 1000
                results = self._decrypt(kind, keys, items, domains, t0)
                t1 = time.time_ns() // 1000
                g_hi = _generation(self.client.keys) if kind.startswith("c-") else g_lo
                error = self.check(kind, g_lo, g_hi, items, domains, results, t0, t1)
                with self._lock:
                    self.calls[kind] += 1
                    self.generations.add(g_lo)
                    self.statuses.update(s for s, _ in results)
                    if error is not None and len(self.failures) < 20:
                        self.failures.append(f"{kind}: {error}")
                if batch or self.calls[kind] % 8 == 0:
                    # Short naps: eight threads still overlap every refresh, but the refresher and the
                    # operator's server thread get the GIL often enough for a refresh to take milliseconds.
                    time.sleep(NAP)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            with self._lock:
                self.failures.append(f"{kind}: raised {type(exc).__name__}: {exc}")

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads), "a reader thread hung"


@pytest.fixture
def fast_switching():
    # Eight busy threads share the GIL with the refresher and the operator's server thread; a shorter
    # switch interval keeps each refresh at a few milliseconds instead of tens.
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    yield
    sys.setswitchinterval(old)


def test_operator_token_key_ids_and_scheduled_expiry():
    """The two LocalOperator helpers this module relies on."""
    with LocalOperator() as op:
        client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"), http=HTTP)
        assert client.refresh().success
        before = set(client.keys.key_ids())
        token = op.issue_token(email="k@example.com")
        master_id, site_key_id = op.token_key_ids(token)
        assert {master_id, site_key_id} <= before and master_id != site_key_id
        new = op.rotate_keys()
        fresh = op.issue_token(email="k@example.com")
        assert set(op.token_key_ids(fresh)) <= set(new) and not set(op.token_key_ids(fresh)) & before
        with pytest.raises(ValueError):
            op.token_key_ids("AAAA")
        # expiry scheduled an hour ahead: still served, and the collection's validity ends then
        at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + dt.timedelta(hours=1)
        op.expire_keys(sorted(before | set(new)), at=at)
        assert client.refresh().success
        assert set(client.keys.key_ids()) == before | set(new)
        assert client.keys.valid(at - dt.timedelta(seconds=1)) and not client.keys.valid(at)
        op.expire_keys([master_id])  # now: no longer served
        assert client.refresh().success and master_id not in client.keys
        assert client.decrypt_token_into_raw_uid(token, None).status == S.NOT_AUTHORIZED_FOR_MASTER_KEY


def test_the_generation_check_catches_wrong_answers_and_torn_sets():
    """The checker the concurrency test relies on rejects what it must (so that test can fail)."""
    a = ("tok-a", "UID-A", 1, 2, False)
    b = ("tok-b", "UID-B", 3, 4, True)
    history = {5: (frozenset({1, 2, 3, 4}), frozenset({"g5.example"})),
               6: (frozenset({3, 4}), frozenset({"g6.example"}))}
    ok = [(S.SUCCESS, "UID-A"), (S.SUCCESS, "UID-B")]
    assert _check_generations(history, 5, 5, [a, b], [None, "g5.example"], ok) is None
    # another identity's uid, a success after the keys were removed, a domain passing under the wrong site data
    assert "uid='UID-B'" in _check_generations(history, 5, 6, [a], [None], [(S.SUCCESS, "UID-B")])
    assert "allowed ['NOT_AUTHORIZED_FOR_MASTER_KEY']" in _check_generations(history, 6, 6, [a], [None],
                                                                             [(S.SUCCESS, "UID-A")])
    assert _check_generations(history, 6, 6, [b], ["g5.example"], [(S.SUCCESS, "UID-B")]) is not None
    # each row is right for some generation, but no single generation gives both: a torn key set
    torn = [(S.SUCCESS, "UID-A"), (S.SUCCESS, "UID-B")]
    assert "torn" in _check_generations(history, 5, 6, [a, b], [None, "g6.example"], torn)
    assert _check_generations(history, 5, 6, [a, b], [None, "g6.example"],
                              [(S.NOT_AUTHORIZED_FOR_MASTER_KEY, None), (S.SUCCESS, "UID-B")]) is None


def test_thousand_refreshes_with_rotation_while_eight_threads_decrypt(fast_switching):
    rng = random.Random(2024)
    history = {}  # generation -> (frozenset of key ids, frozenset of the site's domain names)
    pool = _Pool()
    with LocalOperator() as op:
        site = op.publisher_site_id
        client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"), http=HTTP)
        refresher = KeyRefresher(client)

        def publish(g):
            names = frozenset({STABLE, _gen_name(g)})
            op.allow_clock_skew_seconds = SKEW_BASE + g
            op.site_data = {site: sorted(names)}
            history[g] = (frozenset(live), names)  # before the refresh: readers only see recorded generations

        live = set()
        publish(0)
        assert refresher.refresh_now(), refresher.last_error
        live = set(client.keys.key_ids())
        publish(0)
        pool.issue(op, rng, 40)

        def check(kind, g_lo, g_hi, items, domains, results, t0, t1):
            return _check_generations(history, g_lo, g_hi, items, domains, results)

        # Rotations whose keys can sign tokens: (key ids, master key id). The oldest loses its site keys
        # first and its master key one rotation later, so some tokens find their master key but not their
        # site key (NOT_AUTHORIZED_FOR_KEY).
        active = collections.deque([(sorted(live), pool.items[0][2])])
        lingering = collections.deque()
        pending = collections.deque()  # rotations activating tomorrow: served, never used yet
        refresh_failures = []
        started = time.monotonic()
        with _Readers(client, pool, check) as readers:
            for g in range(1, REFRESHES + 1):
                if g % 10 == 0:
                    new = op.rotate_keys()
                    live.update(new)
                    pool.issue(op, rng, 4)  # signed with the new keys, which the client does not hold yet
                    active.append((new, pool.items[-1][2]))
                    if len(active) > 3:
                        old, old_master = active.popleft()
                        gone = [k for k in old if k != old_master]
                        lingering.append(old_master)
                        if len(lingering) > 1:
                            gone.append(lingering.popleft())
                        op.expire_keys(gone)
                        live.difference_update(gone)
                if g % 35 == 0:
                    new = op.rotate_keys(activates_in=dt.timedelta(days=1))
                    live.update(new)
                    pending.append(new)
                    if len(pending) > 2:
                        old = pending.popleft()
                        op.expire_keys(old)
                        live.difference_update(old)
                publish(g)
                if not refresher.refresh_now():  # the client keeps generation g - 1
                    refresh_failures.append(repr(refresher.last_error))
                    continue
                keys = client.keys
                if _generation(keys) != g or frozenset(keys.key_ids()) != history[g][0] or \
                        set(keys.get_site_data().get(site, ())) != history[g][1]:
                    refresh_failures.append(f"generation {g}: the client holds something else")
            elapsed = time.monotonic() - started
        print(f"\n{REFRESHES} refreshes in {elapsed:.1f} s; calls {dict(readers.calls)}; "
              f"{len(readers.generations)} generations seen by readers; statuses "
              f"{ {s.name: n for s, n in readers.statuses.items()} }; pool {len(pool.items)} tokens")

    assert not readers.failures, "\n".join(readers.failures)
    assert len(refresh_failures) <= 5, refresh_failures  # loopback under load; retried by HTTP anyway
    assert refresher.refresh_count >= REFRESHES - 5
    # The run did interleave: every kind of reader ran many calls across many generations, and the
    # answers cover removed keys, keys not yet fetched and both outcomes of the domain check.
    assert all(readers.calls[k] >= 20 for k in _Readers.KINDS), readers.calls
    assert len(readers.generations) >= 50, len(readers.generations)
    for status in (S.SUCCESS, S.NOT_AUTHORIZED_FOR_MASTER_KEY, S.NOT_AUTHORIZED_FOR_KEY,
                   S.DOMAIN_NAME_CHECK_FAILED):
        assert readers.statuses[status] > 0, (status, readers.statuses)
    assert set(readers.statuses) <= {S.SUCCESS, S.NOT_AUTHORIZED_FOR_MASTER_KEY, S.NOT_AUTHORIZED_FOR_KEY,
                                     S.DOMAIN_NAME_CHECK_FAILED}, readers.statuses


def test_keys_expiring_while_threads_decrypt_give_keys_not_synced(fast_switching):
    """Every key of the set expires at ``E`` while eight readers decrypt and a thread keeps refreshing.

    A call that starts at or after ``E`` gets ``KEYS_NOT_SYNCED`` for every row; a call that ends before it
    succeeds; a batch that straddles ``E`` is uniformly one or the other."""
    rng = random.Random(7)
    pool = _Pool()
    with LocalOperator() as op:
        client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"), http=HTTP)
        assert client.refresh().success
        pool.issue(op, rng, 30)
        pool.items = [it for it in pool.items if not it[4]]  # no domain check here: only validity matters
        expiry_s = int(time.time()) + 2  # one to two seconds of decrypting before it, 0.4 s after
        expiry_us = expiry_s * 1_000_000
        op.expire_keys(list(client.keys.key_ids()), at=expiry_s * 1000)
        assert client.refresh().success
        assert client.keys.valid(dt.datetime.now(dt.timezone.utc))
        straddled = collections.Counter()

        def check(kind, g_lo, g_hi, items, domains, results, t0, t1):
            statuses = {s for s, _ in results}
            if t0 >= expiry_us and statuses != {S.KEYS_NOT_SYNCED}:
                return f"started {t0 - expiry_us} µs after the expiry: {sorted(s.name for s in statuses)}"
            if t1 < expiry_us and results != [(S.SUCCESS, it[1]) for it in items]:
                return f"ended before the expiry: {sorted(s.name for s in statuses)}"
            if len(statuses) != 1 or not statuses <= {S.SUCCESS, S.KEYS_NOT_SYNCED}:
                return f"mixed or unexpected statuses in one call: {sorted(s.name for s in statuses)}"
            if S.SUCCESS in statuses and results != [(S.SUCCESS, it[1]) for it in items]:
                return "a success with the wrong uid"
            if t0 < expiry_us <= t1:
                straddled[kind] += 1
            return None

        stop = threading.Event()
        refreshes = collections.Counter()

        def keep_refreshing():
            while not stop.is_set():
                refreshes[client.refresh().success] += 1
                time.sleep(0.005)

        refresher = threading.Thread(target=keep_refreshing, daemon=True)
        with _Readers(client, pool, check) as readers:
            refresher.start()
            while time.time() < expiry_s + 0.4:
                time.sleep(0.02)
            stop.set()
            refresher.join(10)
        print(f"\ncalls {dict(readers.calls)}; straddling the expiry {dict(straddled)}; refreshes {dict(refreshes)};"
              f" statuses { {s.name: n for s, n in readers.statuses.items()} }")

    assert not readers.failures, "\n".join(readers.failures)
    assert readers.statuses[S.SUCCESS] > 0 and readers.statuses[S.KEYS_NOT_SYNCED] > 0, readers.statuses
    # After the expiry the operator serves no keys: an empty key list is a failed refresh, so the client keeps
    # the last (now expired) set, which answers KEYS_NOT_SYNCED.
    assert len(client.keys) > 0 and not client.keys.valid(dt.datetime.now(dt.timezone.utc))
    assert refreshes[False] > 0
    assert refreshes[True] > 0


def test_a_batch_is_checked_at_one_instant(engine):
    """The batch reads ``now`` once: with keys expiring at ``E``, ``now = E - 1 µs`` gives success for every
    row and ``now = E`` gives KEYS_NOT_SYNCED for every row, whichever worker thread handled it."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    body = keys_body(now)
    expiry = now + dt.timedelta(minutes=5)
    for k in body["keys"]:
        k["expires"] = int(expiry.timestamp())
    keys = parse_keys(body, engine)
    token = make_token(keys, now)
    tokens = [token] * 20_000
    before = uid2fast.decrypt_tokens(tokens, keys, now=expiry - dt.timedelta(microseconds=1), threads=2)
    at = uid2fast.decrypt_tokens(tokens, keys, now=expiry, threads=2)
    assert before.status_counts() == {S.SUCCESS: len(tokens)}
    assert at.status_counts() == {S.KEYS_NOT_SYNCED: len(tokens)}
    assert set(at.uids()) == {None}
    assert base64.b64decode(before.uid_at(0))
