"""The install the gate uses: light, complete, and a missing module is one line with exit 2.

.ci/run installs with no extras and runs the README's first quick-start command; these tests keep the
two in step and check what the base install may not need (torch and friends) and how a missing
import reads.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start() -> list[str]:
    block = re.search(r"## Quick start\n\n```bash\n(.*?)```", (ROOT / "README.md").read_text("utf-8"), re.S)
    assert block, "README has no Quick start block"
    return block.group(1).strip().splitlines()


def test_ci_runs_both_quick_start_commands_and_ends_with_the_second():
    first, second = quick_start()
    ci = (ROOT / ".ci" / "run").read_text("utf-8")
    assert first.startswith("pip install -e . && auditor run ")
    assert first in ci, ".ci/run must run the README's first command as written (no extras)"
    ci_lines = [l.strip() for l in ci.splitlines() if l.strip() and not l.lstrip().startswith("#")]
    assert ci_lines[-2:] == ["python -m pip install --quiet -e '.[test]'", "python -m pytest -p no:cacheprovider"]
    assert second == "pip install -e '.[test]' && python -m pytest"


def test_base_install_is_light_and_the_extra_is_named_in_the_readme():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    base = {re.split(r"[<>=\[ ]", d)[0].lower() for d in meta["dependencies"]}
    assert base == {"jinja2", "jsonschema"}
    extra = {re.split(r"[<>=\[ ]", d)[0].lower() for d in meta["optional-dependencies"]["gauntlet"]}
    assert {"torch", "sentencepiece", "numpy"} <= extra
    assert "pgolf-auditor[gauntlet,fast]" in meta["optional-dependencies"]["test"]  # the tests run every path
    assert "pip install -e '.[gauntlet]'" in (ROOT / "README.md").read_text("utf-8")
    assert meta["dynamic"] == ["version"], "one version source: auditor/__init__.py"


# Blocks imports the way a missing package would, then runs the real entry point.
_BLOCK = """
import sys
for name in sys.argv[1].split(','):
    sys.modules[name] = None
sys.argv = [sys.argv[2]] + sys.argv[3:]
from {mod} import main
raise SystemExit(main())
"""


def run_without(modules: str, prog: str, *argv: str, mod: str = "auditor.cli") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _BLOCK.format(mod=mod), modules, prog, *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_static_audit_imports_no_torch():
    cp = run_without("torch,numpy,sentencepiece,brotli", "auditor", "run", "examples/austen_demo",
                     "--val-manifest", "examples/austen_demo/dataset_manifest.json")
    assert cp.returncode == 0, cp.stderr
    assert "Verdict: ✅ PASS" in cp.stdout


def test_gauntlet_without_the_extra_is_one_line_exit_2():
    cp = run_without("torch,numpy", "auditor", "run", "examples/austen_demo", "--gauntlet")
    assert cp.returncode == 2
    assert cp.stdout == ""
    assert cp.stderr.count("\n") == 1
    assert cp.stderr.startswith("auditor: error: cannot import 'numpy' (ModuleNotFoundError)")
    assert "pgolf-auditor[gauntlet]" in cp.stderr


def test_missing_base_dependency_is_one_line_exit_2():
    cp = run_without("jinja2", "auditor", "run", "examples/austen_demo")
    assert (cp.returncode, cp.stderr.count("\n"), cp.stdout) == (2, 1, "")
    assert "cannot import 'jinja2'" in cp.stderr and "reinstall the auditor" in cp.stderr
    assert "Traceback" not in cp.stderr


def test_reference_impl_without_torch_is_one_line_exit_2(tmp_path):
    cp = run_without("torch", "reference_impl", "eval", "--help", mod="reference_impl.cli")
    # --help must still work without torch; a real subcommand then stops with one line
    assert cp.returncode == 0, cp.stderr
    cp = run_without("torch", "reference_impl", "eval", "--data", str(tmp_path), "--model", str(tmp_path / "m"),
                     mod="reference_impl.cli")
    assert cp.returncode == 2
    assert cp.stderr.count("\n") == 1 and "cannot import 'torch'" in cp.stderr, cp.stderr
