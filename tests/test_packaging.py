"""Package metadata: the license file, classifiers and requires-python agree with each other and with CI; setup.py
gives each compiler its own flags."""
import pathlib
import re
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
tomllib = pytest.importorskip("tomllib")

if not (ROOT / "pyproject.toml").is_file():  # pragma: no cover - the tests copied beside an installed wheel
    pytest.skip("no source tree", allow_module_level=True)


@pytest.fixture(scope="module")
def project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_license_file_is_the_apache_2_text(project):
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert len(re.findall(r"^\s+\d+\. [A-Z]", text, re.M)) >= 9  # all nine sections
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8").split()
    assert "LICENSE" in manifest


def test_classifiers_match_requires_python_and_ci(project):
    classifiers = project["classifiers"]
    versions = sorted((int(m.group(1)) for c in classifiers
                       if (m := re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c))))
    assert versions == list(range(versions[0], versions[-1] + 1)), versions
    assert project["requires-python"] == f">=3.{versions[0]}"
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    tested = [int(v) for v in re.findall(r'"3\.(\d+)"', workflow)]
    assert tested and all(versions[0] <= v <= versions[-1] for v in tested), tested


def test_project_urls(project):
    urls = project["urls"]
    assert urls and all(u.startswith("https://") for u in urls.values())


def _setup_namespace():
    """setup.py's definitions, without running setup() and without its setuptools imports (the test environment's
    setuptools may be older than the build's): its imports of the standard library, its assignments and its
    functions, in order."""
    import ast

    path = ROOT / "setup.py"
    tree = ast.parse(path.read_text(), str(path))
    keep = [n for n in tree.body
            if isinstance(n, (ast.Assign, ast.FunctionDef))
            or (isinstance(n, ast.Import) and all(a.name in ("glob", "os", "platform", "sys") for a in n.names))]
    ns = {"__name__": "setup_under_test", "__file__": str(path)}
    exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), ns)  # noqa: S102 - our build script
    return ns


class _Compiler:
    def __init__(self, compiler_type, command=("gcc",)):
        self.compiler_type = compiler_type
        self.compiler = list(command)


def test_each_compiler_gets_its_own_flags():
    """MSVC gets /-options only (none of the GNU set), GCC/Clang/MinGW the GNU set with -Werror and no MSVC
    option; only POSIX builds get -pthread (Windows uses Win32 threads)."""
    ns = _setup_namespace()
    c_flags, cy_flags, link = ns["compiler_flags"](_Compiler("msvc"))
    assert c_flags and all(f.startswith("/") for f in c_flags + cy_flags + link), (c_flags, cy_flags, link)
    assert "/WX" in c_flags or not ns["WERROR"]
    for kind in ("unix", "mingw32"):
        c_flags, cy_flags, link = ns["compiler_flags"](_Compiler(kind))
        assert all(f.startswith("-") for f in c_flags + cy_flags + link), (kind, c_flags)
        assert "-Wall" in c_flags and ("-Werror" in c_flags or not ns["WERROR"])
        assert ("-pthread" in c_flags) == (kind == "unix" and sys.platform != "win32")
