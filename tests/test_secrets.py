"""Secrets never leave where they belong (docs/design.md#safety-rules).

The secrets are the client credentials (API key and client secret of every role) and every key secret the
operator serves. None of them may appear, in any spelling (base64, base64url, hex, the ``repr`` of the raw
bytes or their list of ints, or any 16-character piece of those), in:

- ``repr``/``str`` of keys, key collections, engine tables, every client, refreshers and responses;
- exceptions (``str``, ``repr``, ``args`` and the whole formatted traceback with its chained causes),
  HTTP errors built from operator answers included;
- anything logged, at DEBUG, by any logger (ours, urllib3, the local operator) during refreshes that
  succeed, fail and retry, decryption, encryption and the publisher and identity-map calls;
- the command line's output, on success and on error.

The ``uid2fast operator`` command is the one deliberate exception: it prints the API keys and client
secrets of the local test operator it starts, because they are the only way to talk to it; they are random
per run, valid only on 127.0.0.1 for that process's lifetime, and nothing else. It must not print key
secrets (the test checks both halves of that contract).

Key files are written 0600 whatever the umask or the mode of a file they replace, through a 0600
temporary file in the same directory. In C, the key table, the workers and the keyed OpenSSL contexts wipe
every copy of key material when freed (csrc/tests/test_wipe.c, compiled and run here). Python ``bytes``
holding secrets (``EncryptionKey.secret``, the twin's table) are immutable and cannot be wiped: that is a
limit of the language, not checked here.
"""
import ast
import base64
import contextlib
import copy
import datetime as dt
import io
import json
import logging
import os
import pathlib
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import traceback

import pytest

import uid2fast
from uid2fast import _engine, cli, keyfile
from uid2fast._http import HttpConfig, HttpTransport, Uid2HttpError
from tests.helpers import post_enveloped
from uid2fast.auto_refresh import EncryptionKeysAutoRefresher
from uid2fast.encryption import EncryptionError
from uid2fast.identity_map_client import IdentityMapClient
from uid2fast.identity_map_input import IdentityMapInput
from uid2fast.identity_map_v3_client import IdentityMapV3Client
from uid2fast.identity_map_v3_input import IdentityMapV3Input
from uid2fast.optout_client import OptOutClient
from uid2fast.publisher_client import Uid2PublisherClient
from uid2fast.refresher import KeyRefresher
from uid2fast.testing import LocalOperator
from uid2fast.token_generate_input import TokenGenerateInput

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = str(pathlib.Path(uid2fast.__file__).resolve().parent.parent)
FAST = HttpConfig(retries=2, backoff_base=0.001, connect_timeout=2, read_timeout=5)
ROLES = ("publisher", "bidstream", "sharer", "mapper")
SITE = 1001
DOMAIN = "news.example.com"
WINDOW = 16


# ---------------------------------------------------------------------------------------------------
# the detector
# ---------------------------------------------------------------------------------------------------
def _spellings(secret):
    """Every way a secret (bytes, or a credential string) could be written out."""
    if isinstance(secret, str):
        out = [secret]
        try:
            raw = base64.b64decode(secret, validate=True)
        except ValueError:
            return out
        if len(raw) < 16:
            return out
        secret = raw
    return [
        base64.b64encode(secret).decode(),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        secret.hex(),
        secret.hex().upper(),
        repr(secret)[2:-1],
        ", ".join(str(b) for b in secret),
    ]


