"""Every code block of README.md, run as written in a fresh interpreter.

Each ```python block runs in its own subprocess (``python -c BLOCK``) in an empty directory that holds only
the input files the block names (``keys.json``, ``sharing-keys.json``, ``bids.parquet``, ``raw_uids.csv``),
made from a LocalOperator. Nothing is imported or defined for the block: it must stand alone. A block
after a ``<!-- recipe: NAME -->`` line gets a check appended that saves its result, which must match the
batch API row for row.

Each ```bash block runs line by line (``uid2fast`` and ``python`` resolve to this interpreter and this
checkout), except the commands in ``SKIPPED_COMMANDS``, each with its reason.
"""
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
from typing import List, NamedTuple, Optional

import pytest

import uid2fast
from uid2fast.testing import LocalOperator

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
SRC = str(pathlib.Path(uid2fast.__file__).resolve().parent.parent)
DOMAIN = "news.example.com"
SITE = 1001
TIMEOUT = 600

# Commands of the bash blocks that are not run here, by prefix, and why.
SKIPPED_COMMANDS = {
    "pip install": "installs into the environment; the suite runs on the installed or in-place package",
    "python -m pytest": "runs this suite",
    "uid2fast keys fetch --base-url https://prod.uidapi.com": "needs production credentials; tests/test_cli.py "
                                                              "fetches keys from a LocalOperator",
    "python benchmarks/bench_decrypt.py": "the full benchmark takes minutes and rewrites docs/bench.png; "
                                          "tests/test_cli.py and benchmarks/ run it quick",
    "python benchmarks/bench_rounds.py": "runs the full benchmark five times; tests/test_bench_rounds.py runs "
                                         "one quick round",
}

# Appended to a recipe block: saves what it leaves in ``decrypted`` for the row-by-row check.
RECIPE_CHECKS = {
    "polars": 'decrypted.write_parquet("_recipe_result.parquet")',
    "spark": 'decrypted.toPandas().to_parquet("_recipe_result.parquet")\nspark.stop()',
    "dask": "",  # the block writes decrypted/ itself
}


class Block(NamedTuple):
    lang: str
    code: str
    line: int
    recipe: Optional[str]

    @property
    def id(self) -> str:
        return f"{self.lang}-line{self.line}" + (f"-{self.recipe}" if self.recipe else "")


def readme_blocks() -> List[Block]:
    text = README.read_text(encoding="utf-8")
    blocks = []
    for m in re.finditer(r"^```(\w*)\n(.*?)^```\s*$", text, re.S | re.M):
        before = text[:m.start()]
        recipe = re.search(r"<!-- recipe: (\w+) -->\s*$", before)
        blocks.append(Block(m.group(1), m.group(2), before.count("\n") + 1, recipe.group(1) if recipe else None))
    return blocks


BLOCKS = readme_blocks()
PYTHON_BLOCKS = [b for b in BLOCKS if b.lang == "python"]
BASH_BLOCKS = [b for b in BLOCKS if b.lang in ("bash", "sh", "shell")]


def test_readme_has_the_blocks_this_file_runs():
    assert len(PYTHON_BLOCKS) >= 6, [b.id for b in PYTHON_BLOCKS]
    assert len(BASH_BLOCKS) >= 3
    assert {b.recipe for b in PYTHON_BLOCKS} >= set(RECIPE_CHECKS)
    assert not [b.id for b in BLOCKS if b.lang not in ("python", "bash", "sh", "shell")], "untagged code block"


