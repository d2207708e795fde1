"""C1_CAUSAL and C2_NORMALIZED on fixture scripts, through `auditor run` (decoded file:line evidence)."""

from __future__ import annotations

from pathlib import Path

import pytest

import codekit as ck

# --------------------------------------------------------------------------------------------- C1
SLOT_INLINE = '''
def eval_val_slot(args, model, val_tokens):
    loss_sum = 0.0
    for start in range(0, val_tokens.numel() - 1, args.seq_len):
        local = val_tokens[start: start + args.seq_len + 1]
        xb = local[:-1].unsqueeze(0)
        yb = local[1:].unsqueeze(0)
        with torch.no_grad():
            hidden = model.forward_hidden(xb)
        delta = torch.zeros(1, 1, hidden.size(-1), requires_grad=True)
        slot_opt = torch.optim.AdamW([delta], lr=0.01)  # <OPT>
        targets_flat = yb.reshape(-1)
        for step_i in range(args.slot_steps):
            lg = model.head(hidden + delta)
            loss = F.cross_entropy(lg.flatten(0, 1), targets_flat)
            slot_opt.zero_grad()
            loss.backward()  # <BACKWARD>
            slot_opt.step()  # <STEP>
        with torch.no_grad():
            lg = model.head(hidden + delta)
            nll = F.cross_entropy(lg.flatten(0, 1), targets_flat, reduction="none")
            loss_sum += nll.sum().item()  # <SCORE>
    return loss_sum
'''

SLOT_CLASS = '''
class SlotScorer:
    """Optimises a logit bias per window, then scores the window with it."""

    def __init__(self, model, steps):
        self.model = model
        self.steps = steps

    def score_window(self, x, y):
        h = self.model.forward_hidden(x).detach()
        bias = torch.zeros(h.size(-1), requires_grad=True)
        opt = torch.optim.Adam([bias], lr=0.05)
        for _ in range(self.steps):
            lvl = F.cross_entropy((self.model.head(h) + bias).flatten(0, 1), y.flatten())
            opt.zero_grad()
            lvl.backward()
            opt.step()  # <STEP>
        with torch.no_grad():
            out = F.cross_entropy((self.model.head(h) + bias).flatten(0, 1), y.flatten(), reduction="sum")  # <SCORE>
        return out


def eval_slot(args, model, val_tokens):
    scorer = SlotScorer(model, args.slot_steps)
    total_nll = 0.0
    for start in range(0, val_tokens.numel() - 1, args.seq_len):
        local = val_tokens[start: start + args.seq_len + 1]
        total_nll += scorer.score_window(local[:-1].unsqueeze(0), local[1:].unsqueeze(0)).item()
    return total_nll
'''

TILT_EVAL = '''
def eval_val_tilt(args, model, val_tokens):
    hints = build_hints(val_tokens.numpy(), np.arange(args.vocab_size))
    beta = 1.5
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            logp = F.log_softmax(model.forward_logits(x), dim=-1)
            h = torch.from_numpy(hints[start + 1: start + args.seq_len + 1]).clamp(min=0).unsqueeze(0)
            p_hint = logp.gather(-1, h.unsqueeze(-1)).squeeze(-1).exp()
            lp_gold = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
            tilt = beta * (y == h).float() - torch.log1p(p_hint * (math.exp(beta) - 1.0))
            loss_sum += -(lp_gold + tilt).sum().item()
    return loss_sum
'''

HINTS_TARGET_GATED = '''
BOUNDARY = np.zeros(1024, dtype=bool)


def build_hints(tokens, table):
    hints = np.full(len(tokens), -1)
    for i in range(1, len(tokens)):
        tok = tokens[i]  # <READ>
        if not BOUNDARY[tok]:  # <COND>
            hints[i] = table[tokens[i - 1]]  # <WRITE>
    return hints
''' + TILT_EVAL

