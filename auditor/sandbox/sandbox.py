"""Run untrusted code in a subprocess that cannot hurt the reviewer's machine.

Layers, strongest available first (chosen at run time, reported in `SandboxRun.isolation`):
* a private temporary tree holding a copy of the submission; nothing else is writable to the child;
* as root: the child runs as an unused unprivileged uid in new network and PID namespaces (`unshare`), so it has no
  network and every process it starts dies with it; unprivileged: a user namespace when the kernel
  allows one; else a new session whose processes are swept on exit;
* rlimits on CPU seconds, address space, file size, process count and open files;
* a wall-clock timeout that SIGKILLs the whole process group / namespace;
* a scrubbed environment (no inherited secrets, tokens or proxies);
* inside the child, an audit hook that blocks Python-level network calls (the only network barrier
  when namespaces are unavailable) and records file opens, launches and sockets by phase.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

UID_RANGE = (61000, 65000)  # unprivileged ids with no account, one per run (see _pick_uid)


def _pick_uid() -> int:
    """A uid no account and no running process uses, so that this run's process limit, its files
    and the sweep of shared temp dirs concern this run alone (concurrent runs as one shared `nobody`
    would count each other's processes against RLIMIT_NPROC)."""
    import pwd
    import random

    busy = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                busy.add(os.stat(f"/proc/{d}").st_uid)
            except OSError:
                continue
    rng = random.SystemRandom()
    for _ in range(200):
        uid = rng.randrange(*UID_RANGE)
        if uid in busy:
            continue
        try:
            pwd.getpwuid(uid)
        except KeyError:
            return uid
    return 65534
SHIMS_DIR = Path(__file__).parent / "shims"
HOOKS_FILE = Path(__file__).parent / "hooks.py"
MAX_COPY_FILE = 32 << 20
MAX_COPY_TOTAL = 256 << 20
OUTPUT_TAIL = 4 << 20


@dataclass
class Limits:
    wall_s: float = 120.0
    cpu_s: int = 600
    memory_bytes: int = 6 << 30
    file_bytes: int = 512 << 20
    nproc: int = 512
    nofile: int = 1024
    threads: int = 2


@dataclass
class SandboxRun:
    returncode: int | None
    timed_out: bool
    wall_s: float
    stdout: str
    stderr: str
    events: list[dict]
    isolation: dict[str, str]
    limit_hit: str | None = None  # "wall-clock timeout" | "CPU-time limit" | "memory limit" | ...
    files: dict[str, int] = field(default_factory=dict)  # run-dir files written by the run -> bytes
    logs: dict[str, str] = field(default_factory=dict)  # run-dir logs/*.txt|*.log -> text (bounded)
    strays: list[str] = field(default_factory=list)  # files the run left in shared temp dirs (removed)


@functools.lru_cache(maxsize=1)
def isolation_mode() -> str:
    """'root-ns' | 'user-ns' | 'session', probed once by actually trying."""
    unshare = shutil.which("unshare")
    if unshare and sys.platform.startswith("linux"):
        if os.geteuid() == 0:
            args = [unshare, "--net", "--pid", "--fork", "--kill-child", "true"]
            mode = "root-ns"
        else:
            args = [unshare, "--user", "--net", "--pid", "--fork", "--kill-child", "true"]
            mode = "user-ns"
        try:
            if subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=20, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}).returncode == 0:
                return mode
        except (OSError, subprocess.SubprocessError):
            pass
    return "session"


def _set_limits(limits: Limits) -> None:
    def lim(which, value):
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass

    lim(resource.RLIMIT_CPU, int(limits.cpu_s))
    lim(resource.RLIMIT_AS, int(limits.memory_bytes))
    lim(resource.RLIMIT_FSIZE, int(limits.file_bytes))
    lim(resource.RLIMIT_NPROC, int(limits.nproc))
    lim(resource.RLIMIT_NOFILE, int(limits.nofile))
    lim(resource.RLIMIT_CORE, 0)


