"""One fixture folder per calibrated behaviour (issue 13): claims read as a reviewer reads them, the
non-record track, byte-mixture and below-the-floor claims from the logs, pre-quantisation TTT, rulings
by date and unparseable scripts. Every folder is built here (tests/recordkit.py); no corpus needed."""

from __future__ import annotations

import json

from auditor.core.contract import AuditOptions
from auditor.engine import audit_folder
from recordkit import SCRIPT, modern_log, write_record


def rule(result, rule_id):
    return [f for f in result.findings if f.rule == rule_id]


def by_severity(findings, severity):
    return [f for f in findings if f.severity == severity]


# ------------------------------------------------------------------------------ claims against logs

def test_claim_equal_to_one_log_set_is_backed(tmp_path):
    """A rerun log set (files that differ only by a seed suffix) whose mean is the claim backs it, even
    when the json's seed list picks runs from another set."""
    folder = write_record(tmp_path, seeds={1341: 1.39697242}, claim=1.4709, meta={"seeds": [1341, 42]})
    (folder / "train_seed1341.log").rename(folder / "run_seq16k.log")
    (folder / "run_seq32k.log").write_text(modern_log(1342, 1.47025754))
    (folder / "run_seq32k_s42.log").write_text(modern_log(42, 1.47155711))
    result = audit_folder(str(folder))
    fs = rule(result, "CLAIM_CONSISTENCY")
    [info] = [f for f in fs if "log set" in f.message]
    assert info.severity == "info" and info.data["log_set"] == "run_seq32k"
    assert not by_severity(fs, "fail")


def test_claim_within_the_rounding_of_printed_lines_is_not_a_fail(tmp_path):
    """Logs that print 4 decimals: a claim within their rounding of the mean is backed."""
    folder = write_record(tmp_path, seeds={1: 1.17105855, 2: 1.17120000, 3: 1.17090000}, claim=1.1710)
    for seed in (1, 2, 3):  # the score lines print 4 decimals only
        log = folder / f"train_seed{seed}.log"
        text = log.read_text().splitlines()
        text[-1] = text[-1].split(" val_bpb:")[0] + f" val_bpb:{float(text[-1].split('val_bpb:')[1].split()[0]):.4f}"
        log.write_text("\n".join(text) + "\n")
    fs = rule(audit_folder(str(folder)), "CLAIM_CONSISTENCY")
    assert not by_severity(fs, "fail") and not by_severity(fs, "warn")


def test_claim_worse_than_the_logs_is_info_and_better_than_every_line_fails(tmp_path):
    worse = rule(audit_folder(str(write_record(tmp_path / "a", claim=1.0900))), "CLAIM_CONSISTENCY")
    assert [f.severity for f in worse if "worse than" in f.message] == ["info"]
    better = rule(audit_folder(str(write_record(tmp_path / "b", claim=1.0500))), "CLAIM_CONSISTENCY")
    [fail] = by_severity(better, "fail")
    assert "no logged final figure is as good" in fail.message and fail.data["claimed"] == 1.05


# ------------------------------------------------------------------------------ tracks and dates

def test_non_record_folder_without_logs_passes_with_notes(tmp_path):
    folder = write_record(tmp_path, seeds={}, claim=1.3281, track="track_non_record_16mb")
    result = audit_folder(str(folder))
    files = rule(result, "FILES")
    assert [f.message for f in by_severity(files, "info")] == [
        "no train log: the claimed score is not backed by any log"]
    assert str(result.verdict) == "PASS"
    assert result.facts.track == "track_non_record_16mb" and result.facts.track_source == "folder path"


def test_three_seeds_are_required_from_the_ruling_on(tmp_path):
    one = {1337: 1.22296644}
    early = audit_folder(str(write_record(tmp_path / "a", name="2026-03-18_Early", seeds=one)))
    [s] = [f for f in rule(early, "SEEDS") if "a record needs" in f.message]
    assert s.severity == "info" and s.message.startswith("predates the ruling of 2026-04-29")
    late = audit_folder(str(write_record(tmp_path / "b", name="2026-04-30_Late", seeds=one)))
    assert [f.severity for f in rule(late, "SEEDS") if "distinct seed" in f.message] == ["fail"]
    # --as-of judges an old folder by a later date's rulings
    as_of = audit_folder(str(write_record(tmp_path / "c", name="2026-03-18_Early", seeds=one)),
                         AuditOptions(as_of="2026-05-01", as_of_source="--as-of option"))
    assert [f.severity for f in rule(as_of, "SEEDS") if "distinct seed" in f.message] == ["fail"]
    assert (as_of.facts.judged_on, as_of.facts.date) == ("2026-05-01", "2026-03-18")