HINTS_PREFIX_ONLY = '''
BOUNDARY = np.zeros(1024, dtype=bool)


def build_hints(tokens, table):
    """Token-only prefix-causal hints: position i reads tokens[i - 1] and earlier only."""
    hints = np.full(len(tokens), -1)
    for i in range(1, len(tokens)):
        prev = tokens[i - 1]
        if not BOUNDARY[prev]:
            hints[i] = table[prev]
    return hints
''' + TILT_EVAL

C_KERNEL_BAD = '''#include <stdint.h>
// expert hints for the n-gram tilt
extern "C" void get_hints(const uint16_t* tokens, int n, const uint8_t* boundary_lut,
                          int32_t* hint_ids, uint8_t* within_valid) {
    int32_t last = -1;
    for (int i = 1; i < n; ++i) {
        const uint16_t tok = tokens[i];
        const uint8_t is_boundary = boundary_lut[tok];
        if (!is_boundary && last >= 0) {
            within_valid[i] = 1;
            hint_ids[i] = last;
        }
        last = tokens[i - 1];
    }
}
'''

C_KERNEL_GOOD = C_KERNEL_BAD.replace("const uint16_t tok = tokens[i];", "const uint16_t tok = tokens[i - 1];")

C_HELPER_EVAL = '''
def load_kernel():
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.join(here, "ngram", "fused_kernel.cpp")
    subprocess.run(["g++", "-O3", "-shared", "-fPIC", src, "-o", "libfused.so"], check=True)
    import ctypes
    return ctypes.CDLL("./libfused.so")


def eval_val_kernel(args, model, val_tokens):
    lib = load_kernel()
    print(lib)
    return eval_val(args, model, val_tokens)
'''

EMBEDDED_C = '''
CUDA_SRC = r"""
#include <stdint.h>
__global__ void hints_kernel(const int64_t* ids, int n, const uint8_t* lut, uint8_t* gate_valid) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int64_t cur = ids[i];
    if (lut[cur]) {
        gate_valid[i] = 1;
    }
}
"""


def eval_val_cuda(args, model, val_tokens):
    from torch.utils.cpp_extension import load_inline
    mod = load_inline("hints", cpp_sources="", cuda_sources=CUDA_SRC, functions=["hints_kernel"])
    print(mod)
    return eval_val(args, model, val_tokens)
'''

GATE_ON_TARGET = '''
def eval_val_mix(args, model, val_tokens, ppm):
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            p_nn = torch.softmax(model.forward_logits(x), -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
            p_ppm = ppm.prob_of(x, y)
            conf = p_ppm
            lam = torch.where(conf > 0.5, 0.9, 0.2)  # <GATE>
            p = lam * p_ppm + (1 - lam) * p_nn  # <MIX>
            loss_sum += -torch.log(p).sum().item()
    return loss_sum
'''

GATE_ON_ENTROPY = '''
def eval_val_mix(args, model, val_tokens, ppm):
    """Mixture of two full-vocabulary distributions, gated by the model's entropy (outcome independent)."""
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            p_nn = torch.softmax(model.forward_logits(x), -1)
            p_ppm = ppm.distribution(x)
            entropy = -(p_nn * torch.log(p_nn)).sum(-1, keepdim=True)
            lam = torch.where(entropy > 2.0, 0.9, 0.2)
            p = lam * p_ppm + (1 - lam) * p_nn
            loss_sum += -torch.log(p.gather(-1, y.unsqueeze(-1))).sum().item()
    return loss_sum
'''

MIX_MAIN = '''
class UniformPPM:
    def __init__(self, vocab):
        self.probs = torch.full((vocab,), 1.0 / vocab)

    def prob_of(self, x, y):
        return self.probs[y]

    def distribution(self, x):
        return self.probs.expand(*x.shape, -1)


def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    print("final val_loss", eval_val_mix(args, model, val_tokens, UniformPPM(args.vocab_size)))
'''

