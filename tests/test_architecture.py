"""The architecture is checked, not just described: the import-linter contracts in pyproject.toml hold,
and a deliberate wrong-way import breaks them (so the check can fail)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("auditor", "rules", "reports", "reference_impl")
LINT = shutil.which("lint-imports")

pytestmark = pytest.mark.skipif(LINT is None, reason="import-linter is not installed (pip install -e '.[test]')")


def _lint(tree: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(tree))
    return subprocess.run([LINT, "--config", str(tree / "pyproject.toml"), "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "fixtures"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layer_contracts_hold():
    proc = _lint(ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize("module, wrong_import, broken", [
    ("auditor/core/grades.py", "import rules.files", "The core (plain data and contracts) imports nothing"),
    ("rules/seeds.py", "import reports.render", "Layers:"),
    ("auditor/load/loader.py", "import auditor.engine", "Layers:"),
    ("reference_impl/bpb.py", "import auditor.facts", "The reference implementation stands alone"),
])
def test_a_wrong_way_import_breaks_a_contract(tmp_path, module, wrong_import, broken):
    tree = _copy(tmp_path)
    path = tree / module
    path.write_text(path.read_text(encoding="utf-8") + f"\n\ndef _wrong_way():\n    {wrong_import}\n",
                    encoding="utf-8")
    proc = _lint(tree)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "1 broken" in proc.stdout or "2 broken" in proc.stdout
    broken_section = proc.stdout.split("Broken contracts", 1)[1]
    assert broken in broken_section


def test_tests_import_the_project_without_sys_path_hacks():
    offenders = [p.name for p in (ROOT / "tests").glob("*.py")
                 if "sys.path.insert" in p.read_text(encoding="utf-8") and p.name != Path(__file__).name]
    assert offenders == []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
