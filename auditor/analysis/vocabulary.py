"""The project's vocabulary: what names in a record's code usually mean, in one place.

Static analysis cannot know that `y`, `targets` or `gold_ids` hold the tokens being predicted, or that
`alpha`/`lam` weight a mixture; real records name things consistently enough that these heuristics
work, and every one of them lives here so a reviewer can read (and tune) them together. Labels are the
tags the flow analysis attaches to values (see flow.py).
"""

from __future__ import annotations

import re

VAL, TRAIN, TGT, GOLD = "val", "train", "target", "gold"
LOOKUP, RATIO, PERBYTE, NLL = "lookup", "ratio", "perbyte", "nll"
STACK2 = "stack2"
SPREAD = "spread"  # a per-token array repeated once per byte of its token (np.repeat / repeat_interleave)
THASH, HLOOKUP = "thash", "hlookup"  # a hash key mixing in the target; a table entry read with such a key

TARGET_NAME = re.compile(r"^(y(_?(np|t|b|w|s|batch|flat|ids|tok|toks|cpu|gpu|dev|chunk|win|local|all|sel|i|j))?|"
                          r"targets?(_\w+)?|tgts?(_\w+)?|labels?(_\w+)?|target_ids|"
                          r"gold(_ids|_tokens?)?|next_tok(en)?s?(_\w+)?)$")
NOT_TARGET = re.compile(r"^(y_?(hat|pred|logits?|prob\w*|lp|logp|mix\w*|hint\w*|bias|p|q|np_hat|min|max|off\w*|"
                         r"start|end|pos|idx|dim|size|len|scale|shift|ema|loss\w*|nll\w*|out\w*))$")
VAL_NAME = re.compile(r"(^|_)(val|valid|validation)_?(tokens?|toks?|ids|data|stream|seq|set|files|pattern|"
                       r"path|shards?|tokens_idx)$")
# resets of the compiler, caches, timers and counters: they do not throw adapted weights away
NOT_STATE_RESET = re.compile(r"(^|\.)(_dynamo|dynamo|compiler|cuda|_inductor|inductor)(\.|$)|peak|stats|timer|clock",
                              re.I)
TRAIN_NAME = re.compile(r"^(train_?(files|pattern|glob|shards?|paths?|tokens|stream|loader|data|dir))$")
WEIGHT_NAME = re.compile(r"(^|_)(alpha|lam|lamb|lambda|lmbda|gate|beta|w|wt|weight|mix|coef|coeff|trust|conf)(_|$|\d)",
                          re.I)
TABLE_NAME = re.compile(r"(count|cnt|table|freq|hist|ctx|full|cache|ngram|gram|hash|bucket|hits|tab|ppm|occ)", re.I)
SCORE_ACC = re.compile(r"((loss|nll|bits|bpb|logp|lp|score|xent|ce|neglog)\w*(sum|total|tot|acc|accum))$|"
                        r"^(sum|total|tot|acc)_?(loss|nll|bits|bpb|logp|ce|xent|neglog)\w*$|^nll$|^bits$", re.I)
FILEREF = re.compile(r"([\w-]+\.(?:py|c|cc|cpp|cu|cuh|h|hpp))\b")
SCORE_LIST = re.compile(r"(nll|loss|bits|score|logp|lp)(es|s)?(_\w+)?$", re.I)
BYTES_NAME = re.compile(r"byte|nbytes|n_b\b|bytes_per", re.I)
STATE_OBJ = re.compile(r"(cache|ngram|ppm|table|counter|counts|state|mixer|model_ng|lm_ng|gram)", re.I)
STATE_UPDATE = {"update", "add", "observe", "learn", "feed", "push", "extend_counts", "add_tokens", "ingest",
                 "accumulate", "record", "insert", "train_on", "fit"}
OPTIMIZERS = {"SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "Muon", "NorMuon", "Lion", "Adafactor", "LBFGS",
               "SparseAdam", "Adamax", "NAdam", "RAdam"}
KILL_ATTRS = {"shape", "dtype", "device", "ndim", "is_cuda", "requires_grad", "grad_fn", "itemsize", "layout"}
KILL_METHODS = {"size", "numel", "dim", "nelement", "element_size", "stride", "data_ptr", "is_contiguous",
                 "get_device", "type"}
KILL_FUNCS = {"len", "range", "print", "isinstance", "hasattr", "type", "id", "callable", "log0", "log",
               "logger.info", "print0", "time.time", "time.perf_counter"}
LOSS_FUNCS = {"cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
               "kl_div"}
MIN_FUNCS = {"minimum", "fmin", "min", "amin", "argmin", "nanmin"}
TRAIN_READERS = {"load_data_shard", "fromfile", "memmap", "open", "glob", "load", "TokenStream",
                  "DistributedTokenLoader", "read_bytes", "loadtxt", "iglob", "listdir", "scandir"}
EXT_ROOTS = {"subprocess", "os", "urllib", "requests", "huggingface_hub", "torch.hub", "datasets", "socket",
             "http", "wget", "gdown", "boto3", "httpx", "aiohttp", "shutil", "ctypes", "torch.utils.cpp_extension",
             "importlib", "pip"}


def is_target_name(name: str) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    return bool(TARGET_NAME.match(leaf)) and not NOT_TARGET.match(leaf) and not leaf.startswith("y_pred")


# a token's loss or log-probability under its own name (`token_logp`, `nll_nats`): used only to recognise a
# per-byte spread (`token_logp / n_bytes`), never as a general label (it would make every such name a score)
NLL_NAME = re.compile(r"^(token_|tok_|per_token_)?(nll|logp|log_p|lp|logprob)(s|_nats)?$", re.I)


def name_seeds(name: str) -> set[str]:
    leaf = name.rsplit(".", 1)[-1]
    out = set()
    if VAL_NAME.search(leaf):
        out.add(VAL)
    if TRAIN_NAME.match(leaf):
        out.add(TRAIN)
    return out


def mentions_train_bin(text: str) -> bool:
    """re.search(r"(^|[/_*])train_?\\*?\\w*\\.bin", text) in O(n): that regex backtracks over `\\w*`
    from every `_train` in a long word (quadratic: a 120 KB string took 24 s). Each `.bin` ends a run
    of word characters; runs before different `.bin`s are disjoint, so each character is looked at a
    bounded number of times."""
    def run_start(end: int) -> int:  # start of the maximal run of word characters ending at `end`
        i = end
        while i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_"):
            i -= 1
        return i

    def train_ends_at(seg_start: int, seg_end: int) -> bool:
        # "train" or "train_" ends the word run text[seg_start:seg_end], legally preceded
        for tail in ("train", "train_"):
            s = seg_end - len(tail)
            if s >= seg_start and text.startswith(tail, s):
                if s == 0 or text[s - 1] in "/_*":
                    return True
        return False

    pos = text.find(".bin")
    while pos >= 0:
        q = run_start(pos)
        run = text[q:pos]
        if "_train" in run or (run.startswith("train") and (q == 0 or text[q - 1] in "/*")):
            return True
        if q > 0 and text[q - 1] == "*" and train_ends_at(run_start(q - 1), q - 1):
            return True
        pos = text.find(".bin", pos + 1)
    return False