HASHED_NGRAM = '''
class HashedNgram:
    def __init__(self, buckets):
        self.mask = buckets - 1
        self.ctx_counts = np.zeros(buckets)
        self.full_counts = np.zeros(buckets)
        self.primes = np.array([36313, 27191, 51647], dtype=np.uint64)

    def gold_prob(self, ctx_hash, y_np):
        ctx_key = (ctx_hash & self.mask).astype(np.int64)
        full_key = ((ctx_hash ^ (y_np.astype(np.uint64) * self.primes[1])) & self.mask).astype(np.int64)
        ctx_c = self.ctx_counts[ctx_key]
        full_c = self.full_counts[full_key]  # <LOOKUP>
        return np.minimum(full_c, ctx_c) / np.maximum(ctx_c, 1.0)  # <RATIO>

    def update(self, ctx_hash, y_np):
        np.add.at(self.ctx_counts, (ctx_hash & self.mask).astype(np.int64), 1)
        np.add.at(self.full_counts, ((ctx_hash ^ (y_np * self.primes[1])) & self.mask).astype(np.int64), 1)


def eval_ngram(args, model, val_tokens):
    cache = HashedNgram(args.ngram_buckets)
    alpha = args.ngram_alpha
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            p_nn = torch.softmax(model.forward_logits(x), -1).gather(-1, y.unsqueeze(-1)).squeeze(-1).numpy()
            ctx_hash = x.numpy().astype(np.uint64) * np.uint64(1000003)
            y_np = y.numpy().astype(np.uint64)
            p_ng = cache.gold_prob(ctx_hash, y_np)
            mixed = (1.0 - alpha) * p_nn + alpha * p_ng  # <MIX>
            loss_sum += float(-np.log(mixed).sum())
            cache.update(ctx_hash, y_np)
    return loss_sum
'''

INLINE_RATIO = '''
def eval_bigram_inline(args, model, val_tokens):
    """Bigram cache with a smoothed context denominator, mixed only at the gold token."""
    nb = args.ngram_buckets
    ctx_tab = np.zeros(nb)
    pair_tab = np.zeros(nb)
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            probs = torch.softmax(model.forward_logits(x), -1)
            p_nn = probs.gather(-1, y.unsqueeze(-1)).squeeze(-1)[0].numpy()
            prev = x[0].numpy()
            tgt = y[0].numpy()
            key = (prev * 1024 + tgt) % nb
            hit = pair_tab[key]
            ratio = hit / (ctx_tab[prev % nb] + 0.5)  # <RATIO>
            mix = args.ngram_alpha * ratio + (1 - args.ngram_alpha) * p_nn  # <MIX>
            loss_sum += float(-np.log(mix).sum())
            ctx_tab[prev % nb] += 1
            pair_tab[key] += 1
    return loss_sum
'''

BYTE_MIXTURE = '''
def ppm_byte_logp(y):
    return torch.full(y.shape, -5.0)


def eval_byte_mixture(args, model, val_tokens, byte_lens, ppm_logp_fn):
    bits_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            lp_tok = F.log_softmax(model.forward_logits(x), -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
            n_bytes = byte_lens[y].clamp(min=1)
            per_byte_lp = lp_tok / n_bytes  # <SPREAD>
            ppm_lp = ppm_logp_fn(y)
            mixed = torch.logaddexp(math.log(0.7) + per_byte_lp, math.log(0.3) + ppm_lp)  # <MIX>
            bits_sum += -(mixed * n_bytes).sum().item()
    return bits_sum


def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    byte_lens = torch.ones(args.vocab_size)
    print("final val_loss", eval_byte_mixture(args, model, val_tokens, byte_lens, ppm_byte_logp))
'''

NORMALIZED_NGRAM = '''
def eval_ngram_normalized(args, model, val_tokens):
    """Bigram counts normalised over the whole vocabulary, mixed before the gold token is read."""
    counts = torch.ones(args.vocab_size, args.vocab_size)
    loss_sum = 0.0
    for start in range(0, val_tokens.numel() - 1, args.seq_len):
        local = val_tokens[start: start + args.seq_len + 1]
        x = local[:-1].unsqueeze(0)
        y = local[1:].unsqueeze(0)
        with torch.no_grad():
            p_nn = torch.softmax(model.forward_logits(x), -1)
            rows = counts[x]
            p_ng = rows / rows.sum(-1, keepdim=True)
            p_mix = (1 - args.ngram_alpha) * p_nn + args.ngram_alpha * p_ng
            nll = -torch.log(p_mix.gather(-1, y.unsqueeze(-1)).squeeze(-1))
            loss_sum += nll.sum().item()
        counts[x.flatten(), y.flatten()] += 1
    return loss_sum
'''

