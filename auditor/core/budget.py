"""Every bound on the work the auditor does for submission content, stated in one place.

A record folder is written by a stranger who may gain from a tool error, a hung gate or an
out-of-memory kill. Each bound below caps one thing derived from that content, sized so that a
static `auditor run` of any folder takes seconds and well under 1 GiB, with a wide margin over real
records (largest seen: 233 KB log, 184 KB script, 363 KB of Python in one folder, AST 22 levels deep
and 34,000 tokens, longest line 36,000 characters). When a bound is hit the audit goes on and the
review names the file that was not fully analysed and why; it is never a silent skip and never a
tool error.

Sizes of evaluated values are checked *before* computing them (predicted from the operands), not
after: `'a' * 10**9` must never be built to find out that it is too big.

The modules that apply a bound import it from here (some keep their old public name as an alias).
"""

from __future__ import annotations

MiB = 1024 * 1024

# ---- reading the folder (auditor/loader.py) ------------------------------------------------------
MAX_FILES = 5_000  # files listed; the rest are not read
MAX_DEPTH = 8  # folder nesting; deeper folders are not read
FILE_BYTES = 16 * MiB  # a log or code file larger than this is not read
README_BYTES = 2 * MiB
JSON_BYTES = 4 * MiB  # submission.json and friends
TOTAL_READ_BYTES = 48 * MiB  # everything read from one folder; files past it are not read
LOG_PARSE_BYTES = 8 * MiB  # log text parsed, all logs together; a log past it is parsed up to it

# ---- text scanners ------------------------------------------------------------------------------
# Line scanners (C helpers, logs) are linear in their input: a line longer than this is skipped
# whole (regexes on it could backtrack) and the review says so.
SCAN_LINE_CHARS = 4_096

# ---- Python source ------------------------------------------------------------------------------
# ast.parse costs ~500 bytes of memory per token and is not interruptible, so the token count is
# estimated (linear scan, string literals count as one token) before parsing; the parser itself
# refuses nesting deeper than 200 brackets and guards its C stack. Recursive consumers of the tree
# catch RecursionError per function.
PARSE_SOURCE_BYTES = 4 * MiB  # a "script" larger than this is not parsed at all
PARSE_TOKENS = 400_000  # per parse
DECODE_TOKENS_TOTAL = 600_000  # parsed by the stub decoder, all files of a folder together
NAME_CHARS = 256  # an identifier longer than this (real ones are < 60) makes the file unanalysed:
# name patterns such as `(loss|nll)\w*(sum|total)$` backtrack quadratically over a long one
ANALYSED_CHARS_PER_FILE = 1_000_000  # data-flow analysis costs ~4 s CPU per MB of real code
ANALYSED_CHARS_TOTAL = 1_000_000

# ---- self-extracting stubs (auditor/decode.py) --------------------------------------------------
DECODED_BYTES = 8 * MiB  # any one decoded value (decompression output, concatenation, payload)
BUILT_BYTES = 32 * MiB  # all values the stub decoder builds, all files of a folder together
DECODE_LAYERS = 4
LZMA_MEMLIMIT = 256 * MiB  # xz/lzma stream whose header asks for a larger dictionary (xz -9 needs 65 MiB)
DECODE_CALL_BYTES = 2 * MiB  # charged to BUILT_BYTES up front for every decoding call (at most ~16 per folder)

# ---- static values of configuration (auditor/analysis/envdefaults.py) ----------------------------
VALUE_CHARS = 1 * MiB  # a string/bytes/tuple an env default or constant may evaluate to
VALUE_INT_BITS = 4_096  # an integer it may evaluate to (about 1,230 decimal digits)
EVAL_STEPS = 20_000  # expression nodes visited for one condition or default (names fan out)


def predicted_size(op: str, a: object, b: object) -> int | None:
    """Size (characters, items or, for ints, bits) that `a + b` / `a * b` would have, without
    computing it; None when the operation builds no sequence or integer. Never raises."""
    seq = (str, bytes, bytearray, tuple, list)
    try:
        if op == "add":
            if isinstance(a, seq) and isinstance(b, seq):
                return len(a) + len(b)
            if isinstance(a, int) and isinstance(b, int):
                return max(a.bit_length(), b.bit_length()) + 1
        elif op == "mul":
            if isinstance(a, seq) and isinstance(b, int):
                return len(a) * max(b, 0)
            if isinstance(b, seq) and isinstance(a, int):
                return len(b) * max(a, 0)
            if isinstance(a, int) and isinstance(b, int):
                return a.bit_length() + b.bit_length()
    except (TypeError, OverflowError):
        return None
    return None


_TOKEN = None


def count_tokens(text: str, limit: int = PARSE_TOKENS) -> int:
    """An estimate of the number of Python tokens in `text` (as Python's tokenizer splits valid code,
    or more), counting up to `limit + 1` and stopping there. A string literal or a comment counts as
    one token, a name or number as one, any other character as one.

    O(n) time in the scanned prefix and O(1) memory: every alternative matches at least one
    character and none can fail after a long scan (a string pattern is an unrolled loop over disjoint
    character classes whose closing quote is optional, so an unterminated string ends at its line end,
    or for triple quotes at the end of the text, instead of being rescanned from every later quote)."""
    import re

    global _TOKEN
    if _TOKEN is None:
        _TOKEN = re.compile(
            r'"""[^"\\]*(?:(?:\\.|"(?!""))[^"\\]*)*(?:""")?'
            r"|'''[^'\\]*(?:(?:\\.|'(?!''))[^'\\]*)*(?:''')?"
            r'|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?'
            r"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'?"
            r"|#[^\n]*|\w+|[^\w\s]", re.S)
    n = 0
    for _ in _TOKEN.finditer(text):
        n += 1
        if n > limit:
            break
    return n
