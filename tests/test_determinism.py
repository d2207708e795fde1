"""Determinism: the same folder gives byte-identical JSON and Markdown whatever the order files were
created in, their mtimes, where the folder lives, the locale, the time zone, the console encoding
and the hash seed. A reviewer diffing two reports must see only real changes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adversarial_kit import (
    SCRIPT,
    Spec,
    folder_spec,
    fuzz_settings,
    modern_log,
    run_main,
    stub_for,
    write_spec,
)

RECORD = "2026-05-01_Determinism"


def _spec() -> Spec:
    spec = Spec()
    spec.append(("submission.json", b'{"name": "d\\u00e9t", "val_bpb": 1.0815, "seeds": [42, 1337, 7], '
                                    b'"bytes_total": 15950197, "author": "A", "github_id": "a", "date": "2026-05-01"}'))
    for seed in (42, 1337, 7):
        spec.append((f"train_seed{seed}.log", modern_log(seed, 1.0814 + seed * 1e-7).encode()))
    spec.append(("train_gpt.py", stub_for(SCRIPT).encode()))
    spec.append(("README.md", "# Déterminisme\n\nÜñíçødé and ✅ in a README.\n".encode()))
    spec.append(("extra/z_helper.py", b"import os\nX = os.environ.get('X', '1')\n"))
    spec.append(("extra/a_helper.py", b"def f():\n    return 1\n"))
    spec.append(("logs/train_seed2025.log", modern_log(2025, 1.0900).encode()))
    spec.append(("ünïcode_ñame.txt", b"x"))
    return spec


def _write(root: Path, spec: Spec, seed: int) -> Path:
    rng = random.Random(seed)
    order = list(range(len(spec)))
    rng.shuffle(order)
    folder = write_spec(root / "records" / "track_10min_16mb" / RECORD, spec, order)
    for p in folder.rglob("*"):  # scatter mtimes across decades
        t = rng.randrange(0, 2_000_000_000)
        os.utime(p, (t, t), follow_symlinks=False)
    return folder


def _outputs(folder: Path) -> dict[str, str]:
    return {fmt: run_main(["run", str(folder), "--format", fmt]).stdout for fmt in ("md", "json")}


def test_creation_order_mtime_and_location_do_not_matter(tmp_path):
    a = _outputs(_write(tmp_path / "one", _spec(), seed=1))
    b = _outputs(_write(tmp_path / "two" / "deeper", _spec(), seed=2))
    assert a["md"] and a["json"]
    assert a == b
    assert str(tmp_path) not in a["md"] + a["json"]  # no absolute path leaks into a report


@fuzz_settings(0.25)
@given(spec=folder_spec(), seeds=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)))
def test_generated_folders_are_deterministic(spec, seeds):
    import tempfile

    with tempfile.TemporaryDirectory() as t1, tempfile.TemporaryDirectory() as t2:
        a = _outputs(_write(Path(t1), spec, seeds[0]))
        b = _outputs(_write(Path(t2), spec, seeds[1]))
    assert a == b


ENVIRONMENTS = [
    {"TZ": "UTC", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"},
    {"TZ": "Pacific/Kiritimati", "LC_ALL": "C", "PYTHONHASHSEED": "12345"},
    {"TZ": "America/St_Johns", "LC_ALL": "POSIX", "LANG": "tr_TR.UTF-8", "PYTHONHASHSEED": "random"},
    {"TZ": "Asia/Kathmandu", "LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "latin-1", "PYTHONHASHSEED": "99"},
]


@pytest.mark.parametrize("fmt", ["md", "json"])
def test_environment_does_not_change_the_bytes(tmp_path, fmt):
    folder = _write(tmp_path, _spec(), seed=3)
    outs = []
    for env in ENVIRONMENTS:
        full = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONIOENCODING"))}
        full.update(env)
        full["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
        res = subprocess.run([sys.executable, "-m", "auditor", "run", str(folder), "--format", fmt],
                             capture_output=True, timeout=120, env=full, cwd=tmp_path)
        assert res.returncode in (0, 1, 3), res.stderr.decode("utf-8", "replace")[-2000:]
        outs.append(res.stdout)
    assert all(o == outs[0] for o in outs[1:])
    outs[0].decode("utf-8")  # strict UTF-8 even under a latin-1 console
    # same bytes as in-process
    assert outs[0] == run_main(["run", str(folder), "--format", fmt]).stdout.encode("utf-8")