# ---------------------------------------------------------------------------------------------------
# input files
# ---------------------------------------------------------------------------------------------------
class Inputs:
    """The data behind every input file a block may name; written per block, only the files it names."""

    def __init__(self, op: LocalOperator):
        from uid2fast.keyfile import keys_body

        bid = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
        share = uid2fast.SharingClient(op.base_url, *op.credentials("sharer"))
        assert bid.refresh().success and share.refresh().success
        self.keys, self.sharing_keys = bid.keys, share.keys
        self.keys_body, self.sharing_body = keys_body(bid.keys), keys_body(share.keys)
        tokens = [op.issue_token(email=f"recipe{i}@example.com") for i in range(300)]
        tokens += [op.issue_token(phone=f"+1555{i:07d}", version=3) for i in range(50)]
        cstg = op.issue_token(email="cstg@example.com", client_side=True)
        self.tokens = tokens + [cstg, cstg, "not a token", tokens[0][:-6]]
        self.domains = [DOMAIN] * 351 + ["elsewhere.example", DOMAIN, DOMAIN]
        self.raw_uids = [op.raw_uid(email=f"share{i}@example.com") for i in range(200)]

    def _bids(self, path: pathlib.Path) -> None:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"id": list(range(len(self.tokens))), "token": self.tokens,
                                 "domain": self.domains}), path)

    def _raw_uids(self, path: pathlib.Path) -> None:
        path.write_text("uid\n" + "".join(u + "\n" for u in self.raw_uids))

    def write_named(self, code: str, directory: pathlib.Path) -> List[str]:
        from uid2fast.keyfile import save_keys

        makers = {
            "keys.json": lambda p: save_keys(self.keys_body, p),
            "sharing-keys.json": lambda p: save_keys(self.sharing_body, p),
            "bids.parquet": self._bids,
            "raw_uids.csv": self._raw_uids,
        }
        made = []
        for name, make in makers.items():
            if re.search(r"(?<![\w.-])%s(?![\w.-])" % re.escape(name), code):
                make(directory / name)
                made.append(name)
        return made


@pytest.fixture(scope="module")
def op():
    with LocalOperator(site_data={SITE: [DOMAIN]}) as operator:
        yield operator


@pytest.fixture(scope="module")
def inputs(op):
    return Inputs(op)


def _env(tmp_path: pathlib.Path) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("UID2FAST_DEBUG", None)
    env.update(TZ="UTC", PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               SPARK_LOCAL_IP="127.0.0.1", MPLBACKEND="Agg")
    # `uid2fast` and `python` in a bash block are this interpreter with this checkout.
    shims = tmp_path / "_bin"
    shims.mkdir(exist_ok=True)
    for name, target in (("uid2fast", f'exec "{sys.executable}" -m uid2fast "$@"'),
                         ("python", f'exec "{sys.executable}" "$@"')):
        shim = shims / name
        shim.write_text(f"#!/bin/sh\n{target}\n")
        shim.chmod(0o755)
    env["PATH"] = str(shims) + os.pathsep + env.get("PATH", "")
    return env


# uid2fast's modules that need an optional extra, and the package each needs
_EXTRA_MODULES = {"uid2fast.aio": "httpx", "uid2fast.metrics.prometheus": "prometheus_client",
                  "uid2fast.duckdb": "duckdb", "uid2fast.spark": "pyspark"}


def _needs(code: str) -> None:
    """Skip (never fail) a block whose optional third-party imports are not installed, directly or through a
    uid2fast module of an optional extra."""
    tops = set(re.findall(r"^\s*(?:import|from)\s+(\w+)", code, re.M))
    for mod, package in _EXTRA_MODULES.items():
        if re.search(r"\b" + re.escape(mod) + r"\b", code):
            tops.add(package)
    for top in sorted(tops):
        if top != "uid2fast" and importlib.util.find_spec(top) is None:
            pytest.skip(f"{top} is not installed")
    if "pyspark" in code and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Java is not installed (Spark needs a JVM)")


def _assert_matches(got, inputs: Inputs) -> None:
    """``got``: a pandas frame with id, token, domain and the result columns (any row order)."""
    import pandas as pd

    want = uid2fast.decrypt_tokens(inputs.tokens, inputs.keys, domain_names=inputs.domains).to_pandas()
    got = got.sort_values("id").reset_index(drop=True)
    assert list(got["token"]) == inputs.tokens
    def values(series):  # nullable or not (Spark and Parquet round trips differ in dtypes): None for missing
        return [None if pd.isna(v) else v for v in series.astype(object)]

    for col in want.columns:
        assert values(got[col]) == values(want[col]), col
    statuses = set(want["status"])
    assert {"SUCCESS", "DOMAIN_NAME_CHECK_FAILED", "INVALID_PAYLOAD"} <= statuses, statuses


