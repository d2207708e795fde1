"""The sandbox runner: isolation, limits, containment and the audit hook's evidence.

These run small plain-Python scripts (no torch, no shims) so each takes well under a second plus the
limit being tested.
"""

from __future__ import annotations

import json
import os
import sys
import uuid

import pytest

from auditor.core.errors import SandboxUnavailable
from auditor.sandbox import isolation
from auditor.sandbox.sandbox import Limits, Sandbox, isolation_mode, legacy_mode

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox needs Linux")
BWRAP_OK, BWRAP_WHY = isolation.probe()
needs_bwrap = pytest.mark.skipif(not BWRAP_OK, reason=f"no OS-level isolation here: {BWRAP_WHY}")


def run_script(code: str, limits: Limits | None = None, files: dict[str, bytes] | None = None, prefix=None,
               unsafe: bool = not BWRAP_OK):
    prefix = prefix or f"auditor-test-{uuid.uuid4().hex[:8]}-"
    with Sandbox(prefix=prefix) as box:
        for rel, data in (files or {}).items():
            (box.run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (box.run_dir / rel).write_bytes(data)
        (box.run_dir / "script.py").write_text(code)
        box.install_shims()
        run = box.run([sys.executable, str(box.run_dir / "script.py")], {"FROM_CALLER": "1"},
                      limits or Limits(wall_s=30), {"data_dir": str(box.run_dir / "data")}, shims=False,
                      unsafe=unsafe)
        root = str(box.root)
    return run, root


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as fh:
                if text.encode() in fh.read():
                    found.append(int(d))
        except OSError:
            continue
    return found


def test_isolation_mode_is_probed():
    assert legacy_mode() in ("root-ns", "user-ns", "session")
    assert isolation_mode() == ("bwrap" if BWRAP_OK else legacy_mode())


def test_run_is_refused_without_os_isolation_unless_unsafe(monkeypatch):
    import auditor.sandbox.sandbox as sb

    monkeypatch.setattr(sb, "isolation_mode", lambda: "session")
    with pytest.raises(SandboxUnavailable, match="--unsafe-no-sandbox"):
        run_script("print('ran')", unsafe=False)
    run, _ = run_script("print('ran')", unsafe=True)
    assert run.stdout.strip() == "ran"
    assert run.isolation["mode"] == "session"


def test_network_is_blocked_and_every_attempt_recorded():
    run, _ = run_script(
        "import socket\n"
        "for host in ('192.0.2.1', '198.51.100.7'):\n"
        "    try:\n"
        "        socket.create_connection((host, 80), timeout=2)\n"
        "        print('connected', host)\n"
        "    except OSError as exc:\n"
        "        print('refused', host, type(exc).__name__)\n")
    assert run.returncode == 0, run.stderr
    assert "connected" not in run.stdout
    assert run.stdout.count("refused") == 2
    net = [e for e in run.events if e.get("event") == "network"]
    # create_connection resolves first: the attempt is stopped (and recorded) at getaddrinfo
    assert sorted((e["call"], e["target"]) for e in net) == [("socket.getaddrinfo", "'192.0.2.1'"),
                                                             ("socket.getaddrinfo", "'198.51.100.7'")]
    assert all(e["blocked"] for e in net)


def test_raw_socket_connect_is_blocked():
    run, _ = run_script(
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "try:\n"
        "    s.connect(('192.0.2.1', 443))\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n")
    assert run.stdout.strip() == "PermissionError"
    net = [(e["call"], e["target"], e["blocked"]) for e in run.events if e.get("event") == "network"]
    assert net == [("socket.connect", "('192.0.2.1', 443)", True)]


def test_environment_is_scrubbed(monkeypatch):
    monkeypatch.setenv("AUDITOR_TEST_SECRET_TOKEN", "do-not-leak")
    run, root = run_script("import os, json\nprint(json.dumps(dict(os.environ)))\n")
    env = json.loads(run.stdout.strip().splitlines()[-1])
    assert "AUDITOR_TEST_SECRET_TOKEN" not in env
    assert env["FROM_CALLER"] == "1"
    assert env["HOME"] == os.path.join(root, "run")
    assert env["TMPDIR"] == os.path.join(root, "run", "tmp")
    assert not any(k.endswith("_PROXY") or k.endswith("_proxy") for k in env)


def test_wall_clock_timeout_kills_the_run():
    run, _ = run_script("while True:\n    pass\n", Limits(wall_s=2))
    assert run.timed_out
    assert run.limit_hit == "wall-clock timeout"
    assert run.wall_s < 15


def test_fork_bomb_is_contained_and_leaves_nothing_behind():
    prefix = f"auditor-forktest-{uuid.uuid4().hex[:8]}-"
    code = ("import os, time\n"
            "n = 0\n"
            "while True:\n"
            "    try:\n"
            "        pid = os.fork()\n"
            "    except OSError:\n"
            "        time.sleep(0.05)\n"
            "        continue\n"
            "    if pid == 0:\n"
            "        time.sleep(3600)\n"
            "        os._exit(0)\n")
    run, root = run_script(code, Limits(wall_s=3, nproc=64), prefix=prefix)
    assert run.timed_out
    assert _processes_mentioning(prefix) == []
    assert not os.path.exists(root)


def test_memory_limit_is_enforced():
    code = ("import mmap\n"
            "maps = []\n"
            "while True:\n"
            "    maps.append(mmap.mmap(-1, 64 << 20))\n")
    run, _ = run_script(code, Limits(wall_s=20, memory_bytes=512 << 20))
    assert not run.timed_out
    assert run.returncode != 0
    assert run.limit_hit == "memory limit"


def test_file_size_limit_is_enforced():
    code = "with open('big.bin', 'wb') as f:\n    f.write(b'x' * (4 << 20))\n"
    run, _ = run_script(code, Limits(wall_s=20, file_bytes=1 << 20))
    assert run.returncode != 0
    assert run.limit_hit == "file-size limit"
    assert run.files.get("big.bin", 0) <= 1 << 20


def test_hook_tracks_phases_and_flags_train_shards_read_at_eval():
    code = ("import _gauntlet_hooks as h\n"
            "open('data/fineweb_train_000000.bin', 'rb').read()\n"
            "h.set_phase('train')\n"
            "open('data/fineweb_train_000001.bin', 'rb').read()\n"
            "with open('final_model.ptz', 'wb') as f:\n"
            "    f.write(b'weights')\n"
            "with open('logs/run.txt', 'w') as f:\n"
            "    f.write('final val_loss:1.0 val_bpb:1.0\\n')\n"
            "open('final_model.ptz', 'rb').read()\n"
            "open('data/fineweb_train_000000.bin', 'rb').read()\n"
            "open('data/fineweb_val_000000.bin', 'rb').read()\n")
    files = {"data/fineweb_train_000000.bin": b"t0", "data/fineweb_train_000001.bin": b"t1",
             "data/fineweb_val_000000.bin": b"v", "logs/.keep": b""}
    run, _ = run_script(code, files=files)
    assert run.returncode == 0, run.stderr
    phases = [e["phase"] for e in run.events if e.get("event") == "phase"]
    assert phases == ["train", "serialize", "eval"]
    opens = [(e["path"], e["kind"], e["phase"], e["write"]) for e in run.events if e.get("event") == "open"]
    assert ("data/fineweb_train_000000.bin", "train_shard", "setup", False) in opens
    assert ("data/fineweb_train_000001.bin", "train_shard", "train", False) in opens
    assert ("final_model.ptz", "file", "serialize", True) in opens
    assert ("data/fineweb_train_000000.bin", "train_shard", "eval", False) in opens
    assert ("data/fineweb_val_000000.bin", "val_shard", "eval", False) in opens
    assert run.files["final_model.ptz"] == 7
    assert "final val_loss" in run.logs["logs/run.txt"]


def test_program_launches_are_recorded():
    run, _ = run_script("import subprocess\nsubprocess.run(['true'])\n")
    assert run.returncode == 0, run.stderr
    launches = [e for e in run.events if e.get("event") == "process" and e.get("call") == "subprocess.Popen"]
    assert launches and "true" in launches[0]["target"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the unprivileged-user layer applies when the auditor runs as root")
def test_run_as_unprivileged_uid_cannot_write_outside_and_shared_tmp_is_swept():
    marker = f"/tmp/auditor-sandbox-stray-{uuid.uuid4().hex[:8]}"
    code = ("import os\n"
            "try:\n"
            f"    open({os.path.abspath(__file__ + '.owned')!r}, 'w')\n"
            "    print('wrote-outside')\n"
            "except OSError:  # PermissionError, or (bubblewrap) the folder does not exist in the sandbox\n"
            "    print('denied')\n"
            f"open({marker!r}, 'w').write('x')\n"
            "print(os.getuid())\n")
    run, _ = run_script(code)
    lines = run.stdout.split()
    assert lines[0] == "denied"
    assert 61000 <= int(lines[1]) < 65000
    assert run.isolation["user"] == "an unused unprivileged uid"
    assert not os.path.exists(__file__ + ".owned")
    # bubblewrap: /tmp is the run's own tmpfs, gone with it; legacy: the shared /tmp is swept
    assert run.strays == ([] if BWRAP_OK else [marker])
    assert not os.path.exists(marker)


def test_phases_are_rederived_from_the_last_model_write():
    """Save, reload for quantization (reading calibration data), save again, reload, evaluate: only
    the reads after the final reload are evaluation."""
    from auditor.sandbox.gauntlet import final_phases

    code = ("import _gauntlet_hooks as h\n"
            "h.set_phase('train')\n"
            "open('data/fineweb_train_000000.bin', 'rb').read()\n"
            "open('final_model.pt', 'wb').write(b'raw')\n"
            "open('final_model.pt', 'rb').read()\n"
            "open('data/fineweb_train_000000.bin', 'rb').read()\n"
            "open('final_model.int6.ptz', 'wb').write(b'q')\n"
            "open('final_model.int6.ptz', 'rb').read()\n"
            "open('data/fineweb_train_000000.bin', 'rb').read()\n")
    run, _ = run_script(code, files={"data/fineweb_train_000000.bin": b"t"})
    assert run.returncode == 0, run.stderr
    phases = final_phases(run.events)
    shard = [p for e, p in zip(run.events, phases)
             if e.get("event") == "open" and e.get("kind") == "train_shard"]
    assert shard == ["train", "serialize", "eval"]


SHIM_PROBE = r'''
import json, torch, torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
out = {"cuda_available": torch.cuda.is_available(), "capability": list(torch.cuda.get_device_capability())}
dist.init_process_group(backend="nccl", device_id=torch.device("cuda", 0))
out["world"] = [dist.get_rank(), dist.get_world_size()]
device = torch.device("cuda", 0)
x = torch.ones(4, device=device)
dist.all_reduce(x, op=dist.ReduceOp.SUM)
out["all_reduce"] = x.tolist()
out["tensor_device"] = str(torch.zeros(2, device="cuda").device)
out["to_cuda"] = str(torch.ones(2).cuda().device) + "," + str(torch.ones(2).to("cuda:0").device)
model = DDP(torch.nn.Linear(4, 4).to(device), device_ids=[0])
fast = torch.compile(model, mode="max-autotune")
with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
    y = fast(torch.randn(2, 4, device=device))
out["autocast_dtype"] = str(y.dtype)
torch.cuda.synchronize()
out["mem"] = torch.cuda.max_memory_allocated()
s = torch.cuda.Stream()
with torch.cuda.stream(s):
    pass
from flash_attn_interface import flash_attn_func
q = torch.randn(1, 5, 4, 8, device=device)
k = torch.randn(1, 5, 2, 8, device=device)
o = flash_attn_func(q, k, k, causal=True)
ref = F.scaled_dot_product_attention(q.transpose(1, 2), k.repeat_interleave(2, 2).transpose(1, 2),
                                     k.repeat_interleave(2, 2).transpose(1, 2), is_causal=True).transpose(1, 2)
out["flash_matches_sdpa"] = bool(torch.allclose(o, ref, atol=1e-5))
import triton, triton.language as tl
@triton.jit
def kern(p, BLOCK: tl.constexpr):
    pass
try:
    kern[(1,)](x, BLOCK=4)
except Exception as exc:
    out["triton"] = type(exc).__name__
out["dist_backend"] = __import__("gauntlet_cpu").STATE["distributed"]
print(json.dumps(out))
'''


def test_cpu_shims_run_cuda_style_code():
    """One sandboxed process exercises the CPU shim layer the gauntlet installs (imports torch)."""
    with Sandbox(prefix=f"auditor-test-{uuid.uuid4().hex[:8]}-") as box:
        (box.run_dir / "probe.py").write_text(SHIM_PROBE)
        box.install_shims()
        run = box.run([sys.executable, str(box.run_dir / "probe.py")], {}, Limits(wall_s=120),
                      {"data_dir": str(box.run_dir / "data")}, shims=True, unsafe=not BWRAP_OK)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["cuda_available"] is True and out["capability"] == [9, 0]
    assert out["world"] == [0, 1]
    assert out["all_reduce"] == [1.0, 1.0, 1.0, 1.0]
    assert out["tensor_device"] == "cpu" and out["to_cuda"] == "cpu,cpu"
    assert out["autocast_dtype"] == "torch.float32"
    assert out["mem"] == 0
    assert out["flash_matches_sdpa"] is True
    assert out["triton"] == "NeedsGPU"
    assert out["dist_backend"] in ("gloo", "emulated")


@pytest.fixture
def session_mode(monkeypatch):
    """The fallback where namespaces are unavailable (e.g. an unprivileged CI runner)."""
    import auditor.sandbox.sandbox as sb

    monkeypatch.setattr(sb, "isolation_mode", lambda: "session")


def test_session_mode_still_blocks_network_through_the_hook(session_mode):
    run, _ = run_script(unsafe=True, code=
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
        "try:\n"
        "    s.connect(('192.0.2.1', 443))\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__)\n")
    assert run.isolation["network"] == "audit hook only"
    assert run.stdout.strip() == "PermissionError"
    assert [(e["call"], e["blocked"]) for e in run.events if e.get("event") == "network"] == [("socket.connect", True)]


def test_session_mode_contains_a_fork_bomb(session_mode):
    prefix = f"auditor-forktest-{uuid.uuid4().hex[:8]}-"
    code = ("import os, time\n"
            "while True:\n"
            "    try:\n"
            "        pid = os.fork()\n"
            "    except OSError:\n"
            "        time.sleep(0.05)\n"
            "        continue\n"
            "    if pid == 0:\n"
            "        time.sleep(3600)\n"
            "        os._exit(0)\n")
    run, root = run_script(code, Limits(wall_s=3, nproc=64), prefix=prefix, unsafe=True)
    assert run.isolation["processes"] == "process group + sweep"
    assert run.timed_out
    assert _processes_mentioning(prefix) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="ownership separation applies when the auditor runs as root")
def test_synthetic_data_and_shims_are_read_only_to_the_run():
    code = ("import os\n"
            "for path in ('data/fineweb_val_000000.bin', '.gauntlet/py/sitecustomize.py', '.gauntlet/config.json'):\n"
            "    try:\n"
            "        open(path, 'ab')\n"
            "        print('writable', path)\n"
            "    except PermissionError:\n"
            "        print('read-only', path)\n"
            "print(open('data/fineweb_val_000000.bin', 'rb').read())\n"
            "open('mine.txt', 'w').write('ok')\n")
    run, _ = run_script(code, files={"data/fineweb_val_000000.bin": b"val"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:4] == ["read-only data/fineweb_val_000000.bin",
                                          "read-only .gauntlet/py/sitecustomize.py",
                                          "read-only .gauntlet/config.json", "b'val'"]
    assert run.files["mine.txt"] == 2
