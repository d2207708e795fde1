"""`reference_impl` command line: prepare / train / eval / package.

Bad input gives one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_ERROR = 2

# Hyperparameters exposed as flags (others via --set KEY=VALUE). Defaults are the bundled CPU demo:
# iteration-bound (the 600 s cap is a guard it does not reach), so a rerun takes the same steps and
# learning rates whatever the machine's load.
TRAIN_FLAGS = {
    "iterations": ("ITERATIONS", int, 200),
    "max_seconds": ("MAX_WALLCLOCK_SECONDS", float, 600.0),
    "warmup_steps": ("WARMUP_STEPS", int, 3),
    "warmdown_iters": ("WARMDOWN_ITERS", int, 80),
    "train_batch_tokens": ("TRAIN_BATCH_TOKENS", int, 2048),
    "seq_len": ("TRAIN_SEQ_LEN", int, 128),
    "eval_stride": ("EVAL_STRIDE", int, 64),
    "num_layers": ("NUM_LAYERS", int, 3),
    "model_dim": ("MODEL_DIM", int, 128),
    "num_heads": ("NUM_HEADS", int, 4),
    "num_kv_heads": ("NUM_KV_HEADS", int, 2),
    "optimizer": ("OPTIMIZER", str, "muon"),
    "matrix_lr": ("MATRIX_LR", float, 0.04),
    "embed_lr": ("EMBED_LR", float, 0.03),
    "scalar_lr": ("SCALAR_LR", float, 0.01),
    "quant_scheme": ("QUANT_SCHEME", str, "int8"),
    "compressor": ("COMPRESSOR", str, "zlib"),
}


class CliError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        sys.stderr.write(f"reference_impl: error: {message}\n")
        raise SystemExit(EXIT_ERROR)


def _load_manifest(data_dir: Path) -> dict:
    path = data_dir / "manifest.json"
    if not path.is_file():
        raise CliError(f"{data_dir} has no manifest.json (run `reference_impl prepare` first)")
    return json.loads(path.read_text())


# ---------------------------------------------------------------- prepare

def cmd_prepare(a) -> int:
    from . import text_sources as ts
    from .prepare import prepare_dataset

    if a.source == "austen":
        docs = ts.austen_documents(download=not a.no_download)
    elif a.source == "generated":
        docs = ts.generated_documents(a.num_docs, seed=a.seed)
    else:
        if not a.inputs:
            raise CliError("--source files needs --inputs FILE...")
        missing = [p for p in a.inputs if not Path(p).is_file()]
        if missing:
            raise CliError(f"no such file: {missing[0]}")
        docs = ts.file_documents(a.inputs, per_line=a.per_line)
    if a.max_docs:
        docs = docs[: a.max_docs]
    prepare_dataset(docs, a.out, a.vocab_size, a.val_docs, seed=a.seed, source=a.source,
                    log=lambda m: print(m, file=sys.stderr))
    return 0


# ---------------------------------------------------------------- train

def cmd_train(a) -> int:
    from .runner import RunError, launch_training

    data = Path(a.data).resolve()
    manifest = _load_manifest(data)
    tokenizer = Path(a.tokenizer).resolve() if a.tokenizer else data / manifest["tokenizer"]["file"]
    if not tokenizer.is_file():
        raise CliError(f"tokenizer not found: {tokenizer}")
    env = {"DATA_PATH": str(data), "TOKENIZER_PATH": str(tokenizer), "SEED": str(a.seed),
           "RUN_ID": a.run_id or f"seed{a.seed}", "VOCAB_SIZE": str(manifest["tokenizer"]["vocab_size"]),
           "GRAD_ACCUM_STEPS": "1", "VAL_LOSS_EVERY": "0", "TRAIN_LOG_EVERY": "25"}
    for flag, (name, _typ, _default) in TRAIN_FLAGS.items():
        env[name] = str(getattr(a, flag))
    for item in a.set or []:
        if "=" not in item:
            raise CliError(f"--set expects KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        env[k.strip().upper()] = v
    try:
        meta = launch_training(a.out, env, nproc=a.nproc, threads=a.threads, script=a.script)
    except RunError as exc:
        raise CliError(str(exc)) from None
    print(f"run written to {a.out} (log {meta['log']}, script sha256 {meta['script_sha256'][:12]})", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- eval

def _detect_compressor(blob: bytes) -> str:
    if blob[:1] == b"\x78":
        return "zlib"
    if blob[:6] == b"\xfd7zXZ\x00":
        return "lzma"
    return "brotli"


def cmd_eval(a) -> int:
    import numpy as np
    import torch

    from . import tokenizer as tok
    from .bpb import build_sentencepiece_luts
    from .data import ShardError, load_validation_tokens
    from .evaluate import eval_documents, eval_nonoverlap, eval_sliding
    from .ttt import eval_ttt_score_first
    from .model import GPT, GPTConfig
    from .quantize import dequantize_state_dict, deserialize_artifact
    from .unigram import unigram_bpb

    data = Path(a.data)
    manifest = _load_manifest(data)
    tokenizer = Path(a.tokenizer) if a.tokenizer else data / manifest["tokenizer"]["file"]
    model_path = Path(a.model)
    if not model_path.is_file():
        raise CliError(f"model artifact not found: {model_path}")
    blob = model_path.read_bytes()
    try:
        obj = deserialize_artifact(blob, a.compressor or _detect_compressor(blob))
        cfg = GPTConfig(**obj["config"])
    except Exception as exc:  # any decoding failure is bad input, reported in one line
        raise CliError(f"{model_path}: not a reference_impl artifact ({type(exc).__name__})") from None
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    model = GPT(cfg).to(device)
    model.load_state_dict(dequantize_state_dict(obj))
    sp = tok.load(str(tokenizer))
    luts = build_sentencepiece_luts(sp, cfg.vocab_size)
    try:
        val = load_validation_tokens(str(data), a.seq_len)
    except ShardError as exc:
        raise CliError(str(exc)) from None
    modes = ["nonoverlap", "sliding", "documents", "ttt"] if a.mode == "all" else [a.mode]
    report = {"artifact_bytes": len(blob), "val_tokens": int(val.size - 1), "seq_len": a.seq_len}
    for mode in modes:
        want_nll = bool(a.nll_out)
        if mode == "nonoverlap":
            r = eval_nonoverlap(model, val, a.seq_len, luts, device, return_nll=want_nll)
        elif mode == "sliding":
            r = eval_sliding(model, val, a.seq_len, a.stride, luts, device, return_nll=want_nll)
        elif mode == "documents":
            r = eval_documents(model, val, sp.bos_id(), a.seq_len, luts, device, chunk=min(a.doc_chunk, a.seq_len),
                               return_nll=want_nll)
        else:
            r = eval_ttt_score_first(model, val, a.seq_len, a.stride, luts, device, a.ttt_chunk_tokens, a.ttt_lr,
                                     return_nll=want_nll)
        print(f"{mode} val_loss:{r.val_loss:.8f} val_bpb:{r.val_bpb:.8f} tokens:{r.tokens} bytes:{r.bytes} "
              f"eval_time:{int(1000 * r.elapsed_s)}ms")
        report[mode] = {"val_loss": r.val_loss, "val_bpb": r.val_bpb, "tokens": r.tokens, "bytes": r.bytes}
        if want_nll:
            out = Path(a.nll_out)
            np.save(out.with_name(f"{out.stem}_{mode}.npy") if len(modes) > 1 else out, r.nll)
    uloss, ubpb = unigram_bpb(str(data), val, luts, cfg.vocab_size)
    print(f"unigram_baseline val_loss:{uloss:.8f} val_bpb:{ubpb:.8f}")
    v = manifest["val"]
    print(f"val_bytes exact(all docs):{v['bytes_exact']} lut(all targets):{v['bytes_lut_all_targets']} "
          f"diff:{v['bytes_lut_minus_exact']:+d}")
    report["unigram_baseline"] = {"val_loss": uloss, "val_bpb": ubpb}
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0


# ---------------------------------------------------------------- package

def cmd_package(a) -> int:
    from .package import PackageError, package_runs

    try:
        sub = package_runs(a.runs, a.data, a.out, name=a.name, author=a.author, github_id=a.github_id,
                           track=a.track, reproduce=Path(a.reproduce).read_text() if a.reproduce else "",
                           blurb=a.blurb, date=a.date)
    except (PackageError, FileNotFoundError, KeyError) as exc:
        raise CliError(str(exc)) from None
    print(f"packaged {len(sub['seeds'])} seeds into {a.out}: val_bpb {sub['val_bpb']:.8f}, "
          f"bytes_total {sub['bytes_total']}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="reference_impl", description="Reference trainer/evaluator for Parameter Golf audits.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    pr = sub.add_parser("prepare", help="build tokenizer + challenge-format shards from text")
    pr.add_argument("--source", choices=["austen", "generated", "files"], required=True)
    pr.add_argument("--inputs", nargs="*", help="text files for --source files")
    pr.add_argument("--per-line", action="store_true", help="files: one document per non-empty line "
                    "(default: one document per file)")
    pr.add_argument("--out", required=True)
    pr.add_argument("--vocab-size", type=int, default=1024)
    pr.add_argument("--val-docs", type=int, default=500)
    pr.add_argument("--num-docs", type=int, default=4000, help="generated: number of documents")
    pr.add_argument("--max-docs", type=int, default=0, help="keep only the first N source documents")
    pr.add_argument("--seed", type=int, default=1337, help="document shuffle seed (and generator seed)")
    pr.add_argument("--no-download", action="store_true", help="austen: use only an already cached .deb")
    pr.set_defaults(func=cmd_prepare)

    tr = sub.add_parser("train", help="run the bundled train_gpt.py for one seed")
    tr.add_argument("--data", required=True)
    tr.add_argument("--tokenizer")
    tr.add_argument("--out", required=True, help="run directory")
    tr.add_argument("--seed", type=int, default=1337)
    tr.add_argument("--run-id")
    tr.add_argument("--nproc", type=int, default=1, help="processes (torchrun) ")
    tr.add_argument("--threads", type=int, help="OMP_NUM_THREADS for each process")
    tr.add_argument("--script", help="run this train_gpt.py instead of bundling a fresh one")
    tr.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other hyperparameter env var")
    for flag, (_name, typ, default) in TRAIN_FLAGS.items():
        tr.add_argument("--" + flag.replace("_", "-"), dest=flag, type=typ, default=default)
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="evaluate a serialized artifact on the val shards")
    ev.add_argument("--data", required=True)
    ev.add_argument("--model", required=True, help="final_model.<scheme>.ptz")
    ev.add_argument("--tokenizer")
    ev.add_argument("--compressor", choices=["zlib", "lzma", "brotli"])
    ev.add_argument("--mode", choices=["nonoverlap", "sliding", "documents", "ttt", "all"], default="sliding")
    ev.add_argument("--seq-len", type=int, default=128)
    ev.add_argument("--stride", type=int, default=64)
    ev.add_argument("--doc-chunk", type=int, default=64)
    ev.add_argument("--ttt-chunk-tokens", type=int, default=8192)
    ev.add_argument("--ttt-lr", type=float, default=0.002)
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--threads", type=int, help="torch CPU threads")
    ev.add_argument("--nll-out", help="save per-target NLL (float64 .npy, NaN where unscored)")
    ev.add_argument("--json", help="write the results as JSON")
    ev.set_defaults(func=cmd_eval)

    pk = sub.add_parser("package", help="write a records-style submission folder from runs")
    pk.add_argument("--runs", nargs="+", required=True)
    pk.add_argument("--data", required=True)
    pk.add_argument("--out", required=True)
    pk.add_argument("--name", required=True)
    pk.add_argument("--author", default="pgolf-auditor")
    pk.add_argument("--github-id", default="pgolf-auditor")
    pk.add_argument("--track", default="non-record-16mb")
    pk.add_argument("--blurb", default="")
    pk.add_argument("--date")
    pk.add_argument("--reproduce", help="file holding the exact reproduction commands for the README")
    pk.set_defaults(func=cmd_package)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except ImportError as exc:  # torch, numpy, sentencepiece, brotli: the `gauntlet` extra
        name = (exc.name or str(exc) or "?").split(".")[0]
        sys.stderr.write(f"reference_impl: error: cannot import {name!r} ({type(exc).__name__}); "
                         "install the extra: pip install 'pgolf-auditor[gauntlet]'\n")
        return EXIT_ERROR


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(a.func(a))
    except (CliError, ValueError, OSError, RuntimeError) as exc:  # SourceError, RunError, sentencepiece
        msg = " ".join(str(exc).split()) or type(exc).__name__
        sys.stderr.write(f"reference_impl: error: {msg}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("reference_impl: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
