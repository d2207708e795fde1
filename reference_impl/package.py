"""Turn finished runs into a records-style submission folder (format_spec §6.2).

Everything in the folder is derived from evidence: per-seed numbers are parsed from the logs the script
wrote, the shipped `train_gpt.py` must be byte-identical (sha256) to what every seed ran, and the
validation description in `dataset_manifest.json` is recomputed from the shards and tokenizer. The
output is deterministic for the same runs (no timestamps beyond the run's recorded date).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np

from . import tokenizer as tok
from .bpb import build_sentencepiece_luts, stream_lut_bytes, target_bytes
from .data import list_shards, load_validation_tokens, read_shard
from .runner import RUN_META

F = r"[0-9]+(?:\.[0-9]+)?"
_PATTERNS = {
    "final": re.compile(rf"^quantized_sliding_window val_loss:({F}) val_bpb:({F}) eval_time:([0-9]+)ms$"),
    "ttt": re.compile(rf"^legal_ttt_exact val_loss:({F}) val_bpb:({F}) eval_time:([0-9]+)ms$"),
    "total": re.compile(r"^Total submission size (\S+): ([0-9]+) bytes$"),
    "code": re.compile(r"^Code size: ([0-9]+) bytes$"),
    "model": re.compile(r"^Serialized model (\S+): ([0-9]+) bytes$"),
    "step": re.compile(rf"^([0-9]+)/([0-9]+) train_loss: {F} train_time: ({F})m tok/s: ([0-9]+)$"),
    "stop": re.compile(r"^stopping_early: wallclock_cap train_time: ([0-9]+)ms step: ([0-9]+)/([0-9]+)$"),
    "val_tokens": re.compile(r"^val_tokens: ([0-9]+)$"),
    "seed": re.compile(r"^  seed: ([0-9]+)$"),
    "eval_seq_len": re.compile(r"^  eval_seq_len: ([0-9]+)$"),
    "eval_stride": re.compile(r"^  eval_stride: ([0-9]+)$"),
}


class PackageError(ValueError):
    """The runs cannot be packaged as one submission."""


_DUMP = re.compile(r"^  (\w+): (.*)$")


def parse_log(path: Path) -> dict:
    """Final metrics of one run, from its log (the last occurrence of each line wins), plus the
    hyperparameter dump (first occurrence of each key)."""
    out: dict = {}
    hparams: dict = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        d = _DUMP.match(line)
        if d:
            hparams.setdefault(d.group(1), d.group(2))
        for key, pat in _PATTERNS.items():
            m = pat.match(line)
            if m:
                out[key] = m.groups()
    need = ("final", "total", "code", "val_tokens", "seed")
    missing = [k for k in need if k not in out]
    if missing:
        raise PackageError(f"{path}: log lacks {', '.join(missing)} (did the run finish?)")
    score = out.get("ttt") or out["final"]
    steps = int(out["stop"][1]) if "stop" in out else int(out["step"][0]) if "step" in out else 0
    return {
        "seed": int(out["seed"][0]),
        "val_loss": float(score[0]),
        "val_bpb": float(score[1]),
        "eval_time_ms": int(score[2]),
        "artifact_bytes": int(out["total"][1]),
        "code_bytes": int(out["code"][0]),
        "steps": steps,
        "val_tokens": int(out["val_tokens"][0]),
        "eval_seq_len": int(out["eval_seq_len"][0]) if "eval_seq_len" in out else None,
        "eval_stride": int(out["eval_stride"][0]) if "eval_stride" in out else None,
        "tag": out["total"][0],
        "train_minutes": float(out["step"][2]) if "step" in out else None,
        "stopped_early": "stop" in out,
        "hparams": hparams,
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dataset_description(data_dir: Path, tokenizer_path: Path, eval_seq_len: int) -> dict:
    """What full-validation coverage means on this dataset: scored targets and their exact bytes."""
    manifest = json.loads((data_dir / "manifest.json").read_text())
    sp = tok.load(str(tokenizer_path))
    luts = build_sentencepiece_luts(sp, sp.vocab_size())
    val = load_validation_tokens(str(data_dir), eval_seq_len)
    full = np.concatenate([read_shard(f) for f in list_shards(str(data_dir), "val")]).astype(np.int64)
    return {
        "format": "pgolf-reference-val-manifest-v1",
        "source": manifest.get("source"),
        "tokenizer_file": tokenizer_path.name,
        "tokenizer_sha256": _sha256(tokenizer_path),
        "vocab_size": int(sp.vocab_size()),
        "bos_id": int(sp.bos_id()),
        "num_val_docs": manifest["num_val_docs"],
        "num_train_docs": manifest["num_train_docs"],
        "shuffle_seed": manifest["shuffle_seed"],
        "val_shards": [{"name": Path(f).name, "sha256": _sha256(Path(f))} for f in list_shards(str(data_dir), "val")],
        "val_stream_tokens": int(full.size),
        "eval_seq_len": eval_seq_len,
        "val_tokens": int(val.size - 1),
        "val_bytes": int(target_bytes(val[:-1], val[1:], *luts).sum()),
        "val_bytes_all_targets_lut": stream_lut_bytes(full, luts),
        "val_bytes_exact_all_docs": manifest["val"]["bytes_exact"],
        "notes": "val_tokens = scored targets after truncation to a multiple of eval_seq_len "
                 "(floor((N-1)/L)*L); val_bytes = canonical LUT bytes credited to exactly those targets.",
    }


def _readme(name: str, sub: dict, runs: list[dict], reproduce: str, ds: dict) -> str:
    rows = "\n".join(
        f"| {r['seed']} | {r['steps']} | {r['train_minutes']}m | {r['val_loss']:.8f} | **{r['val_bpb']:.8f}** "
        f"| {r['artifact_bytes']:,} |" for r in runs)
    h = runs[0]["hparams"]
    opt = {"muon": "Muon for block matrices + AdamW for embeddings and control tensors",
           "adamw": "AdamW"}.get(h.get("optimizer", ""), h.get("optimizer", "?"))
    source = ("paragraphs of Jane Austen's six novels (Debian package `r-cran-janeaustenr`)"
              if ds["source"] == "austen" else f"`{ds['source']}` documents")
    cap = "reached by " + ", ".join(f"seed {r['seed']}" for r in runs if r["stopped_early"]) \
        if any(r["stopped_early"] for r in runs) else "not reached"
    return f"""# {name}

