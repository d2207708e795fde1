"""Per-position capture: the parent's statistics (auditor/sandbox/capture.py) on hand-made capture
events, the loss-primitive wrappers of shims/gauntlet_capture.py in-process, and (slow) whole
sandboxed runs of fixture scripts that score each position once or twice."""

from __future__ import annotations

import base64
import importlib
import math
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from auditor.sandbox.capture import analyse, decode_calls

V, N, BOS = 1024, 8192, 4096
SHIMS = Path(__file__).parent.parent / "auditor" / "sandbox" / "shims"


def stream(seed=0):
    s = np.random.default_rng(seed).integers(4, V, size=N + 1)
    s[::BOS] = 1
    return s


def ev(call, losses, targets, prim="cross_entropy"):
    lo = np.asarray(losses, "<f4")
    tg = np.asarray(targets, "<i4")
    return {"event": "capture", "call": call, "prim": prim, "first": 0, "n": lo.size, "total": lo.size,
            "loss": base64.b64encode(lo.tobytes()).decode(), "tgt": base64.b64encode(tg.tobytes()).decode()}


def windows(s, seq, stride, loss=math.log(V - 4)):
    """Calls of a sliding-window evaluation: each call scores one window's targets (all of them)."""
    out, call = [], 0
    for start in range(0, N - seq + 1, stride):
        y = s[start + 1:start + seq + 1]
        out.append(ev(call, np.full(y.size, loss), y))
        call += 1
    return out