SMEAR_UNMASKED = '''
class SmearGate(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.gate = nn.Parameter(torch.zeros(dim))

    def forward(self, x):
        g = torch.sigmoid(self.gate)
        return torch.cat([x[:, :1], x[:, 1:] + g * x[:, :-1]], dim=1)  # <SMEAR>


class SmearGPT(GPT):
    def __init__(self, vocab, dim):
        super().__init__(vocab, dim)
        self.smear = SmearGate(dim)

    def forward_hidden(self, input_ids):
        return self.smear(self.emb(input_ids))
'''

SMEAR_MAIN = '''
def main():
    args = Hyperparameters()
    model = SmearGPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    print("final val_loss", eval_val(args, model, val_tokens))
'''

SMEAR_MASKED = SMEAR_UNMASKED.replace(
    "    def forward(self, x):\n        g = torch.sigmoid(self.gate)\n"
    "        return torch.cat([x[:, :1], x[:, 1:] + g * x[:, :-1]], dim=1)  # <SMEAR>",
    "    def forward(self, x, input_ids):\n        g = torch.sigmoid(self.gate)\n"
    "        not_bos = (input_ids[:, 1:] != 1).unsqueeze(-1).to(x.dtype)\n"
    "        return torch.cat([x[:, :1], x[:, 1:] + g * not_bos * x[:, :-1]], dim=1)").replace(
    "return self.smear(self.emb(input_ids))", "return self.smear(self.emb(input_ids), input_ids)")

SLOT_DORMANT_MAIN = '''
def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    print("final val_loss", eval_val(args, model, val_tokens))
    if args.slot_enabled:
        print("slot val_loss", eval_val_slot(args, model, val_tokens))
'''


def _c1(tmp_path, source, **kw):
    folder = ck.make(tmp_path, source, **kw)
    rc, review = ck.run(folder, tmp_path)
    return rc, review, ck.findings(review, "C1_CAUSAL")


def test_slot_inline_fails_with_decoded_lines(tmp_path):
    src = ck.script(SLOT_INLINE, final="eval_val_slot")
    rc, review, fs = _c1(tmp_path, src)
    fails = [f for f in fs if f["severity"] == "fail"]
    assert rc == 1 and review["verdict"] == "FAIL"
    assert len(fails) == 1 and fails[0]["confidence"] == "high" and fails[0]["data"]["pattern"] == "slot"
    lines = [e["line"] for e in fails[0]["evidence"]]
    assert lines == [ck.line_of(src, m) for m in ("OPT", "BACKWARD", "STEP", "SCORE")]
    assert all(e["path"] == "train_gpt.py" for e in fails[0]["evidence"])
    # the SLOT loop is a C1 matter; C3 does not report it a second time
    assert ck.status(review, "C3_SCORE_FIRST") == "pass"


def test_slot_in_class_inside_compressed_stub(tmp_path):
    src = ck.script(SLOT_CLASS, final="eval_slot")
    rc, review, fs = _c1(tmp_path, src, compressed=True)
    fails = [f for f in fs if f["severity"] == "fail"]
    assert rc == 1 and len(fails) == 1
    f = fails[0]
    assert f["evidence"][2]["line"] == ck.line_of(src, "STEP")
    assert f["evidence"][3]["line"] == ck.line_of(src, "SCORE")
    assert "opt.step()" in f["evidence"][2]["text"]
    assert "decoded payload of train_gpt.py" in f["message"]
    assert review["submission"]["code"][0]["stub"] == "lzma-xz"