def _recipe_result(block: Block, directory: pathlib.Path):
    import pandas as pd

    if block.recipe == "dask":
        assert (directory / "decrypted").is_dir()
        return pd.read_parquet(directory / "decrypted")
    got = pd.read_parquet(directory / "_recipe_result.parquet")
    if block.recipe == "spark":
        got.columns = [c[len("uid2_"):] if c.startswith("uid2_") else c for c in got.columns]
        for col in ("established", "expiry"):  # Spark hands timestamps back naive, in the session zone (UTC)
            got[col] = got[col].dt.tz_localize("UTC").astype("datetime64[ms, UTC]")
    return got


_NO_SANITIZER = {"spark": pytest.mark.no_sanitizer(reason="Spark's JVM does not run under the ASan preload")}


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id, marks=[_NO_SANITIZER[b.recipe]] if b.recipe in _NO_SANITIZER
                                                else []) for b in PYTHON_BLOCKS])
def test_python_block_runs_as_written(block, inputs, tmp_path):
    _needs(block.code)
    inputs.write_named(block.code, tmp_path)
    code = block.code
    if block.recipe is not None:
        code += "\n" + RECIPE_CHECKS[block.recipe] + "\n"
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, f"README.md line {block.line}:\n{r.stderr[-4000:]}"
    if block.recipe is not None:
        _assert_matches(_recipe_result(block, tmp_path), inputs)


def _bash_commands(block: Block) -> List[str]:
    """The block's commands, with the skipped ones (also within ``a && b``) left out."""
    commands = []
    for line in block.code.splitlines():
        parts = [p.strip() for p in line.split(" && ")]
        kept = [p for p in parts if p and not p.startswith("#")
                and not any(p.startswith(prefix) for prefix in SKIPPED_COMMANDS)]
        if kept:
            commands.append(" && ".join(kept))
    return commands


@pytest.mark.parametrize("block", BASH_BLOCKS, ids=[b.id for b in BASH_BLOCKS])
def test_bash_block_runs_as_written(block, inputs, tmp_path):
    commands = _bash_commands(block)
    if not commands:
        pytest.skip("every command of this block is in SKIPPED_COMMANDS")
    pytest.importorskip("pyarrow")
    made = inputs.write_named(block.code, tmp_path)
    env = _env(tmp_path)
    for command in commands:
        r = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, f"README.md line {block.line}: {command}\n{r.stderr[-4000:]}"
        assert "Traceback" not in r.stderr
    if "bids.parquet" in made and (tmp_path / "decrypted.parquet").exists():
        import pandas as pd

        _assert_matches(pd.read_parquet(tmp_path / "decrypted.parquet"), inputs)


def test_bash_commands_that_are_skipped_are_the_documented_ones():
    commands = [c for b in BASH_BLOCKS for c in _bash_commands(b)]
    assert any(c.startswith("uid2fast decrypt") for c in commands)
    assert any(c.startswith("uid2fast encrypt") for c in commands)
    assert any(c.startswith("uid2fast demo") for c in commands)


def test_import_uid2fast_reaches_the_readme_submodules():
    code = ("import sys, uid2fast\n"
            "heavy = [m for m in ('pyarrow', 'pyspark', 'pandas', 'uid2fast.testing', 'uid2fast.spark') "
            "if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "assert callable(uid2fast.keyfile.load_keys) and uid2fast.testing.LocalOperator\n"
            "assert callable(uid2fast.spark.decrypt_column) and callable(uid2fast.cli.main)\n"
            "assert 'keyfile' in dir(uid2fast)\n"
            "try:\n    uid2fast.no_such_module\nexcept AttributeError:\n    pass\n"
            "else:\n    raise SystemExit('no AttributeError')\n")
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC}, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_keys_collection_pickles_and_decrypts_the_same(op):
    import pickle

    client = uid2fast.BidstreamClient(op.base_url, *op.credentials("bidstream"))
    assert client.refresh().success
    tokens = [op.issue_token(email=f"p{i}@example.com") for i in range(20)] + ["junk"]
    before = uid2fast.decrypt_tokens(tokens, client.keys)
    clone = pickle.loads(pickle.dumps(client.keys))
    assert clone is not client.keys and len(clone) == len(client.keys)
    after = uid2fast.decrypt_tokens(tokens, clone)
    assert list(after.status) == list(before.status) and list(after.uid) == list(before.uid)
    assert [clone[k].secret for k in clone.key_ids()] == [client.keys[k].secret for k in client.keys.key_ids()]
