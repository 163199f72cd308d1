"""Small builders shared by the tests: key sets and tokens made with uid2fast's own generator."""
import base64
import datetime as dt
import os
import pathlib

import pytest

import uid2fast as U

RAW_UID = "ywsvDNINiZOVSsfkHpLpSJzXzhr6Jx9Z/4Q0+lsEUvM="
MASTER_ID, SITE_KEY_ID, SITE_ID = 164, 165, 9000


def _epoch(d):
    return int(d.timestamp())


def keys_body(now, *, scope="UID2", site_data=None, token_expiry_seconds="2592000", max_bidstream=259200,
              max_sharing=2592000, secrets=None):
    secrets = secrets or {MASTER_ID: os.urandom(32), SITE_KEY_ID: os.urandom(32)}
    created = _epoch(now - dt.timedelta(days=10))
    expires = _epoch(now + dt.timedelta(days=10))
    body = {
        "caller_site_id": SITE_ID, "master_keyset_id": 1, "default_keyset_id": 99999,
        "token_expiry_seconds": token_expiry_seconds, "max_bidstream_lifetime_seconds": max_bidstream,
        "max_sharing_lifetime_seconds": max_sharing, "allow_clock_skew_seconds": 1800, "identity_scope": scope,
        "keys": [
            {"id": MASTER_ID, "created": created, "activates": created, "expires": expires,
             "secret": base64.b64encode(secrets[MASTER_ID]).decode(), "keyset_id": 1},
            {"id": SITE_KEY_ID, "created": created, "activates": created, "expires": expires,
             "secret": base64.b64encode(secrets[SITE_KEY_ID]).decode(), "keyset_id": 99999},
        ],
    }
    if site_data is not None:
        body["site_data"] = site_data
    return body


def parse_keys(body, engine=None):
    """The key set of a keys body, built on ``engine`` (an engine module; None: the default one)."""
    r = U.parse_keys_json(body)
    assert r.success, r.reason
    keys = r.keys if engine is None else r.keys._on_engine(engine)
    assert engine is None or keys._engine is engine
    return keys


def make_keys(now, *, engine=None, **kw):
    return parse_keys(keys_body(now, **kw), engine)


def make_token(keys, now, *, version=4, uid=RAW_UID, expires=None, generated=None, established=None,
               privacy_bits=0, scope=None):
    expires = expires or now + dt.timedelta(hours=1)
    generated = generated or now - dt.timedelta(minutes=1)
    established = established or now - dt.timedelta(days=1)
    params = U.Params(expiry=expires, identity_scope=int(keys.get_identity_scope() if scope is None else scope),
                      token_generated=generated, identity_established=established)
    master, site = keys.get(MASTER_ID), keys.get(SITE_KEY_ID)
    if version == 2:
        return U.UID2TokenGenerator.generate_uid2_token_v2(uid, master, SITE_ID, site, params,
                                                           privacy_bits=privacy_bits)
    v = 112 if version == 3 else 128
    return U.UID2TokenGenerator.generate_uid2_token_with_debug_info(uid, master, SITE_ID, site, params, v,
                                                                     privacy_bits=privacy_bits)


def post_enveloped(base_url, path, auth_key, secret_key, data=None, *, binary=False, config=None, session=None,
                   transport=None):
    """One enveloped POST through the operator-client base (``OperatorClient._post``), for tests that talk
    to an endpoint directly; returns the decrypted JSON bytes."""
    from uid2fast._operator_client import OperatorClient

    http = transport if transport is not None else config
    client = OperatorClient(base_url, auth_key, secret_key, http=http, session=session)
    try:
        return client._post(path, data, binary)
    finally:
        if transport is None:
            client.close()


def sanitizer_runtime_missing(compile_error):
    """True when a failed -fsanitize build failed for want of the ASan/UBSan runtime (skip), not for a real
    compile error (fail). The message holds the command line, -fsanitize included, so that is not a sign."""
    text = str(compile_error)
    return any(lib in text for lib in ("-lasan", "-lubsan", "libasan", "libubsan"))


def cavp_gcm_cases(name):
    """The cases of one NIST CAVP AES-GCM .rsp file from cryptography-vectors (skips without the package)."""
    vectors = pytest.importorskip("cryptography_vectors", reason="needs the cryptography-vectors package")
    path = pathlib.Path(vectors.__file__).parent / "ciphers" / "AES" / "GCM" / name
    cases, cur, params = [], None, {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and "=" in line:
            k, v = line[1:-1].split("=")
            params[k.strip()] = int(v)
        elif line.startswith("Count"):
            cur = dict(params)
            cases.append(cur)
        elif cur is not None and line == "FAIL":
            cur["FAIL"] = True
        elif cur is not None and "=" in line:
            k, v = line.split("=", 1)
            cur[k.strip()] = bytes.fromhex(v.strip())
    return cases


def run_threads(target, n, timeout):
    """Start ``n`` threads running ``target`` and join each within ``timeout`` seconds."""
    import threading

    threads = [threading.Thread(target=target) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