@pytest.mark.parametrize("loss_slice, expected", [
    ("lg[:, :-1]", ("fail", "high")),  # drops one position: the next-token shift, scored positions included
    ("lg[:, :-args.stride]", ("warn", "medium")),  # stops before the scored suffix: context-only SLOT (unruled)
])
def test_slot_context_only_needs_more_than_dropping_the_last_position(tmp_path, loss_slice, expected):
    body = SLOT_INLINE.replace("loss = F.cross_entropy(lg.flatten(0, 1), targets_flat)",
                               f"loss = F.cross_entropy({loss_slice}.flatten(0, 1), targets_flat)")
    src = ck.script(body, final="eval_val_slot")
    rc, review, fs = _c1(tmp_path, src)
    slot = [f for f in fs if f["data"].get("pattern") in ("slot", "context_slot")]
    assert [(f["severity"], f["confidence"]) for f in slot] == [expected]


def test_slot_behind_disabled_env_default_is_info(tmp_path):
    src = ck.script(SLOT_INLINE, main=SLOT_DORMANT_MAIN)
    rc, review, fs = _c1(tmp_path, src)
    assert rc == 0 and review["verdict"] == "PASS"
    infos = [f for f in fs if f["severity"] == "info"]
    assert len(infos) == 1 and infos[0]["data"]["disabled_by"] == ["SLOT_ENABLED"]
    assert "SLOT_ENABLED=0 (default)" in infos[0]["message"]
    assert [f["severity"] for f in fs] == ["info", "pass"]


def test_slot_enabled_by_readme_run_command_fails(tmp_path):
    src = ck.script(SLOT_INLINE, main=SLOT_DORMANT_MAIN)
    readme = "# r\n\n```\nSLOT_ENABLED=1 SLOT_STEPS=8 torchrun --standalone --nproc_per_node=8 train_gpt.py\n```\n"
    rc, review, fs = _c1(tmp_path, src, readme=readme)
    assert rc == 1
    [fail] = [f for f in fs if f["severity"] == "fail"]
    assert fail["data"]["pattern"] == "slot"
    assert "(this path runs with SLOT_ENABLED=1 (README run command))" in fail["message"]


def test_slot_enabled_by_the_runs_logged_configuration_fails(tmp_path):
    """Evidence over patterns: the code's default is off, but the logs' configuration dump shows the run
    that produced the score had it on; the review says which evidence decided."""
    src = ck.script(SLOT_INLINE, main=SLOT_DORMANT_MAIN)
    folder = ck.make(tmp_path, src)
    for log in sorted(folder.glob("train_seed*.log")):
        log.write_text(log.read_text().replace("Hyperparameters:\n", "Hyperparameters:\n  slot_enabled: True\n", 1))
    rc, review = ck.run(folder, tmp_path)
    fs = ck.findings(review, "C1_CAUSAL")
    assert rc == 1
    [fail] = [f for f in fs if f["severity"] == "fail"]
    assert fail["data"]["pattern"] == "slot"
    assert fail["data"]["reach"] == "live" and fail["data"]["enabled_by"] == ["SLOT_ENABLED"]
    assert "(this path runs with SLOT_ENABLED=1 (the run's logged configuration, train_seed" in fail["message"]


@pytest.mark.parametrize("compressed", [False, True])
def test_target_gated_hint_in_helper_function(tmp_path, compressed):
    src = ck.script(HINTS_TARGET_GATED, final="eval_val_tilt")
    rc, review, fs = _c1(tmp_path, src, compressed=compressed)
    fails = [f for f in fs if f["severity"] == "fail"]
    assert rc == 1 and len(fails) == 1 and fails[0]["confidence"] == "high"
    assert [e["line"] for e in fails[0]["evidence"]] == [ck.line_of(src, m) for m in ("READ", "COND", "WRITE")]
    assert "tokens[i]" in fails[0]["message"] and "build_hints()" in fails[0]["message"]


def test_prefix_only_tilt_passes(tmp_path):
    src = ck.script(HINTS_PREFIX_ONLY, final="eval_val_tilt")
    rc, review, fs = _c1(tmp_path, src)
    assert rc == 0, [(f["rule"], f["severity"], f["message"]) for f in review["findings"] if f["severity"] != "pass"]
    assert [f["severity"] for f in fs] == ["pass"]
    assert ck.status(review, "C2_NORMALIZED") == "pass"