**val_bpb {sub['val_bpb']:.8f}** (mean of {len(runs)} seeds; V3 sliding-window eval, seq_len
{runs[0]['eval_seq_len']} stride {runs[0]['eval_stride']}, of the {runs[0]['tag']} round-tripped artifact).
Non-record, CPU-only example produced by the `reference_impl` package of this project: a small, honest
submission for the auditor to audit end to end.

| Seed | Steps | Train time | val_loss | val_bpb | Artifact bytes |
|-----:|------:|-----------:|---------:|--------:|---------------:|
{rows}

## What it is

* Data: {source}, shuffled with seed {ds['shuffle_seed']}; validation = the first
  {ds['num_val_docs']} documents ({ds['val_tokens']:,} scored tokens, {ds['val_bytes']:,} bytes), written as
  challenge shards (BOS + tokens per document). This is **not** FineWeb: `dataset_manifest.json`
  describes the validation set so coverage and the byte denominator can be checked
  (`auditor run --val-manifest`). Shards are not shipped; `reference_impl prepare` rebuilds them.
* Tokenizer: SentencePiece BPE, vocab {ds['vocab_size']}, the challenge's trainer settings, trained on the
  training documents only (`{ds['tokenizer_file']}`).
* Script: `train_gpt.py`, generated by `reference_impl.bundle` from the package modules; every seed ran
  this exact file (sha256 checked at packaging; the logged code size equals its length).
* Model: GPT with {h.get('num_layers', '?')} layers, width {h.get('model_dim', '?')},
  {h.get('num_heads', '?')} heads / {h.get('num_kv_heads', '?')} KV heads, RMSNorm, rotary, relu² MLP,
  tied embeddings, tanh soft-cap. Training: {opt}; {h.get('iterations', '?')} iterations of
  {h.get('train_batch_tokens', '?')} tokens (seq_len {h.get('train_seq_len', '?')}), linear warmdown over the
  last {h.get('warmdown_iters', '?')}; wallclock cap {h.get('max_wallclock_seconds', '?')} s ({cap}).
* Hardware: CPU only (shared 2-core machine), one thread per run, so reruns take the same steps.

## Reproduce

