"""The gauntlet: run a submission's own script in the sandbox on synthetic data and test what it reports.

The decisive test (EVALUE_RANDOM_STREAM). The validation stream is i.i.d. uniform over the V' ids that
are not special pieces. For any predictor that is causal (p_t depends only on tokens before t) and
normalized (sum over the vocabulary <= 1), however adaptive (caches, test-time training, mixers), the
likelihood ratio prod_t p_t(x_t) / (1/V') is a non-negative supermartingale with mean <= 1. By Ville's
inequality, P(total log-likelihood advantage >= a) <= e^-a. So if the script's reported val_loss L on N
scored targets (N_r of them random) satisfies

    A = N_r * ln V'  -  N * L   >  a,

then either a 1-in-e^a event happened or the evaluation is not a causal normalized single pass
(C1-C4). BOS targets at fixed positions are excluded from N_r (their loss still counts, which only
lowers A). The printed val_loss is rounded, so A is computed with L + half a unit of its last printed
decimal (conservative). With k evaluation lines tested, the threshold is a = ln(k / alpha) (union
bound); the p-value is min(1, k * e^-A).

The other stages (decode, import, hyperparameters, model, forward, train steps, the script's own
main with its training, serialization and evaluation, log parsing) are timed and reported so a
reviewer sees how far the script got on a CPU; a stage that needs a GPU is reported as such.

The gauntlet's stages, e-value numbers and flip test (~580 lines), in the order they run.
"""

from __future__ import annotations

import math
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable

from auditor.analysis.envdefaults import ENV_NAME, run_configuration
from auditor.core.model import Submission
from auditor.core.observations import STAGE_STATUSES as STATUSES
from auditor.core.errors import SandboxUnavailable
from auditor.core.observations import GauntletObservation, LimitStop, NetworkAttempt, Stage
from auditor.sandbox import isolation as iso
from auditor.sandbox.sandbox import Limits, Sandbox, SandboxRun, human_amount, isolation_mode
from auditor.sandbox.synth import SynthData, expected_vocab, make_data

ALPHA = 1e-6  # false-alarm probability of the e-value test (per submission)
CHILD_STAGES = ("import", "hyperparameters", "model", "forward", "train_steps")
_FINAL_RE = re.compile(r"val_loss[:=]\s*(-?[0-9]+(?:\.([0-9]+))?)")

# Knobs most record scripts read (runtime_surface.md): shrink the run to seconds on a CPU.
SHRINK_ENV = {
    "ITERATIONS": "6", "WARMUP_STEPS": "1", "MAX_WALLCLOCK_SECONDS": "60", "TRAIN_BATCH_TOKENS": "8192",
    "TRAIN_SEQ_LEN": "128", "EVAL_SEQ_LEN": "128", "EVAL_STRIDE": "64", "VAL_BATCH_SIZE": "8192",
    "VAL_BATCH_TOKENS": "8192", "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "1", "NUM_LAYERS": "2",
    "MODEL_DIM": "64", "NUM_HEADS": "2", "NUM_KV_HEADS": "1", "MLP_MULT": "2", "NUM_LOOPS": "1",
    "XSA_LAST_N": "1", "GPTQ_CALIBRATION_BATCHES": "1", "GPTQ_RESERVE_SECONDS": "0", "TTT_EPOCHS": "1",
    "TTT_CHUNK_TOKENS": "8192", "TTT_BATCH_SEQS": "4", "BIGRAM_VOCAB_SIZE": "256", "NGRAM_BUCKETS": "4096",
    "NGRAM_TABLE_SIZE": "4096", "NGRAM_HASH_SIZE": "4096", "RUN_ID": "gauntlet", "SEED": "1337",
    # layer-indexed knobs must name layers that exist once NUM_LAYERS is 2 (depth recurrence, value
    # embeddings, parallel residuals), and a separate embedding width (either spelling) must shrink with the model
    "LOOP_START": "0", "LOOP_END": "1", "VE_LAYERS": "1", "PARALLEL_RESIDUAL_START": "1", "EMBEDDING_DIM": "64",
    "EMBED_DIM": "64",
}
_EPOCHS = re.compile(r"_EPOCHS$")
_HASH_TABLE = re.compile(r"(BUCKETS|HASH_SIZE|TABLE_SIZE)$")
HASH_BUCKETS = "4096"  # 65,536 synthetic targets / 4,096 buckets = 16 per bucket, as ~62M tokens in 4M buckets
_CHUNK = re.compile(r"_CHUNK_TOKENS$")
CHUNK_TOKENS = SHRINK_ENV["TTT_CHUNK_TOKENS"]  # 8 chunks of the synthetic stream, as TTT_CHUNK_TOKENS
_WINDOW_PIECE = re.compile(r"_CHUNK_SIZE$")
WINDOW_PIECE = "64"  # a piece of an evaluation window: half the shrunk EVAL_SEQ_LEN


