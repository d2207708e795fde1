"""FULL_VAL and ARTIFACT_SIZE (code side), NO_TRAIN_DATA_AT_EVAL and NO_NETWORK, through `auditor run`."""

from __future__ import annotations


import pytest

import codekit as ck

SUBSET_ENV = '''
class PPMArgs:
    subset_tokens = int(os.environ.get("PPM_SUBSET_TOKENS", "5000000"))


def eval_ppm_subset(args, model, val_tokens):
    cap = PPMArgs.subset_tokens
    subset = val_tokens[: cap + 1]  # <CAP>
    return eval_val(args, model, subset)
'''

SUBSET_LITERAL = '''
def eval_val_capped(args, model, val_tokens):
    head = val_tokens[:1_000_001]  # <CAP>
    return eval_val(args, model, head)
'''

CAP_OFF_MAIN = '''
def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    limit = int(os.environ.get("VAL_TOKEN_LIMIT", "0"))
    if limit > 0:
        val_tokens = val_tokens[: limit + 1]  # <CAP>
    print("final val_loss", eval_val(args, model, val_tokens))
'''

TRAIN_IN_EVAL = '''
def eval_ngram_prefill(args, model, val_tokens):
    counts = torch.ones(args.vocab_size, args.vocab_size)
    for path in sorted(glob.glob(args.train_files)):  # <READ>
        toks = load_data_shard(path)
        counts[toks[:-1], toks[1:]] += 1
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            rows = counts[x]
            p = 0.5 * torch.softmax(model.forward_logits(x), -1) + 0.5 * rows / rows.sum(-1, keepdim=True)
            loss_sum += -torch.log(p.gather(-1, y.unsqueeze(-1))).sum().item()
    return loss_sum
'''

TRAIN_VIA_HELPER = '''
def build_prior(pattern, vocab):
    toks = torch.cat([load_data_shard(p) for p in sorted(glob.glob(pattern))])
    return torch.bincount(toks, minlength=vocab).float()


def eval_val_prior(args, model, val_tokens):
    prior = build_prior(args.train_files, args.vocab_size)  # <READ>
    prior = prior / prior.sum()
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            p = 0.9 * torch.softmax(model.forward_logits(x), -1) + 0.1 * prior
            loss_sum += -torch.log(p.gather(-1, y.unsqueeze(-1))).sum().item()
    return loss_sum
'''

GPTQ_MAIN = '''
def gptq_calibrate(model, loader, n_batches):
    with torch.no_grad():
        return [model.forward_logits(loader.next_batch(64)[0]).pow(2).mean() for _ in range(n_batches)]


def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    loader = TokenLoader(args.train_files)
    train(args, model, loader)
    gptq_calibrate(model, loader, 4)  # <CALIB>
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    print("final val_loss", eval_val(args, model, val_tokens))
'''


def net_main(call: str, readme_flag: str = "") -> str:
    return f'''
def setup_and_eval(args, model, val_tokens):
    {call}  # <CALL>
    return eval_val(args, model, val_tokens)
'''


PIP_INSTALL = net_main('subprocess.run([sys.executable, "-m", "pip", "install", "zstandard"], check=True)')
URL_ALIAS = '''
from urllib import request as rq

TOKENIZER_URL = "https://example.org/tokenizer.model"


def setup_and_eval(args, model, val_tokens):
    rq.urlretrieve(TOKENIZER_URL, "tokenizer.model")  # <CALL>
    return eval_val(args, model, val_tokens)
'''
CURL_IN_CLASS = '''
class Fetcher:
    def fetch(self, dest):
        os.system("curl -sL https://example.org/weights.bin -o " + dest)  # <CALL>


def setup_and_eval(args, model, val_tokens):
    Fetcher().fetch("weights.bin")
    return eval_val(args, model, val_tokens)
'''
NVIDIA_SMI = net_main('print(subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout)')
UNDECLARED = net_main('subprocess.run(["zpaq", "a", "model.zpaq", "final_model.pt"], check=True)')
PIP_DORMANT = '''
def setup_and_eval(args, model, val_tokens):
    if os.environ.get("INSTALL_DEPS", "0") == "1":
        subprocess.run(["pip", "install", "brotli"], check=True)  # <CALL>
    return eval_val(args, model, val_tokens)
'''