```bash
{reproduce.strip()}
```
"""


def _clear_previous_package(out: Path) -> None:
    """Replace an earlier package in place, but never delete a folder that is not one."""
    if not out.exists():
        return
    entries = list(out.iterdir())
    if not entries:
        return
    if not (out / "submission.json").is_file() or any(e.is_dir() for e in entries):
        raise PackageError(f"{out} exists and is not a previous package; refusing to overwrite it")
    for e in entries:
        e.unlink()


def package_runs(run_dirs: list[str], data_dir: str, out_dir: str, *, name: str, author: str, github_id: str,
                 track: str = "non-record-16mb", reproduce: str = "", blurb: str = "", date: str | None = None) -> dict:
    runs_meta = []
    for rd in run_dirs:
        meta_path = Path(rd) / RUN_META
        if not meta_path.is_file():
            raise PackageError(f"{rd}: no {RUN_META} (not a reference_impl run directory)")
        meta = json.loads(meta_path.read_text())
        script = Path(rd) / "train_gpt.py"
        if _sha256(script) != meta["script_sha256"]:
            raise PackageError(f"{script}: changed since the run")
        runs_meta.append((Path(rd), meta))
    shas = {m["script_sha256"] for _, m in runs_meta}
    if len(shas) != 1:
        raise PackageError("the runs used different train_gpt.py files; one submission ships one script")
    parsed = []
    for rd, meta in runs_meta:
        r = parse_log(rd / meta["log"])
        if r["code_bytes"] != meta["script_bytes"]:
            raise PackageError(f"{rd}: logged code size {r['code_bytes']} != script {meta['script_bytes']} bytes")
        parsed.append((rd, meta, r))
    seeds = [r["seed"] for _, _, r in parsed]
    if len(set(seeds)) != len(seeds):
        raise PackageError(f"duplicate seeds {seeds}")
    parsed.sort(key=lambda t: t[2]["seed"])
    results = [r for _, _, r in parsed]
    first_rd, first_meta, first = parsed[0]
    tokenizer_path = Path(first_meta["env"]["TOKENIZER_PATH"])
    ds = dataset_description(Path(data_dir), tokenizer_path, first["eval_seq_len"])
    for r in results:
        if r["val_tokens"] != ds["val_tokens"]:
            raise PackageError(f"seed {r['seed']}: val_tokens {r['val_tokens']} != dataset {ds['val_tokens']}")

    out = Path(out_dir)
    _clear_previous_package(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(first_rd / "train_gpt.py", out / "train_gpt.py")
    shutil.copyfile(tokenizer_path, out / tokenizer_path.name)
    for rd, meta, r in parsed:
        shutil.copyfile(rd / meta["log"], out / f"train_seed{r['seed']}.log")
    mean = lambda xs: float(np.mean(xs))  # noqa: E731
    sub = {
        "name": name,
        "author": author,
        "github_id": github_id,
        "date": date or first_meta["date"],
        "track": track,
        "blurb": blurb,
        "val_bpb": round(mean([r["val_bpb"] for r in results]), 8),
        "val_loss": round(mean([r["val_loss"] for r in results]), 8),
        "val_bpb_std": round(float(np.std([r["val_bpb"] for r in results], ddof=1)) if len(results) > 1 else 0.0, 8),
        "bytes_total": max(r["artifact_bytes"] for r in results),
        "bytes_code": first["code_bytes"],
        "seeds": [r["seed"] for r in results],
        "seed_results": {str(r["seed"]): {"val_bpb": r["val_bpb"], "val_loss": r["val_loss"],
                                          "artifact_bytes": r["artifact_bytes"], "steps": r["steps"],
                                          "eval_time_ms": r["eval_time_ms"]} for r in results},
        "hardware": "CPU (no GPU)",
        "eval_method": f"V3 sliding window, seq_len {first['eval_seq_len']}, stride {first['eval_stride']}",
        "tokenizer": ds["tokenizer_file"],
        "dataset_manifest": "dataset_manifest.json",
    }
    (out / "submission.json").write_text(json.dumps(sub, indent=2) + "\n")
    (out / "dataset_manifest.json").write_text(json.dumps(ds, indent=2) + "\n")
    (out / "requirements.txt").write_text("numpy\nsentencepiece\ntorch\n")
    (out / "README.md").write_text(_readme(name, sub, results, reproduce or "(see project README)", ds))
    return sub
