"""Every reference to the documents in ``docs/`` resolves, and nothing cites documents outside the repository.

A reference is ``docs/<name>.md`` or ``docs/<name>.md#<anchor>`` anywhere in the tree (code, comments,
tests, scripts, READMEs), plus ``#<anchor>`` continuations on the same line (``docs/x.md#a and #b``) and
relative Markdown links inside ``docs/``. An anchor exists when a heading's GitHub slug or an explicit
``<a id="...">`` in the target file has that name. The tree is what git tracks (plus untracked files that
are not ignored); without git (a copied tree), the files at the root and in the project's folders.
"""
import os
import pathlib
import re
import subprocess
from typing import Dict, Iterator, List, Set, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
THIS = pathlib.Path(__file__).resolve()

TEXT_SUFFIXES = {".py", ".pyx", ".pxd", ".pxi", ".c", ".h", ".md", ".sh", ".toml", ".yml", ".yaml", ".cfg",
                 ".txt", ".in", ".ini", ".json", ""}
SKIP_DIRS = {".git", "__pycache__", "build", "dist", ".hypothesis", ".pytest_cache", "node_modules", "_official"}
# Without git (the tests copied beside an installed wheel, with venvs next to them): the project's own folders.
PROJECT_DIRS = ("src", "tests", "csrc", "docs", "scripts", "benchmarks", "fuzz", ".ci", ".github")

REF = re.compile(r"docs/([A-Za-z0-9_-]+\.md)((?:#[A-Za-z0-9_-]+)?)((?:\s*(?:,|\+|and)\s*#[A-Za-z0-9_-]+)*)")
MORE = re.compile(r"#([A-Za-z0-9_-]+)")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")
ANCHOR = re.compile(r"<a\s+(?:id|name)=\"([^\"]+)\"")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$")
# Citations of documents that are not part of this repository. Built from pieces so this file does not
# match itself.
_OUTSIDE = "|".join(["SP" + "EC", "REFE" + "RENCE"])
FORBIDDEN = [
    (re.compile(r"\b(?:%s)(?:\.md)?\b" % _OUTSIDE), "cites a document outside the repository; cite docs/ instead"),
    (re.compile(r"\.\./sha" r"red/|/work/sha" r"red"), "points outside the repository"),
    (re.compile(r"\b(?:ST" r"YLE|PLAT" r"FORMS)\.md\b"), "cites a document outside the repository"),
]


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"<[^>]+>", "", heading)  # inline HTML such as <a id=...>
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = text.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(md_text: str) -> Set[str]:
    found = set(ANCHOR.findall(md_text))
    in_code = False
    for line in md_text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        m = None if in_code else HEADING.match(line)
        if m:
            found.add(slug(m.group(1)))
    return found


def tree_files(root: pathlib.Path) -> List[pathlib.Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True, timeout=60).stdout
        names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
        files = [root / n for n in names]
    except (OSError, subprocess.SubprocessError):
        files = [p for p in root.iterdir() if p.is_file()]
        for top in PROJECT_DIRS:
            for dirpath, dirnames, filenames in os.walk(root / top):
                dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
                files.extend(pathlib.Path(dirpath) / f for f in filenames)
    return [f for f in files if f.is_file() and f.suffix in TEXT_SUFFIXES and not f.name.endswith(".so")
            and not any(part in SKIP_DIRS for part in f.relative_to(root).parts)]