HELPER_MODULE = '''
def eval_val_tilted(args, model, val_tokens):
    from ngram_tilt import make_hints  # <IMPORT>
    hints = make_hints(val_tokens)
    print(hints.shape)
    return eval_val(args, model, val_tokens)
'''
NGRAM_TILT_PY = '''import torch


def make_hints(tokens):
    return torch.zeros_like(tokens)
'''


def _review(tmp_path, src, **kw):
    folder = ck.make(tmp_path, src, **kw)
    return ck.run(folder, tmp_path)


# ----------------------------------------------------------------------------------------- FULL_VAL
@pytest.mark.parametrize("body,final,cap", [
    (SUBSET_ENV, "eval_ppm_subset", "PPM_SUBSET_TOKENS=5000000 (default)"),
    (SUBSET_LITERAL, "eval_val_capped", "literal 1,000,001"),
])
def test_val_subset_fails(tmp_path, body, final, cap):
    src = ck.script(body, final=final)
    rc, review = _review(tmp_path, src)
    fails = [f for f in ck.findings(review, "FULL_VAL", "fail") if f["data"].get("pattern") == "val_cap"]
    assert rc == 1 and len(fails) == 1 and fails[0]["confidence"] == "high"
    assert fails[0]["data"]["cap"] == cap
    assert fails[0]["evidence"][0]["line"] == ck.line_of(src, "CAP")


def test_val_cap_off_by_default_is_info(tmp_path):
    src = ck.script("", main=CAP_OFF_MAIN)
    rc, review = _review(tmp_path, src)
    caps = [f for f in ck.findings(review, "FULL_VAL") if f["data"].get("pattern") == "val_cap"]
    assert rc == 0 and [f["severity"] for f in caps] == ["info"]
    assert caps[0]["data"]["disabled_by"] == ["VAL_TOKEN_LIMIT"]
    assert caps[0]["evidence"][0]["line"] == ck.line_of(src, "CAP")


def test_seq_len_trim_and_rank_slices_are_not_caps(tmp_path):
    src = ck.script("")  # load_validation_tokens trims to a seq_len multiple; eval_val slices windows
    rc, review = _review(tmp_path, src)
    assert rc == 0
    assert not [f for f in ck.findings(review, "FULL_VAL") if f["data"].get("pattern") == "val_cap"]


# ------------------------------------------------------------------------------- NO_TRAIN_DATA_AT_EVAL
@pytest.mark.parametrize("body,final", [(TRAIN_IN_EVAL, "eval_ngram_prefill"), (TRAIN_VIA_HELPER, "eval_val_prior")])
def test_train_shards_read_in_eval_fail(tmp_path, body, final):
    src = ck.script(body, final=final)
    rc, review = _review(tmp_path, src)
    fails = ck.findings(review, "NO_TRAIN_DATA_AT_EVAL", "fail")
    assert rc == 1 and len(fails) == 1 and fails[0]["confidence"] == "high"
    assert fails[0]["evidence"][0]["line"] == ck.line_of(src, "READ")
    assert f"{final}()" in fails[0]["message"]


def test_gptq_calibration_on_train_after_loop_is_info(tmp_path):
    src = ck.script("", main=GPTQ_MAIN)
    rc, review = _review(tmp_path, src)
    fs = ck.findings(review, "NO_TRAIN_DATA_AT_EVAL")
    assert rc == 0 and [f["severity"] for f in fs] == ["info", "pass"]
    assert fs[0]["evidence"][0]["line"] == ck.line_of(src, "CALIB")
    assert "calibration" in fs[0]["message"] and "no time reserve" in fs[0]["message"]


# ---------------------------------------------------------------------------------------- NO_NETWORK
@pytest.mark.parametrize("body,compressed", [(PIP_INSTALL, False), (URL_ALIAS, True), (CURL_IN_CLASS, False)])
def test_network_and_installs_fail(tmp_path, body, compressed):
    src = ck.script(body, final="setup_and_eval")
    rc, review = _review(tmp_path, src, compressed=compressed)
    fails = ck.findings(review, "NO_NETWORK", "fail")
    assert rc == 1 and len(fails) == 1 and fails[0]["confidence"] == "high"
    assert fails[0]["evidence"][0]["line"] == ck.line_of(src, "CALL")


