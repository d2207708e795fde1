import base64
import lzma
import os

import pytest

from auditor.load.loader import LoadError, load_submission
from recordkit import write_record


def test_loads_a_record_folder(tmp_path):
    folder = write_record(tmp_path)
    sub = load_submission(folder)
    assert sub.name == "2026-05-01_Test_Record" and sub.track == "track_10min_16mb"
    assert sub.logs == ["train_seed1337.log", "train_seed2025.log", "train_seed42.log"]
    assert sub.meta.val_bpb == pytest.approx(1.0814) and sub.entry_point.path == "train_gpt.py"
    assert sorted(r.seed.value for r in sub.runs) == [42, 1337, 2025]


def test_stub_is_decoded_and_shipped_bytes_kept(tmp_path):
    src = "print('hello from the payload')\n"
    payload = base64.b85encode(lzma.compress(src.encode())).decode()
    stub = f'import lzma,base64\nexec(lzma.decompress(base64.b85decode("{payload}")))\n'
    folder = write_record(tmp_path, script=stub)
    entry = load_submission(folder).entry_point
    assert entry.stub == "lzma-xz" and entry.text == src and entry.shipped == stub.encode()


def test_missing_and_non_folder_paths_are_load_errors(tmp_path):
    with pytest.raises(LoadError, match="no such folder"):
        load_submission(tmp_path / "nope")
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(LoadError, match="not a folder"):
        load_submission(f)


def test_symlink_outside_is_reported_not_followed(tmp_path):
    secret = tmp_path / "secret.log"
    secret.write_text("quantized_sliding_window val_loss:0.1 val_bpb:0.1\n")
    folder = write_record(tmp_path)
    os.symlink(secret, folder / "train_extra.log")
    sub = load_submission(folder)
    assert "train_extra.log" not in sub.files
    [f] = [f for f in sub.load_issues if "outside" in f.message]
    assert f.severity == "fail" and f.evidence[0].path == "train_extra.log"


def test_oversized_file_is_not_read(tmp_path, monkeypatch):
    import auditor.load.loader as loader

    monkeypatch.setattr(loader, "MAX_TEXT_BYTES", 1000)
    folder = write_record(tmp_path)
    (folder / "train_big.log").write_text("x" * 5000)
    sub = load_submission(folder)
    assert "train_big.log" not in sub.logs
    assert any("read limit" in f.message for f in sub.load_issues)


def test_non_utf8_and_nul_bytes_are_tolerated(tmp_path):
    folder = write_record(tmp_path)
    (folder / "train_seed99.log").write_bytes(b"\xff\xfe\x00garbage\x00\nseed:99\n\x80\x81")
    sub = load_submission(folder)
    assert "train_seed99.log" in sub.logs