def script_shrink_env(text: str | None) -> dict[str, str]:
    """Knobs the script itself names that SHRINK_ENV cannot list one by one:
      * every `*_EPOCHS` it reads from the environment is 1 (a test-time or pre-quantisation training loop
        over the whole validation stream, once, is what the probes need; 21 epochs on a CPU is a timeout);
      * every hashed table size (`*BUCKETS`, `*HASH_SIZE`, `*TABLE_SIZE`) is 4,096, which keeps the load
        factor of the full run: a target-keyed lookup collides here as it does on the real validation set
        (with 4M buckets for 65k tokens it would never fire);
      * every chunk of the stream (`*_CHUNK_TOKENS`) is 8,192 tokens, as TTT_CHUNK_TOKENS: a cache or a
        TTT updated between chunks must see several chunks of the 65k-token stream, as the full run sees
        hundreds (one 262,144-token chunk would leave the cache empty while it scores);
      * every piece of a window (`*_CHUNK_SIZE`) is 64 tokens, half the shrunk EVAL_SEQ_LEN (a preset's
        2,048 would no longer fit the window)."""
    out = {}
    for name in sorted(set(ENV_NAME.findall(text or ""))):
        if name in SHRINK_ENV:
            continue
        if _EPOCHS.search(name):
            out[name] = "1"
        elif _HASH_TABLE.search(name):
            out[name] = HASH_BUCKETS
        elif _CHUNK.search(name):
            out[name] = CHUNK_TOKENS
        elif _WINDOW_PIECE.search(name):
            out[name] = WINDOW_PIECE
    return out


# Record settings that count or index layers (OUTER_LAYERS=2, RECUR_START=4), or size a piece of a window
# (TTT_CHUNK_SIZE=2048 must fit EVAL_SEQ_LEN), would contradict the shrunk model and sequence length: the
# shrink owns them, so they are not applied.
_DEPTH_KNOB = re.compile(r"LAYER|LOOP|DEPTH|RECUR|_CHUNK_SIZE$")


# The flip test compares two runs: the records' LR schedules follow the elapsed fraction of the
# wall-clock cap, which differs between runs; without a cap they follow the step count (ITERATIONS).
FLIP_ENV = {"MAX_WALLCLOCK_SECONDS": "0"}


# ---------------------------------------------------------------------------------- the e-value test

def evalue_test(val_loss: float, n_targets: int, n_bos: int, v_prime: int, decimals: int | None,
                k_tests: int = 1, alpha: float = ALPHA) -> dict[str, Any]:
    """Ville bound on a reported mean loss over a uniform random stream (see module docstring)."""
    slack = 0.0 if decimals is None else 0.5 * 10.0 ** (-decimals)
    n_random = n_targets - n_bos
    advantage = n_random * math.log(v_prime) - n_targets * (val_loss + slack)
    bound = math.log(max(1, k_tests) / alpha)
    log10_p = min(0.0, (math.log(max(1, k_tests)) - advantage) / math.log(10))
    return {
        "val_loss": val_loss,
        "rounding_slack": slack,
        "n_targets": n_targets,
        "n_random": n_random,
        "v_prime": v_prime,
        "ln_v_prime": math.log(v_prime),
        "advantage_nats": advantage,
        "advantage_per_token": advantage / n_targets if n_targets else 0.0,
        "bound_nats": bound,
        "alpha": alpha,
        "k_tests": k_tests,
        "log10_p_value": log10_p,
        "p_value": 10.0 ** log10_p,
        "passed": advantage <= bound,
    }


def control_run(data: SynthData, steps: int = 8, device: str = "cpu") -> dict[str, Any]:
    """The same test against the reference model and evaluator (trusted code, run in-process): a
    causal normalized predictor that has just been trained on the synthetic train shards must pass."""
    import numpy as np
    import torch

    from reference_impl.bpb import build_sentencepiece_luts
    from reference_impl.data import list_shards, load_validation_tokens, read_shard
    from reference_impl.evaluate import eval_nonoverlap
    from reference_impl.model import GPT, GPTConfig
    from reference_impl.tokenizer import load as load_sp

    t0 = time.monotonic()
    torch.manual_seed(0)
    seq = 128
    model = GPT(GPTConfig(vocab_size=data.vocab_size, num_layers=1, model_dim=16, num_heads=2, num_kv_heads=1)).to(device)
    train = np.concatenate([read_shard(f) for f in list_shards(str(data.dataset_dir), "train")]).astype(np.int64)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for i in range(steps):
        start = (i * 8 * seq) % (train.size - 8 * seq - 1)
        chunk = torch.as_tensor(train[start:start + 8 * seq + 1])
        x, y = chunk[:-1].reshape(8, seq).to(device), chunk[1:].reshape(8, seq).to(device)
        loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    val = load_validation_tokens(str(data.dataset_dir), seq)
    luts = build_sentencepiece_luts(load_sp(str(data.tokenizer_path)), data.vocab_size)
    res = eval_nonoverlap(model, val, seq, luts, device=device, batch_seqs=64)
    test = evalue_test(res.val_loss, res.tokens, data.bos_targets(res.tokens), data.v_prime, None)
    test.update(train_steps=steps, last_train_loss=round(loss.item(), 4), seconds=round(time.monotonic() - t0, 1))
    return test


# ---------------------------------------------------------------------------------- orchestration

