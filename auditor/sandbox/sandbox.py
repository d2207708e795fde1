"""Run untrusted code in a subprocess that cannot hurt the reviewer's machine.

Layers (reported in `SandboxRun.isolation`):
* OS-level isolation through bubblewrap (isolation.py): a mount namespace holding only the interpreter
  (read-only), the run's folder and private size-capped tmpfs; new PID, network, IPC and UTS namespaces;
  an unprivileged uid; the same as root and as an ordinary user. Without it the run is refused
  (`SandboxUnavailable`) unless the caller accepts the weaker legacy layers explicitly (`unsafe=True`):
  as root an unused uid in new network and PID namespaces (`unshare`), unprivileged a user namespace
  when the kernel allows one, else a new session whose processes are swept on exit;
* totals, watched from the parent: memory (proportional set size summed over every process of the
  run), the run folder's disk use, the number of processes; the first that trips kills the whole run
  and is returned as a typed `LimitResult`;
* evidence over a socket the parent holds: the audit hook streams its events as they happen; the
  script can add lines but cannot take back what was sent (no events file to rewrite);
* rlimits on CPU seconds, address space, file size, process count and open files;
* a wall-clock timeout that SIGKILLs the whole process group / namespace;
* a scrubbed environment (no inherited secrets, tokens or proxies);
* inside the child, an audit hook that blocks Python-level network calls (the only network barrier
  when namespaces are unavailable) and records file opens, launches and sockets by phase.

Process lifecycle and limits (~750 lines) stay in one file so containment is reviewed as a unit.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from auditor.core.errors import SandboxUnavailable
from auditor.sandbox import isolation as iso

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
    memory_total: int = 6 << 30  # all the run's processes together (proportional set size)
    disk_bytes: int = 2 << 30  # what the run may write into its folder (the tmpfs are capped by their size)
    tmpfs_bytes: dict[str, int] = field(default_factory=lambda: dict(iso.TMPFS))


@dataclass
class LimitResult:
    """A total the parent's watchdog (or the kernel) enforced by stopping the run."""

    kind: str  # "memory total" | "disk total" | "process count" | "wall-clock" | ...
    limit: int | float  # bytes, processes or seconds
    observed: int | float
    unit: str  # "bytes" | "processes" | "seconds"


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
    limit: LimitResult | None = None  # the total that stopped the run, when one did
    hook_connections: int = 0  # audit-hook connections the parent accepted (0: no evidence arrived)


def isolation_mode() -> str:
    """'bwrap' when bubblewrap works here, else the legacy layer (used only with `unsafe=True`)."""
    return "bwrap" if iso.probe()[0] else legacy_mode()


@functools.lru_cache(maxsize=1)
def legacy_mode() -> str:
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


