"""The ``uid2fast`` command line, against a real local operator and real files.

Most commands run in-process through ``cli.main`` (fast); the operator command, ``python -m uid2fast`` and
the memory check run in subprocesses.
"""
import json
import os
import pathlib
import signal
import stat
import subprocess
import sys

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pacsv = pytest.importorskip("pyarrow.csv")

import uid2fast  # noqa: E402
from uid2fast import cli  # noqa: E402
from uid2fast.keyfile import keys_body, load_keys, parse_keys_body, save_keys  # noqa: E402
from uid2fast.testing import LocalOperator  # noqa: E402

SRC = str(pathlib.Path(uid2fast.__file__).resolve().parent.parent)
DOMAIN = "news.example.com"
PUBLISHER_SITE = 1001


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("UID2FAST_DEBUG", None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def op():
    with LocalOperator(site_data={PUBLISHER_SITE: [DOMAIN]}) as operator:
        yield operator


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


def _run(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _assert_clean_failure(rc, err, *outputs):
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("uid2fast: error: ")
    assert "Traceback" not in err
    for path in outputs:
        path = pathlib.Path(path)
        assert not path.exists(), f"{path} was left behind"
        siblings = path.parent.iterdir() if path.parent.exists() else []
        leftovers = [p.name for p in siblings if p.name.startswith(f".{path.name}.")]
        assert not leftovers, f"temporary files left: {leftovers}"


@pytest.fixture(scope="module")
def bidstream_keys(op, workdir):
    path = workdir / "bidstream-keys.json"
    key, secret = op.credentials("bidstream")
    assert cli.main(["keys", "fetch", "--base-url", op.base_url, "--kind", "bidstream", "-o", str(path),
                     "--api-key", key, "--secret-key", secret, "-q"]) == 0
    return path


@pytest.fixture(scope="module")
def sharing_keys(op, workdir):
    path = workdir / "sharing-keys.json"
    key, secret = op.credentials("sharer")
    assert cli.main(["keys", "fetch", "--base-url", op.base_url, "--kind", "sharing", "-o", str(path),
                     "--api-key", key, "--secret-key", secret, "-q"]) == 0
    return path


@pytest.fixture(scope="module")
def tokens(op):
    """Operator-issued tokens (v4 and v3, emails and phones, a CSTG one) plus bad inputs."""
    good = [op.issue_token(email=f"cli{i}@example.com") for i in range(300)]
    good += [op.issue_token(phone=f"+1555{i:07d}") for i in range(100)]
    good += [op.issue_token(email=f"v3.{i}@example.com", version=3) for i in range(50)]
    good.append(op.issue_token(email="cstg@example.com", client_side=True))
    bad = ["", "not a token", good[0][:-10], good[1][:20] + "x" + good[1][21:]]
    return good + bad


# ---------------------------------------------------------------------------------------------------
# keys fetch, key files
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind,role", [("bidstream", "bidstream"), ("sharing", "sharer")])
def test_keys_fetch_writes_body_0600(op, tmp_path, capsys, monkeypatch, kind, role):
    key, secret = op.credentials(role)
    monkeypatch.setenv("UID2_API_KEY", key)
    monkeypatch.setenv("UID2_SECRET_KEY", secret)
    old = os.umask(0o022)  # 0600 must not depend on the umask
    try:
        rc, out, err = _run(capsys, "keys", "fetch", "--base-url", op.base_url, "--kind", kind,
                            "-o", tmp_path / "k.json", "--json")
    finally:
        os.umask(old)
    assert rc == 0, err
    path = tmp_path / "k.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    body = json.loads(path.read_text())
    assert body["identity_scope"] == "UID2" and body["keys"]
    info = json.loads(out)
    assert info["keys"] == len(body["keys"]) and info["kind"] == kind
    keys = load_keys(path)
    assert len(keys) == len(body["keys"])
    for k in body["keys"]:  # no secret (key secrets, client secret, API key) on the terminal
        assert k["secret"] not in out + err
    assert secret not in out + err and key not in out + err
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]


def test_keys_fetch_wrong_credentials(op, tmp_path, capsys):
    key, secret = op.credentials("bidstream")
    other_key, other_secret = op.credentials("publisher")
    target = tmp_path / "k.json"
    for api_key, sec in ((key, other_secret), ("UID2-C-L-999-nope", secret)):
        rc, out, err = _run(capsys, "keys", "fetch", "--base-url", op.base_url, "--kind", "bidstream",
                            "-o", target, "--api-key", api_key, "--secret-key", sec)
        _assert_clean_failure(rc, err, target)
        assert sec not in err and api_key not in err
        assert "check the" in err
    rc, out, err = _run(capsys, "keys", "fetch", "--base-url", op.base_url, "--kind", "sharing", "-o", target,
                        "--api-key", key, "--secret-key", "not base64!")
    _assert_clean_failure(rc, err, target)
    assert "base64" in err


def test_keys_fetch_missing_credentials(op, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("UID2_API_KEY", raising=False)
    monkeypatch.delenv("UID2_SECRET_KEY", raising=False)
    rc, out, err = _run(capsys, "keys", "fetch", "--base-url", op.base_url, "--kind", "bidstream",
                        "-o", tmp_path / "k.json")
    _assert_clean_failure(rc, err, tmp_path / "k.json")
    assert "UID2_API_KEY" in err


def test_keys_fetch_unreachable_operator(tmp_path, capsys, op):
    key, secret = op.credentials("bidstream")
    rc, out, err = _run(capsys, "keys", "fetch", "--base-url", "http://127.0.0.1:9", "--kind", "bidstream",
                        "-o", tmp_path / "k.json", "--api-key", key, "--secret-key", secret, "--timeout", "2")
    _assert_clean_failure(rc, err, tmp_path / "k.json")


def test_keyfile_roundtrip_and_errors(op, tmp_path, bidstream_keys):
    keys = load_keys(bidstream_keys)
    again = parse_keys_body(keys_body(keys))
    assert sorted(k.key_id for k in again.values()) == sorted(k.key_id for k in keys.values())
    assert {k.key_id: k.secret for k in again.values()} == {k.key_id: k.secret for k in keys.values()}
    assert again.get_site_data() == keys.get_site_data() == {PUBLISHER_SITE: [DOMAIN]}
    assert repr(keys).count("secret") == 0 or "redacted" in repr(keys)

    save_keys(json.loads(bidstream_keys.read_text()), tmp_path / "copy.json")
    assert stat.S_IMODE((tmp_path / "copy.json").stat().st_mode) == 0o600

    bad = tmp_path / "bad.json"
    for content in ("{not json", "[1, 2", '{"keys": [{"id": 1}]}', '{"no_keys": 1}', "42"):
        bad.write_text(content)
        with pytest.raises(ValueError) as info:
            load_keys(bad)
        assert str(bad) in str(info.value)
    with pytest.raises(OSError):
        load_keys(tmp_path / "missing.json")
    with pytest.raises(ValueError):
        save_keys({"keys": "nope"}, tmp_path / "never.json")
    assert not (tmp_path / "never.json").exists()


# ---------------------------------------------------------------------------------------------------
# decrypt / encrypt
# ---------------------------------------------------------------------------------------------------
def _expected(tokens, keys_path, **kw):
    return uid2fast.decrypt_tokens(tokens, load_keys(keys_path), **kw)


def test_decrypt_parquet_50k_rows_streamed(tokens, bidstream_keys, workdir, capsys):
    n = 50_000
    column = [tokens[i % len(tokens)] for i in range(n)]
    column[7] = None
    src = workdir / "tokens-50k.parquet"
    pq.write_table(pa.table({"id": pa.array(range(n), pa.int64()), "token": column}), src, row_group_size=20_000)
    dst = workdir / "out-50k.parquet"
    rc, out, err = _run(capsys, "decrypt", "--keys", bidstream_keys, src, dst, "--column", "token",
                        "--batch-size", 4096, "--json")
    assert rc == 0, err
    summary = json.loads(out)
    assert summary["rows"] == n
    result = pq.read_table(dst)
    assert result.column_names[:2] == ["id", "token"]
    assert {"status", "uid", "established", "expiry", "site_id", "identity_type", "version",
            "is_client_side_generated"} <= set(result.column_names)
    assert result.column("id").to_pylist() == list(range(n))
    assert pq.ParquetFile(dst).metadata.num_row_groups >= n // 4096  # written batch by batch
    expected = _expected(column, bidstream_keys, domain_names=None)
    assert result.column("uid").to_pylist() == expected.uids()
    exp_table = expected.to_arrow()
    for name in ("status", "site_id", "identity_type", "version", "is_client_side_generated", "expiry"):
        assert result.column(name).to_pylist() == exp_table.column(name).to_pylist(), name
    counts = {s.name: c for s, c in expected.status_counts().items()}
    assert summary["status_counts"] == counts
    assert counts["SUCCESS"] > 0 and counts["INVALID_PAYLOAD"] > 0


def test_decrypt_csv_and_summary_on_stderr(tokens, bidstream_keys, tmp_path, capsys):
    src = tmp_path / "in.csv"
    pacsv.write_csv(pa.table({"zip": ["01234"] * len(tokens), "token": tokens}), src)
    dst = tmp_path / "out.csv"
    rc, out, err = _run(capsys, "decrypt", "--keys", bidstream_keys, src, dst)
    assert rc == 0, err
    assert out == ""
    assert "decrypted" in err and "SUCCESS=" in err and len(err.strip().splitlines()) == 1
    result = pacsv.read_csv(dst, convert_options=pacsv.ConvertOptions(column_types={"zip": pa.string()}))
    assert result.column("zip").to_pylist() == ["01234"] * len(tokens)  # CSV values pass through as text
    expected = _expected(tokens, bidstream_keys)
    assert [u or None for u in result.column("uid").to_pylist()] == expected.uids()
    assert result.column("status").to_pylist() == expected.to_arrow().column("status").to_pylist()


def test_decrypt_text_one_uid_per_line(tokens, bidstream_keys, tmp_path, capsys):
    src = tmp_path / "tokens.txt"
    src.write_text("\n".join(tokens) + "\n")
    dst = tmp_path / "uids.txt"
    rc, out, err = _run(capsys, "decrypt", "--keys", bidstream_keys, src, dst, "-q")
    assert rc == 0 and err == "" and out == ""
    lines = dst.read_text().split("\n")
    assert lines[-1] == "" and len(lines) - 1 == len(tokens)
    assert [x or None for x in lines[:-1]] == _expected(tokens, bidstream_keys).uids()


def test_decrypt_domain_column(op, bidstream_keys, tmp_path, capsys):
    cstg = op.issue_token(email="domain@example.com", client_side=True)
    src = tmp_path / "bids.parquet"
    pq.write_table(pa.table({"token": [cstg, cstg, cstg], "domain": [DOMAIN, "evil.example", None]}), src)
    dst = tmp_path / "out.parquet"
    rc, out, err = _run(capsys, "decrypt", "--keys", bidstream_keys, src, dst, "--domain-column", "domain", "-q")
    assert rc == 0, err
    status = pq.read_table(dst).column("status").to_pylist()
    assert status == ["SUCCESS", "DOMAIN_NAME_CHECK_FAILED", "DOMAIN_NAME_CHECK_FAILED"]
    # without the check column the sharing client never checks domains
    rc, out, err = _run(capsys, "decrypt", "--keys", bidstream_keys, src, tmp_path / "o2.parquet", "--client",
                        "sharing", "--prefix", "r_", "-q")
    assert rc == 0, err
    assert pq.read_table(tmp_path / "o2.parquet").column("r_status").to_pylist()[0] != "DOMAIN_NAME_CHECK_FAILED"


def test_encrypt_then_decrypt_sharing(op, sharing_keys, tmp_path, capsys):
    uids = [op.raw_uid(email=f"share{i}@example.com") for i in range(500)] + ["not-a-raw-uid"]
    src = tmp_path / "uids.parquet"
    pq.write_table(pa.table({"uid": uids}), src)
    enc = tmp_path / "tokens.csv"
    rc, out, err = _run(capsys, "encrypt", "--keys", sharing_keys, src, enc, "--column", "uid", "--json")
    assert rc == 0, err
    assert json.loads(out)["status_counts"] == {"SUCCESS": 500, "ENCRYPTION_FAILURE": 1}
    dec = tmp_path / "back.parquet"
    rc, out, err = _run(capsys, "decrypt", "--keys", sharing_keys, enc, dec, "--column", "token",
                        "--client", "sharing", "--prefix", "d_", "-q")
    assert rc == 0, err
    t = pq.read_table(dec)
    assert t.column("d_uid").to_pylist()[:500] == uids[:500]
    assert t.column("d_status").to_pylist()[-1] != "SUCCESS"
    # an explicit keyset the caller owns works; an unknown one is a per-row status, not an error
    keyset = load_keys(sharing_keys).get_default_keyset_id()
    rc, out, err = _run(capsys, "encrypt", "--keys", sharing_keys, src, tmp_path / "k.txt", "--keyset-id", keyset,
                        "--json")
    assert rc == 0 and json.loads(out)["status_counts"]["SUCCESS"] == 500
    # an unknown keyset fails every row: exit status 3 with a diagnosis (the output is complete), unless
    # --fail-on never
    rc, out, err = _run(capsys, "encrypt", "--keys", sharing_keys, src, tmp_path / "k2.txt", "--keyset-id",
                        987654, "--json")
    summary = json.loads(out)
    assert rc == 3 and "SUCCESS" not in summary["status_counts"] and summary["exit_status"] == 3
    assert "keyset 987654" in summary["diagnosis"] and "keyset 987654" in err
    assert (tmp_path / "k2.txt").read_text().count("\n") == len(uids)
    rc, out, err = _run(capsys, "encrypt", "--keys", sharing_keys, src, tmp_path / "k3.txt", "--keyset-id",
                        987654, "--json", "--fail-on", "never")
    assert rc == 0 and json.loads(out)["exit_status"] == 0 and err == ""


def _bad_key_file(tmp_path):
    p = tmp_path / "broken-keys.json"
    p.write_text('{"keys": [{"id": 1, "secret": "###"}]}')
    return p


@pytest.mark.parametrize("case", ["missing input", "missing column", "malformed keys", "missing keys",
                                  "unknown input type", "unknown output type", "no output dir",
                                  "not parquet", "not utf8 text", "int column", "result clash",
                                  "same file"])
def test_bad_input_one_line_no_partial_file(case, tokens, bidstream_keys, tmp_path, capsys):
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"token": tokens, "n": list(range(len(tokens)))}), good)
    keys = bidstream_keys
    src, dst, extra = good, tmp_path / "out.parquet", []
    if case == "missing input":
        src = tmp_path / "nope.parquet"
    elif case == "missing column":
        extra = ["--column", "tok"]
    elif case == "malformed keys":
        keys = _bad_key_file(tmp_path)
    elif case == "missing keys":
        keys = tmp_path / "nokeys.json"
    elif case == "unknown input type":
        src = tmp_path / "in.xlsx"
        src.write_bytes(b"PK\x03\x04")
    elif case == "unknown output type":
        dst = tmp_path / "out.xlsx"
    elif case == "no output dir":
        dst = tmp_path / "missing-dir" / "out.parquet"
    elif case == "not parquet":
        src = tmp_path / "fake.parquet"
        src.write_text("token\nabc\n")
    elif case == "not utf8 text":
        src = tmp_path / "bin.txt"
        src.write_bytes(b"\xff\xfe\xfa\n" * 10)
        dst = tmp_path / "out.txt"
    elif case == "int column":
        extra = ["--column", "n"]
    elif case == "result clash":
        extra = ["--column", "token"]
        src = tmp_path / "clash.parquet"
        pq.write_table(pa.table({"token": tokens, "uid": tokens}), src)
    elif case == "same file":
        dst = good
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, src, dst, *extra)
    _assert_clean_failure(rc, err, *( [] if case == "same file" else [dst]))
    if case == "malformed keys":
        assert str(keys) in err


