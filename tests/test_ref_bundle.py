"""The single-file script is self-contained, small, and identical to what the bundled example ran."""

import ast
import json
import re
from pathlib import Path

import pytest

from reference_impl.bundle import BUNDLED_MODULES, bundle_source
from reference_impl.package import parse_log

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "austen_demo"


def test_bundled_script_is_self_contained_and_small():
    src = bundle_source()
    tree = ast.parse(src)
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import left in the bundle"
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "contextlib", "copy", "dataclasses", "glob", "io", "lzma", "math", "os",
                        "platform", "sys", "time", "uuid", "zlib", "numpy", "torch", "sentencepiece", "brotli"}
    assert len(src.encode()) < 60_000
    top = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert {"GPT", "write_shard", "build_sentencepiece_luts", "eval_sliding", "quantize_state_dict", "main"} <= top
    assert "eval_ttt" not in src and "backward" in src  # no validation-time training in the shipped script
    assert bundle_source() == src  # deterministic
    assert len(BUNDLED_MODULES) == len(set(BUNDLED_MODULES))


def _example():
    if not (EXAMPLE / "submission.json").is_file():
        pytest.skip("examples/austen_demo not generated")
    return json.loads((EXAMPLE / "submission.json").read_text())


def test_example_ships_exactly_the_current_bundle():
    _example()
    assert (EXAMPLE / "train_gpt.py").read_text(encoding="utf-8") == bundle_source(), \
        "bundled modules changed: regenerate examples/austen_demo (see its README)"


def test_example_numbers_match_its_logs():
    sub = _example()
    code = (EXAMPLE / "train_gpt.py").stat().st_size
    logs = sorted(EXAMPLE.glob("train_seed*.log"))
    assert len(logs) == 3 == len(sub["seeds"])
    parsed = [parse_log(p) for p in logs]
    assert sorted(r["seed"] for r in parsed) == sorted(sub["seeds"])
    assert all(r["code_bytes"] == code == sub["bytes_code"] for r in parsed)
    assert sub["val_bpb"] == pytest.approx(sum(r["val_bpb"] for r in parsed) / 3, abs=1e-8)
    assert sub["bytes_total"] == max(r["artifact_bytes"] for r in parsed) < 16_000_000
    ds = json.loads((EXAMPLE / "dataset_manifest.json").read_text())
    assert all(r["val_tokens"] == ds["val_tokens"] for r in parsed)
    for r in parsed:  # implied bytes from the logged loss/bpb pair match the manifest's exact count
        implied = r["val_tokens"] * r["val_loss"] / (0.6931471805599453 * r["val_bpb"])
        assert abs(implied - ds["val_bytes"]) / ds["val_bytes"] < 1e-6
    assert (EXAMPLE / ds["tokenizer_file"]).is_file()
    assert sum(p.stat().st_size for p in EXAMPLE.iterdir()) < 1_000_000
    assert not list(EXAMPLE.glob("*.bin"))
    readme = (EXAMPLE / "README.md").read_text()
    assert re.search(r"reference_impl train .*--seed \$seed", readme)
