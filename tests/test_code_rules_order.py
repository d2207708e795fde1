"""C3_SCORE_FIRST and C4_SINGLE_PASS on fixture scripts, through `auditor run`."""

from __future__ import annotations


import pytest

import codekit as ck

SCORE_FIRST_TTT = '''
def eval_val_ttt(args, model, val_tokens):
    """Chunked score-first TTT: score each chunk under no_grad, then train on it."""
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    n_chunks = (val_tokens.numel() - 1) // args.ttt_chunk
    loss_sum = 0.0
    for ci in range(n_chunks):
        local = val_tokens[ci * args.ttt_chunk: (ci + 1) * args.ttt_chunk + 1]
        x = local[:-1].unsqueeze(0)
        y = local[1:].unsqueeze(0)
        with torch.no_grad():
            nll = F.cross_entropy(model.forward_logits(x).flatten(0, 1), y.flatten(), reduction="none")
            loss_sum += nll.sum().item()  # <TTT-SCORE>
        if ci == n_chunks - 1:
            break
        for _ in range(args.ttt_epochs):
            loss = model(x, y)
            opt.zero_grad()
            loss.backward()  # <TTT-UPDATE>
            opt.step()
    return loss_sum
'''

PRE_EVAL_INLINE_MAIN = '''
def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=args.ttt_lr)
    for epoch in range(args.ttt_epochs):
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            loss = model(local[:-1].unsqueeze(0), local[1:].unsqueeze(0))
            loss.backward()  # <UPDATE>
            opt.step()
            opt.zero_grad()
    print("final val_loss", eval_val(args, model, val_tokens))  # <SCORE>
'''

PRE_QUANT_HELPER = '''
def ttt_adapt_adamw(args, base_model, tokens):
    """AdamW fine-tuning before quantization."""
    optimizer = torch.optim.AdamW(base_model.parameters(), lr=args.ttt_lr)
    for epoch in range(args.ttt_epochs):
        for start in range(0, tokens.numel() - 1, args.seq_len):
            local = tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            loss = base_model(x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


def quantize(model):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.round(p * 64) / 64)


def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    vt = val_tokens
    adapt = ttt_adapt_adamw
    adapt(args, model, vt)  # <UPDATE>
    quantize(model)
    print("final val_loss", eval_val(args, model, val_tokens))  # <SCORE>
'''

COUNTS_BEFORE_SCORE = '''
class BigramCounts:
    def __init__(self, vocab):
        self.counts = torch.ones(vocab, vocab)

    def add_tokens(self, tokens):
        self.counts[tokens[:-1], tokens[1:]] += 1

    def probs(self, x):
        rows = self.counts[x]
        return rows / rows.sum(-1, keepdim=True)


def eval_with_counts(args, model, val_tokens, table):
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            p = 0.5 * torch.softmax(model.forward_logits(x), -1) + 0.5 * table.probs(x)
            loss_sum += -torch.log(p.gather(-1, y.unsqueeze(-1))).sum().item()  # <SCORE>
    return loss_sum


def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    table = BigramCounts(args.vocab_size)
    table.add_tokens(val_tokens)  # <UPDATE>
    print("final val_loss", eval_with_counts(args, model, val_tokens, table))  # <CALL>
'''

WARMUP_MAIN = SCORE_FIRST_TTT + '''

def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    # compile warm-up of the TTT path on the first validation tokens; the adapter is thrown away
    wl = torch.zeros(32, args.vocab_size, requires_grad=True)
    wo = torch.optim.AdamW([wl], lr=args.ttt_lr)
    xw = val_tokens[: args.seq_len].unsqueeze(0)
    yw = val_tokens[1: args.seq_len + 1].unsqueeze(0)
    for _ in range(2):
        ptl = F.cross_entropy((model.forward_hidden(xw) @ wl).flatten(0, 1), yw.flatten())
        ptl.backward()  # <UPDATE>
        wo.step()
    del wl, wo  # <DEL>
    print("legal_ttt val_loss", eval_val_ttt(args, model, val_tokens))  # <SCORE>
'''

PERIODIC_VAL_MAIN = '''
def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    loader = TokenLoader(args.train_files)
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    val_loss_every = int(os.environ.get("VAL_LOSS_EVERY", "25"))
    for step in range(args.iterations):
        if val_loss_every > 0 and step % val_loss_every == 0:
            print("step", step, "val_loss", eval_val(args, model, val_tokens))
        x, y = loader.next_batch(args.seq_len)
        loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
    print("final val_loss", eval_val(args, model, val_tokens))
'''