def _has_main_guard(text: str | None) -> bool:
    return bool(text) and re.search(r"""__name__\s*==\s*['"]__main__['"]""", text) is not None


def _decode_stage(sub: Submission) -> Stage:
    entry = sub.entry_point
    if entry is None:
        return Stage("decode", "skipped", detail="no entry-point script (train_gpt.py or train*.py)")
    if entry.decode_error:
        return Stage("decode", "fail", detail=f"{entry.path}: {entry.decode_error}")
    if not (entry.text or "").strip():
        return Stage("decode", "fail", detail=f"{entry.path} is empty ({entry.shipped_bytes} bytes): nothing to run")
    if entry.stub:
        return Stage("decode", "pass", detail=f"{entry.path}: {entry.stub} stub, {entry.layers} layer(s), "
                                              f"{len((entry.text or '').encode())} decoded bytes")
    return Stage("decode", "skipped", detail=f"{entry.path} is plain source (not a self-extracting stub)")


def _events_of(run: SandboxRun, kind: str) -> list[dict]:
    return [e for e in run.events if e.get("event") == kind]


def _child_stages(run: SandboxRun) -> dict[str, Stage]:
    out: dict[str, Stage] = {}
    for e in _events_of(run, "stage"):
        name = str(e.get("stage"))
        status = e.get("status") if e.get("status") in STATUSES else "fail"
        data = {k: v for k, v in e.items() if k not in ("event", "stage", "status", "detail", "seconds", "phase")}
        out[name] = Stage(name, status, float(e.get("seconds") or 0.0), str(e.get("detail") or "")[:400], data)
    started = [str(e.get("stage")) for e in _events_of(run, "stage_start")]
    for name in started:
        if name not in out:  # started and never finished: the process died or was killed in it
            last = [ln for ln in run.stderr.strip().splitlines() if ln.strip()][-1:] if run.returncode else []
            why = (f"stopped by the sandbox: {run.limit_hit}" if run.limit_hit else
                   f"the process ended inside this stage (exit status {run.returncode})")
            out[name] = Stage(name, "fail", run.wall_s, why + (f" ({last[0].strip()[:200]})" if last else ""),
                              {"stderr_tail": run.stderr[-1500:]})
    return out


def _phases_reached(run: SandboxRun) -> list[str]:
    return [str(e.get("phase")) for e in _events_of(run, "phase")]


def _parse_output(run: SandboxRun):
    from auditor.load.logparse import parse_log

    runs = []
    try:
        runs = [r for r in parse_log("sandbox-stdout", run.stdout) if r.phases]
        for rel, text in sorted(run.logs.items()):
            if not runs:
                runs = [r for r in parse_log(rel, text) if r.phases]
    except (RecursionError, MemoryError, ValueError):
        return None
    return runs[-1] if runs else None


def _decimals_of(text: str | None, value: float) -> int:
    """Decimals the run printed (its rounding is counted against the test); from the value itself
    when the line text is unavailable."""
    m = _FINAL_RE.search(text or "")
    if m:
        return len(m.group(2) or "")
    r = repr(float(value))
    return len(r.split(".", 1)[1]) if "." in r and "e" not in r else 0


def final_phases(events: list[dict]) -> list[str]:
    """Phase of each event, re-derived after the run: once the script's main starts, `train` until the
    first model-file write, `serialize` until the first read-back that follows the LAST model write,
    `eval` from there on (from right after the last write when the script never reads its model file
    back). Before main, the hook's own phase (setup / probe) stands."""
    start = next((i for i, e in enumerate(events) if e.get("event") == "phase" and e.get("phase") == "train"), None)
    if start is None:
        return [str(e.get("phase")) for e in events]
    writes = [i for i, e in enumerate(events) if i > start and e.get("artifact") == "write"]
    first_write = writes[0] if writes else None
    eval_start = None
    if writes:  # no read-back (model kept in memory): everything after the final write is evaluation
        eval_start = next((i for i, e in enumerate(events) if i > writes[-1] and e.get("artifact") == "read"),
                          writes[-1] + 1)
    out = []
    for i, e in enumerate(events):
        if i < start:
            out.append(str(e.get("phase")))
        elif eval_start is not None and i >= eval_start:
            out.append("eval")
        elif first_write is not None and i >= first_write:
            out.append("serialize")
        else:
            out.append("train")
    return out


def _with_phases(run: SandboxRun, kind: str) -> list[dict]:
    return [dict(e, phase=p) for e, p in zip(run.events, final_phases(run.events)) if e.get("event") == kind]


def _network_attempts(run: SandboxRun) -> list[NetworkAttempt]:
    """Each distinct attempt once: a urllib request later stopped at the socket level is one attempt."""
    out: list[NetworkAttempt] = []
    seen = set()
    events = _with_phases(run, "network")
    urls = [str(e.get("target")) for e in events if e.get("call") == "urllib.Request"]
    socket_phases = {e.get("phase") for e in events if e.get("call") != "urllib.Request"}
    for e in events:
        if e.get("call") == "urllib.Request" and e.get("phase") in socket_phases:
            continue  # the same attempt, seen again (and stopped) at the socket level
        key = (e.get("call"), e.get("target"), e.get("phase"))
        if key in seen:
            continue
        seen.add(key)
        out.append(NetworkAttempt(str(e.get("call")), str(e.get("target")), str(e.get("phase")),
                                  bool(e.get("blocked")), urls[:5]))
        if len(out) >= 20:
            break
    return out


