"""The benchmark scripts' own logic (text filling, output parsing), without running any benchmark."""

import importlib.util
from pathlib import Path


BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mutated_text_is_seeded_and_keeps_the_source_first():
    bench = _load("bench_ppm")
    docs = ["the cat sat on the mat", "a dog ran to the park"]
    a = bench.mutated_text(docs, 2000)
    assert len(a) == 2000 and a == bench.mutated_text(docs, 2000)
    assert a.startswith(b"the cat sat on the mat\na dog ran to the park\n")
    assert a != bench.mutated_text(docs, 2000, seed=1)
    assert bench.byte_text(docs, 0.002, "repeat") == (b"the cat sat on the mat\na dog ran to the park" * 50)[:2000]


def test_device_check_parses_stage_output(monkeypatch, tmp_path):
    dc = _load("device_check")
    train_out = ("10/100000 train_loss: 5.1000 train_time: 0.1m tok/s: 41000\n"
                 "20/100000 train_loss: 4.9000 train_time: 0.2m tok/s: 52000\n"
                 "stopping_early: wallclock_cap train_time: 150012ms step: 20/100000\n"
                 "peak memory allocated: 31000 MiB reserved: 33000 MiB\n"
                 "quantized_sliding_window val_loss:3.10000000 val_bpb:1.23456789 eval_time:4200ms\n")
    audit_out = "## audit\n\n**Verdict: ✅ PASS** — 0 fail, 20 pass\n"
    outputs = {"reference_impl": (0, train_out), "auditor": (1, audit_out)}
    monkeypatch.setattr(dc, "run_stage", lambda cmd, timeout, env=None: (*outputs[cmd[2]], 12.0))
    a = dc.build_parser().parse_args(["--device", "cuda", "--out", str(tmp_path)])
    row = dc.train_stage(a, tmp_path)
    assert row["figures"] == ("52,000 train tok/s; peak 31000 MiB; steps 20; sliding eval "
                              "(quantized_sliding_window) 1.23456789 bpb in 4.2 s")
    row = dc.gauntlet_stage(a)
    assert row["rc"] == 0 and row["figures"] == "verdict ✅ PASS — 0 fail, 20 pass"
    outputs["auditor"] = (2, "Traceback: boom\n")
    assert dc.gauntlet_stage(a)["rc"] == 2