class Secrets:
    """The secrets of a test and the check that a text holds none of them."""

    def __init__(self):
        self._needles = {}  # piece -> what it is a piece of

    def add(self, secret, name):
        for spelling in _spellings(secret):
            if len(spelling) <= WINDOW:
                self._needles[spelling] = name
            else:
                for i in range(len(spelling) - WINDOW + 1):
                    self._needles.setdefault(spelling[i:i + WINDOW], name)

    def add_operator(self, op):
        """Every role's credentials and every key secret the operator has ever served."""
        for role in ROLES:
            api_key, secret = op.credentials(role)
            self.add(api_key, f"{role} API key")
            self.add(secret, f"{role} client secret")
        self.add_keys(op)

    def add_keys(self, op):
        api_key, secret = op.credentials("bidstream")
        body = json.loads(post_enveloped(op.base_url, "/v2/key/bidstream", api_key, base64.b64decode(secret),
                                         config=FAST))["body"]
        for k in body["keys"]:
            self.add(base64.b64decode(k["secret"]), f"key {k['id']} secret")
        return len(body["keys"])

    def find(self, text):
        """The name of the first secret found in ``text``, or None."""
        if not isinstance(text, str):
            text = str(text)
        for needle, name in self._needles.items():
            if needle in text:
                return name
        return None

    def check(self, text, where):
        found = self.find(text)
        assert found is None, f"{found} in {where}: {text[:2000]!r}"

    def check_exception(self, exc, where):
        texts = [str(exc), repr(exc), repr(exc.args), "".join(traceback.format_exception(exc))]
        for attr in ("reason", "msg", "message", "url", "endpoint"):
            texts.append(repr(getattr(exc, attr, None)))
        try:
            texts.append(str(pickle.loads(pickle.dumps(exc))))
        except Exception:  # noqa: BLE001 - not every exception pickles; the others are checked
            pass
        for text in texts:
            self.check(text, where)


def test_detector_finds_every_spelling_and_pieces():
    secret = bytes(range(7, 39))
    s = Secrets()
    s.add(secret, "k")
    for spelling in _spellings(secret):
        assert s.find(f"... {spelling} ...") == "k", spelling
        assert s.find(spelling[3:3 + WINDOW]) == "k", spelling  # a 16-character piece is enough
    assert s.find(repr(secret)) == s.find(str(list(secret))) == "k"
    assert s.find(secret[:8].hex()) == "k"  # 8 bytes in hex is a piece already
    assert s.find(f"EncryptionKey(key_id=7, secret=<redacted>) {secret[:7].hex()}") is None
    s.add("UID2-L-1001-abcdefghijklmnopqrstuvwxyz", "api key")
    assert s.find("Bearer UID2-L-1001-abcdefghijklmnopqrstuvwxyz") == "api key"


# ---------------------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def op():
    with LocalOperator(site_data={SITE: [DOMAIN]}) as operator:
        operator.rotate_keys()  # two keys per keyset, one activating later
        operator.rotate_keys(activates_in=dt.timedelta(days=1))
        yield operator


@pytest.fixture(scope="module")
def secrets(op):
    s = Secrets()
    s.add_operator(op)
    return s


def _on_engine(client, engine):
    """A copy of a key-holding client whose key set runs on ``engine``."""
    c = copy.copy(client)
    c._engine = engine
    c._adopt(client.keys)
    return c


def _client(cls, op, role, **kw):
    return cls(op.base_url, *op.credentials(role), http=FAST, **kw)


