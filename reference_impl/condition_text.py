"""What each condition test of `reference_impl.conditions` sees and cannot see, in the rulebook's words.

Why a separate module without numpy: `auditor conform --help` prints these sentences, and building the CLI's
parser must stay cheap and import nothing heavy (the `auditor run` path must not pull numpy in at start-up).
"""

TITLES = {"C1": "strict causality", "C2": "normalization", "C3": "score before update", "C4": "single pass"}

SEES = {
    "C1": "p_t (the gold score and sampled candidates' scores) does not change when any token after t changes; "
          "for full-distribution predictors also when x_t itself changes",
    "C2": "the sum over all V candidates of p_t(v) is 1 within 1e-6 at sampled positions "
          "(gold-only scorers: by substituting every v at x_t)",
    "C3": "every position is scored before any state update that consumed x_t: the emit/observe order of a "
          "streaming predictor, batch rows against that trace, or the score/consume trace a wrapper reports",
    "C4": "repeated calls agree, no state survives between calls, the score at t does not move when later "
          "content changes at the same length, and a trace scores each position exactly once",
}
CANNOT_SEE = {
    "C1": "side information from outside the stream; future dependence at unprobed positions",
    "C2": "unsampled positions; whether V is the official alphabet (it is the --vocab you pass)",
    "C3": "anything, for a gold-only scorer without a trace (dependence on x_t then shows only as C2); "
          "updates the trace does not report",
    "C4": "a re-scoring that returns identical values; dependence on the stream's length alone "
          "(reported as information: a schedule keyed to the number of chunks, a final partial window)",
}
HOW_TO_TRACE = ("give score a `trace` keyword and call trace.scored(positions) where the record accumulates "
                "a loss and trace.consumed(positions) where its state absorbs tokens (cache update, optimizer "
                "step), or expose a streaming predictor (next_logprobs/observe)")
