"""GCM nonces of v4 encryption are never repeated: not across calls, threads and batches, and not between a
process and a child forked from it (the C engine draws scalar nonces from a per-thread pool; a fork must not
let the child reuse what the parent's pool still holds — csrc/uid2_aead.c, uid2_nonce_bytes)."""
import base64
import datetime as dt
import os
import sys
import threading

import pytest

import uid2fast

from .helpers import RAW_UID as RAW
from .helpers import make_keys

pytestmark = pytest.mark.engine_path

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone.utc)


def _outer_nonce(token: str) -> bytes:
    # v4: identity byte, version 0x80, master key id (4 bytes), then the 12-byte GCM nonce
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert raw[1] == 0x80
    return raw[6:18]


@pytest.fixture
def keys(engine):
    return make_keys(NOW, engine=engine)


def _encrypt_nonces(keys, n):
    out = []
    for _ in range(n):
        r = uid2fast.encrypt(RAW, None, keys, now=NOW)
        assert r.success, r.status
        out.append(_outer_nonce(r.encrypted_data))
    return out


def test_scalar_batch_and_threads_never_repeat_a_nonce(engine, keys):
    nonces = _encrypt_nonces(keys, 3000)  # several refills of the per-thread pool

    def worker():
        nonces.extend(_encrypt_nonces(keys, 1000))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batch = uid2fast.encrypt_tokens([RAW] * 5000, keys, now=NOW, threads=2)
    nonces += [_outer_nonce(t) for t in batch.tokens]
    assert len(nonces) == 3000 + 4000 + 5000
    assert len(set(nonces)) == len(nonces)


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs os.fork (Linux)")
def test_forked_child_never_reuses_the_parents_nonces(engine, keys):
    _encrypt_nonces(keys, 1)  # the parent's pool now holds unused nonces
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its nonces go to the parent through the pipe
        try:
            os.close(r)
            os.write(w, b"".join(_encrypt_nonces(keys, 40)))
        finally:
            os._exit(0)
    os.close(w)
    theirs = b""
    with os.fdopen(r, "rb") as f:
        theirs = f.read()
    os.waitpid(pid, 0)
    mine = _encrypt_nonces(keys, 40)
    child = {theirs[i:i + 12] for i in range(0, len(theirs), 12)}
    assert len(child) == 40, "the child did not report its nonces"
    assert child.isdisjoint(mine), "a forked child reused nonces from its parent's pool"
