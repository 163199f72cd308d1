"""Kernel microbenchmark: compiles benchmarks/bench_kernels.c with the engine's C files and runs it.

    python benchmarks/bench_kernels.py [--runs 101] [--iters 5000] [--cc gcc]

Prints ns per AES-256-GCM decrypt/encrypt of 68 and 129 bytes (the site and master payloads of a v4 token)
through the engine's EVP path (pre-keyed context, uid2_aead.c) and the AES-NI kernel (uid2_gcm_ni.c), and
ns per base64url decode of a v4 token from tests/vectors/decrypt.json through the exact decoder
(uid2_base64.c) and the fast one (uid2_b64fast.c). Each figure is the median of `runs` runs of `iters`
back-to-back calls, with the fastest run in brackets: on a shared machine the median moves with the
neighbours' load, the minimum much less. The answers are checked before anything is timed.
"""
import argparse
import json
import pathlib
import platform
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SOURCES = ["uid2_gcm_ni.c", "uid2_b64fast.c", "uid2_aead.c", "uid2_base64.c"]
# the flags setup.py compiles the engine with (minus the warnings that would only make this fail louder)
CFLAGS = ["-O3", "-std=gnu11", "-pthread", "-ffp-contract=off", "-D_GNU_SOURCE"]


def v4_token():
    data = json.loads((ROOT / "tests" / "vectors" / "decrypt.json").read_text())
    for v in data["vectors"]:
        tok = v.get("token")
        if v.get("kind") == "decrypt" and v.get("version") == 4 and isinstance(tok, str) and len(tok) == 218:
            return tok
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=101, help="timed runs per figure (1..255), median reported")
    ap.add_argument("--iters", type=int, default=5000, help="calls per run")
    ap.add_argument("--cc", default="gcc")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        exe = pathlib.Path(tmp) / "bench_kernels"
        cmd = [args.cc, *CFLAGS, f"-I{CSRC}", "-o", str(exe), str(ROOT / "benchmarks" / "bench_kernels.c"),
               *(str(CSRC / s) for s in SOURCES), "-lcrypto"]
        subprocess.run(cmd, check=True)
        run = [str(exe), str(args.runs), str(args.iters)]
        tok = v4_token()
        if tok is not None:
            run.append(tok)
        print(f"Python {platform.python_version()} | {platform.machine()} | {' '.join(CFLAGS)}", flush=True)
        return subprocess.run(run).returncode


if __name__ == "__main__":
    sys.exit(main())
