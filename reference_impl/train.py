"""Training entry point of the single-file script: hyperparameters from env vars, torchrun/DDP, the
wallclock-capped loop, serialisation and the final evaluations, logged in the challenge's modular
`timed_eval` format (format_spec §4.2, §4.4 family 5) so the auditor parses our logs like any record's.

Launch: `python train_gpt.py` (one process) or `torchrun --standalone --nproc_per_node=N train_gpt.py`.
Device-agnostic: cuda:LOCAL_RANK with NCCL and bf16 autocast when CUDA is present, otherwise CPU with
gloo and fp32. Where the brief is silent this mirrors the challenge baseline (env names, token loader,
warmup that primes then restores the weights, warmdown tied to the wallclock, DDP with grad
accumulation = 8 // world_size by default).

Bundled verbatim into the single-file training script (bundle.py).
"""

from __future__ import annotations

import copy
import io
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .bpb import build_sentencepiece_luts
from .data import DistributedTokenLoader, list_shards, load_validation_tokens
from .evaluate import autocast_for, eval_nonoverlap, eval_sliding
from .model import GPT, GPTConfig, count_parameters
from .quantize import dequantize_state_dict, deserialize_artifact, quantize_state_dict, serialize_artifact


@dataclass
class Hyperparameters:
    data_path: str = "./data/datasets/fineweb10B_sp1024"
    tokenizer_path: str = "./data/tokenizers/fineweb_1024_bpe.model"
    out_dir: str = "."
    run_id: str = ""
    seed: int = 1337
    iterations: int = 20000
    warmup_steps: int = 20
    warmdown_iters: int = 1200
    train_batch_tokens: int = 524288
    train_seq_len: int = 1024
    eval_seq_len: int = 0
    eval_stride: int = 64
    val_batch_seqs: int = 32
    val_loss_every: int = 1000
    train_log_every: int = 200
    max_wallclock_seconds: float = 600.0
    grad_accum_steps: int = 0
    vocab_size: int = 1024
    num_layers: int = 9
    model_dim: int = 512
    num_heads: int = 8
    num_kv_heads: int = 4
    mlp_mult: int = 2
    rope_base: float = 10000.0
    logit_softcap: float = 30.0
    qk_gain_init: float = 1.5
    tied_embed_init_std: float = 0.005
    optimizer: str = "adamw"
    embed_lr: float = 0.05
    matrix_lr: float = 0.02
    scalar_lr: float = 0.02
    muon_momentum: float = 0.95
    muon_backend_steps: int = 5
    beta1: float = 0.9
    beta2: float = 0.95
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip_norm: float = 0.0
    quant_scheme: str = "int8"
    compressor: str = "zlib"
    keep_float_max_numel: int = 65536
    compile: int = 0

    @classmethod
    def from_env(cls, env=None) -> "Hyperparameters":
        env = os.environ if env is None else env
        kw = {}
        for f in fields(cls):
            raw = env.get(f.name.upper())
            if raw is None:
                continue
            try:
                kw[f.name] = type(f.default)(float(raw)) if isinstance(f.default, int) else type(f.default)(raw)
            except ValueError:
                raise SystemExit(f"train_gpt: error: {f.name.upper()}={raw!r} is not a valid {type(f.default).__name__}")
        return cls(**kw)

    def model_config(self) -> GPTConfig:
        return GPTConfig(vocab_size=self.vocab_size, num_layers=self.num_layers, model_dim=self.model_dim,
                         num_heads=self.num_heads, num_kv_heads=self.num_kv_heads, mlp_mult=self.mlp_mult,
                         rope_base=self.rope_base, logit_softcap=self.logit_softcap,
                         qk_gain_init=self.qk_gain_init, tied_embed_init_std=self.tied_embed_init_std)


# ---------------------------------------------------------------- optimizers

