"""The CLI tells the truth: exit status and diagnosis when no row succeeds, signals clean up, the same-file
check by inode, ``-`` for stdin/stdout, errors that name the file and line with binary bytes escaped,
missing optional dependencies named up front, ``demo -q``, and progress by bytes read."""
import gzip
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pacsv = pytest.importorskip("pyarrow.csv")

import uid2fast  # noqa: E402
from uid2fast.cli import _filejob  # noqa: E402
from uid2fast.keyfile import keys_body, save_keys  # noqa: E402
from uid2fast.testing import LocalOperator  # noqa: E402

from .test_cli import _assert_clean_failure, _env, _run  # noqa: E402

DOMAIN = "news.example.com"


@pytest.fixture(scope="module")
def op():
    with LocalOperator(site_data={1001: [DOMAIN]}) as operator:
        yield operator


@pytest.fixture(scope="module")
def files(op, tmp_path_factory):
    """Key files (bidstream, sharing, expired, empty) and operator tokens."""
    d = tmp_path_factory.mktemp("truth")
    bid = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
    share = uid2fast.SharingClient(op.base_url, *op.credentials("sharer"))
    assert bid.refresh().success and share.refresh().success
    body = keys_body(bid.keys)
    save_keys(body, d / "bidstream.json")
    save_keys(keys_body(share.keys), d / "sharing.json")
    expired = json.loads(json.dumps(body))
    for i, k in enumerate(expired["keys"]):
        k["created"], k["activates"], k["expires"] = 1_600_000_000, 1_600_000_000, 1_700_000_000 + i
    save_keys(expired, d / "expired.json")
    (d / "empty.json").write_text('{"identity_scope": "UID2", "keys": []}')
    foreign = json.loads(json.dumps(body))
    for k in foreign["keys"]:
        k["id"] += 1000  # another operator's key ids: the tokens' keys are not in the file
    save_keys(foreign, d / "foreign.json")
    with LocalOperator("EUID") as euid:
        other = uid2fast.BidstreamClient(euid.base_url, *euid.credentials("bidstream"))
        assert other.refresh().success
        save_keys(keys_body(other.keys), d / "euid.json")
    tokens = [op.issue_token(email=f"truth{i}@example.com") for i in range(40)]
    uids = [op.raw_uid(email=f"truth{i}@example.com") for i in range(40)]
    return {"dir": d, "tokens": tokens, "uids": uids}


def _text(path, lines):
    path.write_text("".join(line + "\n" for line in lines))
    return path


# ---------------------------------------------------------------------------------------------------
# exit status 3 and the diagnosis
# ---------------------------------------------------------------------------------------------------
def test_an_empty_key_file_is_refused_with_what_to_do(files, tmp_path, capsys):
    # A key set without keys fails to load (as a refresh that returns one fails), before any row is read.
    keys = files["dir"] / "empty.json"
    out = tmp_path / "out.txt"
    rc, stdout, err = _run(capsys, "decrypt", "--keys", keys, _text(tmp_path / "in.txt", files["tokens"]), out)
    assert rc == 1 and f"key file {keys} holds no keys" in err and "uid2fast keys fetch" in err, err
    assert not out.exists()


@pytest.mark.parametrize("case", ["expired keys", "bidstream keys for encrypt", "wrong column",
                                  "foreign keys", "EUID keys"])
def test_no_row_succeeds_exit_3_with_a_diagnosis(case, files, tmp_path, capsys):
    d = files["dir"]
    kind, keys, src = "decrypt", d / "bidstream.json", _text(tmp_path / "in.txt", files["tokens"])
    want = []
    if case == "expired keys":
        keys = d / "expired.json"
        want = [f"key file {keys}: every key expired, the last at 2023-11-14", "uid2fast keys fetch"]
    elif case == "bidstream keys for encrypt":
        kind, src = "encrypt", _text(tmp_path / "in.txt", files["uids"])
        want = [f"key file {keys} holds bidstream keys; encrypting needs `--kind sharing` keys"]
    elif case == "wrong column":
        src = tmp_path / "in.csv"
        pacsv.write_csv(pa.table({"id": [f"row{i}" for i in range(40)], "token": files["tokens"]}), src)
        kind = "decrypt"
        want = ["no value of column 'id' decrypts as a UID2/EUID token; check --column"]
    elif case == "foreign keys":
        keys = d / "foreign.json"
        want = [f"key file {keys} lacks the keys these tokens were encrypted with", "--kind bidstream"]
    elif case == "EUID keys":
        keys = d / "euid.json"
        want = [f"the tokens are not EUID tokens, and key file {keys} holds EUID keys"]
    out = tmp_path / "out.txt"
    extra = ["--column", "id"] if case == "wrong column" else []
    rc, stdout, err = _run(capsys, kind, "--keys", keys, src, out, *extra)
    assert rc == _filejob.EXIT_ROWS_FAILED == 3, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("uid2fast: error: ") and "--fail-on never" in last, err
    for text in want:
        assert text in last, last
    assert out.read_text().count("\n") == 40  # the output is complete: the statuses are data
    rc, stdout, err = _run(capsys, kind, "--keys", keys, src, out, *extra, "--fail-on", "never", "--json")
    summary = json.loads(stdout)
    assert rc == 0 and summary["exit_status"] == 0 and want[0] in summary["diagnosis"]


