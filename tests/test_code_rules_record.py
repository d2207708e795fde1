"""A record-shaped legal script passes every code rule; single edits that break a rule are caught."""

from __future__ import annotations

from pathlib import Path

import pytest

import codekit as ck

SOURCE = (Path(__file__).parent / "fixtures" / "code" / "legal_record_like" / "train_gpt.py").read_text()
CODE_RULES = ("C1_CAUSAL", "C2_NORMALIZED", "C3_SCORE_FIRST", "C4_SINGLE_PASS", "NO_TRAIN_DATA_AT_EVAL", "NO_NETWORK")

SCORE_BLOCK = '''        model.eval()
        with torch.inference_mode():
            for ws in range(chunk_start, chunk_end, seq_len):
                end = min(ws + seq_len, chunk_end)
                local = val_tokens[ws: end + 1].to(dtype=torch.int64)
                x = local[:-1].unsqueeze(0)
                y = local[1:].unsqueeze(0)
                nll = F.cross_entropy(model.forward_logits(x).float().flatten(0, 1), y.flatten(), reduction="none")
                loss_sum += nll.to(torch.float64).sum()
                byte_count += base_bytes_lut[y.flatten()].to(torch.float64).sum()
'''
TRAIN_BLOCK_START = "        is_last_chunk = ci == num_chunks - 1\n"
TRAIN_BLOCK_END = "                    optimizer.step()\n"


def _swap_phases(src: str) -> str:
    """Train on chunk ci before scoring it (the illegal order)."""
    a = src.index(SCORE_BLOCK)
    b = src.index(TRAIN_BLOCK_START)
    c = src.index(TRAIN_BLOCK_END, b) + len(TRAIN_BLOCK_END)
    return src[:a] + src[b:c] + SCORE_BLOCK + src[c:]


def _replace(src: str, old: str, new: str) -> str:
    assert src.count(old) == 1, old
    return src.replace(old, new)


@pytest.mark.parametrize("compressed", [False, True])
def test_record_like_script_passes(tmp_path, compressed):
    folder = ck.make(tmp_path, SOURCE, compressed=compressed)
    rc, review = ck.run(folder, tmp_path)
    assert rc == 0 and review["verdict"] == "PASS"
    states = {r: ck.status(review, r) for r in CODE_RULES}
    assert states == {"C1_CAUSAL": "pass", "C2_NORMALIZED": "pass", "C3_SCORE_FIRST": "pass",
                      "C4_SINGLE_PASS": "pass", "NO_TRAIN_DATA_AT_EVAL": "info", "NO_NETWORK": "info"}
    c3 = ck.findings(review, "C3_SCORE_FIRST")[0]["message"]
    assert "eval_val_sliding_ttt()" in c3 and "eval_val_ttt_lora()" in c3


def test_training_a_chunk_before_scoring_it_needs_review(tmp_path):
    src = _swap_phases(SOURCE)
    rc, review = ck.run(ck.make(tmp_path, src), tmp_path)
    fails = ck.findings(review, "C3_SCORE_FIRST", "fail")
    assert rc == 3 and len(fails) == 1 and fails[0]["confidence"] == "medium"
    assert fails[0]["data"]["pattern"] == "update_before_score_in_loop"
    lines = src.splitlines()
    backward = next(i for i, l in enumerate(lines, 1) if l.strip() == "loss.backward()" and i > 200)
    assert fails[0]["evidence"][0]["line"] == backward
    assert "scored in an earlier iteration?" in fails[0]["message"]


def test_removing_the_bos_mask_needs_review(tmp_path):
    src = _replace(SOURCE, "        return x + g * keep * x_prev\n", "        return x + g * x_prev\n")
    rc, review = ck.run(ck.make(tmp_path, src), tmp_path)
    assert rc == 3 and ck.status(review, "C1_CAUSAL") == "warn"  # disputed ruling (#1988): never a FAIL alone
    assert ck.findings(review, "C1_CAUSAL", "warn")[0]["data"]["pattern"] == "cross_document_mixing"


def test_rescoring_the_adapted_model_needs_review(tmp_path):
    src = _replace(SOURCE, "eval_val_ttt_lora(args, copy.deepcopy(model), val_tokens",
                   "eval_val_ttt_lora(args, model, val_tokens")
    rc, review = ck.run(ck.make(tmp_path, src), tmp_path)
    fails = ck.findings(review, "C4_SINGLE_PASS", "fail")
    assert rc == 3 and [f["data"]["pattern"] for f in fails] == ["rescore_after_adaptation"]
    assert "eval_val_ttt_lora()" in fails[0]["message"]


def test_disabling_ttt_by_default_keeps_it_checked_but_dormant(tmp_path):
    src = _replace(SOURCE, 'os.environ.get("TTT_ENABLED", "1")', 'os.environ.get("TTT_ENABLED", "0")')
    src = _swap_phases(src)
    rc, review = ck.run(ck.make(tmp_path, src), tmp_path)
    c3 = ck.findings(review, "C3_SCORE_FIRST")
    assert rc == 0 and [f["severity"] for f in c3] == ["info", "pass"]
    assert c3[0]["data"]["disabled_by"] == ["TTT_ENABLED"]