def zeropower_via_newtonschulz5(g, steps: int = 5, eps: float = 1e-7):
    """Approximate orthogonalisation of an update matrix (the baseline's quintic Newton-Schulz)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.float() / (g.float().norm() + eps)
    transposed = x.size(0) > x.size(1)
    if transposed:
        x = x.T
    for _ in range(steps):
        m = x @ x.T
        x = a * x + (b * m + c * m @ m) @ x
    return x.T if transposed else x


class Muon(torch.optim.Optimizer):
    """Momentum + orthogonalised updates for 2-D matrices. Gradients are already averaged by DDP, so
    every rank computes the same update."""

    def __init__(self, params, lr, momentum, backend_steps):
        super().__init__(params, dict(lr=lr, momentum=momentum, backend_steps=backend_steps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad)
                g = p.grad.add(buf, alpha=group["momentum"])
                u = zeropower_via_newtonschulz5(g, group["backend_steps"])
                u = u * max(1.0, p.size(0) / p.size(1)) ** 0.5
                p.add_(u.to(p.dtype), alpha=-group["lr"])


def build_optimizers(h: Hyperparameters, model: GPT) -> list:
    """Embedding, block matrices and small control tensors get separate learning rates (baseline split)."""
    matrices = [p for n, p in model.blocks.named_parameters() if p.ndim == 2]
    scalars = [p for n, p in model.blocks.named_parameters() if p.ndim < 2] + [model.skip_weights]
    adam = dict(betas=(h.beta1, h.beta2), eps=h.adam_eps, weight_decay=h.weight_decay)
    groups = [dict(params=[model.tok_emb.weight], lr=h.embed_lr), dict(params=scalars, lr=h.scalar_lr)]
    if h.optimizer == "muon":
        opts = [torch.optim.AdamW(groups, **adam), Muon(matrices, h.matrix_lr, h.muon_momentum, h.muon_backend_steps)]
    elif h.optimizer == "adamw":
        opts = [torch.optim.AdamW(groups + [dict(params=matrices, lr=h.matrix_lr)], **adam)]
    else:
        raise SystemExit(f"train_gpt: error: OPTIMIZER must be adamw or muon, not {h.optimizer!r}")
    for opt in opts:
        for g in opt.param_groups:
            g["base_lr"] = g["lr"]
    return opts


# ---------------------------------------------------------------- run helpers

class RunLogger:
    """Rank 0 writes every line to stdout and to logs/<run_id>.txt; other ranks stay silent."""

    def __init__(self, path: str | None):
        self.path = path
        if path:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            open(path, "w", encoding="utf-8").close()

    def __call__(self, msg: str = "", console: bool = True) -> None:
        if not self.path:
            return
        if console:
            print(msg, flush=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(msg + "\n")


def setup_distributed():
    """(rank, world_size, local_rank, device). Uses torchrun's env vars when present."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world, local_rank, device


def lr_multiplier(h: Hyperparameters, step: int, elapsed_ms: float) -> float:
    """Linear warmdown over the last WARMDOWN_ITERS steps, or over the wallclock-equivalent of that many
    steps before the cap, whichever starts first. With the challenge's ITERATIONS=20000 only the wallclock
    form ever fires (the baseline's behaviour); a short iteration-bound run gets a deterministic schedule."""
    if h.warmdown_iters <= 0:
        return 1.0
    start = max(h.iterations - h.warmdown_iters, 0)
    by_step = max((h.iterations - step) / h.warmdown_iters, 0.0) if step >= start else 1.0
    if h.max_wallclock_seconds <= 0:
        return by_step
    step_ms = elapsed_ms / max(step, 1)
    warmdown_ms = h.warmdown_iters * step_ms
    remaining_ms = max(1000.0 * h.max_wallclock_seconds - elapsed_ms, 0.0)
    by_time = remaining_ms / max(warmdown_ms, 1e-9) if remaining_ms <= warmdown_ms else 1.0
    return min(by_step, by_time)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _script_path() -> str:
    """The file that is running: in the bundled script this is train_gpt.py itself (its size is the
    counted code size)."""
    return os.path.abspath(__file__)


