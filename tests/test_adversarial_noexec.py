"""No execution: a static audit of a booby-trapped folder leaves no trace.

Every file Python might run on its own — the script, a stub payload, sitecustomize/usercustomize,
a .pth file, setup.py, conftest.py, a package __init__, modules named like the auditor's own imports —
writes a marker file and tries to connect to a socket this test listens on. After `auditor run` (in
process, and as the installed console script with the folder as working directory) there must be no
marker and no connection.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from adversarial_kit import assert_clean_outcome, run_main, stub_for
from recordkit import write_record

# module names the auditor (or Python start-up) imports: a file with this name in the working
# directory would shadow the real module if the folder were on sys.path
SHADOW_MODULES = ["sitecustomize", "usercustomize", "auditor", "rules", "reports", "json", "lzma", "base64",
                  "zlib", "ast", "jinja2", "jsonschema", "re", "os", "encodings", "typing", "pathlib", "setup",
                  "conftest"]


def _trap(marker: Path, port: int, where: str) -> str:
    return (f"import os, socket\n"
            f"open({str(marker)!r} + '.' + {where!r}, 'w').write('executed')\n"
            f"try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=0.5)\n"
            f"except Exception:\n    pass\n")


@pytest.fixture
def listener():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.setblocking(False)
    yield srv
    srv.close()


def _no_connection(srv: socket.socket) -> bool:
    try:
        conn, _ = srv.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


def _trapped_folder(tmp_path: Path, marker: Path, port: int) -> Path:
    script = _trap(marker, port, "train_gpt") + "\nif __name__ == '__main__':\n    print('run')\n"
    folder = write_record(tmp_path, script=script)
    (folder / "train_gpt_stub.py").write_text(stub_for(_trap(marker, port, "stub")))
    (folder / "train_gpt_nested.py").write_text(stub_for(stub_for(_trap(marker, port, "nested"))))
    (folder / "evil.pth").write_text("import os; open(%r, 'w').write('pth')\n" % (str(marker) + ".pth"))
    (folder / "setup.py").write_text(_trap(marker, port, "setup") + "from setuptools import setup\nsetup()\n")
    pkg = folder / "helpers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(_trap(marker, port, "pkg"))
    for name in SHADOW_MODULES:
        if name in ("setup",):
            continue
        (folder / f"{name}.py").write_text(_trap(marker, port, name))
    shadow_pkg = folder / "rules_pkg"
    shadow_pkg.mkdir()
    (shadow_pkg / "__init__.py").write_text(_trap(marker, port, "rules_pkg"))
    # a stub that execs a sibling and one that would run a shell command if evaluated
    (folder / "runner.py").write_text("exec(open('train_gpt.py').read())\n")
    (folder / "shell.py").write_text("import os\nexec(os.popen('touch %s.shell').read())\n" % marker)
    # a log and README that try to look like instructions
    (folder / "train_seed7.log").write_text("$(touch %s.log)\n`touch %s.log`\n" % (marker, marker))
    return folder


def _markers(marker: Path) -> list[str]:
    return sorted(p.name for p in marker.parent.glob(marker.name + "*"))


def test_in_process_run_executes_nothing(tmp_path, listener):
    marker = tmp_path / "markers" / "EXECUTED"
    marker.parent.mkdir()
    port = listener.getsockname()[1]
    folder = _trapped_folder(tmp_path, marker, port)
    for fmt in ("md", "json"):
        res = run_main(["run", str(folder), "--format", fmt])
        assert assert_clean_outcome(res, fmt) in ("PASS", "FAIL", "NEEDS_REVIEW")
    assert _markers(marker) == []
    assert _no_connection(listener)
    # the decoder did read the stubs (so "nothing ran" is not "nothing was looked at")
    import json
    doc = json.loads(run_main(["run", str(folder), "--format", "json"]).stdout)
    code = {c["path"]: c for c in doc["submission"]["code"]}
    assert code["train_gpt_stub.py"]["stub"] == "lzma-xz" and code["train_gpt_nested.py"]["stub"] == "lzma-xz"
    assert code["runner.py"]["stub_target"] == "train_gpt.py"
    assert _markers(marker) == []


def _console_script() -> Path:
    exe = Path(sys.executable).parent / "auditor"
    if not exe.exists():
        pytest.skip("the `auditor` console script is not installed in this environment")
    return exe


@pytest.mark.parametrize("how", ["console-script", "python-P-m"])
def test_subprocess_run_with_the_folder_as_cwd_executes_nothing(tmp_path, listener, how):
    marker = tmp_path / "markers" / "EXECUTED"
    marker.parent.mkdir()
    folder = _trapped_folder(tmp_path, marker, listener.getsockname()[1])
    if how == "console-script":
        cmd = [str(_console_script()), "run", "."]
    else:  # -P: do not put the working directory on sys.path (Python 3.11+)
        cmd = [sys.executable, "-P", "-m", "auditor", "run", "."]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    if how != "console-script":
        env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    for fmt in ("md", "json"):
        res = subprocess.run(cmd + ["--format", fmt], cwd=folder, capture_output=True, text=True, timeout=120,
                             env=env)
        assert res.returncode in (0, 1, 3), res.stderr[-2000:]
        assert "Traceback" not in res.stderr
    assert _markers(marker) == []
    assert _no_connection(listener)


def test_plain_python_m_from_inside_the_folder_is_unsafe_and_documented(tmp_path):
    """`python -m auditor` puts the working directory first on sys.path, so a folder holding
    `auditor/` or `jinja2.py` runs code before the auditor starts (a stdlib name such as `lzma.py` may
    already be imported by site start-up, e.g. an editable install's path finder, so a package the
    auditor alone imports is planted). This is Python's behaviour, not
    the auditor's; the safe invocations are the console script or `python -P -m auditor` (above).
    This test pins the hazard so the docs' advice stays true."""
    marker = tmp_path / "EXECUTED"
    folder = write_record(tmp_path)
    (folder / "jinja2.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    subprocess.run([sys.executable, "-m", "auditor", "run", "."], cwd=folder, capture_output=True, timeout=120,
                   env=env)
    assert marker.exists()
    marker.unlink()
    subprocess.run([sys.executable, "-P", "-m", "auditor", "run", "."], cwd=folder, capture_output=True,
                   timeout=120, env=env)
    assert not marker.exists()
