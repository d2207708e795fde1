"""`auditor conform scaffold FOLDER`: a wrapper skeleton from a record folder, compressed code decoded, not run."""

from __future__ import annotations

import ast
import base64
import lzma
from pathlib import Path

import pytest

from auditor.cli import main

RECORD = '''import os
open("RAN", "w").write("the blob was executed")
CHUNK = int(os.environ.get("NGRAM_CHUNK_TOKENS", 65536))
BUCKETS = int(os.environ.get("NGRAM_BUCKETS", "4194304"))
LR = float(os.environ.get("MATRIX_LR", 0.02))
def quantize_state(sd):
    return sd
def eval_val(model, tokens):
    return 0.0
def eval_ngram(model, tokens, luts):
    return 0.0
'''


@pytest.fixture
def blob_folder(tmp_path):
    folder = tmp_path / "2026-05-01_Blob"
    folder.mkdir()
    payload = base64.b85encode(lzma.compress(RECORD.encode())).decode()
    (folder / "train_gpt.py").write_text(f'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{payload}")))\n')
    return folder


def test_scaffold_decodes_lists_the_eval_and_its_scale_knobs(blob_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "wrap.py"
    assert main(["conform", "scaffold", str(blob_folder), "--out", str(out)]) == 0
    assert "FILL IN" in capsys.readouterr().out
    text = out.read_text()
    ast.parse(text)
    assert not (tmp_path / "RAN").exists() and not (blob_folder / "RAN").exists()
    listed = [line.split("(")[0].strip("# ") for line in text.splitlines() if line.startswith("#   ")]
    assert listed == ["eval_ngram", "eval_val"]  # quantize_state is not an eval; the n-gram eval ranks first
    assert "'NGRAM_CHUNK_TOKENS': {\"default\": 65536, \"role\": 'chunk'}" in text
    assert "'NGRAM_BUCKETS': {\"default\": 4194304, \"role\": 'table'}" in text
    assert "MATRIX_LR" not in text  # a training knob
    assert "DEFINITIONS = ['eval_ngram']" in text and "decode_stub(text" in text


def test_scaffold_errors_are_one_line(tmp_path, capsys):
    assert main(["conform", "scaffold", str(tmp_path)]) == 2
    assert "train_gpt.py" in capsys.readouterr().err
    assert main(["conform", "catalog:ngram-backoff", "extra", "--vocab", "8"]) == 2


TTT = Path(__file__).resolve().parents[2] / "shared/corpus/merged/records/track_10min_16mb/" \
    "2026-04-08_SP8192_ParallelResid_ScoreFirstTTT"


@pytest.mark.skipif(not TTT.is_dir(), reason="../shared/corpus not present")
def test_scaffold_on_a_real_compressed_record(capsys):
    assert main(["conform", "scaffold", str(TTT)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[4] == "#   eval_val_sliding_ttt(h,base_model,rank,world_size,device,val_data,stride)"
    assert "'TTT_CHUNK_TOKENS': {\"default\": 32768, \"role\": 'chunk'}" in text