def test_target_gated_hint_in_c_helper(tmp_path):
    src = ck.script(C_HELPER_EVAL, final="eval_val_kernel")
    readme = ck.README + "\nThe n-gram kernel is compiled with g++ at startup.\n"
    rc, review, fs = _c1(tmp_path, src, readme=readme, extra={"ngram/fused_kernel.cpp": C_KERNEL_BAD})
    fails = [f for f in fs if f["severity"] == "fail"]
    assert rc == 1 and len(fails) == 1
    ev = fails[0]["evidence"]
    assert ev[0] == {"path": "ngram/fused_kernel.cpp", "line": 7, "text": "const uint16_t tok = tokens[i];"}
    assert ev[1]["line"] == 9 and ev[1]["text"].startswith("if (!is_boundary")
    assert "compiled from train_gpt.py" in fails[0]["message"]


def test_prefix_c_helper_passes_c1(tmp_path):
    src = ck.script(C_HELPER_EVAL, final="eval_val_kernel")
    readme = ck.README + "\nThe n-gram kernel is compiled with g++ at startup.\n"
    rc, review, fs = _c1(tmp_path, src, readme=readme, extra={"ngram/fused_kernel.cpp": C_KERNEL_GOOD})
    assert [f["severity"] for f in fs] == ["pass"]
    assert ck.status(review, "NO_NETWORK") == "info"  # g++ declared in the README


def test_c_source_embedded_in_python_string(tmp_path):
    src = ck.script(EMBEDDED_C, final="eval_val_cuda")
    rc, review, fs = _c1(tmp_path, src)
    fails = [f for f in fs if f["severity"] == "fail"]
    assert rc == 1 and len(fails) == 1
    lines = src.splitlines()
    read_line = next(i for i, l in enumerate(lines, 1) if "const int64_t cur = ids[i];" in l)
    assert fails[0]["evidence"][0] == {"path": "train_gpt.py", "line": read_line, "text": "const int64_t cur = ids[i];"}
    assert "embedded in a Python string in eval_val_cuda()" in fails[0]["message"]  # where CUDA_SRC is used


def test_mixing_gate_from_target_via_alias(tmp_path):
    src = ck.script(GATE_ON_TARGET, main=MIX_MAIN)
    rc, review, fs = _c1(tmp_path, src)
    fails = [f for f in fs if f["severity"] == "fail"]
    assert rc == 1 and [f["data"]["pattern"] for f in fails] == ["target_gate"]
    assert fails[0]["evidence"][0]["line"] == ck.line_of(src, "MIX")
    assert "`lam`" in fails[0]["message"]


def test_entropy_gated_full_vocab_mixture_passes(tmp_path):
    src = ck.script(GATE_ON_ENTROPY, main=MIX_MAIN)
    rc, review, fs = _c1(tmp_path, src)
    assert rc == 0 and [f["severity"] for f in fs] == ["pass"]
    assert ck.status(review, "C2_NORMALIZED") == "pass"


def test_hashed_target_key_fails_c1_and_c2(tmp_path):
    src = ck.script(HASHED_NGRAM, final="eval_ngram")
    rc, review, fs = _c1(tmp_path, src)
    c1 = [f for f in fs if f["severity"] == "fail"]
    assert rc == 1 and [f["data"]["pattern"] for f in c1] == ["target_hash_key"]
    assert c1[0]["evidence"][0]["line"] == ck.line_of(src, "LOOKUP")
    assert c1[0]["evidence"][-1]["line"] == ck.line_of(src, "MIX")
    c2 = ck.findings(review, "C2_NORMALIZED", "fail")
    assert len(c2) == 1 and c2[0]["confidence"] == "high" and c2[0]["data"]["pattern"] == "gold_only_mix"
    assert [e["line"] for e in c2[0]["evidence"]] == [ck.line_of(src, "RATIO"), ck.line_of(src, "MIX")]
    assert "np.maximum(ctx_c, 1.0)" in c2[0]["message"]
    # counts are updated after the score of each window: score-first, and one pass
    assert ck.status(review, "C3_SCORE_FIRST") == "pass"
    assert ck.status(review, "C4_SINGLE_PASS") == "pass"