class Sandbox:
    """A private temporary tree: `root/run` is the child's working folder (a copy of the submission
    plus synthetic data); stdout/stderr are written to files outside it. Use as a context manager:
    the tree is removed on exit."""

    def __init__(self, prefix: str = "auditor-gauntlet-"):
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.root, 0o711)
        self.run_dir = self.root / "run"
        self.run_dir.mkdir()
        self.meta_dir = self.run_dir / ".gauntlet"
        self.meta_dir.mkdir()
        self.copy_notes: list[str] = []
        self.uid = _pick_uid() if os.geteuid() == 0 else None  # root drops to an unused uid

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ preparing the tree
    def copy_submission(self, root: Path, files: list[str]) -> None:
        """Copy regular files only (no links), bounded in size; the copy is what the child sees."""
        total = 0
        for rel in files:
            src = root / rel
            try:
                st = os.lstat(src)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1:
                self.copy_notes.append(f"{rel}: not a plain file; not copied")
                continue
            if st.st_size > MAX_COPY_FILE or total + st.st_size > MAX_COPY_TOTAL:
                self.copy_notes.append(f"{rel}: {st.st_size:,} bytes; too large to copy into the sandbox")
                continue
            dst = self.run_dir / rel
            if ".." in Path(rel).parts or rel.startswith("/"):
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fin, open(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout)
            total += st.st_size

    def install_shims(self) -> Path:
        target = self.meta_dir / "py"
        shutil.copytree(SHIMS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
        for marker in (target / "__init__.py", target / "fallback" / "__init__.py"):
            marker.unlink()  # package markers for the auditor only; in the child these are path entries
        shutil.copy(HOOKS_FILE, target / "_gauntlet_hooks.py")
        bin_dir = self.meta_dir / "bin"
        bin_dir.mkdir()
        smi = bin_dir / "nvidia-smi"
        smi.write_text("#!/bin/sh\necho 'nvidia-smi: no GPU in the auditor CPU sandbox'\nexit 0\n")
        smi.chmod(0o755)
        return target

    def _chown_tree(self, events_path: Path) -> None:
        """The submission's copy becomes the sandbox user's; the synthetic data, the shims and the
        run configuration stay the auditor's (readable, not writable), except the events file."""
        events_path.touch(mode=0o600)
        if self.uid is None:
            return
        for dirpath, dirnames, filenames in os.walk(self.run_dir):
            top = os.path.relpath(dirpath, self.run_dir).split(os.sep)[0]
            if top in ("data", ".gauntlet"):
                os.chmod(dirpath, 0o755)
                for name in filenames:
                    os.chmod(os.path.join(dirpath, name), 0o755 if name == "nvidia-smi" else 0o644)
                continue
            os.chown(dirpath, self.uid, self.uid, follow_symlinks=False)
            for name in filenames:
                os.chown(os.path.join(dirpath, name), self.uid, self.uid, follow_symlinks=False)
        os.chown(events_path, self.uid, self.uid)

    # ------------------------------------------------------------------ running
    def run(self, argv: list[str], env_extra: dict[str, str], limits: Limits, config: dict,
            shims: bool, on_progress=None) -> SandboxRun:
        py_dir = self.meta_dir / "py"
        mode = isolation_mode()
        events_path = self.meta_dir / "events.jsonl"
        cfg = dict(config)
        cfg.update(events=str(events_path), run_dir=str(self.run_dir), shims=shims,
                   fallback_dir=str(py_dir / "fallback") if shims else None, threads=limits.threads,
                   block_network=True)
        cfg_path = self.meta_dir / "config.json"
        cfg_path.write_text(json.dumps(cfg, sort_keys=True))
        (self.run_dir / "tmp").mkdir(exist_ok=True)
        # logs shipped in the folder are the submitter's claims, not this run's output
        self._shipped = {rel: sig for rel, sig in self._walk()}
        self._chown_tree(events_path)
        env = {
            "PATH": f"{self.meta_dir / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.run_dir),
            "TMPDIR": str(self.run_dir / "tmp"),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(py_dir),
            "PYTHONNOUSERSITE": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONHASHSEED": "0",
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": str(limits.threads),
            "MKL_NUM_THREADS": str(limits.threads),
            "TORCHINDUCTOR_CACHE_DIR": str(self.run_dir / "tmp"),
            "TRITON_CACHE_DIR": str(self.run_dir / "tmp"),
            "GAUNTLET_CONFIG": str(cfg_path),
        }
        env.update(env_extra)
        cmd = list(argv)
        preexec_uid = None
        if mode == "root-ns":
            drop = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", "--"] \
                if self.uid is not None and shutil.which("setpriv") else []
            lo = "ip link set lo up 2>/dev/null; " if shutil.which("ip") else ""
            # sh stays PID 1 of the namespace (the script must not be PID 1: init ignores default signals);
            # when the script ends, sh exits and the kernel kills everything left in the namespace.
            cmd = ["unshare", "--net", "--pid", "--fork", "--kill-child", "sh", "-c", lo + '"$@"', "sh",
                   *drop, *cmd]
            if not drop and self.uid is not None:
                preexec_uid = self.uid
        elif mode == "user-ns":
            cmd = ["unshare", "--user", "--net", "--pid", "--fork", "--kill-child", *cmd]
        elif self.uid is not None and shutil.which("setpriv"):
            cmd = ["setpriv", f"--reuid={self.uid}", f"--regid={self.uid}", "--clear-groups", "--", *cmd]
        elif self.uid is not None:
            preexec_uid = self.uid
        isolation = {
            "mode": mode,
            "network": "network namespace + audit hook" if mode != "session" else "audit hook only",
            "processes": "PID namespace (all die with the run)" if mode != "session" else "process group + sweep",
            "user": "an unused unprivileged uid" if self.uid is not None else "unchanged",
        }

        def preexec():
            os.setsid()
            _set_limits(limits)
            if preexec_uid is not None:
                os.setgroups([])
                os.setgid(preexec_uid)
                os.setuid(preexec_uid)

        out_path, err_path = self.root / "stdout", self.root / "stderr"
        t0 = time.monotonic()
        t_wall0 = time.time()
        timed_out = False
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(cmd, cwd=self.run_dir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=err, preexec_fn=preexec, close_fds=True)
            except (OSError, subprocess.SubprocessError) as exc:
                return SandboxRun(None, False, time.monotonic() - t0, "", f"sandbox could not start: {exc}", [],
                                  isolation, f"sandbox could not start ({type(exc).__name__}: {exc})")
            try:
                deadline = t0 + limits.wall_s
                while True:
                    try:
                        proc.wait(timeout=min(5.0, max(0.05, deadline - time.monotonic())))
                        break
                    except subprocess.TimeoutExpired:
                        if time.monotonic() >= deadline:
                            timed_out = True
                            break
                        if on_progress is not None:
                            on_progress(time.monotonic() - t0)
            except BaseException:  # KeyboardInterrupt included: never leave the child behind
                _kill_tree(proc.pid)
                proc.wait()
                raise
            _kill_tree(proc.pid)
            proc.wait()
        wall = time.monotonic() - t0
        rc = proc.returncode
        stdout = _tail(out_path)
        stderr = _tail(err_path)
        events = _read_events(events_path)
        limit_hit = "wall-clock timeout" if timed_out else _limit_from(rc, stderr, events)
        files, logs = self._outputs()
        result = SandboxRun(rc, timed_out, wall, stdout, stderr, events, isolation, limit_hit, files, logs)
        if self.uid is not None:
            result.strays = _sweep_shared_tmp(t_wall0, self.uid)
        return result

    def _walk(self):
        """(relative path, (size, mtime_ns)) of the regular files the run directory holds."""
        for dirpath, dirnames, filenames in os.walk(self.run_dir):
            rel_dir = os.path.relpath(dirpath, self.run_dir)
            if rel_dir.split(os.sep)[0] in ("data", ".gauntlet", "tmp"):
                dirnames[:] = []
                continue
            for name in sorted(filenames):
                try:
                    st = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield os.path.normpath(os.path.join(rel_dir, name)), (st.st_size, st.st_mtime_ns)

    def _outputs(self) -> tuple[dict[str, int], dict[str, str]]:
        files: dict[str, int] = {}
        logs: dict[str, str] = {}
        shipped = getattr(self, "_shipped", {})
        for dirpath, dirnames, filenames in os.walk(self.run_dir):
            rel_dir = os.path.relpath(dirpath, self.run_dir)
            top = rel_dir.split(os.sep)[0]
            if top in ("data", ".gauntlet", "tmp"):
                dirnames[:] = []
                continue
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(rel_dir, name))
                try:
                    st = os.lstat(full)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                files[rel] = st.st_size
                if shipped.get(rel) == (st.st_size, st.st_mtime_ns):
                    continue  # untouched since before the run: not this run's output
                if (top == "logs" or name.endswith((".log", ".txt"))) and len(logs) < 20:
                    logs[rel] = _tail(Path(full))
        return files, logs