def _train_shards_at_eval(run: SandboxRun) -> list[str]:
    opens = _with_phases(run, "open")
    return sorted({str(e.get("path")) for e in opens if e.get("kind") == "train_shard" and e.get("phase") == "eval"})


def _evalue_numbers(obs: GauntletObservation, run: SandboxRun | None, data: SynthData | None,
                    main_stage: Stage | None) -> None:
    """Fill obs.evalue with the test on every final line the run printed, or obs.incomplete with why not."""
    parsed = _parse_output(run) if run is not None else None
    finals = [p for p in (parsed.phases if parsed else []) if p.is_final]
    if data is None or run is None or not finals:
        why = ("the script needs a GPU for part of its run (see the stage table); rerun with --device cuda"
               if obs.needs_gpu else
               "the run stopped by the sandbox: " + (run.limit_hit or "") if run is not None and run.limit_hit else
               "the run printed no final val_loss line the log parser recognises")
        if main_stage is not None and main_stage.detail and not obs.needs_gpu and main_stage.detail not in why:
            why += f" ({main_stage.detail[:200]})"
        obs.incomplete = why
        return
    n_targets = data.val_tokens - 1
    note = "scored targets = synthetic stream length - 1"
    if parsed.val_tokens is not None and 0 < int(parsed.val_tokens.value) <= n_targets:
        n_targets = int(parsed.val_tokens.value)
        note = "scored targets read from the run's own val_tokens line"
    mixes = _mixture_lines(run, parsed)
    k_tests = len(finals) + len(mixes)
    tests = []
    for p in finals:
        t = evalue_test(p.val_loss, n_targets, data.bos_targets(n_targets), data.v_prime,
                        _decimals_of(p.text, p.val_loss), k_tests=k_tests)
        t.update(label=p.label, val_bpb=p.val_bpb, line=p.line)
        tests.append(t)
    for label, loss, slack, bpb, line in mixes:
        t = evalue_test(loss + slack, n_targets, data.bos_targets(n_targets), data.v_prime, None, k_tests=k_tests)
        t.update(label=label, val_bpb=bpb, line=line, val_loss=loss, rounding_slack=slack)
        tests.append(t)
    worst = max(tests, key=lambda t: t["advantage_nats"])
    obs.evalue = {"tests": tests, "worst": worst, "n_note": note}


def _mixture_lines(run: SandboxRun, parsed) -> list[tuple[str, float, float, float, int]]:
    """Byte-mixture figures the run printed as bits per byte only (`ppm_mixer val_bpb:…`), as nats per
    token through the run's own ratio of its score line (val_loss / (val_bpb ln 2) = bytes per token, as
    the script counts them): (label, implied val_loss, rounding slack, bpb, line). A mixture over bytes
    is tested like any other final figure: on random tokens it cannot beat ln V' either."""
    from auditor.load.mixlines import mixture_scores

    score = parsed.score_phase if parsed is not None else None
    if score is None or not score.val_loss or not score.val_bpb:
        return []
    bytes_per_token = score.val_loss / (score.val_bpb * math.log(2))
    seen = {p.line for p in parsed.phases}
    out = []
    for fig in mixture_scores("sandbox-stdout", run.stdout)[:20]:
        if fig.line in seen:
            continue  # a line the log parser already tests with its own val_loss
        printed = [m for m in re.finditer(r"\d+\.(\d+)", fig.text) if float(m.group(0)) == fig.value]
        decimals = len(printed[0].group(1)) if printed else len(repr(float(fig.value)).split(".")[1])
        slack = 0.5 * 10.0 ** (-decimals) * math.log(2) * bytes_per_token
        label = (fig.text.split()[0] if fig.text.split() else "mixture")[:40] + " (bits per byte only)"
        out.append((label, fig.value * math.log(2) * bytes_per_token, slack, fig.value, fig.line))
    return out


def _evalue_stage(obs: GauntletObservation) -> Stage:
    if obs.evalue is None:
        return Stage("e-value test", "skipped", detail=f"random-stream test not completed: {obs.incomplete}"[:300])
    w = obs.evalue["worst"]
    detail = (f"{w['label']}: val_loss {w['val_loss']:.6g} on N={w['n_targets']:,} targets; advantage "
              f"{w['advantage_nats']:.1f} nats vs bound {w['bound_nats']:.1f}")
    return Stage("e-value test", "pass" if w["passed"] else "fail", detail=detail,
                 data={k: w[k] for k in ("label", "val_loss", "n_targets", "advantage_nats", "bound_nats", "passed")})


