"""The file commands' pipeline: read, engine and write overlap, rows and order unchanged, memory bounded,
errors and signals still handled; and benchmarks/bench_cli.py checks the command before timing it."""
import pathlib
import sys
import threading
import time

import pytest

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")
pacsv = pytest.importorskip("pyarrow.csv")

import uid2fast  # noqa: E402
from uid2fast.cli import _filejob  # noqa: E402
from uid2fast.cli._common import CliError  # noqa: E402
from uid2fast.cli._pipeline import Pipeline, Serial  # noqa: E402
from uid2fast.keyfile import keys_body, save_keys  # noqa: E402
from uid2fast.testing import LocalOperator  # noqa: E402

from .test_cli import _run  # noqa: E402


def _run_pipeline(source, sink_delay=0.0, work=lambda x: x, depth=2):
    written = []

    def sink(item):
        if sink_delay:
            time.sleep(sink_delay)
        written.append(item)

    with Pipeline(source, sink, depth=depth) as p:
        for item in p.batches():
            p.write(work(item))
        p.finish()
    return written


def test_order_and_every_item_kept():
    assert _run_pipeline(iter(range(500)), work=lambda x: x * 2) == [x * 2 for x in range(500)]
    assert _run_pipeline(iter(range(40)), sink_delay=0.002) == list(range(40))
    assert _run_pipeline(iter([])) == []


def test_stages_overlap_and_stay_bounded():
    produced, consumed = [], []
    busy = {"read": 0, "max_ahead": 0}

    def source():
        for i in range(60):
            produced.append(i)
            busy["max_ahead"] = max(busy["max_ahead"], len(produced) - len(consumed))
            time.sleep(0.003)  # a read: the engine and the writer run meanwhile
            yield i

    threads = set()

    def work(x):
        threads.add(threading.current_thread().name)
        consumed.append(x)
        time.sleep(0.003)
        return x

    t0 = time.perf_counter()
    assert _run_pipeline(source(), sink_delay=0.003, work=work, depth=2) == list(range(60))
    elapsed = time.perf_counter() - t0
    assert threads == {threading.current_thread().name}  # the engine stage runs on the calling thread
    # in the queue (2), in the engine (1), being handed over (1): never the whole input
    assert busy["max_ahead"] <= 5, busy
    assert elapsed < 60 * 0.009  # less than the three stages one after the other (which sleep that long)


def test_a_read_error_reaches_the_caller_and_threads_stop():
    def source():
        yield 1
        yield 2
        raise CliError("in.csv: line 3: bad")

    with pytest.raises(CliError, match="line 3"):
        _run_pipeline(source())
    assert not [t for t in threading.enumerate() if t.name in ("uid2fast-read", "uid2fast-write")]


def test_a_write_error_reaches_the_caller():
    def sink(item):
        if item == 5:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        with Pipeline(iter(range(100)), sink) as p:
            for item in p.batches():
                p.write(item)
            p.finish()
    assert not [t for t in threading.enumerate() if t.name in ("uid2fast-read", "uid2fast-write")]


def test_close_mid_way_stops_a_reader_and_a_writer_that_are_waiting():
    def endless():
        i = 0
        while True:
            i += 1
            yield i

    with pytest.raises(KeyboardInterrupt):
        with Pipeline(endless(), lambda item: None) as p:
            for item in p.batches():
                p.write(item)
                if item == 50:
                    raise KeyboardInterrupt
    assert not [t for t in threading.enumerate() if t.name in ("uid2fast-read", "uid2fast-write")]


def test_serial_has_the_same_interface():
    out = []
    with Serial(iter(range(5)), out.append) as s:
        for item in s.batches():
            s.write(item + 1)
        s.finish()
    assert out == [1, 2, 3, 4, 5]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    d = tmp_path_factory.mktemp("pipe")
    with LocalOperator() as op:
        client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
        assert client.refresh().success
        tokens = [op.issue_token(email=f"pipe{i}@example.com") for i in range(300)]
    save_keys(keys_body(client.keys), d / "keys.json")
    return d / "keys.json", client.keys, tokens


