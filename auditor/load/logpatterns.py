"""The vocabulary of record logs: every line shape the log parser reads, in one place.

Eight log families print the same facts differently (see docs in logparse.py). Each pattern is anchored
or bounded (numbers at most 18 digits, lines at most MAX_LINE characters), so matching stays linear.
"""

from __future__ import annotations

import re

from auditor.core import budget

MAX_LINE = budget.SCAN_LINE_CHARS  # longer lines are never matched
MAX_TEXT = 200  # evidence text is truncated to this many characters
MAX_SUBSET_MARKERS = 100  # per run; further ones are counted in a note
MAX_NOTES = 50  # per run; a hostile log could otherwise make millions
SEPARATOR = "=" * 100

# at most 18 integer digits (a figure of 10^18 or more is not a measurement: a 400-digit number would
# make float() infinite and int(round()) raise); a longer digit run does not match at all
_F = r"[0-9]{1,18}(?![0-9])(?:\.[0-9]+)?"
_I = r"[0-9]{1,18}(?![0-9])"

_TS = re.compile(r"^[0-9]{10}\.[0-9]{3} ")
_RANK = re.compile(r"^\[rank[0-9]+\]:")
_PLACEHOLDER = re.compile(r"^\[embedded source removed from this copy: ([0-9]+) lines\]$")

# --- training progress -------------------------------------------------------------------------
_STEP_TAG = r"(?: \[[^\]]{1,40}\])?"
_STEP_VAL_OLD = re.compile(rf"^step:({_I})/({_I}){_STEP_TAG} val_loss:({_F}) val_bpb:({_F})(?= |$)")
_TRAIN_TIME = re.compile(rf" train_time:({_I})ms(?= |$)")
# a training-progress line: step, and the train time when printed (`train_time:Nms` or `t:Nms`)
_STEP_TRAIN_OLD = re.compile(
    rf"^step:({_I})/({_I}){_STEP_TAG} (?!val_loss)(?:.*? (?:train_time|t):({_I})ms(?= |$))?"
)
_STEP_VAL_NEW = re.compile(rf"^({_I})/({_I}) val_loss: ({_F}) val_bpb: ({_F})$")
_STEP_TRAIN_NEW = re.compile(rf"^({_I})/({_I}) train_loss: ({_F}) train_time: ({_F})m(?= |$)")
_STOP = re.compile(rf"^stopping_early: wallclock_cap train_time: ?({_I})ms(?: step: ?({_I})/({_I}))?$")

# --- eval timing ----------------------------------------------------------------------------------
_TOTAL_EVAL = re.compile(rf"^total_eval_time: ?({_F})s$")
_COMPILE_WARMUP = re.compile(rf"^ttt_lora:compile warmup done \(({_F})s\)")
_ARTIFACT_WALL = re.compile(rf"^artifact_production_wallclock: ({_F})s \(must be < ({_F})\)$")
_GPTQ_RESERVE = re.compile(rf"^gptq:reserving ({_F})(s|ms)(?: from training budget)?, effective=({_I})ms$")
_TEMP_SCALING = re.compile(rf"^temp_scaling optimal_T:({_F}) (?:eval_)?time:({_I})ms$")
_FINAL_EVAL_MODE = re.compile(rf"^final_eval_mode:(\w+)(?: stride:({_I}))?")

# --- sizes ----------------------------------------------------------------------------------------
_MODEL_RAW = re.compile(rf"^Serialized model: ({_I}) bytes$")
_MODEL = re.compile(
    rf"^Serialized model (\S+): ({_I}) bytes(?: \(payload:{_I} raw_torch:{_I} payload_ratio:{_F}x\))?$"
)
_CODE = re.compile(rf"^Code size: ({_I}) bytes$")
_CODE_RAW = re.compile(rf"^Code size \(uncompressed\): ({_I}) bytes$")
_CODE_COMP = re.compile(rf"^Code size \(compressed\): ({_I}) bytes$")
_TOTAL = re.compile(rf"^Total submission size(?: (\S+))?: ({_I}) bytes$")
_ARTIFACT = re.compile(
    rf"^artifact:({_F})MB (ternary|binary):({_I})\(({_I})B\) fp:({_I})\(({_I})B\) code:({_I})$"
)
_BUDGET = re.compile(rf"^budget:({_I})/16000000 \(({_F})/({_F})MB\) (.*)$")
_USING = re.compile(r"^using: (\w+)$")
_LEGENDRE_MODEL = re.compile(rf"^INT7\+zlib model: ({_I}) bytes \| Total submission: ({_I}) bytes$")
_LEGENDRE_RAW = re.compile(rf"^Raw model: ({_I}) bytes \| Code: ({_I}) bytes \| Total: ({_I})$")
# every anchored prefix `_parse_meta` reads after its substring checks
_META_PREFIX = re.compile(
    r"^(?:val_loader:|val_tokens:|val tokens:|train_loader:|train_shards:|val_bpb:|world_size:"
    r"|total_eval_time:|ttt_lora:|ttt_phased:|artifact_production_wallclock:|gptq:reserving "
    r"|final_eval_mode:|temp_scaling |using: |artifact:|budget:|INT7\+zlib model:|Raw model:"
    r"|LEGENDRE GPT|dg_beta\()"
)
_MB_SIZES = re.compile(rf"^\s*(\S+): ({_F})MB model \+ ({_F})MB code = ({_F})/({_F})MB")