def test_partial_failure_passes_unless_fail_on_any(files, tmp_path, capsys):
    keys = files["dir"] / "bidstream.json"
    src = _text(tmp_path / "in.txt", files["tokens"] + ["not a token"])
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, src, tmp_path / "o.txt", "-q")
    assert rc == 0 and err == ""
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, src, tmp_path / "o.txt", "-q", "--fail-on", "any")
    assert rc == 3 and "1 of 41 rows did not succeed" in err
    # an empty input is no failure
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, _text(tmp_path / "e.txt", []), tmp_path / "o2.txt", "-q")
    assert rc == 0 and (tmp_path / "o2.txt").read_text() == ""


# ---------------------------------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------------------------------
def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("fmt", ["text", "csv"])
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_signals_remove_the_temporary_output(sig, fmt, files, tmp_path):
    signum = getattr(signal, sig)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / f"result.{'csv' if fmt == 'csv' else 'txt'}"
    keys = str(files["dir"] / "bidstream.json")
    # The job leaves alone a SIGINT its caller ignores (what a shell's background job or nohup sets up, and
    # what a child inherits), so the child starts with the default disposition whatever this process inherited.
    proc = subprocess.Popen([sys.executable, "-m", "uid2fast", "decrypt", "--keys", keys, "-", str(out),
                             "--input-format", fmt, "--batch-size", "10"],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), preexec_fn=_default_sigint)
    try:
        # 2 MB of rows (more than the CSV reader's first block), and stdin stays open: the job is mid-way,
        # its temporary output on disk.
        rows = "".join(files["tokens"][i % 40] + "\n" for i in range(2_000_000 // 150))
        proc.stdin.write((("token\n" if fmt == "csv" else "") + rows).encode())
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not list(out_dir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p.name for p in out_dir.iterdir()][0].startswith(".result."), "no temporary output appeared"
        proc.send_signal(signum)
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode()
    assert rc == 128 + signum, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert list(out_dir.iterdir()) == []


def test_a_sigint_the_caller_ignores_stays_ignored(files, tmp_path):
    """A background job (or nohup) starts with SIGINT ignored; the job must not turn it back on."""
    out = tmp_path / "result.txt"
    keys = str(files["dir"] / "bidstream.json")
    proc = subprocess.Popen([sys.executable, "-m", "uid2fast", "decrypt", "--keys", keys, "-", str(out),
                             "--batch-size", "10"], stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        n = 20_000
        proc.stdin.write("".join(files["tokens"][i % 40] + "\n" for i in range(n)).encode())
        proc.stdin.flush()
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".result.*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(tmp_path.glob(".result.*")), "no temporary output appeared"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.stdin.close()
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == 0, proc.stderr.read().decode()
    assert len(out.read_text().splitlines()) == n


# ---------------------------------------------------------------------------------------------------
# same file, stdin and stdout
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_link_to_the_input_is_the_same_file(link, files, tmp_path, capsys):
    src = _text(tmp_path / "uids.txt", files["uids"])
    before = src.read_bytes()
    dst = tmp_path / "tokens.txt"
    (os.symlink if link == "symlink" else os.link)(src, dst)
    rc, out, err = _run(capsys, "encrypt", "--keys", files["dir"] / "sharing.json", src, dst)
    _assert_clean_failure(rc, err)
    assert "same file" in err and src.read_bytes() == before


def test_stdin_and_stdout_text_and_csv(files, tmp_path):
    keys = str(files["dir"] / "bidstream.json")
    tokens = files["tokens"] + ["garbage"]
    want = uid2fast.decrypt_tokens(tokens, uid2fast.keyfile.load_keys(keys))
    r = subprocess.run([sys.executable, "-m", "uid2fast", "decrypt", "--keys", keys, "-", "-", "-q"],
                       input="\n".join(tokens) + "\n", capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert [u or None for u in r.stdout.split("\n")[:-1]] == want.uids()
    csv_in = "token,n\n" + "".join(f"{t},{i}\n" for i, t in enumerate(tokens))
    r = subprocess.run([sys.executable, "-m", "uid2fast", "decrypt", "--keys", keys, "-", "-", "-q",
                        "--input-format", "csv", "--output-format", "csv"],
                       input=csv_in, capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    table = pacsv.read_csv(pa.py_buffer(r.stdout.encode()))
    assert table.column("n").to_pylist() == list(range(len(tokens)))
    assert [u or None for u in table.column("uid").to_pylist()] == want.uids()
    # a CSV file in, text to stdout
    src = tmp_path / "in.csv"
    src.write_text(csv_in)
    r = subprocess.run([sys.executable, "-m", "uid2fast", "decrypt", "--keys", keys, str(src), "-", "-q"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0 and [u or None for u in r.stdout.split("\n")[:-1]] == want.uids()


def test_stdio_refuses_parquet_and_json_to_stdout(files, tmp_path, capsys):
    keys = files["dir"] / "bidstream.json"
    src = _text(tmp_path / "in.txt", files["tokens"])
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, src, "-", "--output-format", "parquet")
    _assert_clean_failure(rc, err)
    assert "Parquet" in err
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, src, "-", "--json")
    _assert_clean_failure(rc, err)
    assert "--json" in err


# ---------------------------------------------------------------------------------------------------
# errors name the file and line, and escape binary bytes
# ---------------------------------------------------------------------------------------------------
def test_bad_utf8_text_names_file_and_line_and_escapes(files, tmp_path, capsys):
    src = tmp_path / "tokens.txt"
    src.write_bytes(("\n".join(files["tokens"][:5]) + "\n").encode() + b"ok\x1b[31m\xff\xfe\x00junk\n" + b"x\n")
    out = tmp_path / "o.txt"
    rc, stdout, err = _run(capsys, "decrypt", "--keys", files["dir"] / "bidstream.json", src, out)
    _assert_clean_failure(rc, err, out)
    assert f"{src}: line 6: not UTF-8 text" in err
    assert "\\xff\\xfe" in err and "\\x1b" in err and "\\x00" in err
    assert not any(ord(c) < 32 and c != "\n" for c in err) and "\udcff" not in err


def test_csv_errors_name_file_and_line(files, tmp_path, capsys):
    keys = files["dir"] / "bidstream.json"
    src = tmp_path / "in.csv"
    src.write_text("id,token\n" + "".join(f"{i},{t}\n" for i, t in enumerate(files["tokens"])) + "1,2,3\n")
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, src, tmp_path / "o.csv")
    _assert_clean_failure(rc, err, tmp_path / "o.csv")
    assert f"{src}: line 42: 3 fields where the header has 2" in err
    src.write_bytes(b"id,token\n1,abc\n2,\xff\x01\n")
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, src, tmp_path / "o.csv")
    _assert_clean_failure(rc, err, tmp_path / "o.csv")
    assert f"{src}: line 3: not UTF-8 text (2,\\xff\\x01)" in err


def test_corrupt_parquet_data_names_the_file(files, tmp_path, capsys):
    src = tmp_path / "in.parquet"
    n = 20_000
    pq.write_table(pa.table({"token": [files["tokens"][i % 40] + str(i) for i in range(n)]}), src,
                   row_group_size=5_000, compression="none", use_dictionary=False)
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4096] = os.urandom(4096)  # a data page in the middle; the footer stays readable
    src.write_bytes(bytes(data))
    out = tmp_path / "o.parquet"
    rc, stdout, err = _run(capsys, "decrypt", "--keys", files["dir"] / "bidstream.json", src, out, "--fail-on",
                           "never")
    if rc == 0:  # the random bytes happened to decode as strings: no error to check, but nothing lost either
        assert pq.read_metadata(out).num_rows == n
        return
    _assert_clean_failure(rc, err, out)
    assert str(src) in err and "Traceback" not in err


def test_printable_escapes_and_cuts():
    from uid2fast.cli._common import printable

    assert printable(b"a\xffb\x00\x1b") == "a\\xffb\\x00\\x1b"
    assert printable("tab\there\u200b") == "tab\\there\\u200b"
    assert printable("µs/token é") == "µs/token é"
    assert printable("x" * 500, limit=10) == "x" * 10 + "..."


# ---------------------------------------------------------------------------------------------------
# optional dependencies, demo -q, progress
# ---------------------------------------------------------------------------------------------------
def test_missing_pyarrow_names_the_extra_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    out = tmp_path / "o.csv"
    rc, stdout, err = _run(capsys, "decrypt", "--keys", tmp_path / "no-such-keys.json", tmp_path / "missing.csv", out)
    _assert_clean_failure(rc, err, out)
    assert "needs pyarrow" in err and "pip install 'uid2fast[cli]'" in err
    assert "no-such-keys" not in err and "missing.csv" not in err  # checked before the key file and the input


def test_bench_plot_checks_matplotlib_first(capsys, monkeypatch):
    from uid2fast import _bench

    def must_not_run(*a, **k):
        raise AssertionError("the benchmark ran before the matplotlib check")

    monkeypatch.setattr(_bench, "run", must_not_run)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc, out, err = _run(capsys, "bench", "--quick", "--plot", "x.png")
    assert rc == 1 and "needs matplotlib" in err and "uid2fast[cli]" in err
    assert _bench.main(["--quick", "--plot", "x.png"]) == 2
    assert "matplotlib" in capsys.readouterr().err


def test_demo_quiet_still_prints_the_table(capsys):
    rc, out, err = _run(capsys, "demo", "--count", 40, "--seconds", 0.2, "-q")
    assert rc == 0, err
    assert "µs/token" in out and "tokens/s" in out and "SUCCESS=" in out
    assert "keys synced" not in out  # -q drops the progress lines, not the table


class _Recorder:
    def __init__(self, total, unit):
        self.total, self.unit, self.updates = total, unit, []

    def update(self, n=1):
        self.updates.append(n)

    def set_postfix_str(self, s):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


@pytest.mark.parametrize("name", ["in.csv", "in.txt", "in.csv.gz", "in.txt.gz"])
def test_progress_counts_bytes_read_of_csv_and_text(name, files, tmp_path, capsys, monkeypatch):
    bars = []

    def progress(args, *, total, unit, desc):
        bars.append(_Recorder(total, unit))
        return bars[-1]

    monkeypatch.setattr(_filejob, "_progress", progress)
    tokens = [files["tokens"][i % 40] for i in range(30_000)]
    body = ("token\n" if ".csv" in name else "") + "".join(t + "\n" for t in tokens)
    src = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(src, "wt") as f:
            f.write(body)
    else:
        src.write_text(body)
    out = tmp_path / ("out.csv" if ".csv" in name else "out.txt")
    rc, stdout, err = _run(capsys, "decrypt", "--keys", files["dir"] / "bidstream.json", src, out, "--batch-size",
                           2000)
    assert rc == 0, err
    (bar,) = bars
    size = src.stat().st_size
    assert bar.unit == "B" and bar.total == size  # a known total: tqdm shows a percentage
    assert sum(bar.updates) == size and all(n >= 0 for n in bar.updates)
    if ".txt" in name:
        assert len([n for n in bar.updates if n]) > 1  # it moves while the file is read, not once at the end


def test_csv_output_writes_code_columns_as_names(op, files, tmp_path, capsys):
    keys = files["dir"] / "bidstream.json"
    phone = op.issue_token(phone="+15551234567")
    src = _text(tmp_path / "in.txt", [files["tokens"][0], phone, "garbage"])
    pq.write_table(pa.table({"token": [files["tokens"][0], phone, "garbage"]}), tmp_path / "in.parquet")
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, tmp_path / "in.parquet", tmp_path / "o.csv", "-q")
    assert rc == 0, err
    table = pacsv.read_csv(tmp_path / "o.csv")
    assert table.column("identity_type").to_pylist() == ["Email", "Phone", ""]  # CSV writes null as empty
    assert table.column("identity_scope").to_pylist() == ["UID2", "UID2", ""]
    assert table.column("status").to_pylist()[:2] == ["SUCCESS", "SUCCESS"]
    # Parquet keeps the batch API's int8 codes
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, src, tmp_path / "o.parquet", "-q", "--input-format",
                        "text")
    assert rc == 0, err
    t = pq.read_table(tmp_path / "o.parquet")
    assert t.schema.field("identity_type").type == pa.int8()
    assert t.column("identity_type").to_pylist() == [0, 1, None]


