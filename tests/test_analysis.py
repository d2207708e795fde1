"""The static-analysis core: env defaults, data flow, reachability, the C scanner, robustness."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import codekit as ck

from auditor.analysis import analyze  # noqa: E402
from auditor.analysis.cscan import scan_c  # noqa: E402
from auditor.analysis.envdefaults import UNKNOWN, EnvModel, readme_env  # noqa: E402
from auditor.analysis.syntactic import position_gates  # noqa: E402
from auditor.core.model import CodeFile, Submission  # noqa: E402
from rules import get_rule  # noqa: E402

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "dev_corpus"
CODE_RULES = ("C1_CAUSAL", "C2_NORMALIZED", "C3_SCORE_FIRST", "C4_SINGLE_PASS", "NO_TRAIN_DATA_AT_EVAL", "NO_NETWORK")


def _sub(files: dict[str, str], readme: str | None = None) -> Submission:
    code = [CodeFile(p, t.encode(), t, "python" if p.endswith(".py") else "c") for p, t in files.items()]
    return Submission(root=Path("."), name="t", track=None, files=sorted(files), readme=readme, code=code)


# ------------------------------------------------------------------------------------ env defaults
def _truth(src: str, overrides: dict[str, str] | None = None):
    tree = ast.parse(src)
    m = EnvModel(overrides=overrides or {})
    m.add_module("m.py", tree)
    cond = tree.body[-1].test  # type: ignore[attr-defined]
    return m.truth(cond, "m.py")


@pytest.mark.parametrize("src,expected", [
    ('import os\nclass H:\n    slot = bool(int(os.environ.get("SLOT", "0")))\nif H().slot:\n    pass', (False, {"SLOT"})),
    ('import os\nX = os.environ.get("X", "1") == "1"\nif X:\n    pass', (True, {"X"})),
    ('import os\nif os.getenv("MODE", "ppm").lower() in ("ppm", "mix"):\n    pass', (True, {"MODE"})),
    ('import os\nclass H:\n    steps = int(os.environ.get("STEPS", 4))\nif H.steps > 0 and flag:\n    pass', (None, {"STEPS"})),
    ('import os\nclass H:\n    steps = int(os.environ.get("STEPS", 0))\nif H.steps > 0 and flag:\n    pass', (False, {"STEPS"})),
    ('import argparse\np = argparse.ArgumentParser()\np.add_argument("--use-slot", action="store_true")\n'
     'args = p.parse_args()\nif args.use_slot:\n    pass', (False, set())),
    ('if unknown_thing:\n    pass', (None, set())),
])
def test_condition_values(src, expected):
    value, used = _truth(src)
    assert (value, used) == expected


def test_readme_overrides_turn_a_path_on():
    src = 'import os\nclass H:\n    slot = bool(int(os.environ.get("SLOT_ENABLED", "0")))\nif H.slot:\n    pass'
    assert _truth(src, {"SLOT_ENABLED": "1"}) == (True, {"SLOT_ENABLED"})


def test_readme_env_parsing():
    text = ("# run\n```\nSEED=42 TTT_ENABLED=1 QK_GAIN='5.0' torchrun --nproc_per_node=8 train_gpt.py\n"
            "export DATA_DIR=/data\nSEED=7 python train_gpt.py\nSLOT_ENABLED=1 \\\n  NGRAM_ALPHA=0.2 \\\n"
            "  torchrun --standalone train_gpt.py\n```\nNOT_A_CMD=1 in prose\n")
    assert readme_env(text) == {"SEED": "42", "TTT_ENABLED": "1", "QK_GAIN": "5.0", "DATA_DIR": "/data",
                                "SLOT_ENABLED": "1", "NGRAM_ALPHA": "0.2"}
    assert readme_env(None) == {}


def test_unknown_is_not_truthy():
    with pytest.raises(TypeError):
        bool(UNKNOWN)


# ------------------------------------------------------------------------------- flow, reachability
REACH = '''import os
from helper import fine_tune

ENABLED = int(os.environ.get("EXTRA_EVAL", "0"))


def used():
    return 1


def never_called():
    return 2


def guarded():
    return 3


def early(args):
    if not os.environ.get("PHASE2", ""):
        return None
    return fine_tune(args)


def main():
    used()
    early(None)
    if ENABLED:
        guarded()


if __name__ == "__main__":
    main()
'''

HELPER = '''def fine_tune(x):
    return x
'''


def test_reachability_states():
    ca = analyze(_sub({"train_gpt.py": REACH, "helper.py": HELPER}))
    st = {f.qname.split(":", 1)[1]: ca.status[f] for f in ca.index.funcs if f.path == "train_gpt.py"}
    assert st["used"].state == "live" and st["main"].state == "live" and st["early"].state == "live"
    assert st["never_called"].state == "unreferenced"
    assert (st["guarded"].state, set(st["guarded"].env_vars)) == ("dormant", {"EXTRA_EVAL"})
    # code after `if not PHASE2: return` is dormant; the helper it calls is reached only that way
    helper = next(f for f in ca.index.funcs if f.path == "helper.py" and f.name == "fine_tune")
    assert (ca.status[helper].state, set(ca.status[helper].env_vars)) == ("dormant", {"PHASE2"})


def test_val_labels_cross_helpers_and_keywords():
    src = '''import torch

def chunk(stream, start, n):
    return stream[start: start + n]


def scorer(model, *, tokens):
    total_loss = 0.0
    piece = chunk(tokens, 0, 8)
    y = piece[1:]
    total_loss += model(piece[:-1], y)
    return total_loss


def main(model, val_tokens):
    return scorer(model, tokens=val_tokens)
'''
    ca = analyze(_sub({"train_gpt.py": src}))
    scores = [e for e in ca.of("score") if e.func.name == "scorer"]
    assert len(scores) == 1 and {"param:tokens", "target"} <= scores[0].labels
    via = [e for e in ca.of("score") if e.func.name == "main"]
    assert len(via) == 1 and "val" in via[0].labels and via[0].data.via_name == "scorer"


def test_loop_carried_labels_reach_the_next_iteration():
    src = '''def f(model, val_tokens, opt):
    prev = None
    for i in range(10):
        if prev is not None:
            model(prev).backward()
        prev = val_tokens[i]
'''
    ca = analyze(_sub({"train_gpt.py": src}))
    ups = [e for e in ca.of("update") if e.data.how == "backward"]
    assert len(ups) == 1 and "val" in ups[0].labels


def test_position_gates_python():
    tree = ast.parse('''
for i in range(1, n):
    tok = toks[i]
    if lut[tok]:
        hint_ids[i] = 1
    nxt = toks[i]
    gate[i + 1] = lut[nxt]
    prev = toks[i - 1]
    if lut[prev]:
        valid[i] = 1
''')
    gates = position_gates([n for n in ast.walk(tree) if isinstance(n, ast.For)])
    assert [(g.read_line, g.cond_line, g.write_line, g.target, g.index) for g in gates] == [(3, 4, 5, "hint_ids", "i")]


# ------------------------------------------------------------------------------------------ C scan
@pytest.mark.parametrize("src,expected", [
    ("void f(const int* tokens, int n, char* lut, char* hint_valid) {\n"
     "  for (int i = 0; i < n; i++) {\n    int t = tokens[i];\n    if (lut[t]) hint_valid[i] = 1;\n  }\n}\n",
     [("pos_gate", 4, 3)]),
    ("void f(const int* tokens, int n, char* lut, char* hint_valid) {\n"
     "  for (int i = 0; i < n; i++) {\n    int t = tokens[i];\n    if (lut[t])\n      hint_valid[i] = 1;\n  }\n}\n",
     [("pos_gate", 5, 3)]),
    ("void f(const int* tokens, int n, char* lut, char* hint_valid) {\n"
     "  for (int i = 1; i < n; i++) {\n    int t = tokens[i - 1];\n    if (lut[t]) hint_valid[i] = 1;\n  }\n}\n",
     []),
    ("// int t = tokens[i]; if (lut[t]) hint_valid[i] = 1;\n/* tok = tokens[i];\n gate[i] = tok; */\n", []),
    ("void f(const int* tokens, float* beta, int n) {\n  for (int i = 0; i < n; i++) {\n"
     "    int tok = tokens[i];\n    beta[i] = 0.5f * tok;\n  }\n}\n", [("pos_gate", 4, 3)]),
    ("void f(const int* tokens, int n, const float* table, float* p) {\n  for (int i = 1; i < n; i++) {\n"
     "    int tok = tokens[i];\n    unsigned key = ((tokens[i - 1] * 0x9E3779B1u) ^ (tok * 2654435761u)) & 1023u;\n"
     "    p[i] = table[key];\n  }\n}\n", [("target_hash", 4, 3)]),
    ("void f(const int* tokens, int n, float* table) {\n  for (int i = 1; i < n; i++) {\n"
     "    int tok = tokens[i];\n    unsigned key = ((tokens[i - 1] * 0x9E3779B1u) ^ (tok * 2654435761u)) & 1023u;\n"
     "    table[key] += 1.0f;\n  }\n}\n", []),
])
def test_c_scanner(src, expected):
    assert [(h.kind, h.line, h.read_line) for h in scan_c(src)] == expected


# ------------------------------------------------------------------------------------- robustness
def test_unparsable_file_is_a_warning_not_a_crash(tmp_path):
    folder = ck.make(tmp_path, ck.script(""), extra={"broken_helper.py": "def f(:\n    pass\n"})
    rc, review = ck.run(folder, tmp_path)
    warns = ck.findings(review, "C1_CAUSAL", "warn")
    assert len(warns) == 1 and "broken_helper.py: not analysed (SyntaxError" in warns[0]["message"]
    for rule in CODE_RULES[1:]:
        assert ck.status(review, rule) in ("pass", "info")


def test_corrupt_stub_is_reported(tmp_path):
    bad = 'import lzma as L,base64 as B\nexec(L.decompress(B.b85decode("{Wp48S^xk9=GL@E0stWa8~^0000")))\n'
    folder = ck.make(tmp_path, bad)
    rc, review = ck.run(folder, tmp_path)
    c1 = ck.findings(review, "C1_CAUSAL")
    assert [f["severity"] for f in c1] == ["warn"] and "train_gpt.py: not analysed (LZMA" in c1[0]["message"]


def test_adversarial_nesting_is_reported_not_fatal(tmp_path):
    deep = "def f(a):\n    return " + " + ".join(["a"] * 700) + "\n\n\n"
    nested = "def g(val_tokens):\n    p0 = None\n" + "".join(
        "    " * (d + 1) + f"for i{d} in range(3):\n" + "    " * (d + 2) + f"p{d + 1} = val_tokens[i{d}]\n"
        for d in range(18))
    folder = ck.make(tmp_path, ck.script(deep + nested))
    rc, review = ck.run(folder, tmp_path)
    warns = ck.findings(review, "C1_CAUSAL", "warn")
    assert len(warns) == 1 and "f() in train_gpt.py is too deeply nested to analyse" in warns[0]["message"]
    assert ck.status(review, "C3_SCORE_FIRST") == "pass"
    assert rc == 3 or review["verdict"] in ("FAIL", "NEEDS_REVIEW")


def test_no_code_is_info(tmp_path):
    import recordkit
    folder = recordkit.write_record(tmp_path, script=None)
    rc, review = ck.run(folder, tmp_path)
    for rule in CODE_RULES:
        fs = ck.findings(review, rule)
        assert [(f["severity"], f["message"]) for f in fs] == [("info", "no code shipped; not checked")]


def test_output_is_deterministic(tmp_path):
    from test_code_rules_causal import HASHED_NGRAM
    folder = ck.make(tmp_path, ck.script(HASHED_NGRAM, final="eval_ngram"))
    a = ck.run(folder, tmp_path)[1]
    b = ck.run(folder, tmp_path)[1]
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_rule_explanations_name_legal_look_alikes():
    for rid in CODE_RULES:
        rule = get_rule(rid)
        assert rule is not None and rule.kind == "code"
        assert "Legal look-alikes" in rule.explanation and "How to verify by hand" in rule.explanation
        assert all(c.startswith("https://github.com/openai/parameter-golf") for c in rule.citations)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/dev_corpus not present")
def test_dev_corpus_audits_cleanly_under_code_rules():
    from auditor.engine import audit_folder
    folders = [f for t in sorted(CORPUS.iterdir()) if t.is_dir() for f in sorted(t.iterdir()) if f.is_dir()]
    assert len(folders) >= 15
    for folder in folders:
        result = audit_folder(str(folder))
        mine = [f for f in result.findings if f.rule in CODE_RULES]
        assert len(mine) == len(CODE_RULES), folder.name
        assert all(f.severity == "info" for f in mine), (folder.name, [(f.rule, f.message) for f in mine])


def test_env_reading_helpers_are_followed():
    src = '''import os

def _env_bool(name, default="0"):
    return bool(int(os.environ.get(name, default)))


def env_float(key, default):
    return float(os.getenv(key, str(default)))


class Hyperparameters:
    slot_enabled = _env_bool("SLOT_ENABLED")
    ppm_cap = env_float("PPM_SUBSET_TOKENS", 5e6)


h = Hyperparameters()
if h.slot_enabled:
    pass
'''
    tree = ast.parse(src)
    m = EnvModel()
    m.add_module("m.py", tree)
    assert m.truth(tree.body[-1].test, "m.py") == (False, {"SLOT_ENABLED"})
    assert m.defaults["PPM_SUBSET_TOKENS"][0] == 5e6
    m2 = EnvModel(overrides={"SLOT_ENABLED": "1"})
    m2.add_module("m.py", tree)
    assert m2.truth(tree.body[-1].test, "m.py") == (True, {"SLOT_ENABLED"})
    assert m.describe("SLOT_ENABLED") == "SLOT_ENABLED=0 (default)"


def test_exec_shim_is_analysed_through_its_target(tmp_path):
    from test_code_rules_causal import SLOT_INLINE
    real = ck.script(SLOT_INLINE, final="eval_val_slot")
    shim = 'exec(open(__file__.replace("train_gpt.py", "train_gpt_real.py")).read())\n'
    folder = ck.make(tmp_path, shim, extra={"train_gpt_real.py": real})
    rc, review = ck.run(folder, tmp_path)
    fails = ck.findings(review, "C1_CAUSAL", "fail")
    assert [f["data"]["pattern"] for f in fails] == ["slot"]
    assert {e["path"] for e in fails[0]["evidence"]} == {"train_gpt_real.py"}
    assert fails[0]["evidence"][-1]["line"] == ck.line_of(real, "SCORE")


@pytest.mark.parametrize("src,expected", [
    ("def smear(x, g):\n    return x + g * F.pad(x[:, :-1], (0, 0, 1, 0))\n", [(2, False)]),
    ("def smear(x, g, doc_mask):\n    return x + g * doc_mask * F.pad(x[:, :-1], (0, 0, 1, 0))\n", [(2, True)]),
    ("def smear(h, g, ids):\n    prev = torch.roll(h, 1, 1)\n    keep = (ids != BOS_ID).float()\n"
     "    return h + g * keep * prev\n", [(4, True)]),
    ("def smear(h, g):\n    prev = torch.roll(h, 1, 1)\n    return h + g * prev\n", [(3, False)]),
    ("def f(logp, bias):\n    return logp[:, :-1] + bias\n", []),
    ("def f(input_ids):\n    return input_ids[:, :-1] + 1\n", []),
    ("def key(t):\n    return (36313 * t[:, 1:]) ^ (27191 * t[:, :-1])\n", []),
])
def test_previous_token_mixing_sites(src, expected):
    from auditor.analysis.syntactic import smear_sites
    fn = ast.parse(src).body[0]
    assert [(s.line, s.masked) for s in smear_sites(None, fn)] == expected


def test_targets_found_by_shape_not_only_by_name():
    src = '''import torch.nn.functional as F

def eval_odd_names(model, val_tokens, opt_steps):
    total_loss = 0.0
    for s in range(0, val_tokens.numel() - 1, 64):
        buf = val_tokens[s: s + 65]
        inp = buf[:-1].unsqueeze(0)
        nxt = buf[1:].unsqueeze(0)
        total_loss += F.cross_entropy(model(inp), nxt).item()
    return total_loss
'''
    ca = analyze(_sub({"train_gpt.py": src}))
    score = [e for e in ca.of("score") if e.func.name == "eval_odd_names"]
    assert len(score) == 1 and {"gold", "nll", "val"} <= score[0].labels
    assert any(l.startswith("tv:") and l.endswith(":nxt") for l in score[0].labels)