TWO_PASS = '''
def eval_two_pass(args, model, val_tokens):
    counts = torch.ones(args.vocab_size, args.vocab_size)
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            rows = counts[x]
            p = 0.7 * torch.softmax(model.forward_logits(x), -1) + 0.3 * rows / rows.sum(-1, keepdim=True)
            loss_sum += -torch.log(p.gather(-1, y.unsqueeze(-1))).sum().item()  # <PASS1-SCORE>
            counts[x.flatten(), y.flatten()] += 1  # <PASS1-UPDATE>
        loss_sum = 0.0
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            rows = counts[x]
            p = 0.7 * torch.softmax(model.forward_logits(x), -1) + 0.3 * rows / rows.sum(-1, keepdim=True)
            loss_sum += -torch.log(p.gather(-1, y.unsqueeze(-1))).sum().item()  # <PASS2-SCORE>
    return loss_sum
'''

BEST_OF_EXPERTS = '''
def expert_nll(model, x, y):
    return F.cross_entropy(model.forward_logits(x).flatten(0, 1), y.flatten(), reduction="none")


def eval_best_of(args, model, val_tokens):
    other = GPT(args.vocab_size, 32)
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            nll_a = expert_nll(model, x, y)
            nll_b = expert_nll(other, x, y)
            best = MINIMUM  # <MIN>
            loss_sum += best.sum().item()
    return loss_sum
'''

SCORE_EVERY_EPOCH = '''
def eval_multi_epoch_ttt(args, model, val_tokens):
    opt = torch.optim.SGD(model.parameters(), lr=args.ttt_lr)
    loss_sum = 0.0
    for epoch in range(args.ttt_epochs):  # <EPOCH>
        for start in range(0, val_tokens.numel() - 1, args.ttt_chunk):
            local = val_tokens[start: start + args.ttt_chunk + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            with torch.no_grad():
                nll = F.cross_entropy(model.forward_logits(x).flatten(0, 1), y.flatten(), reduction="none")
            loss_sum += nll.sum().item()  # <SCORE>
            loss = model(x, y)
            loss.backward()  # <UPDATE>
            opt.step()
            opt.zero_grad()
    return loss_sum / args.ttt_epochs
'''

SLIDING = '''
def eval_val_sliding(args, model, val_tokens):
    """Overlapping windows; each token is scored once (the first window scores all its positions)."""
    seq, stride = args.seq_len, args.eval_stride
    loss_sum = 0.0
    with torch.no_grad():
        for ws in range(0, val_tokens.numel() - seq, stride):
            window = val_tokens[ws: ws + seq + 1]
            x = window[:-1].unsqueeze(0)
            y = window[1:].unsqueeze(0)
            nll = F.cross_entropy(model.forward_logits(x).flatten(0, 1), y.flatten(), reduction="none")
            first = 0 if ws == 0 else seq - stride
            loss_sum += nll[first:].sum().item()
    return loss_sum
'''

TTT_THEN_RESCORE_MAIN = SCORE_FIRST_TTT + '''

def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    print("ttt val_loss", eval_val_ttt(args, model, val_tokens))  # <FIRST>
    print("final val_loss", eval_val(args, model, val_tokens))  # <SECOND>
'''

EVAL_THEN_TTT_MAIN = SCORE_FIRST_TTT + SLIDING + '''

def main():
    args = Hyperparameters()
    model = GPT(args.vocab_size, 32)
    train(args, model, TokenLoader(args.train_files))
    val_tokens = load_validation_tokens(args.val_files, args.seq_len)
    print("roundtrip val_loss", eval_val(args, model, val_tokens))
    print("sliding val_loss", eval_val_sliding(args, model, val_tokens))
    print("legal_ttt val_loss", eval_val_ttt(args, model, val_tokens))
'''


def _review(tmp_path, src, **kw):
    folder = ck.make(tmp_path, src, **kw)
    return ck.run(folder, tmp_path)