def read(path: pathlib.Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return ""


def references(files: List[pathlib.Path], root: pathlib.Path) -> Iterator[Tuple[str, int, str, str]]:
    """``(file, line, target document, anchor or "")`` for every reference to a document under docs/."""
    docs_dir = root / "docs"
    for path in files:
        if path.resolve() == THIS:
            continue
        rel = str(path.relative_to(root))
        in_docs = path.parent.resolve() == docs_dir.resolve()
        for lineno, line in enumerate(read(path).splitlines(), 1):
            for m in REF.finditer(line):
                target = m.group(1)
                yield rel, lineno, target, m.group(2)[1:]
                for extra in MORE.findall(m.group(3)):
                    yield rel, lineno, target, extra
            if in_docs:
                for link in MD_LINK.findall(line):
                    if "://" in link or link.startswith("mailto:"):
                        continue
                    target, _, anchor = link.partition("#")
                    if target and not target.endswith(".md"):
                        continue  # an image or a source file: checked below as a path
                    yield rel, lineno, target or path.name, anchor


def broken(files: List[pathlib.Path], root: pathlib.Path) -> List[str]:
    cache: Dict[str, Set[str]] = {}
    problems = []
    for rel, lineno, target, anchor in references(files, root):
        doc = root / "docs" / target
        if not doc.is_file():
            problems.append(f"{rel}:{lineno}: docs/{target} does not exist")
            continue
        if anchor:
            names = cache.setdefault(target, anchors(read(doc)))
            if anchor not in names:
                problems.append(f"{rel}:{lineno}: docs/{target} has no anchor #{anchor}")
    return problems


@pytest.fixture(scope="module")
def files() -> List[pathlib.Path]:
    if not DOCS.is_dir():
        pytest.fail(f"{DOCS} is missing: the documents the code refers to must ship with the tests")
    return tree_files(ROOT)


def test_every_doc_reference_resolves(files):
    refs = list(references(files, ROOT))
    # Guard: the code does cite the documents; a scanner that finds nothing proves nothing.
    assert len(refs) > 100, f"only {len(refs)} references found: is the scan broken?"
    cited_from_code = {r[2] for r in refs if r[0].startswith(("src", "csrc", "tests"))}
    assert {"design.md", "differences.md", "formats.md", "keys-and-envelope.md"} <= cited_from_code
    problems = broken(files, ROOT)
    assert not problems, "broken references to docs/:\n" + "\n".join(problems)


def test_no_citations_of_documents_outside_the_repository(files):
    problems = []
    for path in files:
        if path.resolve() == THIS:
            continue
        for lineno, line in enumerate(read(path).splitlines(), 1):
            for pattern, why in FORBIDDEN:
                if pattern.search(line):
                    problems.append(f"{path.relative_to(ROOT)}:{lineno}: {why}: {line.strip()[:100]}")
    assert not problems, "\n".join(problems)


def test_readme_links_every_document():
    readme = read(ROOT / "README.md")
    for doc in sorted(DOCS.glob("*.md")):
        assert f"docs/{doc.name}" in readme, f"README.md does not link docs/{doc.name}"


def test_checker_catches_a_missing_file_and_a_missing_anchor(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text('# Title\n\n<a id="kept"></a>\n## Some `code` heading, too!\n'
                                           "See [b](b.md) and [here](#kept) and [gone](#nowhere).\n")
    src = tmp_path / "x.py"
    src.write_text("# docs/a.md#kept docs/a.md#some-code-heading-too and #title\n"
                   "# docs/a.md#missing, #kept + #absent\n# docs/none.md\n")
    problems = broken([src, tmp_path / "docs" / "a.md"], tmp_path)
    assert problems == [
        "x.py:2: docs/a.md has no anchor #missing",
        "x.py:2: docs/a.md has no anchor #absent",
        "x.py:3: docs/none.md does not exist",
        "docs/a.md:5: docs/b.md does not exist",
        "docs/a.md:5: docs/a.md has no anchor #nowhere",
    ]


def test_forbidden_patterns_match_what_they_should():
    samples = ["# " + "SP" + "EC §2.3", "reason = '" + "SP" + "EC 2.3'", "(" + "REFE" + "RENCE.md §5.8)",
               "see ../sha" + "red/x"]
    for sample in samples:
        assert any(p.search(sample) for p, _ in FORBIDDEN), sample
    for sample in ["_COLUMN_" + "SPECS", "RFC 4648 §5", "DELIBERATE_DIFFERENCES"]:
        assert not any(p.search(sample) for p, _ in FORBIDDEN), sample