def _capture_stage(obs: GauntletObservation, run: SandboxRun, data: SynthData, parsed,
                   arrays: list | None = None) -> Stage:
    """Per-position statistics from the losses the script's evaluation computed (auditor/sandbox/capture.py)."""
    from auditor.sandbox.capture import analyse
    from reference_impl.data import list_shards, read_shard

    t0 = time.monotonic()
    score = parsed.score_phase if parsed is not None else None
    printed = float(score.val_loss) if score is not None and score.val_loss is not None else None
    decimals = _decimals_of(score.text, printed) if printed is not None else None
    try:
        stream = read_shard(list_shards(str(data.dataset_dir), "val")[0])
        cap = analyse(run.events, stream, data.bos_every, data.v_prime, printed, decimals, arrays=arrays)
    except (ValueError, OSError, IndexError, MemoryError) as exc:
        return Stage("per-position capture", "fail", time.monotonic() - t0, f"{type(exc).__name__}: {exc}"[:300])
    obs.capture = cap
    if cap is None:
        return Stage("per-position capture", "skipped", time.monotonic() - t0,
                     "no per-token loss was captured (no wrapped loss primitive ran under no_grad in the script's main)")
    cov, ev, claim = cap["coverage"] or {}, cap["evalue"] or {}, cap["claim"]
    detail = (f"{cap['located']:,} of {cap['captured']:,} captured losses located in the stream, "
              f"{len(cap['passes'])} pass(es); claimed pass: {cov.get('scored', 0):,} of {cap['n_positions']:,} "
              f"positions scored, {cov.get('scored_twice', 0):,} twice; worst pass advantage "
              f"{ev.get('advantage_nats', 0):.1f} nats vs bound {ev.get('bound_nats', 0):.1f}")
    if claim is not None:
        detail += (f"; printed val_loss {claim['printed_val_loss']} "
                   + ("= " if claim["matches"] else "!= ") + f"pass {claim['pass']} {claim['statistic']} "
                   f"(|diff| {claim['difference']:.2g})")
    return Stage("per-position capture", "pass" if cap["located"] else "skipped", time.monotonic() - t0, detail,
                 {"passes": len(cap["passes"]), "located": cap["located"]})


def _flip_stage(obs: GauntletObservation, run: SandboxRun, events_b: list[dict], data: SynthData, k: int,
                stream_b, arrays_a: list) -> Stage:
    """The flip test (shims/gauntlet_flip.py): the run forked at its first loss on validation targets;
    run B went on with the stream re-drawn from position k = N/2 + 1 on. Every captured pass's losses
    are compared on the positions < k (auditor/sandbox/capture.flip_compare); the training before the
    fork ran once."""
    from auditor.sandbox.capture import analyse, first_differing_call, flip_compare
    from reference_impl.data import list_shards, read_shard

    forks = _with_phases(run, "flip_fork")
    end = next((e for e in events_b if e.get("event") == "flip_end"), None)
    secs = (float(end["t"]) - float(forks[0]["t"])) if forks and end and isinstance(end.get("t"), (int, float)) \
        and isinstance(forks[0].get("t"), (int, float)) else 0.0
    if not forks:
        obs.flip = {"k": k, "incomplete": "no wrapped loss primitive ran on validation targets, so the run had no "
                                          "point to fork at (losses computed outside them: numpy / C mixers?)"}
        return Stage("flip test", "skipped", 0.0, obs.flip["incomplete"])
    fork = forks[0]
    before = int(fork.get("calls_before") or 0)
    shared = [e for e in run.events if e.get("event") == "capture" and int(e.get("call", -1)) < before]
    own = [e for e in events_b if e.get("event") == "capture"]
    arrays_b: list = []
    analyse(shared + own, stream_b, data.bos_every, data.v_prime, arrays=arrays_b)
    fork_info = {"position": int(fork.get("position") or 0), "phase": str(fork.get("phase")),
                 "grad": bool(fork.get("grad")), "captured_calls_before": before}
    trained = _with_phases(run, "flip_val_grad")
    if trained:  # the first loss on validation targets taken with gradients (run A)
        fork_info["val_training"] = {"position": int(trained[0].get("position") or 0),
                                     "phase": str(trained[0].get("phase")),
                                     "captured_calls_before": int(trained[0].get("calls_before") or 0)}
    swap = next((e for e in events_b if e.get("event") == "flip_swap"), None)
    if swap is not None:
        fork_info["rewritten"] = {x: int(swap.get(x) or 0) for x in ("tensors", "arrays", "elements")}
    if end is None or not arrays_b:
        why = (run.limit_hit or "run B ended before the end of the script's main") if end is None else \
            "run B captured no per-token loss"
        obs.flip = {"k": k, "incomplete": why, "fork": fork_info, "seconds": round(secs, 1)}
        return Stage("flip test", "skipped", secs, f"run B incomplete: {why}"[:300])
    res = flip_compare(arrays_a, arrays_b, k)
    res.update(seconds=round(secs, 1), fork=fork_info)
    stream_a = read_shard(list_shards(str(data.dataset_dir), "val")[0])
    call = first_differing_call(run.events, shared + own, stream_a, k)
    if call is not None:
        phases = {int(e.get("call", -1)): str(e.get("phase")) for e in _with_phases(run, "capture")}
        res["first_diff_call"] = {"call": call, "phase": phases.get(call, "?")}
    obs.flip = res
    where = (f"forked at the first loss on validation targets (stream position {fork_info['position']:,}, "
             f"{fork_info['phase']} phase, gradients {'on' if fork_info['grad'] else 'off'})")
    if res["first_diff"] is None:
        detail = (f"k={k:,}: {res['compared']:,} position-scores before k compared over {len(res['passes'])} "
                  f"pass(es): all equal within {res['tolerance']:g} nats; {where}")
    else:
        p = res["passes"][res["first_pass"]]
        detail = (f"k={k:,}: first differing position {res['first_diff']:,} (pass {res['first_pass']}: "
                  f"{p['differing']:,} of {p['compared']:,} positions differ, max |diff| {p['max_abs_diff']:.3g}); "
                  f"{where}")
    return Stage("flip test", "pass", secs, detail, {"first_diff": res["first_diff"], "k": k})