def test_one_pass_non_overlapping_covers_every_position_once():
    s = stream()
    events = windows(s, 128, 128) + [{"event": "capture_end", "dropped": 0}]
    cap = analyse(events, s, BOS, V - 4, printed=math.log(V - 4), printed_decimals=4)
    assert cap["captured"] == cap["located"] == N
    assert len(cap["passes"]) == 1
    cov = cap["coverage"]
    assert cov["scored"] == N and cov["never_scored"] == 0 and cov["scored_twice"] == 0
    assert cap["claim"]["matches"] and cap["claim"]["pass"] == 0
    # uniform predictor: advantage is minus the BOS positions' loss
    assert cap["evalue"]["advantage_nats"] == pytest.approx(-(N // BOS) * math.log(V - 4), abs=0.01)
    assert cap["evalue"]["passed"]


def test_sliding_windows_are_one_pass_without_double_scoring():
    s = stream()
    cap = analyse(windows(s, 128, 64), s, BOS, V - 4)
    cov = cap["coverage"]
    assert cov["scored_twice"] == 0 and cov["computed_more_than_once"] > N // 2
    assert cov["never_scored"] == 0 and len(cap["passes"]) == 1


def test_rescan_in_place_scores_positions_twice_and_a_full_restart_is_a_second_pass():
    s = stream()
    once = windows(s, 128, 128)
    twice = [ev(i, *(_unpack(e))) for i, e in enumerate(x for e in once for x in (e, e))]
    cap = analyse(twice, s, BOS, V - 4, printed=math.log(V - 4), printed_decimals=6)
    assert len(cap["passes"]) == 1 and cap["coverage"]["scored_twice"] == N
    restart = once + [dict(e, call=e["call"] + len(once)) for e in once]
    cap2 = analyse(restart, s, BOS, V - 4)
    assert len(cap2["passes"]) == 2 and cap2["coverage"]["scored_twice"] == 0
    assert cap2["evalue"]["passes_tested"] == 2
    assert cap2["evalue"]["bound_nats"] == pytest.approx(math.log(2 / 1e-6))


def _unpack(e):
    return (np.frombuffer(base64.b64decode(e["loss"]), "<f4"), np.frombuffer(base64.b64decode(e["tgt"]), "<i4"))


def test_leaking_losses_fail_the_captured_evalue_and_the_rules_say_so():
    from auditor.core.contract import AuditOptions, RuleContext
    from auditor.core.observations import GauntletObservation
    from rules import c4_single_pass, evalue_random_stream

    s = stream()
    cap = analyse(windows(s, 128, 128, loss=5.0), s, BOS, V - 4, printed=5.0, printed_decimals=4)
    assert not cap["evalue"]["passed"]
    assert cap["evalue"]["advantage_nats"] == pytest.approx((N - 2) * math.log(V - 4) - N * 5.0, rel=1e-5)
    obs = GauntletObservation([], {}, "cpu", capture=cap)
    ctx = RuleContext(submission=None, options=AuditOptions(gauntlet=True), observations={"gauntlet": obs})
    ev_f = evalue_random_stream.check(ctx)
    assert [f.severity for f in ev_f] == ["fail"] and ev_f[0].data["source"] == "captured"
    assert [f.severity for f in c4_single_pass.dynamic_findings(ctx)] == ["pass"]


def test_unlocated_targets_and_partial_coverage():
    s = stream()
    rng = np.random.default_rng(5)
    junk = ev(0, np.ones(500), rng.integers(4, V, 500))  # the driver's random probe tokens, say
    half = [dict(e, call=e["call"] + 1) for e in windows(s, 128, 128)[:32]]
    cap = analyse([junk] + half, s, BOS, V - 4)
    assert cap["captured"] == 500 + 32 * 128 and cap["located"] == 32 * 128
    assert cap["coverage"]["never_scored"] == N - 32 * 128
    assert decode_calls([{"event": "capture", "call": 0, "loss": "!!", "tgt": ""}]) == []


def test_capture_wrappers_record_each_primitive_once(monkeypatch):
    import torch
    import torch.nn.functional as F

    sent = []
    fake = types.ModuleType("_gauntlet_hooks")
    fake.emit = sent.append
    monkeypatch.setitem(sys.modules, "_gauntlet_hooks", fake)
    monkeypatch.syspath_prepend(str(SHIMS))
    real = {n: getattr(F, n) for n in ("cross_entropy", "nll_loss", "log_softmax")}
    real_t = {"log_softmax": torch.log_softmax, "gather": torch.gather}
    real_m = {"log_softmax": torch.Tensor.log_softmax, "gather": torch.Tensor.gather}
    cap = importlib.import_module("gauntlet_capture")
    try:
        cap.install()
        cap.enable(True)
        logits = torch.randn(2, 8, 50)
        y = torch.randint(0, 50, (2, 8))
        with torch.no_grad():
            mean = F.cross_entropy(logits.reshape(-1, 50), y.reshape(-1))
            F.nll_loss(F.log_softmax(logits.reshape(-1, 50), -1), y.reshape(-1), reduction="sum")
            nll = -F.log_softmax(logits, -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
        F.cross_entropy(logits.reshape(-1, 50).requires_grad_(), y.reshape(-1))  # training: not captured
        calls = decode_calls(sent)
        assert [c["prim"] for c in calls] == ["cross_entropy", "nll_loss", "log_softmax+gather"]
        for c in calls:
            assert np.array_equal(c["tgt"], y.reshape(-1).numpy())
            assert np.allclose(c["loss"], nll.reshape(-1).numpy(), atol=1e-5)
        assert float(calls[0]["loss"].mean()) == pytest.approx(float(mean), abs=1e-5)
    finally:
        cap.enable(False)
        for n, f in real.items():
            setattr(F, n, f)
        torch.log_softmax, torch.gather = real_t["log_softmax"], real_t["gather"]
        torch.Tensor.log_softmax, torch.Tensor.gather = real_m["log_softmax"], real_m["gather"]
        cap._real.clear()
        sys.modules.pop("gauntlet_capture", None)


# ------------------------------------------------------------------------------ whole sandboxed runs

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize("variant,twice,prim", [("ce_score_once", 0, "cross_entropy"),
                                                 ("ce_rescan", 65536, "log_softmax+gather")])
def test_sandboxed_capture_counts_what_the_script_scores(tmp_path, variant, twice, prim):
    from test_gauntlet import findings_by_rule, make_submission

    from auditor.load.loader import load_submission
    from auditor.sandbox.gauntlet import run_gauntlet
    from auditor.core.contract import AuditOptions, RuleContext
    from rules import c4_single_pass

    obs = run_gauntlet(load_submission(make_submission(tmp_path, variant)), timeout=150, control=False)
    cap = obs.capture
    assert cap is not None and cap["complete"]
    assert list(cap["primitives"]) == [prim]
    assert cap["captured"] == cap["located"] == 65536 * (2 if twice else 1)
    assert len(cap["passes"]) == 1
    assert cap["coverage"]["scored"] == 65536 and cap["coverage"]["never_scored"] == 0
    assert cap["coverage"]["scored_twice"] == twice
    assert cap["claim"]["matches"] and cap["claim"]["difference"] < 1e-4
    assert cap["evalue"]["passed"] and cap["evalue"]["advantage_nats"] < 0
    assert {s.name: s.status for s in obs.stages}["per-position capture"] == "pass"
    assert [f.severity for f in findings_by_rule(obs)["EVALUE_RANDOM_STREAM"]] == ["pass"]
    ctx = RuleContext(submission=None, options=AuditOptions(gauntlet=True), observations={"gauntlet": obs})
    assert [f.severity for f in c4_single_pass.dynamic_findings(ctx)] == (["fail"] if twice else ["pass"])


def test_flip_compare_reports_the_first_position_that_changed():
    from auditor.sandbox.capture import flip_compare

    s = stream()
    a, b = [], []
    analyse(windows(s, 128, 128), s, BOS, V - 4, arrays=a)
    s2 = s.copy()
    s2[N // 2:] = np.random.default_rng(9).integers(4, V, size=s2.size - N // 2)
    calls = windows(s2, 128, 128)
    lo, tg = _unpack(calls[10])
    calls[10] = ev(10, lo + np.where(np.arange(lo.size) >= 5, 0.5, 0.0), tg)  # window 10: positions 1286.. moved
    analyse(calls, s2, BOS, V - 4, arrays=b)
    res = flip_compare(a, b, N // 2)
    assert res["compared"] == N // 2 - 1
    assert res["first_diff"] == 10 * 128 + 6 and res["first_pass"] == 0
    assert res["passes"][0]["differing"] == 123 and res["passes"][0]["max_abs_diff"] == pytest.approx(0.5)
    same = flip_compare(a, a, N // 2)
    assert same["first_diff"] is None and same["passes"][0]["max_abs_diff"] == 0.0


# One sandboxed run per fixture, with the flip test (train once, evaluate twice): each probe's statistic
# and the rules' verdicts on it. Columns: captured primitive, positions scored twice (C4), the flip test's
# first differing position and how many differ (C1 / C3), whether the fork came from a training loss, the
# sign of the captured e-value advantage, and the dynamic verdicts.
PROBE_TABLE = [
    # variant            primitive               twice  first_diff  differing  grad   adv>0  C1      C3      C4
    ("ce_score_once",    "cross_entropy",        0,     None,       0,         False, False, "pass", None,   "pass"),
    ("ce_rescan",        "log_softmax+gather",   65536, None,       0,         False, False, "pass", None,   "fail"),
    ("ce_peek_next",     "cross_entropy",        0,     32768,      1,         False, False, "fail", None,   "pass"),
    ("finetune_on_val",  "probabilities+gather", 0,     1,          32000,     True,  True,  None,   "fail", "pass"),
    ("score_first_ttt",  "cross_entropy",        0,     None,       0,         False, False, "pass", "pass", "pass"),
    ("normalized_cache", "probabilities+gather", 0,     None,       0,         False, False, "pass", None,   "pass"),
]


@pytest.mark.slow
@linux_only
@pytest.mark.parametrize("variant,prim,twice,first_diff,differing,grad,leaks,c1,c3,c4", PROBE_TABLE)
def test_each_probe_on_its_fixture(tmp_path, variant, prim, twice, first_diff, differing, grad, leaks, c1, c3, c4):
    from test_gauntlet import make_submission

    from auditor.core.contract import AuditOptions, RuleContext
    from auditor.load.loader import load_submission
    from auditor.sandbox.gauntlet import run_gauntlet
    from rules import c1_causal, c3_score_first, c4_single_pass

    obs = run_gauntlet(load_submission(make_submission(tmp_path, variant)), timeout=150, control=False, flip=True)
    cap, f = obs.capture, obs.flip
    assert list(cap["primitives"]) == [prim]
    assert cap["coverage"]["scored"] == 65536 or variant == "ce_peek_next"
    assert cap["coverage"]["scored_twice"] == twice
    assert (cap["evalue"]["advantage_nats"] > 0) == leaks
    assert f["k"] == 32769 and f["compared"] == 32768
    assert f["fork"]["grad"] is grad and f["fork"]["captured_calls_before"] == 0 and f["fork"]["position"] == 1
    assert f["first_diff"] == first_diff
    if first_diff is None:
        assert f["passes"][0]["max_abs_diff"] < 1e-3
    elif differing == 1:
        assert f["passes"][0]["differing"] == 1 and f["passes"][0]["max_abs_diff"] > 0.05
    else:
        assert f["passes"][0]["differing"] > differing
    ctx = RuleContext(submission=None, options=AuditOptions(gauntlet=True), observations={"gauntlet": obs})
    assert [x.severity.value for x in c1_causal.flip_findings(ctx)] == ([c1] if c1 else [])
    assert [x.severity.value for x in c3_score_first.flip_findings(ctx)] == ([c3] if c3 else [])
    assert [x.severity.value for x in c4_single_pass.dynamic_findings(ctx)] == [c4]


def test_review_shows_the_capture_table_and_the_flip_test(tmp_path):
    from test_gauntlet import make_submission

    from auditor.core.contract import AuditOptions
    from auditor.core.observations import GauntletObservation, Stage
    from auditor.engine import audit_submission
    from auditor.load.loader import load_submission
    from auditor.sandbox.capture import flip_compare
    from reports.render import render

    s, a = stream(), []
    cap = analyse(windows(s, 128, 128, loss=5.0), s, BOS, V - 4, printed=5.0, printed_decimals=4, arrays=a)
    obs = GauntletObservation([Stage("decode", "skipped")], {"mode": "bwrap"}, "cpu", capture=cap,
                              flip=dict(flip_compare(a, a, N // 2 + 1), seconds=3.0))
    res = audit_submission(load_submission(str(make_submission(tmp_path, "ce_score_once"))),
                           AuditOptions(gauntlet=True), observations={"gauntlet": obs})
    md = render(res, "md")
    assert "| 0 | 64 | 8,192 | 0 | 0 | 5.000000 |" in md and "**FAIL** |" in md
    assert "Printed val_loss 5.0: the mean\\_loss of pass 0" in md
    assert "compared over 1 pass(es), tolerance 0.001 nats: **all equal**." in md
    ev = [f for f in res.findings if f.rule == "EVALUE_RANDOM_STREAM"]
    assert [f.severity for f in ev] == ["fail"] and ev[0].data["source"] == "captured"
    assert any(f.rule == "C1_CAUSAL" and f.data.get("dynamic") and f.severity == "pass" for f in res.findings)