@pytest.mark.parametrize("body,readme,severity,verdict", [
    (NVIDIA_SMI, ck.README, "info", "PASS"),
    (UNDECLARED, ck.README, "warn", "NEEDS_REVIEW"),
    (UNDECLARED, ck.README + "\nInstall `zpaq` during instance setup.\n", "info", "PASS"),
    (PIP_DORMANT, ck.README, "info", "PASS"),
])
def test_system_binaries_and_dormant_installs(tmp_path, body, readme, severity, verdict):
    src = ck.script(body, final="setup_and_eval")
    rc, review = _review(tmp_path, src, readme=readme)
    fs = [f for f in ck.findings(review, "NO_NETWORK") if f["severity"] != "pass"]
    assert review["verdict"] == verdict and [f["severity"] for f in fs] == [severity]
    if body is PIP_DORMANT:
        assert fs[0]["data"]["disabled_by"] == ["INSTALL_DEPS"]


# ------------------------------------------------------------------------------ ARTIFACT_SIZE (code)
def test_imported_helper_module_is_reported(tmp_path):
    src = ck.script(HELPER_MODULE, final="eval_val_tilted")
    rc, review = _review(tmp_path, src, extra={"ngram_tilt.py": NGRAM_TILT_PY})
    mine = [f for f in ck.findings(review, "ARTIFACT_SIZE") if f["data"].get("pattern") == "uncounted_helper"]
    assert len(mine) == 1 and mine[0]["severity"] == "warn"
    assert mine[0]["data"]["helper"] == "ngram_tilt.py"
    assert mine[0]["data"]["helper_bytes"] == len(NGRAM_TILT_PY.encode())
    assert mine[0]["evidence"][0]["line"] == ck.line_of(src, "IMPORT")


def test_compiled_c_helper_is_reported(tmp_path):
    from test_code_rules_causal import C_HELPER_EVAL, C_KERNEL_GOOD
    src = ck.script(C_HELPER_EVAL, final="eval_val_kernel")
    rc, review = _review(tmp_path, src, extra={"ngram/fused_kernel.cpp": C_KERNEL_GOOD})
    mine = [f for f in ck.findings(review, "ARTIFACT_SIZE") if f["data"].get("pattern") == "uncounted_helper"]
    assert [f["data"]["helper"] for f in mine] == ["ngram/fused_kernel.cpp"]
    assert "named (compiled, loaded or executed)" in mine[0]["message"]


def test_no_helpers_no_code_side_size_finding(tmp_path):
    rc, review = _review(tmp_path, ck.script(""))
    assert not [f for f in ck.findings(review, "ARTIFACT_SIZE") if f["data"].get("pattern") == "uncounted_helper"]
    assert rc == 0


def test_unused_data_prep_helper_is_not_a_size_finding(tmp_path):
    prep = 'import huggingface_hub\n\n\ndef main():\n    huggingface_hub.snapshot_download("x/y")\n\n\nmain()\n'
    rc, review = _review(tmp_path, ck.script(""), extra={"prepare_data.py": prep})
    assert not [f for f in ck.findings(review, "ARTIFACT_SIZE") if f["data"].get("pattern") == "uncounted_helper"]
    # the download lives in a data-prep script nothing at run time executes: info, not fail
    net = [f for f in ck.findings(review, "NO_NETWORK") if f["severity"] != "pass"]
    assert [(f["severity"], f["data"]["reach"]) for f in net] == [("info", "unreferenced")]
    assert rc == 0


def test_download_fallback_for_missing_file_needs_review(tmp_path):
    body = '''
def setup_and_eval(args, model, val_tokens):
    import huggingface_hub
    if not os.path.exists("tokenizer.model"):
        huggingface_hub.hf_hub_download("org/repo", "tokenizer.model", local_dir=".")  # <CALL>
    return eval_val(args, model, val_tokens)
'''
    src = ck.script(body, final="setup_and_eval")
    rc, review = _review(tmp_path, src)
    warns = ck.findings(review, "NO_NETWORK", "warn")
    assert rc == 3 and len(warns) == 1 and warns[0]["data"]["pattern"] == "download_fallback"
    assert warns[0]["evidence"][0]["line"] == ck.line_of(src, "CALL")


def test_small_literal_slice_for_warmup_is_not_a_cap(tmp_path):
    body = '''
def warm_then_eval(args, model, val_tokens):
    with torch.no_grad():
        model.forward_logits(val_tokens[:2048].unsqueeze(0))
    return eval_val(args, model, val_tokens)
'''
    rc, review = _review(tmp_path, ck.script(body, final="warm_then_eval"))
    assert rc == 0
    assert not [f for f in ck.findings(review, "FULL_VAL") if f["data"].get("pattern") == "val_cap"]
