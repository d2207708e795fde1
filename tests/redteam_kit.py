"""Hostile scripts for the red-team suite (tests/test_redteam.py), one per attack, and the runner that
puts one through the sandbox. The runner works in-process (the auditor as root) and as a program
(`python tests/redteam_kit.py ATTACK CONTEXT_JSON`, the auditor as an ordinary user): it prints what
the sandbox returned as one JSON line; the test checks containment from outside.

Each script gets a context dict `C` (ports, paths, markers the test prepared) and tries its attack
every way it can; it prints what it managed, so a failure shows what got through.
"""

from __future__ import annotations

import json
import os
import sys

PRELUDE = "import json, os, socket, subprocess, sys, time\nC = json.loads({ctx!r})\n"

ATTACKS = {
    # TCP to a listener on the host's loopback: Python sockets (the hook blocks those), then bash and a
    # subprocess python, which the in-process hook does not see
    "network_tcp": r'''
for how in ("python", "bash", "child"):
    try:
        if how == "python":
            socket.create_connection(("127.0.0.1", C["port"]), timeout=2).sendall(b"python")
        elif how == "bash":
            subprocess.run(["bash", "-c", f"echo bash > /dev/tcp/127.0.0.1/{C['port']}"], timeout=5)
        else:
            subprocess.run([sys.executable, "-S", "-c", "import socket;socket.create_connection(('127.0.0.1', %d),"
                            " timeout=2).sendall(b'child')" % C["port"]], timeout=5)
        print("tried", how)
    except Exception as exc:
        print("failed", how, type(exc).__name__)
''',
    # a world-connectable Unix socket of the host (the hook lets AF_UNIX through: it is "local")
    "network_unix": r'''
for path in (C["unix"],):
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        s.sendall(b"unix")
        print("connected", path)
    except Exception as exc:
        print("failed", type(exc).__name__)
''',
    # host files and secrets: a world-readable canary, the caller's private file, the auditor's env
    "secrets": r'''
found = []
for path in C["paths"] + ["/proc/1/environ", "/proc/%d/environ" % os.getppid(), "/etc/shadow"]:
    try:
        found.append(open(path, "rb").read(4096).decode("latin-1"))
    except Exception as exc:
        found.append(type(exc).__name__)
found.append(json.dumps(dict(os.environ)))
print("\n".join(found))
''',
    # writes outside its folder: lock/tmp/shm dirs, the caller's shell rc, the original submission
    "writes_outside": r'''
for path in C["targets"]:
    try:
        with open(path, "a") as fh:
            fh.write("pwned\n")
        print("wrote", path)
    except Exception as exc:
        print("failed", path, type(exc).__name__)
''',
    # processes that outlive the run (double fork + new session) and SysV shared memory left resident
    "linger_shm": r'''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
for i in range(3):
    sid = libc.shmget(0, 16 << 20, 0o1000 | 0o666)
    addr = libc.shmat(sid, None, 0)
    if addr not in (None, ctypes.c_void_p(-1).value):
        ctypes.memset(addr, 1, 16 << 20)
    print("shm", sid)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "300", C["marker"]])
    os._exit(0)
time.sleep(0.5)
print("forked")
''',
    # memory held by forked children: each under the per-process limit, together over the total
    "forked_memory": r'''
kids = []
for i in range(3):
    pid = os.fork()
    if pid == 0:
        block = bytearray(C["each"])
        for j in range(0, len(block), 4096):
            block[j] = 1
        time.sleep(60)
        os._exit(0)
    kids.append(pid)
time.sleep(60)
''',
    # many files, each under the per-file limit, together over the disk budget; and RAM via /dev/shm
    "many_files": r'''
chunk = b"x" * (1 << 20)
for where in (".", "/dev/shm", "/tmp"):
    for i in range(C["n"]):
        try:
            with open(os.path.join(where, f"fill{i}.bin"), "wb") as fh:
                for _ in range(C["mib"]):
                    fh.write(chunk)
        except OSError as exc:
            print("stopped", where, i, exc.errno)
            break
print("done")
time.sleep(2)
''',
    # the host's process list and command lines
    "host_proc": r'''
pids = [d for d in os.listdir("/proc") if d.isdigit()]
cmds = []
for d in pids:
    try:
        cmds.append(open(f"/proc/{d}/cmdline", "rb").read().replace(b"\0", b" ").decode("latin-1"))
    except Exception:
        pass
print("pids", len(pids))
print("\n".join(cmds))
''',
    # rewrite the evidence: attempt the network (recorded), then overwrite whatever holds the events
    "events_rewrite": r'''
try:
    socket.create_connection(("192.0.2.1", 80), timeout=2)
except OSError as exc:
    print("blocked", type(exc).__name__)
cfg = json.load(open(os.environ["GAUNTLET_CONFIG"]))
for path in (cfg["events"], os.environ["GAUNTLET_CONFIG"]):
    try:
        with open(path, "w") as fh:
            fh.write("")
        print("rewrote", path)
    except OSError as exc:
        print("failed", path, type(exc).__name__)
''',
    # plant links in its own folder for the parent to follow when it collects the run's logs
    "symlink_deputy": r'''
os.makedirs("logs", exist_ok=True)
os.symlink(C["secret_path"], "logs/run.txt")
os.symlink(os.path.dirname(C["secret_path"]), "logs_dir")
os.symlink(C["secret_path"], "train.log")
print("planted")
''',
}


def script_for(attack: str, ctx: dict) -> str:
    return PRELUDE.format(ctx=json.dumps(ctx)) + ATTACKS[attack]


def run_attack(attack: str, ctx: dict) -> dict:
    """Run one hostile script in the sandbox (bubblewrap required); what the parent got back."""
    from auditor.sandbox.sandbox import Limits, Sandbox

    lim = Limits(wall_s=float(ctx.get("wall", 20)), memory_total=int(ctx.get("memory_total", 1 << 30)),
                 disk_bytes=int(ctx.get("disk", 64 << 20)), nproc=64,
                 tmpfs_bytes={"/tmp": 16 << 20, "/var/tmp": 16 << 20, "/dev/shm": 16 << 20, "/run": 4 << 20})
    with Sandbox(prefix=ctx.get("prefix", "auditor-redteam-"), disk_bytes=lim.disk_bytes) as box:
        (box.run_dir / "train_gpt.py").write_text(script_for(attack, ctx))
        box.install_shims()
        run = box.run([sys.executable, "train_gpt.py"], {"AUDITOR_TEST_PARENT_SECRET_SEEN": "no"}, lim,
                      {"data_dir": str(box.run_dir / "data")}, shims=False)
    return {"rc": run.returncode, "stdout": run.stdout, "stderr": run.stderr[-3000:], "events": run.events,
            "isolation": run.isolation, "limit": None if run.limit is None else vars(run.limit),
            "limit_hit": run.limit_hit, "files": run.files, "logs": run.logs, "wall_s": run.wall_s, "uid": os.getuid()}


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run_attack(sys.argv[1], json.loads(sys.argv[2]))) + "\n")