# --- metadata -------------------------------------------------------------------------------------
_VAL_TOKENS = (
    re.compile(rf"^val_loader:shards pattern=\S+ tokens:({_I})$"),
    re.compile(rf"^val_tokens: ({_I})$"),
    re.compile(rf"^val tokens: ({_I})$"),
)
_TRAIN_LOADER = re.compile(rf"^train_loader:dataset:(\S+) train_shards:({_I})$")
_TRAIN_SHARDS = re.compile(rf"^train_shards: ?({_I})$")
_BPB_ENABLED = re.compile(rf"^val_bpb:enabled tokenizer_kind=(\w+) (?:tokenizer_path=(\S+)|vocab_size=({_I}))$")
_SIDECAR = re.compile(r"^val_bpb:byte_sidecar:enabled$")
_SEED_ROOT = re.compile(rf"^seed:({_I})$")
_PARAMS_SEED = re.compile(rf" s:({_I})$")
_KV_SEED = re.compile(rf"(?:^| |,)seed=({_I})(?=[ ,]|$)")
_WORLD_ROOT = re.compile(rf"^world_size:({_I}) grad_accum_steps:({_I})$")
_WORLD_WS = re.compile(rf" ws:({_I})(?= |$)")
_WALLCLOCK_ROOT = re.compile(rf"(?:^| )max_wallclock_seconds:({_F})(?= |$)")
_DUMP_LINE = re.compile(r"^  (\w+): ?(.*)$")
_VOCAB_PATH = re.compile(r"fineweb_([0-9]+)_bpe")
_VOCAB_DATASET = re.compile(r"fineweb10B_sp([0-9]+)")

# --- metric line (generic) ------------------------------------------------------------------------
_METRIC = re.compile(
    rf"^(?P<label>[A-Za-z_][\w .:+()=-]*?) val_loss[:=](?P<loss>{_F}) (?P<sliding>sliding )?"
    rf"val_bpb[:=](?P<bpb>{_F})(?P<rest>.*)$"
)
_REST_EVAL_TIME = re.compile(rf"(?:^|[ )])(?:eval_)?time:({_I})ms(?= |$)")
_REST_ELAPSED = re.compile(rf"(?:^| )elapsed=({_F})s(?= |$)")
_STRIDE = re.compile(rf"(?:^|[ (,])stride[:=]({_I})(?=[ ,)]|$)")
_LABEL_STRIDE = re.compile(rf" stride[:=]({_I})(?= |$)")
_DIAGNOSTIC = re.compile(r"(?i)diagnostic|pre-quant|pre_quant|post_ema|post-ema")

# --- run starts, source detection, subset markers ---------------------------------------------
_RUN_START = re.compile(
    r"^(?:Running Python |Hyperparameters:$|--- Hyperparameters ---$|seed:[0-9]+$|val_bpb:enabled "
    r"|logs/[\w.-]+\.txt$|LEGENDRE GPT)"
)
# lines only a running program prints (progress, nvidia-smi); source never starts before the last one
_LOGLIKE = re.compile(
    r"^(?:step:[0-9]+/[0-9]+ |[0-9]+/[0-9]+ (?:train_loss|val_loss): |warmup_step|stopping_early: "
    r"|Running Python |Running PyTorch |Hyperparameters:$|--- Hyperparameters ---$|\||\+-)"
)
_PY_START = re.compile(
    r"^(?:#|[rRbBuU]?\"\"\"|[rRbBuU]?'''|import \w|from [\w.]+ import |def \w|class \w|@\w|if __name__)"
)
_PY_CORE = re.compile(r"^\s*(?:import \w|from [\w.]+ import |def \w|class \w)")
_SUBSET = re.compile(
    r"(?i)subset|val_tokens?_limit|eval_tokens?_limit|max_val_tokens|val_max_tokens|\(limited\)"
)
_ZERO = re.compile(r"0+(?:\.0+)?")
_OFF_WORDS = frozenset({"", "false", "none", "off", "no"})

# file-name seed fallbacks, most specific first
_NAME_SEED = (
    re.compile(r"seed[-_]?([0-9]+)", re.IGNORECASE),
    re.compile(r"_s([0-9]+)(?=[._-]|$)"),
    re.compile(r"_log_([0-9]+)(?=\.)"),
)

_CIPRIAN_LABELS = {
    "final_ternary_roundtrip", "final_binary_roundtrip", "final_xnor_roundtrip",
    "final_roundtrip", "final_temped", "final_sliding",
}
_FAMILY_ORDER = (
    "legendre", "dgattention", "ciprian", "varlen-phased", "timed-eval",
    "march-sliding", "int6-ttt", "root-sliding", "root",
)
