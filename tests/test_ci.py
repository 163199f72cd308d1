"""CI is defined once, in .ci/run; the GitHub workflow only runs its stages and joins them in a gate job."""
import json
import pathlib
import re
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
RUN = ROOT / ".ci" / "run"
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"

if not RUN.is_file():  # pragma: no cover - the tests copied beside an installed wheel
    pytest.skip("no source tree", allow_module_level=True)
if shutil.which("bash") is None:  # pragma: no cover
    pytest.skip("needs bash", allow_module_level=True)

# What CI must cover (issue: lint, types, the suite on both engines, fast path off, sanitizers, fuzz, wheel).
REQUIRED = {"lint", "types", "tests", "tests-python", "tests-nofastpath", "sanitizers", "fuzz", "wheel"}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(RUN), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def _stage_lines():
    lines = re.findall(r"^stage\s+(\S+)\s+(?:'([^']*)'|\"([^\"]*)\")\s*$", RUN.read_text(encoding="utf-8"), re.M)
    return [(name, single or double) for name, single, double in lines]


def test_list_names_every_stage_in_order():
    r = _run("--list", "--json")
    assert r.returncode == 0, r.stderr
    names = json.loads(r.stdout)
    assert names == [name for name, _ in _stage_lines()]
    assert REQUIRED <= set(names), REQUIRED - set(names)
    assert _run("--list").stdout.split() == names


def test_unknown_stage_is_refused_before_any_setup():
    r = _run("no-such-stage")
    assert r.returncode == 2 and "unknown stage 'no-such-stage'" in r.stderr


def test_stage_commands_name_files_that_exist():
    for name, command in _stage_lines():
        for script in re.findall(r"\bscripts/[\w.-]+", command):
            assert (ROOT / script).is_file(), f"stage {name}: {script} does not exist"


def test_both_engines_run_the_whole_suite_and_the_engine_switches_the_engine_tests():
    commands = dict(_stage_lines())
    assert commands["tests"] == "run_pytest"
    assert "UID2FAST_NO_EXTENSIONS=1" in commands["tests-python"] and commands["tests-python"].endswith("run_pytest")
    assert "UID2FAST_NO_FASTPATH=1" in commands["tests-nofastpath"]
    for stage in ("tests-nofastpath", "tests-nomultibuf", "wheel"):
        assert "$ENGINE_TESTS" in commands[stage], stage
    assert re.search(r"^ENGINE_TESTS='engine_path and not slow'$", RUN.read_text(encoding="utf-8"), re.M)
    body = RUN.read_text(encoding="utf-8")
    run_pytest = re.search(r"^run_pytest\(\) \{\n(.*?)^\}", body, re.M | re.S).group(1)
    assert "tests/" not in run_pytest, "run_pytest must run the whole suite, not a selection"


def test_workflow_runs_the_stages_through_ci_run_and_gates_on_all_jobs():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    jobs = flow["jobs"]
    assert "bash .ci/run --list --json" in jobs["stages"]["steps"][-1]["run"]
    assert jobs["stage"]["strategy"]["matrix"]["stage"] == "${{ fromJSON(needs.stages.outputs.list) }}"
    runs = [step["run"] for job in jobs.values() for step in job["steps"] if "run" in step]
    # No job repeats a check: every command a job runs is .ci/run (or the gate's result checks).
    for cmd in runs:
        assert cmd.startswith(("bash .ci/run", 'echo "list=$(bash .ci/run')) or "needs." in cmd, cmd
    gate = jobs["gate"]
    assert gate["if"] == "always()"
    assert set(gate["needs"]) == set(jobs) - {"gate"}
    for need in gate["needs"]:
        assert f"needs.{need}.result }}}}\" = success" in gate["steps"][0]["run"], need


def test_readme_tests_section_lists_every_stage():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, _ in _stage_lines():
        assert f"| `{name}` |" in readme, f"README's Tests table lacks the stage {name}"


def test_sanitizer_run_deselects_the_marker_not_a_list():
    script = (ROOT / "scripts" / "sanitize_check.sh").read_text(encoding="utf-8")
    assert "not no_sanitizer" in script
    assert "--ignore=" not in script and "--deselect" not in script


def test_scripts_that_switch_the_engine_off_do_not_inherit_the_requirement():
    """.ci/run exports UID2FAST_REQUIRE_EXTENSIONS=1 for every stage; a command in a stage script that asks for the
    pure-Python engine (or checks a fallback) must clear it, or the import refuses the engine it asked for."""
    offenders = []
    for script in sorted((ROOT / "scripts").glob("*.sh")):
        text = script.read_text(encoding="utf-8")
        cleared_for_script = re.search(r"^export UID2FAST_REQUIRE_EXTENSIONS=0\b", text, re.M) is not None
        for n, line in enumerate(text.splitlines(), 1):
            if "UID2FAST_NO_EXTENSIONS=1" in line and "UID2FAST_REQUIRE_EXTENSIONS=0" not in line \
                    and not cleared_for_script:
                offenders.append(f"{script.name}:{n}")
    assert not offenders, offenders
    # the fallback check clears it for the whole script (both of its cases are fallbacks)
    assert re.search(r"^export UID2FAST_REQUIRE_EXTENSIONS=0\b",
                     (ROOT / "scripts" / "fallback_check.sh").read_text(encoding="utf-8"), re.M)