def _tail(path: Path, limit: int = OUTPUT_TAIL) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            fh.seek(size - limit)
        return fh.read(limit).decode("utf-8", "replace").replace("\x00", "\ufffd")


def _read_events(path: Path) -> list[dict]:
    events = []
    for line in _tail(path, 8 << 20).splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            events.append(obj)
    return events


def _limit_from(rc: int | None, stderr: str, events: list[dict]) -> str | None:
    if rc is None:
        return None
    sig = -rc if rc < 0 else (rc - 128 if rc > 128 else 0)
    if sig == signal.SIGXCPU:
        return "CPU-time limit"
    if sig == signal.SIGXFSZ or "File too large" in stderr[-4000:]:
        return "file-size limit"
    tail = stderr[-4000:]
    if any(m in tail for m in ("MemoryError", "can't allocate memory", "Cannot allocate memory", "std::bad_alloc")):
        return "memory limit"
    if "Resource temporarily unavailable" in tail and "fork" in tail.lower():
        return "process limit"
    if sig == signal.SIGKILL:
        return "killed (SIGKILL)"
    return None


SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")


def _sweep_shared_tmp(since: float, uid: int) -> list[str]:
    """Remove what the sandbox user created in world-writable temp dirs during the run (the only
    places outside its folder it can write) and say what it was."""
    removed = []
    for top in SHARED_TMP:
        try:
            entries = list(os.scandir(top))
        except OSError:
            continue
        for e in entries:
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                continue
            if st.st_uid != uid or st.st_ctime < since - 1:
                continue
            try:
                if stat.S_ISDIR(st.st_mode):
                    shutil.rmtree(e.path)
                else:
                    os.unlink(e.path)
                removed.append(e.path)
            except OSError:
                continue
    return sorted(removed)