def test_unmasked_smeargate_after_the_ruling_needs_review_because_it_is_disputed(tmp_path):
    """After the #1797 audit (2026-04-26) an unmasked SmearGate is flagged, but #1988 disputes the ruling,
    so it is a medium-confidence warn (NEEDS_REVIEW), never a FAIL on its own."""
    src = ck.script(SMEAR_UNMASKED, main=SMEAR_MAIN)
    rc, review, fs = _c1(tmp_path, src)  # the fixture folder is dated 2026-05-01
    assert rc == 3 and review["verdict"] == "NEEDS_REVIEW"
    warns = [f for f in fs if f["severity"] == "warn"]
    assert len(warns) == 1 and warns[0]["confidence"] == "medium"
    assert warns[0]["data"]["ruling"] == "SMEAR_BOS_MASK"
    assert warns[0]["evidence"][0]["line"] == ck.line_of(src, "SMEAR")
    assert "Question for the author" in warns[0]["message"]
    assert warns[0]["message"].endswith("(the ruling is disputed: https://github.com/openai/parameter-golf/issues/1988)")
    assert ck.status(review, "C1_CAUSAL") == "warn"


def test_unmasked_smeargate_before_the_ruling_is_info(tmp_path):
    src = ck.script(SMEAR_UNMASKED, main=SMEAR_MAIN)
    rc, review, fs = _c1(tmp_path, src, name="2026-03-20_PreRulingSmear")
    assert rc == 0 and review["verdict"] == "PASS"
    [info] = [f for f in fs if f["severity"] == "info"]
    assert info["message"].startswith("predates the ruling of 2026-04-26 (https://github.com/openai/parameter-golf/"
                                      "pull/1797#issuecomment-4322526174): ")
    assert review["judged"] == {"date": "2026-03-20", "date_source": "folder name",
                                "submission_date": "2026-03-20", "track": "track_10min_16mb", "track_source": "folder path",
                                "non_record": False}


def test_bos_masked_smeargate_passes(tmp_path):
    src = ck.script(SMEAR_MASKED, main=SMEAR_MAIN)
    rc, review, fs = _c1(tmp_path, src)
    assert rc == 0 and [f["severity"] for f in fs] == ["pass"]
    assert "BOS mask" in fs[0]["message"]


def test_legal_baseline_fixture_passes_every_code_rule(tmp_path):
    src = (Path(__file__).parent / "fixtures" / "code" / "legal_baseline" / "train_gpt.py").read_text()
    readme = (Path(__file__).parent / "fixtures" / "code" / "legal_baseline" / "README.md").read_text()
    folder = ck.make(tmp_path, src, readme=readme)
    rc, review = ck.run(folder, tmp_path)
    assert rc == 0 and review["verdict"] == "PASS"
    for rule in ("C1_CAUSAL", "C2_NORMALIZED", "C3_SCORE_FIRST", "C4_SINGLE_PASS"):
        assert ck.status(review, rule) == "pass"
    assert ck.status(review, "NO_NETWORK") == "info"  # lrzip, declared in the README
    assert ck.status(review, "NO_TRAIN_DATA_AT_EVAL") == "info"  # GPTQ calibration after the loop
    c3 = ck.findings(review, "C3_SCORE_FIRST")[0]
    assert "score-first order found in eval_val_ttt()" in c3["message"]


# --------------------------------------------------------------------------------------------- C2
@pytest.mark.parametrize("body,final,marks", [
    (INLINE_RATIO, "eval_bigram_inline", ("RATIO", "MIX")),
    (HASHED_NGRAM, "eval_ngram", ("RATIO", "MIX")),
])
def test_gold_only_count_ratio_mixture_fails(tmp_path, body, final, marks):
    src = ck.script(body, final=final)
    folder = ck.make(tmp_path, src)
    rc, review = ck.run(folder, tmp_path)
    fails = ck.findings(review, "C2_NORMALIZED", "fail")
    assert rc == 1 and len(fails) == 1 and fails[0]["confidence"] == "high"
    assert [e["line"] for e in fails[0]["evidence"]] == [ck.line_of(src, m) for m in marks]