def run(h: Hyperparameters) -> dict:
    """Train, serialise, evaluate; returns a summary (also used by tests)."""
    rank, world, local_rank, device = setup_distributed()
    master = rank == 0
    if h.grad_accum_steps <= 0:
        h.grad_accum_steps = 8 // world if 8 % world == 0 else 1
    if not h.run_id:
        h.run_id = str(uuid.uuid4())
    eval_seq_len = h.eval_seq_len or h.train_seq_len
    os.makedirs(h.out_dir, exist_ok=True)
    log = RunLogger(os.path.join(h.out_dir, "logs", f"{h.run_id}.txt") if master else None)
    code_path = _script_path()
    with open(code_path, "rb") as f:
        code = f.read()

    torch.manual_seed(h.seed)
    np.random.seed(h.seed)

    train_files = list_shards(h.data_path, "train")
    val_tokens = load_validation_tokens(h.data_path, eval_seq_len)
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor()
    if not sp.load(h.tokenizer_path):
        raise SystemExit(f"train_gpt: error: cannot load tokenizer {h.tokenizer_path}")
    if sp.vocab_size() != h.vocab_size:
        raise SystemExit(f"train_gpt: error: VOCAB_SIZE={h.vocab_size} but tokenizer has {sp.vocab_size()}")
    luts = build_sentencepiece_luts(sp, h.vocab_size)

    dump = dict(vars(h), distributed=world > 1, rank=rank, local_rank=local_rank, world_size=world,
                device=str(device), is_main_process=master, eval_seq_len=eval_seq_len,
                logfile=log.path or "", train_files=os.path.join(h.data_path, "fineweb_train_*.bin"),
                val_files=os.path.join(h.data_path, "fineweb_val_*.bin"))
    log("=" * 100, console=False)
    log("Hyperparameters:")
    for k in sorted(dump):
        log(f"  {k}: {dump[k]}")
    log(code.decode("utf-8"), console=False)
    log("=" * 100, console=False)
    log(f"Running Python {sys.version}", console=False)
    log(f"Running PyTorch {torch.__version__} on {platform.machine()} device={device}", console=False)
    log("=" * 100, console=False)
    log(f"train_shards: {len(train_files)}")
    log(f"val_tokens: {len(val_tokens) - 1}")

    base_model = GPT(h.model_config()).to(device)
    log(f"model_params:{count_parameters(base_model)}")
    model = DistributedDataParallel(base_model, device_ids=[local_rank] if device.type == "cuda" else None) \
        if world > 1 else base_model
    if h.compile and device.type == "cuda":
        model = torch.compile(model)
    optimizers = build_optimizers(h, base_model)
    loader = DistributedTokenLoader(train_files, rank, world, device)

    def train_step(step_lr_mul: float) -> float:
        for opt in optimizers:
            for g in opt.param_groups:
                g["lr"] = g["base_lr"] * step_lr_mul
        total = torch.zeros((), dtype=torch.float64, device=device)
        for micro in range(h.grad_accum_steps):
            x, y = loader.next_batch(h.train_batch_tokens, h.train_seq_len, h.grad_accum_steps)
            sync_ctx = model.no_sync() if world > 1 and micro < h.grad_accum_steps - 1 else _nullctx()
            with sync_ctx:
                with autocast_for(device):
                    loss = model(x, y)
                (loss / h.grad_accum_steps).backward()
            total += loss.detach().double()
        if h.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(base_model.parameters(), h.grad_clip_norm)
        for opt in optimizers:
            opt.step()
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        total /= h.grad_accum_steps
        if world > 1:
            dist.all_reduce(total)
            total /= world
        return float(total)

    # Warmup primes kernels/allocators, then everything is restored so measured training starts fresh.
    if h.warmup_steps > 0:
        saved_model = copy.deepcopy(base_model.state_dict())
        saved_opts = [copy.deepcopy(o.state_dict()) for o in optimizers]
        for i in range(h.warmup_steps):
            train_step(1.0)
            if i + 1 in (1, 2, 3, 4, 5, 6, 10, h.warmup_steps) or (i + 1) % 10 == 0:
                log(f"warmup_step: {i + 1}/{h.warmup_steps}")
        base_model.load_state_dict(saved_model)
        for o, s in zip(optimizers, saved_opts):
            o.load_state_dict(s)
        loader = DistributedTokenLoader(train_files, rank, world, device)

    def periodic_val(step: int) -> None:
        r = eval_nonoverlap(base_model, val_tokens, eval_seq_len, luts, device, h.val_batch_seqs)
        log(f"{step}/{h.iterations} val_loss: {r.val_loss:.4f} val_bpb: {r.val_bpb:.4f}")

    tokens_per_step = h.train_batch_tokens
    train_ms, losses, step = 0.0, [], 0
    stopped_early = False
    _sync(device)
    t0 = time.perf_counter()
    while step < h.iterations:
        if h.val_loss_every > 0 and step % h.val_loss_every == 0:
            _sync(device)
            train_ms += 1000.0 * (time.perf_counter() - t0)
            periodic_val(step)
            t0 = time.perf_counter()
        loss = train_step(lr_multiplier(h, step, train_ms + 1000.0 * (time.perf_counter() - t0)))
        losses.append(loss)
        step += 1
        _sync(device)
        elapsed_ms = train_ms + 1000.0 * (time.perf_counter() - t0)
        if step <= 5 or step % max(h.train_log_every, 1) == 0 or step == h.iterations:
            tok_s = int(tokens_per_step * step / max(elapsed_ms / 1000.0, 1e-9))
            log(f"{step}/{h.iterations} train_loss: {loss:.4f} train_time: {elapsed_ms / 60000.0:.1f}m tok/s: {tok_s}")
        capped = torch.tensor(float(h.max_wallclock_seconds > 0 and elapsed_ms >= 1000.0 * h.max_wallclock_seconds),
                              device=device)
        if world > 1:
            dist.all_reduce(capped, op=dist.ReduceOp.MAX)
        if capped.item() and step < h.iterations:
            stopped_early = True
            break
    _sync(device)
    train_ms += 1000.0 * (time.perf_counter() - t0)
    if h.val_loss_every > 0:
        periodic_val(step)
    if stopped_early:
        log(f"stopping_early: wallclock_cap train_time: {int(train_ms)}ms step: {step}/{h.iterations}")
    if device.type == "cuda":
        log(f"peak memory allocated: {torch.cuda.max_memory_allocated() // 2**20} MiB "
            f"reserved: {torch.cuda.max_memory_reserved() // 2**20} MiB")

    def timed(label, fn, model_for_eval):
        _sync(device)
        r = fn(model_for_eval)
        log(f"{label} val_loss:{r.val_loss:.8f} val_bpb:{r.val_bpb:.8f} eval_time:{int(1000 * r.elapsed_s)}ms")
        return r

    def nonoverlap(m):
        return eval_nonoverlap(m, val_tokens, eval_seq_len, luts, device, h.val_batch_seqs)

    def sliding(m):
        return eval_sliding(m, val_tokens, eval_seq_len, h.eval_stride, luts, device, h.val_batch_seqs)

    pre = timed("pre-quantization", nonoverlap, base_model)
    summary = {"train_losses": losses, "steps": step, "train_time_ms": int(train_ms),
               "pre_quant_val_bpb": pre.val_bpb, "code_bytes": len(code)}
    tag = f"{h.quant_scheme}+{h.compressor}"
    quant_obj = quantize_state_dict(base_model.state_dict(), h.quant_scheme, h.keep_float_max_numel)
    quant_obj["config"] = h.model_config().to_dict()
    blob = serialize_artifact(quant_obj, h.compressor)
    if master:
        raw = io.BytesIO()
        torch.save(base_model.state_dict(), raw)
        with open(os.path.join(h.out_dir, "final_model.pt"), "wb") as f:
            f.write(raw.getvalue())
        with open(os.path.join(h.out_dir, f"final_model.{h.quant_scheme}.ptz"), "wb") as f:
            f.write(blob)
        log(f"Serialized model: {len(raw.getvalue())} bytes")
        log(f"Code size: {len(code)} bytes")
        log(f"Serialized model {tag}: {len(blob)} bytes")
        log(f"Total submission size {tag}: {len(blob) + len(code)} bytes")
    summary["artifact_bytes"] = len(blob) + len(code)
    summary["model_bytes"] = len(blob)

    # Score what was serialised: reload the compressed artifact, not the in-memory weights.
    restored = GPT(GPTConfig(**quant_obj["config"])).to(device)
    restored.load_state_dict(dequantize_state_dict(deserialize_artifact(blob, h.compressor)))
    q = timed("quantized", nonoverlap, restored)
    qs = timed("quantized_sliding_window", sliding, restored)
    summary.update(quantized_val_bpb=q.val_bpb, val_loss=qs.val_loss, val_bpb=qs.val_bpb,
                   val_tokens=qs.tokens, val_bytes=qs.bytes, eval_time_ms=int(1000 * (q.elapsed_s + qs.elapsed_s)))
    if world > 1:
        dist.barrier()
    return summary


class _nullctx:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def main() -> None:
    h = Hyperparameters.from_env()
    try:
        run(h)
    except KeyboardInterrupt:
        print("train_gpt: interrupted", file=sys.stderr)
        raise SystemExit(130)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