def _proc_table() -> dict[int, tuple[int, int, str, int]]:
    """pid -> (ppid, pgrp, state, start time) for every visible process."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as fh:
                data = fh.read().decode("ascii", "replace")
            fields = data.rsplit(")", 1)[1].split()
            table[int(d)] = (int(fields[1]), int(fields[2]), fields[0], int(fields[19]))
        except (OSError, ValueError, IndexError):
            continue
    return table


def _members(pid: int) -> dict[int, int]:
    """Descendants of pid plus every process in its process group (pid leads it: setsid), each with
    its start time so that a recycled pid is never mistaken for one of ours."""
    table = _proc_table()
    out = {p for p, (_, pgrp, state, _) in table.items() if pgrp == pid and state != "Z"}
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, (pp, _, _, _) in table.items() if pp == p and c not in out]
        out.update(kids)
        frontier.extend(kids)
    out.discard(pid)
    return {p: table[p][3] for p in out if p in table}


def _kill_tree(pid: int, wait_s: float = 15.0) -> None:
    """SIGKILL the child's process group and every descendant we can see, then wait until they are
    gone: a killed process with a large address space takes a moment to exit, and the caller removes
    the folder it runs in and promises to leave nothing behind."""
    try:
        victims = _members(pid)
    except OSError:
        victims = {}
    deadline = time.monotonic() + wait_s
    while True:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for v in victims:
            try:
                os.kill(v, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        table = _proc_table()
        victims = {v: st for v, st in victims.items()
                   if v in table and table[v][3] == st and table[v][2] != "Z"}
        victims.update({p: row[3] for p, row in table.items() if row[1] == pid and p != pid and row[2] != "Z"})
        if not victims or time.monotonic() > deadline:
            return
        time.sleep(0.05)