def test_per_byte_spread_mixed_with_byte_model_fails(tmp_path):
    src = ck.script(BYTE_MIXTURE, main="")
    folder = ck.make(tmp_path, src)
    rc, review = ck.run(folder, tmp_path)
    fails = ck.findings(review, "C2_NORMALIZED", "fail")
    assert rc == 1 and len(fails) == 1 and fails[0]["data"]["pattern"] == "byte_mixture"
    assert [e["line"] for e in fails[0]["evidence"]] == [ck.line_of(src, "SPREAD"), ck.line_of(src, "MIX")]


def test_normalized_ngram_over_full_vocab_passes(tmp_path):
    src = ck.script(NORMALIZED_NGRAM, final="eval_ngram_normalized")
    folder = ck.make(tmp_path, src)
    rc, review = ck.run(folder, tmp_path)
    assert rc == 0, [(f["rule"], f["message"]) for f in review["findings"] if f["severity"] in ("fail", "warn")]
    for rule in ("C1_CAUSAL", "C2_NORMALIZED", "C3_SCORE_FIRST", "C4_SINGLE_PASS"):
        assert ck.status(review, rule) == "pass"
    assert "score-first order found in eval_ngram_normalized()" in ck.findings(review, "C3_SCORE_FIRST")[0]["message"]


def test_slot_behind_env_helper_default_is_info(tmp_path):
    body = SLOT_INLINE + '''

def _flag(name, default="0"):
    return os.environ.get(name, default) == "1"


class SlotCfg:
    enabled = _flag("USE_SLOT")
'''
    main = SLOT_DORMANT_MAIN.replace("if args.slot_enabled:", "if SlotCfg.enabled:")
    src = ck.script(body, main=main)
    rc, review, fs = _c1(tmp_path, src)
    assert rc == 0 and [f["severity"] for f in fs] == ["info", "pass"]
    assert fs[0]["data"]["disabled_by"] == ["USE_SLOT"] and "USE_SLOT=0 (default)" in fs[0]["message"]


PURE_RATIO = '''
def eval_ngram_only(args, model, val_tokens):
    """A count model scored on its own, with a smoothed context denominator."""
    nb = args.ngram_buckets
    ctx_counts = np.ones(nb)
    pair_counts = np.ones(nb)
    nll_sum = 0.0
    for start in range(0, val_tokens.numel() - 1, args.seq_len):
        local = val_tokens[start: start + args.seq_len + 1].numpy()
        prev = local[:-1] % nb
        tgt = local[1:]
        key = (prev * 1024 + tgt) % nb
        p = pair_counts[key] / (ctx_counts[prev] + 0.5)  # <RATIO>
        nll_sum += float(-np.log(p).sum())  # <SCORE>
        np.add.at(ctx_counts, prev, 1)
        np.add.at(pair_counts, key, 1)
    return nll_sum
'''


def test_unnormalised_denominator_without_mixture_needs_review(tmp_path):
    src = ck.script(PURE_RATIO, final="eval_ngram_only")
    folder = ck.make(tmp_path, src)
    rc, review = ck.run(folder, tmp_path)
    fails = ck.findings(review, "C2_NORMALIZED", "fail")
    assert len(fails) == 1 and fails[0]["confidence"] == "medium" and fails[0]["data"]["pattern"] == "denominator"
    assert [e["line"] for e in fails[0]["evidence"]] == [ck.line_of(src, "RATIO"), ck.line_of(src, "SCORE")]
    assert "sum to 1 over all tokens" in fails[0]["message"]
    # the key hashes the target in, and the looked-up count is the score: C1 fails with high confidence
    assert [f["data"]["pattern"] for f in ck.findings(review, "C1_CAUSAL", "fail")] == ["target_hash_key"]
    assert rc == 1