@pytest.mark.parametrize("fmt", ["parquet", "csv", "txt"])
def test_files_go_through_the_pipeline_rows_in_order(fmt, keyed, tmp_path, capsys, monkeypatch):
    keys_path, keys, tokens = keyed
    used = []

    class Recording(Pipeline):
        def __init__(self, *a, **k):
            used.append(self)
            super().__init__(*a, **k)

    monkeypatch.setattr(_filejob, "Pipeline", Recording)
    n = 25_000
    column = [tokens[(i * 7) % 300] if i % 97 else f"junk{i}" for i in range(n)]
    src = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.table({"i": list(range(n)), "token": column}), src)
    elif fmt == "csv":
        pacsv.write_csv(pa.table({"i": list(range(n)), "token": column}), src)
    else:
        src.write_text("".join(t + "\n" for t in column))
    out = tmp_path / f"out.{fmt}"
    rc, stdout, err = _run(capsys, "decrypt", "--keys", keys_path, src, out, "--batch-size", 1000, "-q")
    assert rc == 0, err
    assert len(used) == 1
    want = uid2fast.decrypt_tokens(column, keys).uids()
    if fmt == "txt":
        got = [u or None for u in out.read_text().split("\n")[:-1]]
    else:
        table = pq.read_table(out) if fmt == "parquet" else pacsv.read_csv(out)
        assert table.column("i").to_pylist() == list(range(n))
        got = [u or None for u in table.column("uid").to_pylist()]
    assert got == want


def test_bench_cli_checks_then_times(capsys):
    bench = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "bench_cli.py"
    if not bench.is_file():
        pytest.skip("no benchmarks/ beside the tests")
    sys.path.insert(0, str(bench.parent))
    try:
        import bench_cli
    finally:
        sys.path.remove(str(bench.parent))
    for extra in ([], ["--csv"]):
        result = bench_cli.main(["--rows", "3000", "--rounds", "1", *extra])
        assert result["rows"] == 3000 and result["cli_s"]["min"] > 0 and result["floor_s"]["min"] > 0
    assert result["cli_peak_rss_mb"] > 0
    assert "command / floor" in capsys.readouterr().out


@pytest.mark.parametrize("block", [16, 61, 4096])
@pytest.mark.parametrize("gz", [False, True])
def test_csv_blocks_cut_at_record_ends_give_the_whole_file(tmp_path, block, gz):
    """CSV input is read in blocks of about ``_block`` bytes into one reused buffer, each cut at a record's
    end: with blocks smaller than a record, quoted fields holding newlines, commas and doubled quotes, CRLF
    line ends, blank lines and no final newline, the batches hold exactly what Arrow reads from the whole
    file, in order."""
    import gzip

    pa = pytest.importorskip("pyarrow")
    pacsv = pytest.importorskip("pyarrow.csv")
    from uid2fast.cli._formats import Input

    rows = [b"token,domain\r\n"]
    for i in range(300):
        if i % 7 == 0:
            rows.append(b'"tok,%d\nline ""two""",dom%d.com\r\n' % (i, i))
        elif i % 11 == 0:
            rows.append(b"%s,long%d.example.com\n" % (b"L" * (150 + i), i))
        else:
            rows.append(b"t%d,d%d\n" % (i, i))
    rows.append(b"\n\nlast,row")  # blank lines, then a record with no newline
    data = b"".join(rows)
    path = tmp_path / ("in.csv.gz" if gz else "in.csv")
    path.write_bytes(gzip.compress(data) if gz else data)
    want = pacsv.read_csv(pa.py_buffer(data), convert_options=pacsv.ConvertOptions(
        column_types={"token": pa.string(), "domain": pa.string()}))
    with Input(str(path), "token", 50) as inp:
        inp._block = block
        got = pa.Table.from_batches(list(inp.batches()))
    assert got.column("token").to_pylist() == want.column("token").to_pylist()
    assert got.column("domain").to_pylist() == want.column("domain").to_pylist()
    assert got.num_rows == 301