def _flip_streams(box: Sandbox, data: SynthData):
    """(k, stream B, the run's flip config): stream B is written next to the data, read-only to the run."""
    from reference_impl.data import list_shards, read_shard, write_shard
    from auditor.sandbox.synth import redrawn

    path_a = list_shards(str(data.dataset_dir), "val")[0]
    stream_a = read_shard(path_a)
    k = (data.val_tokens - 1) // 2 + 1  # not a BOS position (those stay BOS in both streams)
    stream_b = redrawn(data, stream_a, k)
    path_b = Path(box.data_dir) / "flip_stream_b.bin"
    write_shard(str(path_b), stream_b)
    return k, stream_b, {"k": k, "stream_a": str(path_a), "stream_b": str(path_b)}


def run_gauntlet(sub: Submission, device: str = "cpu", timeout: float = 120.0, limits: Limits | None = None,
                 control: bool = True, progress: Callable[[str], None] | None = None,
                 sandbox_prefix: str = "auditor-gauntlet-", unsafe: bool = False,
                 flip: bool = False) -> GauntletObservation:  # the gauntlet's stages in order, each recorded as it ends
    """Everything the issue's stage table needs, for one submission. Never raises for bad submissions;
    raises SandboxUnavailable (one line, exit 2) where no OS-level isolation exists and `unsafe` is off."""
    mode = isolation_mode()
    if mode != "bwrap" and not unsafe:
        raise SandboxUnavailable(f"the gauntlet needs OS-level isolation: {iso.probe()[1]}; "
                                 "pass --unsafe-no-sandbox to run the script without it")
    say = progress or (lambda msg: print(f"gauntlet: {msg}", file=sys.stderr))
    limits = limits or Limits()
    limits.wall_s = float(timeout)
    limits.cpu_s = int(max(limits.cpu_s, timeout * max(1, limits.threads) + 30))
    if device == "cuda":  # the CUDA driver reserves far more address space than it uses
        import resource

        limits.memory_bytes = resource.RLIM_INFINITY
    stages: list[Stage] = [_decode_stage(sub)]
    entry = sub.entry_point
    result = GauntletObservation(stages, {"mode": mode}, device, unsafe=mode != "bwrap")
    if entry is None:
        _evalue_numbers(result, None, None, None)
        return result
    vocab, vocab_note = expected_vocab(entry.text)
    result.vocab_size = vocab
    with Sandbox(prefix=sandbox_prefix, disk_bytes=limits.disk_bytes) as box:
        t0 = time.monotonic()
        try:
            data = make_data(box.data_dir, vocab)  # parent-owned; read-only to the run, read by the control
            stages.append(Stage("synthetic data", "pass", time.monotonic() - t0,
                                f"vocab {vocab} ({vocab_note}); {data.val_tokens - 1:,} validation targets, "
                                f"V'={data.v_prime:,}; BOS every {data.bos_every} tokens",
                                {"vocab_size": vocab, "val_targets": data.val_tokens - 1, "v_prime": data.v_prime}))
        except (ValueError, OSError, RuntimeError) as exc:
            stages.append(Stage("synthetic data", "fail", time.monotonic() - t0, f"{type(exc).__name__}: {exc}"))
            _evalue_numbers(result, None, None, None)
            return result
        box.copy_submission(sub.root, sub.files)
        py_dir = box.install_shims()
        flip_k, stream_b, flip_cfg = None, None, None
        if flip and device == "cpu":  # the fork rides on the CPU shims' loss wrappers
            flip_k, stream_b, flip_cfg = _flip_streams(box, data)
        record_cfg = {var: got for var, got in run_configuration(entry.text, sub.readme, sub.log_config).items()
                      if not _DEPTH_KNOB.search(var)}  # what the record says it ran; the shrink owns the depth
        env = {var: value for var, (value, _) in record_cfg.items()}
        env.update(SHRINK_ENV, **script_shrink_env(entry.text), **(FLIP_ENV if flip_cfg else {}))
        kept = [f"{var}={value} ({src})" for var, (value, src) in sorted(record_cfg.items())
                if env.get(var) == value and var not in SHRINK_ENV]
        if kept:
            result.notes.append("the record's own configuration, applied before the shrink knobs: " + "; ".join(kept[:12])
                                + (f"; and {len(kept) - 12} more" if len(kept) > 12 else ""))
        env.update(DATA_DIR=str(data.data_dir), DATA_PATH=str(data.dataset_dir),
                   TOKENIZER_PATH=str(data.tokenizer_path), VOCAB_SIZE=str(vocab))
        result.env = {k: (v if not v.startswith(str(box.root)) else v.replace(str(box.root), "$SANDBOX"))
                      for k, v in sorted(env.items())}
        config = {"script": str(box.run_dir / entry.path), "data_dir": str(data.data_dir), "device": device,
                  "vocab_size": vocab, "has_main_guard": _has_main_guard(entry.text)}
        if device == "cpu":  # the capture sends only calls that score the validation stream
            from reference_impl.data import list_shards

            config["val_stream"] = list_shards(str(data.dataset_dir), "val")[0]
        if flip_cfg:
            config["flip"] = flip_cfg
        say(f"running {entry.path} in the sandbox ({device}, timeout {timeout:.0f}s"
            + (f", flip test forks at the first validation loss, k={flip_k:,})" if flip_cfg else ")"))
        devices = sorted(str(p) for p in Path("/dev").glob("nvidia*")) if device == "cuda" else []
        run = box.run([sys.executable, "-X", "utf8", str(py_dir / "gauntlet_driver.py")], env, limits, config,
                      shims=(device == "cpu"), on_progress=lambda s: say(f"still running ({s:.0f}s)"),
                      unsafe=unsafe, devices=devices)
        events_b = [e for e in run.events if e.get("flip") == "b"]  # the flip test's run B (a forked child)
        run.events = [e for e in run.events if e.get("flip") != "b"]
        result.isolation = run.isolation
        result.stopped_by = _stopped_by(run)
        result.missing = _missing_evidence(run)
        result.notes.extend(box.copy_notes)
        child = _child_stages(run)
        for name in CHILD_STAGES:
            stages.append(child.get(name) or Stage(name, "skipped", detail="the run never reached this stage"))
        main = child.get("main")
        stages.extend(_main_stages(run, main, entry.shipped_bytes))
        parsed = _parse_output(run)
        if parsed is None:
            stages.append(Stage("log parsing", "fail" if main and main.status == "pass" else "skipped",
                                detail="no final `val_loss … val_bpb …` line in the run's stdout or logs"))
        else:
            score = parsed.score_phase
            stages.append(Stage("log parsing", "pass", detail=f"{len(parsed.phases)} metric line(s); score: "
                                f"{score.label} val_loss {score.val_loss} val_bpb {score.val_bpb}" if score else "",
                                data={"family": parsed.family, "phases": [p.to_json() for p in parsed.phases]}))
        result.network = _network_attempts(run)
        result.train_shards_at_eval = _train_shards_at_eval(run)
        _evalue_numbers(result, run, data, main)
        stages.append(_evalue_stage(result))
        arrays: list = []
        stages.append(_capture_stage(result, run, data, parsed, arrays))
        if flip_cfg and arrays:
            stages.append(_flip_stage(result, run, events_b, data, flip_k, stream_b, arrays))
        late = sorted({str(e.get("path")).rsplit("/", 1)[-1] for e in _with_phases(run, "open")
                       if e.get("kind") == "train_shard" and e.get("phase") == "serialize"})
        if late:
            result.notes.append("training shards read after the model was first written and before its final "
                                "read-back (post-training calibration?): " + ", ".join(late[:5]) +
                                "; such work must fit in the training time (TRAIN_TIME)")
        shims = sorted({str(e.get("name")) for e in _events_of(run, "shim")})
        if shims:
            result.notes.append("CPU stand-ins the run imported: " + ", ".join(shims) +
                                (" (artifact bytes are LZMA, not zstd: approximate)" if "zstandard" in shims else ""))
        procs = sorted({str(e.get("target"))[:120] for e in _events_of(run, "process")})
        if procs:
            result.notes.append("programs/processes started by the run: " + "; ".join(procs[:10]))
        if run.strays:
            result.notes.append("files the run left in shared temp folders (removed): " + ", ".join(run.strays[:10]))
        if run.limit_hit:
            result.notes.append(f"the run was stopped by the sandbox: {run.limit_hit} after {run.wall_s:.1f}s")
        _scrub_paths(result, str(box.root))
        if control:
            t1 = time.monotonic()
            try:
                result.control = control_run(data)
                stages.append(Stage("control (reference evaluator)", "pass" if result.control["passed"] else "fail",
                                    time.monotonic() - t1,
                                    f"advantage {result.control['advantage_nats']:.1f} nats vs bound "
                                    f"{result.control['bound_nats']:.1f} (val_loss {result.control['val_loss']:.4f}, "
                                    f"ln V' {result.control['ln_v_prime']:.4f})", dict(result.control)))
            except Exception as exc:  # noqa: BLE001 - trusted code; still report rather than crash
                stages.append(Stage("control (reference evaluator)", "fail", time.monotonic() - t1,
                                    f"{type(exc).__name__}: {str(exc)[:200]}"))
    return result