# ------------------------------------------------------------------------------ C2 from the logs

PPM_LINE = "ppm_mix bytes=151078222 mix_bpb={:.6f} ppm_only=2.380212 nn_only=1.080180"


def test_claim_equal_to_a_byte_mixture_figure_fails_c2(tmp_path):
    mix = {42: 0.902805, 314: 0.901319, 999: 0.901534}
    folder = write_record(tmp_path, seeds={s: 1.08 for s in mix}, claim=round(sum(mix.values()) / 3, 6),
                          per_seed_kwargs={s: {"extra_lines": [PPM_LINE.format(v)]} for s, v in mix.items()})
    result = audit_folder(str(folder))
    [fail] = [f for f in rule(result, "C2_NORMALIZED") if f.severity == "fail"]
    assert fail.data["pattern"] == "claimed_byte_mixture" and fail.data["mixture_mean"] == 0.90188600
    assert [e.path for e in fail.evidence] == ["train_seed314.log", "train_seed42.log", "train_seed999.log"]
    assert str(result.verdict) == "FAIL"


def test_a_byte_mixture_line_the_claim_does_not_use_is_not_a_fail(tmp_path):
    folder = write_record(tmp_path, per_seed_kwargs={s: {"extra_lines": [PPM_LINE.format(0.9)]}
                                                    for s in (42, 314, 999)})
    assert not by_severity(rule(audit_folder(str(folder)), "C2_NORMALIZED"), "fail")


def test_claim_below_the_entropy_floor_from_a_cache_line_fails_c2(tmp_path):
    seeds = {42: 1.1582, 314: 1.1601, 999: 1.1590}
    folder = write_record(tmp_path, seeds=seeds, claim=0.2873, per_seed_kwargs={
        s: {"extra_lines": ["final_ngram val_loss:0.4851 val_bpb:0.2873 eval_time:120000ms"]} for s in seeds})
    [fail] = by_severity(rule(audit_folder(str(folder)), "C2_NORMALIZED"), "fail")
    assert fail.data["pattern"] == "below_entropy_floor" and "`final_ngram`" in fail.message


# ------------------------------------------------------------------------------ C3: pre-quantisation TTT

PREQUANT = SCRIPT + '''

import torch
import torch.nn.functional as F


def prequant_ttt(h, model, val_tokens):
    """AdamW epochs over the validation tokens before quantisation."""
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4)
    for epoch in range(h.epochs):
        for start in range(0, val_tokens.numel() - 1, 2048):
            x = val_tokens[start:start + 2048]
            y = val_tokens[start + 1:start + 2049]
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()
    return model


def eval_val(h, model, val_tokens):
    loss_sum = 0.0
    for start in range(0, val_tokens.numel() - 1, 2048):
        x = val_tokens[start:start + 2048]
        y = val_tokens[start + 1:start + 2049]
        loss_sum += F.cross_entropy(model(x), y, reduction="sum").item()
    return loss_sum


def timed_eval(label, fn, *args):
    return fn(*args)


def train_and_eval(h, model, val_tokens):
    model = prequant_ttt(h, model, val_tokens)
    torch._dynamo.reset()
    timed_eval("quantized", eval_val, h, model, val_tokens)


if __name__ == "__main__":
    train_and_eval(None, None, None)
'''


def test_pre_quantisation_ttt_through_a_timed_eval_fails_c3(tmp_path):
    result = audit_folder(str(write_record(tmp_path, script=PREQUANT)))
    [fail] = by_severity(rule(result, "C3_SCORE_FIRST"), "fail")
    assert fail.confidence == "high" and "prequant_ttt" in fail.message
    assert str(result.verdict) == "FAIL"


# ------------------------------------------------------------------------------ parsing

def test_a_script_in_312_syntax_is_analysed(tmp_path):
    script = SCRIPT + 'names = {"a": 1}\nprint(f"{names["a"]} and {f"{names["a"]}"}")\ntype Vec = list[float]\n'
    result = audit_folder(str(write_record(tmp_path, script=script)))
    assert not [f for f in result.findings if "does not parse" in f.message or "could not be analysed" in f.message]
    assert [f.severity for f in rule(result, "C1_CAUSAL")] == ["pass"]