def test_failure_midway_leaves_no_partial_file(tokens, bidstream_keys, tmp_path, capsys):
    # Several blocks of good rows, then a ragged row: the error comes after output was already written.
    src = tmp_path / "ragged.csv"
    good_rows = "".join(f"{i},{tokens[i % 400]}\n" for i in range(20_000))
    src.write_text("id,token\n" + good_rows + "1,2,3,4\n")
    dst = tmp_path / "out.parquet"
    rc, out, err = _run(capsys, "decrypt", "--keys", bidstream_keys, src, dst, "--batch-size", 1000)
    _assert_clean_failure(rc, err, dst)
    # an existing output is left untouched by a failed run
    dst.write_text("previous")
    rc, out, err = _run(capsys, "decrypt", "--keys", bidstream_keys, src, dst, "--batch-size", 1000)
    assert rc != 0 and dst.read_text() == "previous"


def test_subprocess_bad_input_no_traceback(tmp_path, bidstream_keys):
    r = subprocess.run([sys.executable, "-m", "uid2fast", "decrypt", "--keys", str(bidstream_keys),
                        str(tmp_path / "missing.csv"), str(tmp_path / "o.csv")],
                       capture_output=True, text=True, env=_env(), timeout=60)
    assert r.returncode == 1
    assert r.stdout == "" and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "uid2fast", "decrypt"], capture_output=True, text=True,
                       env=_env(), timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr  # argparse usage error


