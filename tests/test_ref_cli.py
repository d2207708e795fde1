"""`reference_impl` prepare -> train -> eval -> package on generated text, and one-line errors."""

import json
import re

import pytest

from reference_impl.cli import main
from reference_impl.package import PackageError, package_runs, parse_log

TINY = ["--iterations", "3", "--max-seconds", "0", "--warmup-steps", "1", "--seq-len", "32",
        "--train-batch-tokens", "256", "--num-layers", "1", "--model-dim", "32", "--eval-stride", "16",
        "--threads", "1"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    assert main(["prepare", "--source", "generated", "--num-docs", "300", "--vocab-size", "320",
                 "--val-docs", "20", "--out", str(data)]) == 0
    for seed in (2, 1):
        assert main(["train", "--data", str(data), "--out", str(root / f"run{seed}"), "--seed", str(seed)] + TINY) == 0
    return root, data


@pytest.mark.slow
def test_prepare_writes_shards_tokenizer_and_exact_byte_manifest(pipeline):
    _, data = pipeline
    m = json.loads((data / "manifest.json").read_text())
    assert m["num_val_docs"] == 20 and m["num_train_docs"] == 280 and m["tokenizer"]["vocab_size"] == 320
    assert m["val"]["bytes_lut_minus_exact"] == 0 and m["val"]["bytes_exact"] > 0
    assert (data / "fineweb_val_000000.bin").is_file() and (data / "fineweb_train_000000.bin").is_file()


@pytest.mark.slow
def test_train_log_is_in_the_modular_family_format(pipeline):
    root, _ = pipeline
    log = (root / "run1" / "logs" / "seed1.txt").read_text().splitlines()
    assert "Hyperparameters:" in log and "  seed: 1" in log and "  world_size: 1" in log
    assert any(re.fullmatch(r"train_shards: \d+", line) for line in log)
    assert any(re.fullmatch(r"3/3 train_loss: [0-9.]+ train_time: [0-9.]+m tok/s: \d+", line) for line in log)
    for label in ("quantized", "quantized_sliding_window"):
        assert any(re.fullmatch(label + r" val_loss:\d+\.\d{8} val_bpb:\d+\.\d{8} eval_time:\d+ms", line) for line in log)
    code = (root / "run1" / "train_gpt.py").read_bytes()
    assert f"Code size: {len(code)} bytes" in log
    r = parse_log(root / "run1" / "logs" / "seed1.txt")
    model = (root / "run1" / "final_model.int8.ptz").stat().st_size
    assert r["artifact_bytes"] == model + len(code)


@pytest.mark.slow
def test_eval_all_modes_and_package(pipeline, capsys, tmp_path):
    root, data = pipeline
    capsys.readouterr()
    assert main(["eval", "--data", str(data), "--model", str(root / "run1" / "final_model.int8.ptz"),
                 "--mode", "all", "--seq-len", "32", "--stride", "16", "--doc-chunk", "16",
                 "--ttt-chunk-tokens", "256", "--json", str(tmp_path / "e.json")]) == 0
    out = capsys.readouterr().out
    rep = json.loads((tmp_path / "e.json").read_text())
    assert {"nonoverlap", "sliding", "documents", "ttt", "unigram_baseline"} <= set(rep)
    assert len({rep[m]["tokens"] for m in ("nonoverlap", "sliding", "documents", "ttt")}) == 1
    assert len({rep[m]["bytes"] for m in ("nonoverlap", "sliding", "documents", "ttt")}) == 1
    assert "unigram_baseline val_loss:" in out
    # eval of the artifact reproduces the training log's sliding score
    logged = parse_log(root / "run1" / "logs" / "seed1.txt")
    assert rep["sliding"]["val_bpb"] == pytest.approx(logged["val_bpb"], abs=1e-8)

    out_dir = tmp_path / "sub"
    assert main(["package", "--runs", str(root / "run1"), str(root / "run2"), "--data", str(data),
                 "--out", str(out_dir), "--name", "tiny", "--date", "2026-01-01"]) == 0
    sub = json.loads((out_dir / "submission.json").read_text())
    per_seed = [parse_log(out_dir / f"train_seed{s}.log")["val_bpb"] for s in (1, 2)]
    assert sub["seeds"] == [1, 2] and sub["val_bpb"] == pytest.approx(sum(per_seed) / 2, abs=1e-8)
    assert sub["bytes_code"] == (out_dir / "train_gpt.py").stat().st_size
    ds = json.loads((out_dir / "dataset_manifest.json").read_text())
    assert ds["val_tokens"] == rep["sliding"]["tokens"] and ds["val_bytes"] == rep["sliding"]["bytes"]
    first = (out_dir / "submission.json").read_bytes()
    package_runs([str(root / "run2"), str(root / "run1")], str(data), str(out_dir), name="tiny", author="pgolf-auditor",
                 github_id="pgolf-auditor", date="2026-01-01")
    assert (out_dir / "submission.json").read_bytes() == first  # deterministic, order-independent
    with pytest.raises(PackageError, match="duplicate seeds"):
        package_runs([str(root / "run1"), str(root / "run1")], str(data), str(tmp_path / "x"), name="t",
                     author="a", github_id="a")


@pytest.mark.parametrize("argv, message", [
    (["prepare", "--source", "files", "--out", "x"], "needs --inputs"),
    (["prepare", "--source", "files", "--inputs", "/nonexistent.txt", "--out", "x"], "no such file"),
    (["train", "--data", "/nonexistent", "--out", "x"], "manifest.json"),
    (["eval", "--data", "/nonexistent", "--model", "m"], "manifest.json"),
    (["package", "--runs", "/nonexistent", "--data", "/x", "--out", "/tmp/none", "--name", "n"], "run.json"),
    (["train", "--data"], "expected one argument"),
    (["bogus"], "invalid choice"),
])
def test_bad_input_gives_one_line_error_and_exit_2(argv, message, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
