"""Trainer pieces that do not need a run: env parsing, the warmdown schedule, Muon's update."""

import pytest
import torch

from reference_impl.train import Hyperparameters, lr_multiplier, zeropower_via_newtonschulz5


def test_hyperparameters_from_env_types_and_errors():
    h = Hyperparameters.from_env({"ITERATIONS": "1e3", "MATRIX_LR": "0.5", "OPTIMIZER": "muon", "SEED": "7"})
    assert (h.iterations, h.matrix_lr, h.optimizer, h.seed) == (1000, 0.5, "muon", 7)
    assert h.model_config().num_layers == 9 and h.model_config().model_dim == 512
    with pytest.raises(SystemExit, match="MODEL_DIM"):
        Hyperparameters.from_env({"MODEL_DIM": "big"})


def test_warmdown_by_steps_is_deterministic_under_a_distant_cap():
    h = Hyperparameters(iterations=100, warmdown_iters=40, max_wallclock_seconds=600)
    muls = [lr_multiplier(h, s, elapsed_ms=10.0 * s) for s in range(101)]
    assert muls[:60] == [1.0] * 60 and muls[80] == pytest.approx(0.5) and muls[100] == 0.0
    uncapped = Hyperparameters(iterations=100, warmdown_iters=40, max_wallclock_seconds=0)
    assert muls == [lr_multiplier(uncapped, s, elapsed_ms=1e9) for s in range(101)]


def test_warmdown_by_wallclock_when_the_cap_comes_first():
    h = Hyperparameters(iterations=20000, warmdown_iters=100, max_wallclock_seconds=10)
    # 50 ms/step: 100 steps of warmdown = 5 s, so it starts 5 s before the 10 s cap
    assert lr_multiplier(h, 80, elapsed_ms=4000.0) == 1.0
    assert lr_multiplier(h, 150, elapsed_ms=7500.0) == pytest.approx(0.5)
    assert lr_multiplier(h, 200, elapsed_ms=10000.0) == 0.0


def test_newton_schulz_approximately_orthogonalises():
    g = torch.randn(16, 32, generator=torch.Generator().manual_seed(0))
    u = zeropower_via_newtonschulz5(g, steps=5)
    sv = torch.linalg.svdvals(u)
    assert u.shape == g.shape and sv.min() > 0.5 and sv.max() < 1.3