# ---------------------------------------------------------------------------------------------------
# operator, demo, bench
# ---------------------------------------------------------------------------------------------------
def test_operator_command_serves_until_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "uid2fast", "operator", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    try:
        line = proc.stdout.readline()
        info = json.loads(line)
        assert info["base_url"].startswith("http://127.0.0.1:")
        assert set(info["credentials"]) == {"publisher", "bidstream", "sharer", "mapper"}
        creds = info["credentials"]["bidstream"]
        r = subprocess.run([sys.executable, "-m", "uid2fast", "keys", "fetch", "--base-url", info["base_url"],
                            "--kind", "bidstream", "-o", str(tmp_path / "k.json"), "-q"],
                           env=_env(UID2_API_KEY=creds["api_key"], UID2_SECRET_KEY=creds["secret_key"]),
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert len(load_keys(tmp_path / "k.json")) > 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_operator_command_text_lists_every_role():
    proc = subprocess.Popen([sys.executable, "-m", "uid2fast", "operator", "--scope", "EUID"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        lines = [proc.stdout.readline() for _ in range(7)]
        text = "".join(lines)
        assert "EUID operator listening on http://127.0.0.1:" in lines[0]
        for role in ("publisher", "bidstream", "sharer", "mapper"):
            assert role in text
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("scope", ["UID2", "EUID"])
def test_demo_json(capsys, scope):
    rc, out, err = _run(capsys, "demo", "--scope", scope, "--count", 120, "--seconds", 0.5, "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert report["identity_scope"] == scope and report["backend"] == uid2fast.backend
    assert report["tokens_issued"] == 120
    assert all(c["ok"] for c in report["checks"]), report["checks"]
    assert "33-byte raw UIDs, 16 publisher sites, a domain name on every row" in report["corpus"]
    assert any("domain" in c["check"] for c in report["checks"])  # the CSTG rows were checked
    assert report["status_counts"]["SUCCESS"] == 120
    assert sum(report["status_counts"].values()) == 120 + report["status_counts_input"]["tampered_copies"]
    groups = {r["group"] for r in report["paths"]}
    assert {"decrypt", "encrypt", "sharing decrypt"} <= groups
    for r in report["paths"]:
        assert r["us_per_token"] > 0 and r["tokens"] > 0
    try:
        import uid2_client  # noqa: F401
    except ImportError:
        assert "official_sdk" not in report
    else:
        assert any(r.get("official") for r in report["paths"])
        assert all(r["x_official"] for r in report["paths"])


def test_demo_table(capsys):
    rc, out, err = _run(capsys, "demo", "--count", 60, "--seconds", 0.3)
    assert rc == 0, err
    assert "production mix: 33-byte raw UIDs" in out
    rc, out, err = _run(capsys, "demo", "--count", 40, "--seconds", 0.2, "--legacy-32")
    assert rc == 0, err
    assert "production mix: 32-byte raw UIDs" in out and "FAILED" not in out
    assert "µs/token" in out and "tokens/s" in out and "SUCCESS=" in out and "FAILED" not in out
    assert f"engine: {uid2fast.backend}" in out


def test_bench_quick_with_plot(tmp_path, capsys):
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        png = None  # the cli extra brings matplotlib; without it the table alone is checked
    else:
        png = tmp_path / "bench.png"
    rc, out, err = _run(capsys, "bench", "--quick", "--count", 200, "--json", *(["--plot", png] if png else []))
    assert rc == 0, err
    result = json.loads(out)
    assert result["machine"]["cpu"]
    ops = {r["operation"] for r in result["rows"]}
    assert ops == {"decrypt v2", "decrypt v3", "decrypt v4", "decrypt() v4", "encrypt", "bidder's call",
                   "decrypt v4+dom"}
    bidder = {r["path"]: r for r in result["rows"] if r["operation"] == "bidder's call"}
    if uid2fast.backend == "c":
        assert bidder["uid2fast C"]["us_min"] <= bidder["uid2fast C"]["us_per_token"]  # the minimum and the median
    assert not [r for r in result["rows"] if r["note"].startswith("WRONG")]
    assert "33-byte raw UIDs, 16 sites, a domain name on every row" in result["machine"]["corpus"]
    if uid2fast.backend == "c":
        assert all(r["us_per_token"] for r in result["rows"])
        v4 = {r["path"] for r in result["rows"] if r["operation"] == "decrypt v4"}
        assert {"uid2fast C batch, 1 thread, no CSTG, domains", "uid2fast C batch, 1 thread, no CSTG, no domains",
                "uid2fast C batch, 1 thread, 32-byte raw UIDs"} <= v4
        assert result["ratios"] and all(v is not None for v in result["ratios"].values())
    if png is not None:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_times_threads_at_the_clis_batch_size():
    from uid2fast import _bench
    from uid2fast.cli._common import DEFAULT_BATCH_SIZE

    assert _bench.CLI_BATCH == DEFAULT_BATCH_SIZE
    rows = [{"operation": "decrypt v4", "path": f"uid2fast C batch, {p}, 65,536-row batches", "us_per_token": us}
            for p, us in (("1 thread", 0.09), ("2 threads", 0.05))]
    assert _bench._ratios(rows, 2)["all threads (2) vs one, with domains, 65,536-row batches (the CLI's)"] == \
        pytest.approx(1.8)


@pytest.mark.parametrize("version", [2, 3, 4])
@pytest.mark.parametrize("raw_bytes", [33, 32])
def test_bench_corpus_is_the_production_mix(version, raw_bytes):
    """The benchmark corpus: raw UIDs of the asked length, the 16 sites, each row's domain its site's, and one
    row in four client-side generated, so the bidstream domain check really runs on the corpus."""
    import base64

    import numpy as np

    from uid2fast import _bench
    from uid2fast.bidstream_client import BidstreamClient

    S = uid2fast.DecryptionStatus
    body = _bench._keys_body()
    tokens, uids, domains = _bench.corpus(body, version, 400, raw_uid_bytes=raw_bytes)
    assert {len(base64.b64decode(u)) for u in uids} == {raw_bytes}
    client = BidstreamClient("http://127.0.0.1:1", "k", "AAAA")
    client._refresh_json(json.dumps({"body": body, "status": "success"}))
    out = uid2fast.decrypt_tokens(tokens, client.keys, domain_names=domains)
    assert out.uids() == uids and bool(out.success.all())
    assert len(set(out.site_id.tolist())) == _bench._SITES
    assert [_bench.site_domain(s - 1001) for s in out.site_id.tolist()] == domains
    assert int(out.is_client_side_generated.sum()) == 100
    plain = _bench.corpus(body, version, 40, raw_uid_bytes=raw_bytes, cstg=False)[0]
    assert not uid2fast.decrypt_tokens(plain, client.keys).is_client_side_generated.any()
    wrong = uid2fast.decrypt_tokens(tokens, client.keys, domain_names=domains[1:] + domains[:1])
    failed = wrong.status != 0
    assert {wrong.status_enum(i) for i in np.flatnonzero(failed)} == {S.DOMAIN_NAME_CHECK_FAILED}
    assert 0 < int(failed.sum()) <= 100 and not failed[out.is_client_side_generated == 0].any()


def test_bench_script_is_the_same_benchmark():
    script = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_decrypt.py"
    r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, env=_env(),
                       timeout=60)
    assert r.returncode == 0 and "--plot" in r.stdout


# ---------------------------------------------------------------------------------------------------
# memory stays flat
# ---------------------------------------------------------------------------------------------------
_RSS_SCRIPT = """
import resource, sys
from uid2fast.cli import main
rc = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(rc)
"""


def _write_token_parquet(path, keys, n):
    """``n`` distinct sharing tokens (fresh raw UIDs, fresh nonces), no dictionary encoding: the file is as
    big as the data, so reading it whole would show in the peak RSS."""
    import base64

    import numpy as np

    schema = pa.schema([("id", pa.int64()), ("token", pa.string())])
    rng = np.random.default_rng(7)
    with pq.ParquetWriter(path, schema, use_dictionary=False, compression="none") as w:
        chunk = 100_000
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            raw = rng.integers(0, 256, size=(m, 32), dtype=np.uint8)
            uids = [base64.b64encode(row.tobytes()).decode() for row in raw]
            enc = uid2fast.encrypt_tokens(uids, keys)
            assert enc.success.all()
            w.write_table(pa.table({"id": pa.array(range(start, start + m), pa.int64()), "token": enc.tokens},
                                   schema=schema), row_group_size=chunk)


def _peak_rss_kb(keys, src, dst):
    r = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, "decrypt", "--keys", str(keys), str(src), str(dst),
                        "--client", "sharing", "-q", "--batch-size", "50000"],
                       capture_output=True, text=True, env=_env(), timeout=1200)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_decrypt_1m_rows_memory_is_flat(sharing_keys, tmp_path):
    keys = load_keys(sharing_keys)
    small, big = tmp_path / "small.parquet", tmp_path / "big.parquet"
    _write_token_parquet(small, keys, 50_000)
    _write_token_parquet(big, keys, 1_000_000)
    rss_small = _peak_rss_kb(sharing_keys, small, tmp_path / "small-out.parquet")
    rss_big = _peak_rss_kb(sharing_keys, big, tmp_path / "big-out.parquet")
    out = pq.ParquetFile(tmp_path / "big-out.parquet")
    assert out.metadata.num_rows == 1_000_000
    assert pq.read_table(tmp_path / "big-out.parquet", columns=["status"]).column("status").unique().to_pylist() \
        == ["SUCCESS"]
    input_mb = big.stat().st_size / 1e6
    # 20x the rows, about the same peak: far less than the data that went through.
    assert rss_big - rss_small < 100 * 1024, (rss_small, rss_big, input_mb)
    print(f"peak RSS: 50k rows {rss_small / 1024:.0f} MB, 1M rows {rss_big / 1024:.0f} MB "
          f"(input {input_mb:.0f} MB, output {(tmp_path / 'big-out.parquet').stat().st_size / 1e6:.0f} MB)")


# ---------------------------------------------------------------------------------------------------
# the package layout
# ---------------------------------------------------------------------------------------------------
def test_entry_points_and_layout():
    from importlib import metadata

    from uid2fast import _bench
    from uid2fast.cli import _demo

    # the console script (uid2fast.cli:main), python -m uid2fast and python -m uid2fast.cli
    pyproject = pathlib.Path(__file__).resolve().parent.parent / "pyproject.toml"
    if pyproject.is_file():
        assert 'uid2fast = "uid2fast.cli:main"' in pyproject.read_text()
    else:  # the installed wheel
        eps = [ep for ep in metadata.entry_points(group="console_scripts") if ep.name == "uid2fast"]
        assert [ep.value for ep in eps] == ["uid2fast.cli:main"]
    for module in ("uid2fast", "uid2fast.cli"):
        r = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, env=_env(),
                           timeout=60)
        assert r.returncode == 0 and r.stdout.startswith("uid2fast "), r.stderr
    assert _demo.time_per_item is _bench.time_per_item  # one timer for the demo and the benchmark
    package = pathlib.Path(cli.__file__).parent
    sizes = {p.name: len(p.read_text().splitlines()) for p in package.glob("*.py")}
    assert {"_commands.py", "_formats.py", "_demo.py"} <= set(sizes)
    assert max(sizes.values()) <= 600, sizes
