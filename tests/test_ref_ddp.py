"""Two-process gloo DDP training equals one process with gradient accumulation 2 (same global batch)."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from reference_impl.prepare import prepare_dataset
from reference_impl.text_sources import generated_documents
from reference_impl.train import Hyperparameters, run


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hparams(data_dir, out_dir, grad_accum):
    return Hyperparameters(
        data_path=str(data_dir), tokenizer_path=str(data_dir / "tokenizer_320_bpe.model"), out_dir=str(out_dir),
        run_id="ddp", seed=7, iterations=4, warmup_steps=1, warmdown_iters=2, train_batch_tokens=256,
        train_seq_len=32, eval_stride=16, val_loss_every=0, train_log_every=1, max_wallclock_seconds=0,
        grad_accum_steps=grad_accum, vocab_size=320, num_layers=2, model_dim=32, num_heads=4, num_kv_heads=2,
        embed_lr=0.05, matrix_lr=0.02, scalar_lr=0.02, val_batch_seqs=8)


def _worker(rank, world, port, data_dir, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    summary = run(_hparams(data_dir, out_dir, 1))
    torch.distributed.destroy_process_group()
    if rank == 0:
        (out_dir / "summary.json").write_text(json.dumps(summary))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp_data")
    prepare_dataset(generated_documents(400, seed=2), str(d), 320, 30, log=lambda m: None)
    return d


@pytest.mark.slow
def test_two_process_ddp_matches_single_process_grad_accumulation(data_dir, tmp_path, monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    torch.set_num_threads(1)
    single = run(_hparams(data_dir, tmp_path / "single", 2))
    ddp_dir = tmp_path / "ddp"
    ddp_dir.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), data_dir, ddp_dir), nprocs=2, join=True)
    ddp = json.loads((ddp_dir / "summary.json").read_text())
    assert len(single["train_losses"]) == len(ddp["train_losses"]) == 4
    for a, b in zip(single["train_losses"], ddp["train_losses"]):
        assert abs(a - b) < 1e-5
    assert single["train_losses"][-1] < single["train_losses"][0]
    assert abs(single["val_bpb"] - ddp["val_bpb"]) < 1e-5
    assert single["val_tokens"] == ddp["val_tokens"] and single["val_bytes"] == ddp["val_bytes"]
    log = (ddp_dir / "logs" / "ddp.txt").read_text()
    assert "  world_size: 2" in log and "  grad_accum_steps: 1" in log
    assert "  world_size: 1" in (tmp_path / "single" / "logs" / "ddp.txt").read_text()
