"""``uid2fast decrypt`` on a Parquet file of v4 tokens with domains, against its I/O floor, in one run.

    python benchmarks/bench_cli.py [--rows 2000000] [--rounds 3] [--csv]

The input has ``--rows`` rows (20,000 distinct v4 tokens from a LocalOperator, 16 publisher sites, each row
with a domain name, repeated to size; no dictionary encoding, so the file is as big as its data). The I/O
floor is what any decrypting command has to do besides decrypting: read the input and write the command's
own output table (the input columns plus the result columns, taken from the command's output and held in
memory), one after the other. Before anything is timed, the command's output is checked row for row
against ``uid2fast.decrypt_tokens`` on the column. Rounds alternate floor and command; minimum and median
are printed, with their ratio.

``--csv`` does the same with CSV files and also reports the command's peak RSS (a fresh process per run).
Numbers from a shared or loaded machine are not comparable with a quiet one's; compare the ratio.
"""
import argparse
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import uid2fast
from uid2fast import cli
from uid2fast.keyfile import keys_body, save_keys
from uid2fast.testing import LocalOperator

SITES = 16
DISTINCT = 20_000
BATCH = 65_536


def make_input(directory: pathlib.Path, rows: int, fmt: str):
    """(keys path, input path, keys): the key file and the input file of ``rows`` rows."""
    site_data = {1001 + j: [f"site{j}.example.com"] for j in range(SITES)}
    distinct = min(rows, DISTINCT)
    with LocalOperator(site_data=site_data) as op:
        tokens = [op.issue_token(email=f"cli{i}@example.com", site_id=1001 + i % SITES) for i in range(distinct)]
        client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))  # after: every site's keys
        assert client.refresh().success
    domains = [f"site{i % SITES}.example.com" for i in range(distinct)]
    keys_path = directory / "keys.json"
    save_keys(keys_body(client.keys), keys_path)
    path = directory / f"bids.{fmt}"
    schema = pa.schema([("id", pa.int64()), ("token", pa.string()), ("domain", pa.string())])
    chunk = pa.table({"token": tokens, "domain": domains})
    writer = pq.ParquetWriter(path, schema, use_dictionary=False) if fmt == "parquet" else \
        pacsv.CSVWriter(str(path), schema)
    with writer:
        for start in range(0, rows, distinct):
            n = min(distinct, rows - start)
            part = chunk.slice(0, n)
            writer.write_table(pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                                         "token": part["token"], "domain": part["domain"]}, schema=schema))
    return keys_path, path, client.keys


def run_cli(keys_path, src, dst) -> float:
    t0 = time.perf_counter()
    rc = cli.main(["decrypt", "--keys", str(keys_path), str(src), str(dst), "--domain-column", "domain", "-q",
                   "--batch-size", str(BATCH)])
    seconds = time.perf_counter() - t0
    assert rc == 0, rc
    return seconds


def read_output(path: pathlib.Path, fmt: str):
    if fmt == "parquet":
        return pq.read_table(path)
    names = pacsv.open_csv(path).schema.names
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}))


def check(keys, src: pathlib.Path, out_table, fmt: str) -> None:
    """The command's output is the input plus the batch API's answer, row for row, in order."""
    inp = read_output(src, fmt)
    assert out_table.num_rows == inp.num_rows
    assert out_table.column("id").to_pylist() == inp.column("id").to_pylist()
    want = uid2fast.decrypt_tokens(inp.column("token"), keys, domain_names=inp.column("domain"))
    assert out_table.column("status").to_pylist() == want.to_arrow().column("status").to_pylist()
    got_uids = [u or None for u in out_table.column("uid").to_pylist()]
    assert got_uids == want.uids()
    counts = {s.name: n for s, n in want.status_counts().items()}
    assert counts.get("SUCCESS") == inp.num_rows, counts


def io_floor(src: pathlib.Path, dst: pathlib.Path, out_table, fmt: str) -> float:
    """Read the input batch by batch, then write the output table: the command's file work, nothing else."""
    t0 = time.perf_counter()
    if fmt == "parquet":
        for _ in pq.ParquetFile(src, buffer_size=1 << 20, pre_buffer=False).iter_batches(batch_size=BATCH):
            pass
        with pq.ParquetWriter(dst, out_table.schema) as w:
            for batch in out_table.to_batches(max_chunksize=BATCH):
                w.write_batch(batch)
    else:
        names = pacsv.open_csv(src).schema.names
        convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names})
        for _ in pacsv.open_csv(src, convert_options=convert):
            pass
        with pacsv.CSVWriter(str(dst), out_table.schema) as w:
            for batch in out_table.to_batches(max_chunksize=BATCH):
                w.write_batch(batch)
    return time.perf_counter() - t0


# VmHWM is the peak RSS of this process image; ru_maxrss can carry the parent's peak over a vfork + exec.
_RSS = """
import resource, sys
from uid2fast.cli import main
rc = main(sys.argv[1:])
try:
    peak = [int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
except (OSError, IndexError):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak)
sys.exit(rc)
"""


def peak_rss_mb(keys_path, src, dst) -> float:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pathlib.Path(uid2fast.__file__).resolve().parent.parent) + os.pathsep + \
        env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", _RSS, "decrypt", "--keys", str(keys_path), str(src), str(dst),
                        "--domain-column", "domain", "-q"], capture_output=True, text=True, env=env, timeout=3600)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip().splitlines()[-1]) / 1024


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--csv", action="store_true", help="CSV in and out, and the peak RSS")
    args = ap.parse_args(argv)
    fmt = "csv" if args.csv else "parquet"
    with tempfile.TemporaryDirectory(prefix="bench_cli.") as tmp:
        d = pathlib.Path(tmp)
        keys_path, src, keys = make_input(d, args.rows, fmt)
        dst, floor_dst = d / f"out.{fmt}", d / f"floor.{fmt}"
        run_cli(keys_path, src, dst)  # warm-up, and the output that is checked and that the floor writes
        out_table = read_output(dst, fmt)
        check(keys, src, out_table, fmt)
        cmd, floor = [], []
        for _ in range(args.rounds):
            floor.append(io_floor(src, floor_dst, out_table, fmt))
            cmd.append(run_cli(keys_path, src, dst))
        result = {"rows": args.rows, "format": fmt, "input_mb": round(src.stat().st_size / 1e6, 1),
                  "cli_s": {"min": min(cmd), "median": statistics.median(cmd)},
                  "floor_s": {"min": min(floor), "median": statistics.median(floor)},
                  "ratio_min": min(cmd) / min(floor), "ratio_median": statistics.median(cmd) / statistics.median(floor),
                  "cores": os.cpu_count(), "backend": uid2fast.backend}
        if args.csv:
            result["cli_peak_rss_mb"] = round(peak_rss_mb(keys_path, src, dst), 1)
    print(f"uid2fast decrypt, {args.rows:,} rows of {fmt} ({result['input_mb']} MB), {args.rounds} rounds, "
          f"{result['cores']} cores, engine {result['backend']}:")
    for name, key in (("uid2fast decrypt", "cli_s"), ("I/O floor (read input, write output table)", "floor_s")):
        print(f"  {name:<45} min {result[key]['min']:.3f} s   median {result[key]['median']:.3f} s")
    print(f"  command / floor: {result['ratio_min']:.2f}x (min), {result['ratio_median']:.2f}x (median)")
    if "cli_peak_rss_mb" in result:
        print(f"  peak RSS of the command: {result['cli_peak_rss_mb']:.0f} MB")
    print(f"  (this process's peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    return result


if __name__ == "__main__":
    main()
