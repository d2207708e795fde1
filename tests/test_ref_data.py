"""Challenge shard format: exact round trip and the strict checks every challenge loader applies."""

import numpy as np
import pytest
import torch

from reference_impl.data import (HEADER_BYTES, SHARD_MAGIC, DistributedTokenLoader, ShardError, list_shards,
                                 load_validation_tokens, read_shard, write_shard)


def test_shard_round_trip_is_exact(tmp_path):
    tokens = np.array([1, 0, 65535, 7, 1024, 3], dtype=np.int64)
    path = tmp_path / "fineweb_val_000000.bin"
    size = write_shard(str(path), tokens)
    assert size == HEADER_BYTES + 2 * tokens.size == path.stat().st_size
    raw = path.read_bytes()
    assert raw[:4] == bytes([0x88, 0xD8, 0x34, 0x01])  # 20240520 little-endian
    assert int.from_bytes(raw[8:12], "little") == 6
    assert raw[12:HEADER_BYTES] == b"\x00" * (HEADER_BYTES - 12)
    back = read_shard(str(path))
    assert back.dtype == np.uint16
    assert back.tolist() == tokens.tolist()


@pytest.mark.parametrize("mutate, message", [
    (lambda b: b[:-1], "size"),
    (lambda b: b + b"\x00\x00", "size"),
    (lambda b: (SHARD_MAGIC + 1).to_bytes(4, "little") + b[4:], "magic"),
    (lambda b: b[:4] + (2).to_bytes(4, "little") + b[8:], "magic"),
    (lambda b: b[:100], "header"),
])
def test_invalid_shards_are_rejected(tmp_path, mutate, message):
    path = tmp_path / "s.bin"
    write_shard(str(path), np.arange(10))
    path.write_bytes(mutate(path.read_bytes()))
    with pytest.raises(ShardError, match=message):
        read_shard(str(path))


def test_write_rejects_ids_outside_uint16(tmp_path):
    with pytest.raises(ShardError):
        write_shard(str(tmp_path / "x.bin"), [1, 70000])


def test_val_glob_excludes_byte_sidecars_and_sorts(tmp_path):
    for name in ["fineweb_val_000001.bin", "fineweb_val_000000.bin", "fineweb_val_bytes_000000.bin",
                 "fineweb_train_000000.bin"]:
        write_shard(str(tmp_path / name), [1, 2, 3])
    assert [p.split("/")[-1] for p in list_shards(str(tmp_path), "val")] == [
        "fineweb_val_000000.bin", "fineweb_val_000001.bin"]


def test_validation_tokens_truncate_to_usable_plus_one(tmp_path):
    write_shard(str(tmp_path / "fineweb_val_000000.bin"), np.arange(30))
    write_shard(str(tmp_path / "fineweb_val_000001.bin"), np.arange(30, 45))
    val = load_validation_tokens(str(tmp_path), seq_len=8)
    # N = 45 -> usable = floor(44 / 8) * 8 = 40 scored targets
    assert val.size == 41 and val.tolist() == list(range(41))
    with pytest.raises(ShardError):
        load_validation_tokens(str(tmp_path), seq_len=64)


def test_distributed_loader_ranks_take_disjoint_consecutive_slices(tmp_path):
    write_shard(str(tmp_path / "fineweb_train_000000.bin"), np.arange(100) % 50)
    write_shard(str(tmp_path / "fineweb_train_000001.bin"), np.arange(100, 120) % 50)
    single = DistributedTokenLoader([str(tmp_path / f"fineweb_train_00000{i}.bin") for i in (0, 1)], 0, 1, "cpu")
    x0, y0 = single.next_batch(16, 4, 2)  # grad accum 2: 8 tokens + 1
    x1, _ = single.next_batch(16, 4, 2)
    files = [str(tmp_path / f"fineweb_train_00000{i}.bin") for i in (0, 1)]
    r0 = DistributedTokenLoader(files, 0, 2, "cpu").next_batch(16, 4, 1)
    r1 = DistributedTokenLoader(files, 1, 2, "cpu").next_batch(16, 4, 1)
    assert torch.equal(x0, r0[0]) and torch.equal(y0, r0[1]) and torch.equal(x1, r1[0])
    assert x0.flatten().tolist() == list(range(8)) and y0.flatten().tolist() == list(range(1, 9))
    assert x1.flatten().tolist() == list(range(9, 17))
    # the stream crosses into the second shard and wraps to the first
    loader = DistributedTokenLoader(files, 0, 1, "cpu")
    loader.stream.take(115)
    assert loader.stream.take(10).tolist() == [(100 + i) % 50 for i in range(15, 20)] + [0, 1, 2, 3, 4]