def _stage_at_end(run: SandboxRun) -> str:
    """The stage running when the run ended: the last one started and never finished; inside the
    script's main, the phase (train / serialize / eval) its last event belongs to."""
    done = {str(e.get("stage")) for e in _events_of(run, "stage")}
    open_ = [str(e.get("stage")) for e in _events_of(run, "stage_start") if str(e.get("stage")) not in done]
    if not open_:
        return "after the last stage" if done else "before the first stage"
    if open_[-1] == "main" and run.events:
        phase = final_phases(run.events)[-1]
        if phase in ("train", "serialize", "eval"):
            return phase
    return open_[-1]


def _stopped_by(run: SandboxRun) -> LimitStop | None:
    if run.limit is not None:
        lim = run.limit
        return LimitStop(lim.kind, human_amount(lim.limit, lim.unit), human_amount(lim.observed, lim.unit), _stage_at_end(run))
    if run.limit_hit and run.limit_hit != "killed (SIGKILL)":
        return LimitStop(run.limit_hit, "", "", _stage_at_end(run))
    return None


def _missing_evidence(run: SandboxRun) -> list[str]:
    """Evidence the parent expected over its socket and never received (a script that recognises the
    sandbox can silence the in-process hook; it cannot make the parent forget that it was silent)."""
    out = []
    if run.returncode is not None and run.hook_connections == 0:
        out.append("no event arrived from the in-process audit hook (it never connected): the stage table, "
                   "network and file evidence of this run are missing")
    elif not _events_of(run, "stage_start"):
        out.append("the audit hook connected but reported no stage")
    else:
        done = {str(e.get("stage")) for e in _events_of(run, "stage")}
        if "main" not in done and run.limit is None and not run.timed_out and run.returncode == 0:
            out.append("the run exited normally without reporting the end of the script's main stage")
    return out