def test_a_script_no_python_parses_fails_files(tmp_path):
    result = audit_folder(str(write_record(tmp_path, script="def f(:\n    pass\n")))
    [fail] = by_severity(rule(result, "FILES"), "fail")
    assert fail.message == "train_gpt.py does not parse: SyntaxError: invalid syntax (line 1)"
    assert [(e.path, e.line) for e in fail.evidence] == [("train_gpt.py", 1)]
    assert [f.severity for f in rule(result, "C1_CAUSAL")] == ["info"]


def test_review_states_the_date_and_track_it_used(tmp_path):
    from reports.render import render

    result = audit_folder(str(write_record(tmp_path, name="2026-04-20_Dated")))
    md = render(result, "md")
    assert ("Judged by the rulings in force on 2026-04-20 (from the folder name); track `track_10min_16mb` "
            "(from the folder path).") in md
    assert json.loads(render(result, "json"))["judged"]["date"] == "2026-04-20"


# ------------------------------------------------------------------------------ C2: per-byte spread shapes

SPREAD = SCRIPT + '''

import numpy as np
import torch.nn.functional as F


def eval_ppm_mix(model, val_tokens, piece_lens, ppm_lp, lam):
    """Token log-probs spread over the token's bytes and mixed with a byte model."""
    x, y = val_tokens[:-1], val_tokens[1:]
    lp = F.log_softmax(model(x), -1).gather(-1, y[:, None])[:, 0].numpy()
    per_tok_len = piece_lens[y]
    rep_lp = np.repeat(lp, per_tok_len)
    rep_len = np.repeat(per_tok_len, per_tok_len)
    nlp = rep_lp / rep_len
    pm = lam * np.exp(nlp) + (1 - lam) * np.exp(ppm_lp)
    bits_sum = -np.log2(pm).sum()
    return bits_sum


if __name__ == "__main__":
    eval_ppm_mix(None, None, None, None, 0.9)
'''


def test_np_repeat_spread_mixed_with_a_byte_model_fails_c2(tmp_path):
    result = audit_folder(str(write_record(tmp_path, script=SPREAD)))
    fails = by_severity(rule(result, "C2_NORMALIZED"), "fail")
    assert fails and fails[0].confidence == "high"
    assert any(e.text.strip().startswith("pm = lam * np.exp(nlp)") for f in fails for e in f.evidence)


LOOP_SPREAD = SCRIPT + '''

import math


def load_validation_tokens(path):
    return list(open(path, "rb").read())


def ppm_mixture_bpb(val_tokens, nll_nats, token_bytes_lut, ppm_logp, lam):
    """Token NLLs spread over bytes in a loop, mixed per byte with a byte model by a hand-written logaddexp."""
    byte_nn_logp = []
    for i in range(len(val_tokens) - 1):
        tb = token_bytes_lut[val_tokens[i + 1]]
        n_bytes = len(tb)
        token_logp = -float(nll_nats[i])
        per_byte_logp = token_logp / n_bytes
        for b in tb:
            byte_nn_logp.append(per_byte_logp)
    nll_sum = 0.0
    for t in range(len(byte_nn_logp)):
        a = math.log(lam) + byte_nn_logp[t]
        c = math.log(1.0 - lam) + ppm_logp[t]
        log_mix = max(a, c) + math.log1p(math.exp(-abs(a - c)))
        nll_sum -= log_mix
    return nll_sum


if __name__ == "__main__":
    val_tokens = load_validation_tokens("data/fineweb_val_000000.bin")
    ppm_mixture_bpb(val_tokens, None, None, None, 0.9)
'''


def test_a_loop_spread_into_a_hand_written_mixture_fails_c2(tmp_path):
    result = audit_folder(str(write_record(tmp_path, script=LOOP_SPREAD)))
    [fail] = by_severity(rule(result, "C2_NORMALIZED"), "fail")
    assert fail.data["pattern"] == "byte_spread_score" and fail.confidence == "high"
    assert [e.text.strip() for e in fail.evidence] == ["per_byte_logp = token_logp / n_bytes", "nll_sum -= log_mix"]
