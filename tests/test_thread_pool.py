"""The C engine's batch threads stay between batches (csrc/uid2_batch.c, "the pool"; docs/design.md#threads).

What the pool must never do: answer differently from one thread, lose a job when two batches run at once
(the second one starts its own threads), hang or run short in a forked child (which has none of its
parent's threads), grow with every batch, or keep a CPU busy once the batches stop.
"""
import datetime as dt
import os
import sys
import threading
import time

import numpy as np
import pytest

import uid2fast as U
from uid2fast import _bench, _engine

from .helpers import parse_keys

pytestmark = pytest.mark.skipif(_engine.c_engine is None, reason="the C engine is not built")

NOW = dt.datetime.now(dt.timezone.utc)  # the production-mix tokens below are issued now, valid for an hour
FIELDS = ("status", "uid", "established_ms", "expiry_ms", "site_id", "version", "identity_type")


@pytest.fixture(scope="module")
def corpus():
    """The production mix (uid2fast._bench): v4 and v3 tokens with 33-byte raw UIDs from 16 sites, a domain
    name on every row, one in four client-side generated; then a few rows that fail (a cut token, an empty
    one, one that is not base64). 12,301 rows: room for 6 threads of 2,048."""
    body = _bench._keys_body()
    keys = parse_keys(body, _engine.c_engine)
    t4, _, d4 = _bench.corpus(body, 4, 9_000)
    t3, _, d3 = _bench.corpus(body, 3, 3_298)
    tokens = t4 + t3 + [t4[0][:-5], "", "AIA"]
    domains = d4 + d3 + [d4[0], d4[1], d4[2]]
    return keys, tokens, domains


@pytest.fixture(scope="module")
def keys(corpus):
    return corpus[0]


@pytest.fixture(scope="module")
def tokens(corpus):
    return corpus[1]


@pytest.fixture(scope="module")
def domains(corpus):
    return corpus[2]


def _decrypt(keys, tokens, domains, threads):
    return U.decrypt_tokens(tokens, keys, now=NOW, domain_names=domains, client="bidstream", threads=threads)


def _same(a, b):
    for name in FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def _os_threads():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise AssertionError("no Threads: line")


def test_back_to_back_batches_on_the_pool(keys, tokens, domains):
    one = _decrypt(keys, tokens, domains, 1)
    assert (one.status == 0).sum() == len(tokens) - 3  # every production-mix row succeeds
    for threads in (2, 6, 3, 2, 5, 6):
        _same(one, _decrypt(keys, tokens, domains, threads))
        raw = [u for u in one.uids() if u is not None][:1] * len(tokens)
        enc = U.encrypt_tokens(raw, keys, now=NOW, threads=threads)
        assert U.decrypt_tokens(enc.tokens, keys, now=NOW, client="sharing", threads=threads).uids() == raw


def test_batches_from_several_threads_at_once(keys, tokens, domains):
    """One batch holds the pool; the others start their own threads meanwhile. Every answer is whole."""
    one = _decrypt(keys, tokens, domains, 1)
    errors = []

    def run(k):
        try:
            for i in range(6):
                src = tokens if (i + k) % 2 else np.array(tokens, dtype=object)
                _same(one, _decrypt(keys, src, domains, 2 + (i + k) % 4))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    runners = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(4)]
    for t in runners:
        t.start()
    for t in runners:
        t.join(120)
    assert not any(t.is_alive() for t in runners), "a batch hung"
    assert errors == []


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs os.fork (Linux)")
def test_a_forked_child_batches_on_threads_of_its_own(keys, tokens, domains):
    one = _decrypt(keys, tokens, domains, 1)
    _same(one, _decrypt(keys, tokens, domains, 3))  # the parent's pool exists now
    pid = os.fork()
    if pid == 0:  # the child: its batches must finish, on threads, with the same answers
        code = 1
        try:
            for threads in (3, 2, 4):
                _same(one, _decrypt(keys, tokens, domains, threads))
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child's batch hung")
        time.sleep(0.01)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    _same(one, _decrypt(keys, tokens, domains, 3))  # and the parent's pool still works


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_the_pool_does_not_grow_with_batches(keys, tokens, domains):
    _decrypt(keys, tokens, domains, 6)  # the most threads any batch below asks for
    before = _os_threads()
    for threads in (2, 6, 4, 3) * 5:
        _decrypt(keys, tokens, domains, threads)
    assert _os_threads() == before


def test_idle_pool_threads_sleep(keys, tokens, domains):
    """After a batch the pool's threads spin for a fraction of a millisecond, then sleep: half a second
    later the process has used next to no CPU time."""
    _decrypt(keys, tokens, domains, 4)
    time.sleep(0.2)  # (and any other library's threads that spin after their work, such as a BLAS's, settle)
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(0.5)
    used = time.process_time() - cpu
    assert used < 0.1, f"{used:.3f} s of CPU in {time.monotonic() - wall:.3f} s of sleep"