# --------------------------------------------------------------------------------------------- C3
@pytest.mark.parametrize("body,main,compressed", [
    ("", PRE_EVAL_INLINE_MAIN, False),
    ("", PRE_QUANT_HELPER, False),
    ("", COUNTS_BEFORE_SCORE, True),
])
def test_update_on_val_before_scoring_fails(tmp_path, body, main, compressed):
    src = ck.script(body, main=main)
    rc, review = _review(tmp_path, src, compressed=compressed)
    fails = ck.findings(review, "C3_SCORE_FIRST", "fail")
    assert rc == 1 and len(fails) == 1 and fails[0]["confidence"] == "high"
    assert fails[0]["data"]["pattern"] == "update_before_score"
    score_mark = "CALL" if main is COUNTS_BEFORE_SCORE else "SCORE"
    assert [e["line"] for e in fails[0]["evidence"]] == [ck.line_of(src, "UPDATE"), ck.line_of(src, score_mark)]
    assert ("decoded payload" in fails[0]["message"]) is compressed


def test_pre_quant_helper_names_the_helper(tmp_path):
    src = ck.script("", main=PRE_QUANT_HELPER)
    rc, review = _review(tmp_path, src)
    msg = ck.findings(review, "C3_SCORE_FIRST", "fail")[0]["message"]
    assert "inside ttt_adapt_adamw()" in msg and "main() in train_gpt.py" in msg


def test_throwaway_warmup_on_val_is_a_warning(tmp_path):
    src = ck.script("", main=WARMUP_MAIN)
    rc, review = _review(tmp_path, src)
    assert rc == 3 and review["verdict"] == "NEEDS_REVIEW"
    warns = ck.findings(review, "C3_SCORE_FIRST", "warn")
    assert len(warns) == 1 and warns[0]["data"]["pattern"] == "throwaway_warmup"
    assert [e["line"] for e in warns[0]["evidence"]] == [ck.line_of(src, m) for m in ("UPDATE", "DEL", "SCORE")]
    assert "#1530" in warns[0]["message"]
    assert ck.status(review, "C1_CAUSAL") == "pass"  # fresh adapter, but nothing is scored with it


@pytest.mark.parametrize("body,main,final", [
    (SCORE_FIRST_TTT, None, "eval_val_ttt"),
    ("", PERIODIC_VAL_MAIN, None),
])
def test_score_first_and_periodic_validation_pass(tmp_path, body, main, final):
    src = ck.script(body, main=main, final=final or "eval_val")
    rc, review = _review(tmp_path, src)
    assert rc == 0, [(f["rule"], f["message"]) for f in review["findings"] if f["severity"] in ("fail", "warn")]
    assert ck.status(review, "C3_SCORE_FIRST") == "pass"
    if final == "eval_val_ttt":
        msg = ck.findings(review, "C3_SCORE_FIRST")[0]["message"]
        assert f"score line {ck.line_of(src, 'TTT-SCORE')} before update line {ck.line_of(src, 'TTT-UPDATE')}" in msg


# --------------------------------------------------------------------------------------------- C4
def test_two_pass_rescoring_fails(tmp_path):
    src = ck.script(TWO_PASS, final="eval_two_pass")
    rc, review = _review(tmp_path, src)
    fails = ck.findings(review, "C4_SINGLE_PASS", "fail")
    assert rc == 1 and len(fails) == 1 and fails[0]["data"]["pattern"] == "two_pass"
    assert [e["line"] for e in fails[0]["evidence"]] == [ck.line_of(src, m) for m in
                                                         ("PASS1-SCORE", "PASS1-UPDATE", "PASS2-SCORE")]
    assert ck.status(review, "C3_SCORE_FIRST") == "pass"  # each pass-1 update follows its score


@pytest.mark.parametrize("expr", ["torch.minimum(nll_a, nll_b)", "torch.stack([nll_a, nll_b]).min(dim=0).values"])
def test_min_over_experts_fails(tmp_path, expr):
    src = ck.script(BEST_OF_EXPERTS.replace("MINIMUM", expr), final="eval_best_of")
    rc, review = _review(tmp_path, src)
    fails = ck.findings(review, "C4_SINGLE_PASS", "fail")
    assert rc == 1 and len(fails) == 1 and fails[0]["data"]["pattern"] == "min_over_passes"
    assert fails[0]["evidence"][0]["line"] == ck.line_of(src, "MIN")


def test_scoring_every_epoch_fails(tmp_path):
    src = ck.script(SCORE_EVERY_EPOCH, final="eval_multi_epoch_ttt")
    rc, review = _review(tmp_path, src)
    fails = ck.findings(review, "C4_SINGLE_PASS", "fail")
    assert rc == 1 and len(fails) == 1 and fails[0]["data"]["pattern"] == "score_every_pass"
    assert [e["line"] for e in fails[0]["evidence"]] == [ck.line_of(src, m) for m in ("EPOCH", "UPDATE", "SCORE")]


