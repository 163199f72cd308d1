"""Package metadata: the license file, classifiers and requires-python agree with each other and with CI."""
import pathlib
import re

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