def _mount_tmpfs(path: Path, size: int) -> int | None:
    """Mount a size-capped tmpfs on path (root only); the size on success, None where mounting fails."""
    mount = shutil.which("mount")
    if mount is None or not iso.probe()[0]:
        return None
    r = subprocess.run([mount, "-t", "tmpfs", "-o", f"size={int(size)},mode=0755,nosuid,nodev",
                        "auditor-gauntlet", str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
    return int(size) if r.returncode == 0 else None


class Sandbox:
    """A private temporary tree: `root/run` is the child's working folder (a copy of the submission
    plus synthetic data); stdout/stderr are written to files outside it. Use as a context manager:
    the tree is removed on exit."""

    def __init__(self, prefix: str = "auditor-gauntlet-", disk_bytes: int = Limits.disk_bytes):
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        os.chmod(self.root, 0o711)
        self.run_dir = self.root / "run"
        self.run_dir.mkdir()
        # as root, the run folder is a tmpfs of the disk budget's size: a hard cap, not a watchdog's look
        self.disk_cap = _mount_tmpfs(self.run_dir, disk_bytes) if os.geteuid() == 0 else None
        self.meta_dir = self.run_dir / ".gauntlet"
        self.meta_dir.mkdir()
        self.data_dir = self.root / "data"  # parent-owned synthetic data (outside the run's writable folder)
        self.copy_notes: list[str] = []
        self.uid = _pick_uid() if os.geteuid() == 0 else None  # root drops to an unused uid

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.disk_cap is not None:
            subprocess.run(["umount", "-l", str(self.run_dir)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
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

    def _chown_tree(self) -> None:
        """The submission's copy becomes the sandbox user's; the synthetic data, the shims and the
        run configuration stay the auditor's (readable, not writable). With bubblewrap they are also
        read-only mounts, which is what protects them when the auditor is an ordinary user."""
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

    # ------------------------------------------------------------------ running
    def run(self, argv: list[str], env_extra: dict[str, str], limits: Limits, config: dict,
            shims: bool, on_progress=None, unsafe: bool = False, devices: list[str] = ()) -> SandboxRun:  # one place for the child's lifecycle: spawn, events, watchdog, kill, sweep
        """Run argv in the sandbox. Raises SandboxUnavailable when bubblewrap cannot isolate the run
        and the caller did not accept the legacy layers (`unsafe`)."""
        py_dir = self.meta_dir / "py"
        mode = isolation_mode()
        if mode != "bwrap" and not unsafe:
            raise SandboxUnavailable(f"the gauntlet needs OS-level isolation: {iso.probe()[1]}; "
                                     "pass --unsafe-no-sandbox to run the script without it")
        sock_path = self.meta_dir / "events.sock"
        cfg = dict(config)
        cfg.update(events=str(sock_path), run_dir=str(self.run_dir), shims=shims,
                   fallback_dir=str(py_dir / "fallback") if shims else None, threads=limits.threads,
                   block_network=True)
        cfg_path = self.meta_dir / "config.json"
        cfg_path.write_text(json.dumps(cfg, sort_keys=True))
        (self.run_dir / "tmp").mkdir(exist_ok=True)
        # logs shipped in the folder are the submitter's claims, not this run's output
        self._shipped = {rel: sig for rel, sig in self._walk()}
        sink = _EventSink(sock_path, self.uid)
        self._chown_tree()
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
        if mode == "bwrap":
            ro = [str(self.meta_dir)] + [str(d) for d in (self.run_dir / "data", self.data_dir) if d.is_dir()]
            cmd = iso.bwrap_argv(self.uid, [str(self.run_dir)], ro, str(self.run_dir), limits.tmpfs_bytes,
                                 list(devices)) + cmd
        elif mode == "root-ns":
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
        isolation = _describe(mode, self.uid, limits, self.disk_cap)

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
        tripped: LimitResult | None = None
        watch = _Watchdog(self.run_dir, limits)
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(cmd, cwd=self.run_dir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=err, preexec_fn=preexec, close_fds=True)
            except (OSError, subprocess.SubprocessError) as exc:
                sink.stop()
                return SandboxRun(None, False, time.monotonic() - t0, "", f"sandbox could not start: {exc}", [],
                                  isolation, f"sandbox could not start ({type(exc).__name__}: {exc})")
            try:
                deadline = t0 + limits.wall_s
                next_progress = t0 + 5.0
                while True:
                    try:
                        proc.wait(timeout=min(WATCH_EVERY, max(0.01, deadline - time.monotonic())))
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    now = time.monotonic()
                    if now >= deadline:
                        timed_out = True
                        tripped = LimitResult("wall-clock", limits.wall_s, round(now - t0, 1), "seconds")
                        break
                    tripped = watch.check(proc.pid)
                    if tripped is not None:
                        break
                    if on_progress is not None and now >= next_progress:
                        next_progress = now + 5.0
                        on_progress(now - t0)
            except BaseException:  # KeyboardInterrupt included: never leave the child behind
                _kill_tree(proc.pid)
                proc.wait()
                sink.stop()
                raise
            _kill_tree(proc.pid)
            proc.wait()
        wall = time.monotonic() - t0
        events, connections = sink.stop()
        rc = proc.returncode
        stdout = _tail(out_path)
        stderr = _tail(err_path)
        if timed_out:
            limit_hit = "wall-clock timeout"
        elif tripped is not None:
            limit_hit = f"{tripped.kind} {human_amount(tripped.limit, tripped.unit)}"
        else:
            limit_hit = _limit_from(rc, stderr, events)
        if tripped is None and not timed_out and self.disk_cap is None:  # a burst between two looks
            disk = _disk_use(self.run_dir) - watch.base_disk
            if disk > limits.disk_bytes:
                tripped = LimitResult("disk total", limits.disk_bytes, disk, "bytes")
                limit_hit = f"{tripped.kind} {human_amount(tripped.limit, tripped.unit)}"
        files, logs = self._outputs()
        result = SandboxRun(rc, timed_out, wall, stdout, stderr, events, isolation, limit_hit, files, logs,
                            limit=tripped, hook_connections=connections)
        if self.uid is not None and mode != "bwrap":  # bwrap: the shared temp dirs were private tmpfs
            result.strays = _sweep_shared_tmp(t_wall0, self.uid)
        return result

    def _walk(self):
        """(relative path, (size, mtime_ns)) of the regular files the run directory holds."""
        for rel, _dir_fd, name, st in _files_beneath(self.run_dir):
            yield rel, (st.st_size, st.st_mtime_ns)

    def _outputs(self) -> tuple[dict[str, int], dict[str, str]]:
        """Sizes of the files in the run folder and the text of its logs, read beneath the folder
        without following any link the script planted (no confused deputy)."""
        files: dict[str, int] = {}
        logs: dict[str, str] = {}
        shipped = getattr(self, "_shipped", {})
        for rel, dir_fd, name, st in _files_beneath(self.run_dir):
            files[rel] = st.st_size
            if shipped.get(rel) == (st.st_size, st.st_mtime_ns):
                continue  # untouched since before the run: not this run's output
            if (rel.split(os.sep)[0] == "logs" or name.endswith((".log", ".txt"))) and len(logs) < 20:
                logs[rel] = _tail_at(dir_fd, name)
        return files, logs


SKIP_TOPS = ("data", ".gauntlet", "tmp")
MAX_WALK = 100_000


def _files_beneath(top: Path):
    """(relative path, dir fd, name, stat) of regular files under `top`, except the auditor's own
    folders; os.fwalk opens each directory relative to its parent with O_NOFOLLOW."""
    seen = 0
    try:
        walker = os.fwalk(top, follow_symlinks=False)
        for dirpath, dirnames, filenames, dir_fd in walker:
            rel_dir = os.path.relpath(dirpath, top)
            if rel_dir == ".":
                dirnames[:] = [d for d in dirnames if d not in SKIP_TOPS]
            for name in sorted(filenames):
                seen += 1
                if seen > MAX_WALK:
                    return
                try:
                    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    yield os.path.normpath(os.path.join(rel_dir, name)), dir_fd, name, st
    except OSError:
        return


def _tail_at(dir_fd: int, name: str, limit: int = OUTPUT_TAIL) -> str:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        size = os.fstat(fh.fileno()).st_size
        if size > limit:
            fh.seek(size - limit)
        return fh.read(limit).decode("utf-8", "replace").replace("\x00", "\ufffd")


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


# ---------------------------------------------------------------------------------- evidence channel

MAX_EVENT_BYTES = 16 << 20
MAX_EVENT_LINE = 1 << 20


class _EventSink:
    """A Unix socket the parent listens on; every audit hook inside the run connects once and streams
    JSON lines. The parent keeps what arrives: the script can send more, never retract what was sent."""

    def __init__(self, path: Path, uid: int | None):
        self.events: list[dict] = []
        self.connections = 0
        self._bytes = 0
        self._stop = threading.Event()
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self._srv.bind(str(path))
        os.chmod(path, 0o600)
        if uid is not None:
            os.chown(path, uid, uid)
        self._srv.listen(64)
        self._srv.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(self._srv, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._loop, name="gauntlet-events", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._poll(0.1)

    def _poll(self, timeout: float) -> int:
        n = 0
        for key, _ in self._sel.select(timeout):
            if key.data is None:
                try:
                    conn, _ = self._srv.accept()
                except OSError:
                    continue
                conn.setblocking(False)
                self.connections += 1
                self._sel.register(conn, selectors.EVENT_READ, bytearray())
                continue
            try:
                chunk = key.fileobj.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                chunk = b""
            if not chunk:
                self._sel.unregister(key.fileobj)
                key.fileobj.close()
                continue
            n += len(chunk)
            buf = key.data
            buf += chunk
            *lines, rest = bytes(buf).split(b"\n")
            buf[:] = rest[-MAX_EVENT_LINE:]
            for line in lines:
                self._take(line)
        return n

    def _take(self, line: bytes) -> None:
        if self._bytes > MAX_EVENT_BYTES or not line.strip():
            return
        self._bytes += len(line)
        try:
            obj = json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            return
        if isinstance(obj, dict):
            self.events.append(obj)

    def stop(self) -> tuple[list[dict], int]:
        """After the run's processes are gone: drain what is buffered, close, return (events, connections)."""
        self._stop.set()
        self._thread.join(timeout=5)
        while self._poll(0.05):
            pass
        for key in list(self._sel.get_map().values()):
            key.fileobj.close()
        self._sel.close()
        return self.events, self.connections


# ---------------------------------------------------------------------------------- totals

WATCH_EVERY = 0.2  # seconds between the watchdog's looks


class _Watchdog:
    """Totals over the whole run, checked from outside: memory (sum of the proportional set size of
    every process of the run), processes, and bytes written into the run folder."""

    def __init__(self, run_dir: Path, limits: Limits):
        self.run_dir = run_dir
        self.limits = limits
        self.base_disk = _disk_use(run_dir)
        self.n = 0

    def check(self, pid: int) -> LimitResult | None:
        self.n += 1
        members = list(_members(pid)) + [pid]
        if len(members) > self.limits.nproc + 4:  # bwrap's own two processes and the driver's shell
            return LimitResult("process count", self.limits.nproc, len(members), "processes")
        mem = sum(_pss(p) for p in members)
        if mem > self.limits.memory_total:
            return LimitResult("memory total", self.limits.memory_total, mem, "bytes")
        if self.n % 3 == 0:
            disk = _disk_use(self.run_dir) - self.base_disk
            if disk > self.limits.disk_bytes:
                return LimitResult("disk total", self.limits.disk_bytes, disk, "bytes")
        return None


def _pss(pid: int) -> int:
    """Proportional set size plus swap, in bytes (shared pages count once over their sharers)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            total = 0
            for line in fh:
                if line.startswith((b"Pss:", b"SwapPss:")):
                    total += int(line.split()[1]) * 1024
            return total
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _disk_use(top: Path) -> int:
    total = 0
    for _rel, _fd, _name, st in _files_beneath(top):
        total += st.st_blocks * 512
    return total


def human_amount(value: float, unit: str) -> str:
    if unit == "bytes":
        for u, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if value >= size:
                return f"{value / size:.3g} {u}"
        return f"{int(value)} bytes"
    if unit == "seconds":
        return f"{value:g} s"
    return f"{int(value)} {unit}"


def _describe(mode: str, uid: int | None, limits: Limits, disk_cap: int | None) -> dict[str, str]:
    if mode == "bwrap":
        tmp = ", ".join(f"{m} {human_amount(b, 'bytes')}" for m, b in limits.tmpfs_bytes.items())
        return {
            "mode": "bwrap",
            "filesystem": "read-only interpreter, run folder, private tmpfs (" + tmp + "); no home, no host /tmp",
            "network": "new network namespace (loopback only; no host sockets) + audit hook",
            "processes": "new PID namespace (all die with the run), new session",
            "ipc": "new IPC and UTS namespaces",
            "user": "an unused unprivileged uid" if uid is not None else "the caller's uid in a user namespace",
            "totals": f"memory {human_amount(limits.memory_total, 'bytes')} (watchdog), run folder "
                      + (f"a {human_amount(disk_cap, 'bytes')} tmpfs" if disk_cap else
                         f"{human_amount(limits.disk_bytes, 'bytes')} (watchdog)") + f", {limits.nproc} processes",
        }
    return {
        "mode": mode,
        "network": "network namespace + audit hook" if mode != "session" else "audit hook only",
        "processes": "PID namespace (all die with the run)" if mode != "session" else "process group + sweep",
        "user": "an unused unprivileged uid" if uid is not None else "unchanged",
    }