@contextlib.contextmanager
def _all_logs():
    """Every record of every logger at DEBUG and above, formatted with its traceback, as one text."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    # loggers someone set a level on would drop DEBUG records before they reach the root
    pinned = {name: lg.level for name, lg in logging.Logger.manager.loggerDict.items()
              if isinstance(lg, logging.Logger) and lg.level not in (logging.NOTSET, logging.DEBUG)}
    for name in pinned:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buf
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in pinned.items():
            logging.getLogger(name).setLevel(level)


# ---------------------------------------------------------------------------------------------------
# repr / str
# ---------------------------------------------------------------------------------------------------
def test_reprs_of_keys_tables_clients_and_responses(op, secrets):
    bidstream = _client(uid2fast.BidstreamClient, op, "bidstream")
    sharing = _client(uid2fast.SharingClient, op, "sharer")
    legacy = uid2fast.Uid2ClientFactory.create(op.base_url, *op.credentials("sharer"))
    euid_legacy = uid2fast.EuidClientFactory.create(op.base_url, *op.credentials("sharer"))
    responses = [bidstream.refresh(), sharing.refresh(), legacy.refresh()]
    legacy_keys = legacy.refresh_keys()
    assert all(r.success for r in responses)
    refresher = KeyRefresher(bidstream, interval=3600)
    assert refresher.refresh_now()
    auto = EncryptionKeysAutoRefresher(legacy, dt.timedelta(hours=1), dt.timedelta(seconds=30))
    auto._try_refresh_keys()
    objects = [
        bidstream, sharing, legacy, euid_legacy, refresher, auto.current_result(), legacy_keys, *responses,
        _client(Uid2PublisherClient, op, "publisher"), _client(IdentityMapClient, op, "mapper"),
        _client(IdentityMapV3Client, op, "mapper"), _client(OptOutClient, op, "mapper"),
        HttpTransport(FAST), op, list(op.requests)[-3:],
    ]
    for keys in (bidstream.keys, sharing.keys):
        assert len(keys) >= 9
        objects += [keys, list(keys.values()), keys.get_site_data()]
        for engine in _engine.engines.values():  # each engine's table of the key set
            objects.append(keys._on_engine(engine)._engine_table())
    for obj in objects:
        secrets.check(repr(obj), f"repr of {type(obj).__name__}")
        secrets.check(str(obj), f"str of {type(obj).__name__}")
        secrets.check(f"{obj}", f"format of {type(obj).__name__}")
    key = next(iter(bidstream.keys.values()))
    assert "redacted" in repr(key) and secrets.find(key.secret.hex()) is not None  # the detector knows it


# ---------------------------------------------------------------------------------------------------
# exceptions
# ---------------------------------------------------------------------------------------------------
def _raised(fn, *args, **kw):
    try:
        fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001
        return exc
    raise AssertionError(f"{fn} did not raise")


def test_http_errors_built_from_operator_answers(op, secrets):
    api_key, secret = op.credentials("publisher")
    wrong_secret = base64.b64encode(os.urandom(32)).decode()
    secrets.add(wrong_secret, "a wrong client secret")
    tgi = TokenGenerateInput.from_email("secret-test@example.com")
    gen = "/v2/token/generate"
    cases = {}
    cases["wrong secret (400)"] = _raised(Uid2PublisherClient(op.base_url, api_key, wrong_secret,
                                                              http=FAST).generate_token, tgi)
    cases["unknown API key (401)"] = _raised(Uid2PublisherClient(op.base_url, api_key + "x", secret,
                                                                 http=FAST).generate_token, tgi)
    cases["role not allowed (401)"] = _raised(_client(Uid2PublisherClient, op, "mapper").generate_token, tgi)
    op.fail_next(3, 503, path=gen)
    cases["5xx after retries"] = _raised(_client(Uid2PublisherClient, op, "publisher").generate_token, tgi)
    op.rate_limit_next(1, 600, path=gen)
    cases["429 beyond the bound"] = _raised(_client(Uid2PublisherClient, op, "publisher").generate_token, tgi)
    op.malformed_next(1, path=gen)
    cases["malformed body"] = _raised(_client(Uid2PublisherClient, op, "publisher").generate_token, tgi)
    op.delay_next(1, 1.0, path="/v2/identity/map")
    slow = IdentityMapClient(op.base_url, *op.credentials("mapper"),
                             http=HttpConfig(retries=0, read_timeout=0.2))
    cases["read timeout"] = _raised(slow.generate_identity_map, IdentityMapInput.from_emails(["a@example.com"]))
    cases["connection refused"] = _raised(Uid2PublisherClient("http://127.0.0.1:9", api_key, secret,
                                                              http=HttpConfig(retries=0)).generate_token, tgi)
    key, sec = op.credentials("mapper")
    cases["post_enveloped, wrong secret"] = _raised(post_enveloped, op.base_url, "/v2/optout/status", key,
                                                    base64.b64decode(wrong_secret), b'{"advertising_ids": []}',
                                                    config=FAST)
    cases["legacy refresh_keys"] = _raised(uid2fast.Uid2ClientFactory.create(op.base_url, key, wrong_secret)
                                           .refresh_keys)
    assert isinstance(cases["wrong secret (400)"], Uid2HttpError)
    assert isinstance(cases["read timeout"], Uid2HttpError) and cases["read timeout"].code is None
    for where, exc in cases.items():
        secrets.check_exception(exc, where)
    # Refresh failures are reasons, not exceptions: the same rule.
    bad = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
    bad._secret_key = base64.b64decode(wrong_secret)
    failed = bad.refresh()
    assert not failed.success
    secrets.check(failed.reason, "RefreshResponse.reason")
    refresher = KeyRefresher(bad)
    assert not refresher.refresh_now()
    secrets.check_exception(refresher.last_error, "KeyRefresher.last_error")
    secrets.check(repr(refresher), "repr of a failing KeyRefresher")


def test_decryption_and_key_file_errors(op, secrets, tmp_path):
    sharing = _client(uid2fast.SharingClient, op, "sharer")
    assert sharing.refresh().success
    keys = sharing.keys
    token = sharing.encrypt_raw_uid_into_token(op.raw_uid(email="e@example.com")).encrypted_data
    tampered = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    errors = {
        "legacy decrypt, tampered": _raised(uid2fast.decrypt, tampered, keys),
        "legacy decrypt, no key": _raised(uid2fast.decrypt, token, uid2fast.EncryptionKeysCollection([])),
        "Uid2Client.decrypt": _raised(uid2fast.Uid2ClientFactory.create(op.base_url, "k", "AAAA").decrypt, token),
    }
    key = next(k for k in keys.values() if k.keyset_id is not None)
    data = uid2fast.encrypt_data(b"payload", uid2fast.IdentityScope.UID2, key=key)
    wrong = uid2fast.EncryptionKey(key.key_id, key.site_id, key.created, key.activates, key.expires,
                                   os.urandom(32), key.keyset_id)
    errors["decrypt_data, wrong key (tag)"] = _raised(uid2fast.decrypt_data, data,
                                                      uid2fast.EncryptionKeysCollection([wrong]))
    expired = uid2fast.EncryptionKey(key.key_id, key.site_id, key.created, key.activates,
                                     dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc), key.secret)
    errors["encrypt_data, inactive key"] = _raised(uid2fast.encrypt_data, b"x", uid2fast.IdentityScope.UID2,
                                                   key=expired)
    assert all(isinstance(e, EncryptionError) for e in errors.values())

    # Key files: malformed in every way a real one can be, each holding the real secrets.
    body = keyfile.keys_body(keys)
    text = json.dumps(body)
    broken = {
        "truncated JSON": text[:-30],
        "JSON with a BOM": "\ufeff" + text,
        "a key without an id": json.dumps({**body, "keys": [{k: v for k, v in body["keys"][0].items()
                                                            if k != "id"}]}),
        "a bad timestamp": json.dumps({**body, "keys": [{**body["keys"][0], "created": "yesterday"}]}),
        "a bad secret": json.dumps({**body, "keys": [{**body["keys"][0], "secret": body["keys"][0]["secret"][:-3]}]}),
        "keys not a list": json.dumps({**body, "keys": {"0": body["keys"][0]}}),
        "site_data malformed": json.dumps({**body, "site_data": [{"id": "one", "domain_names": ["a.example"]}]}),
    }
    for where, content in broken.items():
        path = tmp_path / "broken.json"
        path.write_text(content)
        for fn, arg in ((keyfile.load_keys, path), (keyfile.parse_keys_body, content)):
            exc = _raised(fn, arg)
            assert isinstance(exc, ValueError), (where, exc)
            secrets.check_exception(exc, f"{fn.__name__}: {where}")
    # The keys JSON itself where a path belongs (bug: the OSError carried it whole as the file name).
    exc = _raised(keyfile.load_keys, text)
    assert isinstance(exc, ValueError) and "parse_keys_body" in str(exc)
    secrets.check_exception(exc, "load_keys given the keys JSON")
    # The Spark helper took JSON text with a BOM for a path the same way.
    from uid2fast.spark import _keys_json

    exc = _raised(_keys_json, "\ufeff" + text)
    assert isinstance(exc, ValueError)
    secrets.check_exception(exc, "spark keys given JSON text with a BOM")


# ---------------------------------------------------------------------------------------------------
# logs
# ---------------------------------------------------------------------------------------------------
def test_debug_logs_of_refresh_retries_failures_decrypt_and_encrypt(op, secrets, capfd):
    wrong = base64.b64encode(os.urandom(32)).decode()
    secrets.add(wrong, "a wrong client secret")
    with _all_logs() as logs:
        bidstream = _client(uid2fast.BidstreamClient, op, "bidstream")
        sharing = _client(uid2fast.SharingClient, op, "sharer")
        assert bidstream.refresh().success and sharing.refresh().success
        op.fail_next(2, 503, path="/v2/key/bidstream")
        assert bidstream.refresh().success  # after two retries
        op.rate_limit_next(1, 0.01, path="/v2/key/sharing")
        assert sharing.refresh().success
        op.malformed_next(1, path="/v2/key/bidstream")
        assert not bidstream.refresh().success
        failing = uid2fast.BidstreamClient(op.base_url, op.credentials("bidstream")[0], wrong, http=FAST)
        refresher = KeyRefresher(failing, on_error=lambda exc: None)
        assert not refresher.refresh_now()
        legacy = uid2fast.Uid2ClientFactory.create(op.base_url, op.credentials("sharer")[0], wrong)
        auto = EncryptionKeysAutoRefresher(legacy, dt.timedelta(hours=1), dt.timedelta(seconds=30))
        assert not auto._try_refresh_keys()
        logging.getLogger("secret-test").error("an error with a traceback", exc_info=auto.current_result()
                                               .last_error)

        tokens = [op.issue_token(email=f"log{i}@example.com", client_side=i % 2 == 0) for i in range(6)]
        for engine in _engine.engines.values():  # the same calls on each engine's table of the key sets
            bid_e, sharing_e = _on_engine(bidstream, engine), _on_engine(sharing, engine)
            for t in tokens + ["garbage", tokens[0][:-9]]:
                bid_e.decrypt_token_into_raw_uid(t, DOMAIN)
            bid_e.decrypt_tokens_into_raw_uids(tokens, "wrong.example")
            shared = sharing_e.encrypt_raw_uids_into_tokens([op.raw_uid(email="s@example.com")] * 3)
            sharing_e.decrypt_tokens_into_raw_uids(shared.tokens)
            # keys with a master keyset but no caller_site_id: a warning (docs/differences.md#encrypt-settings)
            no_site = {k: v for k, v in keyfile.keys_body(sharing_e.keys).items() if k != "caller_site_id"}
            uid2fast.encrypt(op.raw_uid(email="s@example.com"), None, keyfile.parse_keys_body(no_site))

        publisher = _client(Uid2PublisherClient, op, "publisher")
        identity = publisher.generate_token(TokenGenerateInput.from_email("pub@example.com")).get_identity()
        publisher.refresh_token(identity)
        op.fail_next(1, 500, path="/v2/identity/map")
        _client(IdentityMapClient, op, "mapper").generate_identity_map(IdentityMapInput.from_emails(["m@example.com"]))
        _client(IdentityMapV3Client, op, "mapper").generate_identity_map(
            IdentityMapV3Input.from_emails(["m@example.com"]))
        _client(OptOutClient, op, "mapper").get_optout_status([op.raw_uid(email="m@example.com")])
        secrets.add_keys(op)  # any key added since the fixture ran
    text = logs.getvalue()
    # The capture saw the traffic: every layer logged something.
    for expected in ("urllib3.connectionpool DEBUG", "uid2fast.testing.operator DEBUG", "uid2fast.http INFO",
                     "uid2fast.refresher WARNING key refresh failed", "no caller_site_id", "Traceback"):
        assert expected in text, expected
    secrets.check(text, "the DEBUG log")
    out, err = capfd.readouterr()
    secrets.check(out + err, "stdout/stderr")
    assert out == ""  # docs/differences.md#no-stdout: nothing prints to stdout


# ---------------------------------------------------------------------------------------------------
# the command line
# ---------------------------------------------------------------------------------------------------
def _run(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out + err


def test_cli_output_on_success_and_error(op, secrets, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("UID2FAST_DEBUG", raising=False)
    outputs = {}
    bid_key, bid_secret = op.credentials("bidstream")
    sh_key, sh_secret = op.credentials("sharer")
    bkeys, skeys = tmp_path / "bid.json", tmp_path / "share.json"
    for flags in ((), ("--json",), ("-q",)):
        for path, kind, key, sec in ((bkeys, "bidstream", bid_key, bid_secret), (skeys, "sharing", sh_key, sh_secret)):
            rc, outputs[f"keys fetch {kind} {flags}"] = _run(capsys, "keys", "fetch", "--base-url", op.base_url,
                                                             "--kind", kind, "-o", path, "--api-key", key,
                                                             "--secret-key", sec, *flags)
            assert rc == 0
    monkeypatch.setenv("UID2_API_KEY", bid_key)
    monkeypatch.setenv("UID2_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    secrets.add(os.environ["UID2_SECRET_KEY"], "a wrong client secret")
    rc, outputs["keys fetch, wrong secret from the environment"] = _run(
        capsys, "keys", "fetch", "--base-url", op.base_url, "--kind", "bidstream", "-o", tmp_path / "x.json")
    assert rc == 1
    monkeypatch.delenv("UID2_API_KEY")
    monkeypatch.delenv("UID2_SECRET_KEY")
    failing = {
        "unknown API key": ("--api-key", bid_key + "x", "--secret-key", bid_secret),
        "malformed secret": ("--api-key", bid_key, "--secret-key", bid_secret[:-2] + "!!"),
        "short secret": ("--api-key", bid_key, "--secret-key", bid_secret[:20]),
        "no such directory": ("--api-key", bid_key, "--secret-key", bid_secret, "-o", tmp_path / "no" / "k.json"),
        "unreachable": ("--api-key", bid_key, "--secret-key", bid_secret, "--base-url", "http://127.0.0.1:9",
                        "--timeout", "1"),
    }
    for where, extra in failing.items():
        args = ["keys", "fetch", "--kind", "bidstream", "--json"]
        if "--base-url" not in extra:
            args += ["--base-url", op.base_url]
        if "-o" not in extra:
            args += ["-o", tmp_path / "k.json"]
        rc, outputs[f"keys fetch, {where}"] = _run(capsys, *args, *extra)
        assert rc == 1, where
    secrets.add_keys(op)

    tokens = [op.issue_token(email=f"cli{i}@example.com") for i in range(20)] + ["garbage"]
    (tmp_path / "tokens.txt").write_text("\n".join(tokens) + "\n")
    (tmp_path / "uids.txt").write_text("\n".join(op.raw_uid(email=f"u{i}@example.com") for i in range(20)) + "\n")
    for flags in ((), ("--json",)):
        rc, outputs[f"decrypt {flags}"] = _run(capsys, "decrypt", "--keys", bkeys, tmp_path / "tokens.txt",
                                               tmp_path / "out.csv", "--column", "token", *flags)
        assert rc == 0
        rc, outputs[f"encrypt {flags}"] = _run(capsys, "encrypt", "--keys", skeys, tmp_path / "uids.txt",
                                               tmp_path / "enc.txt", "--column", "uid", *flags)
        assert rc == 0
    text = bkeys.read_text()
    (tmp_path / "truncated.json").write_text(text[:-40])
    body = json.loads(text)
    body["keys"][0]["created"] = "never"
    (tmp_path / "badtime.json").write_text(json.dumps(body))
    bad_runs = {
        "the keys JSON where the key file path belongs": ("--keys", text),
        "a truncated key file": ("--keys", tmp_path / "truncated.json"),
        "a key file with a bad timestamp": ("--keys", tmp_path / "badtime.json"),
        "a missing key file": ("--keys", tmp_path / "missing.json"),
        "a bidstream key set for encryption": ("--keys", bkeys),
    }
    for where, keys_arg in bad_runs.items():
        kind, src = ("encrypt", "uids.txt") if "encryption" in where else ("decrypt", "tokens.txt")
        rc, outputs[f"{kind}, {where}"] = _run(capsys, kind, *keys_arg, tmp_path / src, tmp_path / "o.txt", "--json")
        if "encryption" not in where:
            assert rc == 1, where
    assert "not the keys JSON" in outputs["decrypt, the keys JSON where the key file path belongs"]
    for where, text in outputs.items():
        secrets.check(text, f"uid2fast {where}")


@pytest.mark.parametrize("json_flag", [True, False])
def test_cli_demo_prints_no_credentials_or_key_secrets(capsys, monkeypatch, json_flag):
    """``uid2fast demo`` runs its own local operator: none of that operator's secrets are printed."""
    import uid2fast.testing

    seen = Secrets()

    class Recording(LocalOperator):
        def close(self):
            if not self._closed:
                seen.add_operator(self)  # its credentials and keys, fetched before it stops
            super().close()

    monkeypatch.setattr(uid2fast.testing, "LocalOperator", Recording)
    rc, text = _run(capsys, "demo", "--count", 40, "--seconds", 0.2, *(["--json"] if json_flag else []))
    assert rc == 0, text
    assert seen._needles, "the demo's operator was not recorded"
    seen.check(text, "uid2fast demo output")


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("UID2FAST_DEBUG", None)
    env.update(extra)
    return env