def _phase_times(run: SandboxRun) -> dict[str, float]:
    """Seconds spent in train / serialize / eval, from the hook's timestamps (the last event seen
    closes the last phase when the process was killed)."""
    marks = [(str(e.get("phase")), float(e["t"])) for e in _events_of(run, "phase") if isinstance(e.get("t"), (int, float))]
    ts = [float(e["t"]) for e in run.events if isinstance(e.get("t"), (int, float))]
    if not marks or not ts:
        return {}
    end = max(ts)
    out: dict[str, float] = {}
    for (name, t), nxt in zip(marks, [m[1] for m in marks[1:]] + [end]):
        out[name] = out.get(name, 0.0) + max(0.0, nxt - t)
    return out


def _scrub_paths(result: GauntletObservation, root: str) -> None:
    """The sandbox's temporary path changes every run; reports show `$SANDBOX` so that they differ
    only where the run itself did."""
    import json as _json

    for st in result.stages:
        st.detail = st.detail.replace(root, "$SANDBOX")
        st.data = _json.loads(_json.dumps(st.data, default=str).replace(root, "$SANDBOX"))
    result.notes = [n.replace(root, "$SANDBOX") for n in result.notes]
    if result.incomplete:
        result.incomplete = result.incomplete.replace(root, "$SANDBOX")
    for a in result.network:
        a.target = a.target.replace(root, "$SANDBOX")


def _main_stages(run: SandboxRun, main: Stage | None, code_bytes: int) -> list[Stage]:
    """Split the script's own main run into train / serialize / eval by the phases the hook saw."""
    reached = _phases_reached(run)
    times = _phase_times(run)
    if main is None:
        why = run.limit_hit or "the run ended before the script's main started"
        return [Stage(n, "skipped" if not run.limit_hit else "fail", detail=why) for n in ("train", "serialize", "eval")]
    failed = main.status != "pass"
    written = {e.get("path") for e in _events_of(run, "open") if e.get("artifact") == "write"}
    artifacts = {p: run.files[p] for p in sorted(written) if p in run.files}
    steps = len(re.findall(r"(?m)^step:\d+/\d+ ", run.stdout))
    last = "eval" if "eval" in reached else "serialize" if "serialize" in reached else "train"
    out = []
    for name in ("train", "serialize", "eval"):
        secs = times.get(name, 0.0)
        if name == "train" and steps:
            detail = f"{steps} step line(s) logged"
        elif name == "serialize" and name in reached:
            detail = ", ".join(f"{p}: {n:,} bytes" for p, n in artifacts.items()) + f"; code {code_bytes:,} bytes"
        elif name == "eval" and name in reached:
            detail = "serialized model read back and evaluated"
        elif name == "eval" and "serialize" in reached and not failed:
            reached = reached + ["eval"]
            detail = "evaluated after the final model write (the model file itself was not read back)"
        else:
            detail = ""
        if name == last and failed:
            out.append(Stage(name, main.status, secs, main.detail,
                             {k: main.data[k] for k in ("traceback_tail",) if k in main.data}))
        elif name in reached and (name != last or not failed):
            out.append(Stage(name, "pass", secs, detail, {"artifacts": artifacts, "code_bytes": code_bytes}
                             if name == "serialize" else {}))
        else:
            why = ("not reached: the run failed earlier" if failed else
                   "no model file was written" if name == "serialize" else "the serialized model was never read back")
            out.append(Stage(name, "skipped", 0.0, why))
    return out