def test_rescoring_after_ttt_needs_review(tmp_path):
    src = ck.script("", main=TTT_THEN_RESCORE_MAIN)
    rc, review = _review(tmp_path, src)
    fails = ck.findings(review, "C4_SINGLE_PASS", "fail")
    assert rc == 3 and len(fails) == 1 and fails[0]["confidence"] == "medium"
    assert [e["line"] for e in fails[0]["evidence"]] == [ck.line_of(src, "FIRST"), ck.line_of(src, "SECOND")]


def test_diagnostic_evals_then_single_ttt_pass(tmp_path):
    src = ck.script("", main=EVAL_THEN_TTT_MAIN)
    rc, review = _review(tmp_path, src)
    assert rc == 0, [(f["rule"], f["message"]) for f in review["findings"] if f["severity"] in ("fail", "warn")]
    assert ck.status(review, "C4_SINGLE_PASS") == "pass"
    assert ck.status(review, "C3_SCORE_FIRST") == "pass"


CAUSAL_PRECOMPUTE = '''
class TiltState:
    """Hints for every position from a causal sweep: the hint for i is emitted before token i is counted."""

    def __init__(self, vocab):
        self.next_counts = np.zeros((vocab, vocab), dtype=np.int32)

    def _update(self, prev, tok):
        self.next_counts[prev, tok] += 1

    def build_hints(self, tokens):
        hints = np.full(len(tokens), -1, dtype=np.int64)
        for i in range(1, len(tokens)):
            prev = tokens[i - 1]
            hints[i] = int(self.next_counts[prev].argmax())
            self._update(prev, tokens[i])
        return hints


def eval_val_tilt(args, model, val_tokens):
    hints = TiltState(args.vocab_size).build_hints(val_tokens.numpy())  # <PRECOMPUTE>
    beta = 1.0
    loss_sum = 0.0
    with torch.no_grad():
        for start in range(0, val_tokens.numel() - 1, args.seq_len):
            local = val_tokens[start: start + args.seq_len + 1]
            x = local[:-1].unsqueeze(0)
            y = local[1:].unsqueeze(0)
            logp = F.log_softmax(model.forward_logits(x), -1)
            h = torch.from_numpy(hints[start + 1: start + args.seq_len + 1]).clamp(min=0).unsqueeze(0)
            p_hint = logp.gather(-1, h.unsqueeze(-1)).squeeze(-1).exp()
            lp_gold = logp.gather(-1, y.unsqueeze(-1)).squeeze(-1)
            tilt = beta * (y == h).float() - torch.log1p(p_hint * (math.exp(beta) - 1.0))
            loss_sum += -(lp_gold + tilt).sum().item()
    return loss_sum
'''

PREFILL_PRECOMPUTE = CAUSAL_PRECOMPUTE.replace('''        for i in range(1, len(tokens)):
            prev = tokens[i - 1]
            hints[i] = int(self.next_counts[prev].argmax())
            self._update(prev, tokens[i])
        return hints''', '''        for i in range(1, len(tokens)):
            self._update(tokens[i - 1], tokens[i])
        for i in range(1, len(tokens)):
            hints[i] = int(self.next_counts[tokens[i - 1]].argmax())
        return hints''')


def test_causal_precompute_sweep_passes(tmp_path):
    src = ck.script(CAUSAL_PRECOMPUTE, final="eval_val_tilt")
    rc, review = _review(tmp_path, src)
    assert rc == 0, [(f["rule"], f["message"]) for f in review["findings"] if f["severity"] in ("fail", "warn")]
    msg = ck.findings(review, "C3_SCORE_FIRST")[0]["message"]
    assert "causal sweep" in msg and "TiltState.build_hints()" in msg


def test_prefilled_table_then_hints_fails(tmp_path):
    src = ck.script(PREFILL_PRECOMPUTE, final="eval_val_tilt")
    rc, review = _review(tmp_path, src)
    fails = ck.findings(review, "C3_SCORE_FIRST", "fail")
    assert rc == 1 and len(fails) == 1 and fails[0]["confidence"] == "high"
    assert fails[0]["evidence"][0]["line"] == ck.line_of(src, "PRECOMPUTE")