@pytest.mark.parametrize("json_flag", [True, False])
def test_cli_operator_prints_its_credentials_but_never_key_secrets(json_flag):
    proc = subprocess.Popen([sys.executable, "-m", "uid2fast", "operator", *(["--json"] if json_flag else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        first = proc.stdout.readline()
        if json_flag:
            info = json.loads(first)
            base_url, creds = info["base_url"], {r: (c["api_key"], c["secret_key"])
                                                 for r, c in info["credentials"].items()}
        else:
            base_url = first.split(" on ")[-1].strip()
            lines = [proc.stdout.readline() for _ in range(6)]
            creds = {}
            for line in lines:
                parts = line.split()
                if parts and parts[0] in ROLES:
                    creds[parts[0]] = (parts[1], parts[2])
        assert set(creds) == set(ROLES)
        key_secrets = Secrets()
        for role in ("bidstream", "sharer"):
            api_key, secret = creds[role]
            path = "/v2/key/bidstream" if role == "bidstream" else "/v2/key/sharing"
            body = json.loads(post_enveloped(base_url, path, api_key, base64.b64decode(secret), config=FAST))["body"]
            for k in body["keys"]:
                key_secrets.add(base64.b64decode(k["secret"]), f"key {k['id']} secret")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    printed = first + ("" if json_flag else "".join(lines)) + out + err
    # By design: the credentials of this throwaway operator are its interface.
    for api_key, secret in creds.values():
        assert api_key in printed and secret in printed
    key_secrets.check(printed, "uid2fast operator output")


# ---------------------------------------------------------------------------------------------------
# key files
# ---------------------------------------------------------------------------------------------------
@pytest.fixture
def body(op):
    api_key, secret = op.credentials("sharer")
    return json.loads(post_enveloped(op.base_url, "/v2/key/sharing", api_key, base64.b64decode(secret),
                                     config=FAST))["body"]


def _mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
@pytest.mark.parametrize("existing", [None, 0o644, 0o666, 0o755])
def test_key_file_is_0600_new_or_replacing_a_wider_file(body, tmp_path, umask, existing):
    path = tmp_path / "keys.json"
    if existing is not None:
        path.write_text("old")
        os.chmod(path, existing)
    old = os.umask(umask)
    try:
        keyfile.save_keys(body, path)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600
    assert json.loads(path.read_text()) == body
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]


def test_key_file_temp_is_0600_beside_the_target_and_renamed(body, tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append((pathlib.Path(src), _mode(src), pathlib.Path(src).read_bytes()))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    old = os.umask(0)
    try:
        keyfile.save_keys(body, tmp_path / "keys.json")
    finally:
        os.umask(old)
    (tmp, mode, content), = seen
    assert tmp.parent == tmp_path and tmp.name.startswith(".keys.json.") and tmp.name.endswith(".tmp")
    assert mode == 0o600 and json.loads(content) == body  # complete, and never readable by others
    assert not tmp.exists()


def test_key_file_replaces_a_symlink_not_its_target(body, tmp_path):
    victim = tmp_path / "elsewhere.txt"
    victim.write_text("keep me")
    os.chmod(victim, 0o644)
    link = tmp_path / "keys.json"
    link.symlink_to(victim)
    keyfile.save_keys(body, link)
    assert not link.is_symlink() and _mode(link) == 0o600
    assert victim.read_text() == "keep me" and _mode(victim) == 0o644


def test_key_file_failed_write_leaves_the_old_file_and_no_temp(body, tmp_path, monkeypatch):
    path = tmp_path / "keys.json"
    path.write_text("old")

    def boom(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        keyfile.save_keys(body, path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keys.json"]


def test_cli_keys_fetch_over_a_wider_file_gives_0600(op, tmp_path, capsys):
    path = tmp_path / "k.json"
    path.write_text("{}")
    os.chmod(path, 0o664)
    rc, _ = _run(capsys, "keys", "fetch", "--base-url", op.base_url, "--kind", "bidstream", "-o", path,
                 "--api-key", op.credentials("bidstream")[0], "--secret-key", op.credentials("bidstream")[1], "-q")
    assert rc == 0 and _mode(path) == 0o600


# ---------------------------------------------------------------------------------------------------
# C memory
# ---------------------------------------------------------------------------------------------------
def _engine_sources():
    """The C sources setup.py compiles (its explicit CSRC list), so the harness links the real engine."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "CSRC" for t in node.targets):
            return [str(ROOT / p) for p in ast.literal_eval(node.value)]
    raise AssertionError("setup.py has no CSRC list")


@pytest.fixture(scope="module")
def wipe_harness(tmp_path_factory):
    cc = os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        pytest.skip(f"no C compiler ({cc})")
    if not sys.platform.startswith("linux"):
        pytest.skip("the harness uses GNU ld's --wrap")
    exe = tmp_path_factory.mktemp("wipe") / "test_wipe"
    cmd = [cc, "-O1", "-std=gnu11", "-D_GNU_SOURCE", "-pthread", "-Wall", "-Wextra", "-I", str(ROOT / "csrc"),
           str(ROOT / "csrc" / "tests" / "test_wipe.c"), *_engine_sources(), "-lm",
           "-Wl,--wrap=uid2_wipe", "-o", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return exe


@pytest.mark.parametrize("mode", ["fast", "general"])
def test_c_key_table_workers_and_contexts_wipe_key_material(wipe_harness, mode):
    proc = subprocess.run([str(wipe_harness), mode], capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "UID2FAST_NO_FASTPATH"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert not [ln for ln in lines if ln.startswith("FAIL")]
    for check in ("uid2_table_free wipes the whole key array", "the wiped key array held every secret",
                  "the key array is not wiped while the table is alive", "worker scratch wiped by uid2_worker_free",
                  "every key expanded for the hardware kernel"):
        assert f"ok {check}" in lines, (check, proc.stdout)