def test_csv_timestamps_are_written_as_arrow_writes_them(files, tmp_path, capsys):
    """The CSV output formats established/expiry itself (Arrow's writer looks the zone up per value, slowly);
    the text is the same as Arrow's CSV writer gives for the UTC timestamps, nulls empty."""
    keys = files["dir"] / "bidstream.json"
    tokens = files["tokens"][:5] + ["garbage"]
    src = _text(tmp_path / "in.txt", tokens)
    rc, out, err = _run(capsys, "decrypt", "--keys", keys, src, tmp_path / "o.csv", "-q", "--fail-on", "never")
    assert rc == 0, err
    want = uid2fast.decrypt_tokens(tokens, uid2fast.keyfile.load_keys(keys)).to_arrow()
    buf = pa.BufferOutputStream()
    pacsv.write_csv(want.select(["established", "expiry"]), buf)
    want_lines = buf.getvalue().to_pybytes().decode().splitlines()[1:]
    got = pacsv.read_csv(tmp_path / "o.csv", convert_options=pacsv.ConvertOptions(
        column_types={"established": pa.string(), "expiry": pa.string()}))
    got_lines = [f"{a},{b}" for a, b in zip(got.column("established").to_pylist(), got.column("expiry").to_pylist())]
    assert got_lines == want_lines
    assert got_lines[0].endswith("Z") and got_lines[-1] == ","
