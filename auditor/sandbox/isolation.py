"""OS-level isolation for the gauntlet: a bubblewrap (`bwrap`) command line, and a probe that says whether it works.

What the child gets (the same as root and as an ordinary user):
* a new mount namespace whose root is an empty tmpfs holding read-only binds of only what the interpreter
  needs (/usr, the Python prefix and site-packages, the loader's cache), the run's own folder (writable), its
  synthetic data and the auditor's shims (read-only); no home directory, no host /tmp, no other run's folder;
* private size-capped tmpfs for /tmp, /var/tmp, /dev/shm and /run; a minimal /dev; a fresh /proc;
* new PID, network (loopback only: no host Unix or TCP sockets), IPC, UTS and (where possible) cgroup
  namespaces; a new session (no terminal injection); SIGKILL when the auditor dies (--die-with-parent);
* an unprivileged uid: as root, bwrap sets up the mounts and the child drops to an unused uid before the
  script starts (no capabilities left); as an ordinary user, bwrap uses a user namespace and further user
  namespaces are disabled inside.
"""

from __future__ import annotations

import functools
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

ROOT_LINKS = ("/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime")
TMPFS = {"/tmp": 1 << 30, "/var/tmp": 256 << 20, "/dev/shm": 512 << 20, "/run": 16 << 20}


def bwrap_path() -> str | None:
    return shutil.which("bwrap") or next((p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.access(p, os.X_OK)), None)


def interpreter_paths() -> list[str]:
    """Directories the interpreter and its packages live in, outside /usr (bound read-only)."""
    cands = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             str(Path(os.path.realpath(sys.executable)).parent.parent)}
    try:
        cands.update(site.getsitepackages())
    except AttributeError:
        pass
    for mod in ("torch", "numpy", "sentencepiece"):
        spec = None
        try:
            import importlib.util

            spec = importlib.util.find_spec(mod)
        except (ImportError, ValueError):
            pass
        if spec is not None and spec.origin:
            cands.add(str(Path(spec.origin).parent.parent))
    out = []
    for p in sorted({os.path.realpath(c) for c in cands if c}):
        if not os.path.isdir(p) or p == "/" or p == "/usr" or p.startswith("/usr/"):
            continue
        if any(p.startswith(q + os.sep) for q in out):
            continue
        out = [q for q in out if not q.startswith(p + os.sep)] + [p]
    return sorted(out)


def _dirs_for(path: str) -> list[str]:
    """`--perms 0755 --dir` for each missing ancestor (bwrap would create them 0700)."""
    args: list[str] = []
    parts = Path(path).parts
    for i in range(2, len(parts)):
        args += ["--perms", "0755", "--dir", str(Path(*parts[:i]))]
    return args


def bwrap_argv(uid: int | None, binds_rw: list[str], binds_ro: list[str], chdir: str, tmpfs_bytes: dict[str, int],
               devices: list[str] = ()) -> list[str]:
    """The bwrap prefix of the child's command line. `uid`: the unused uid root drops to (None when the
    auditor is an ordinary user: bwrap's user namespace keeps the caller's own uid)."""
    bw = bwrap_path() or "bwrap"
    a = [bw, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
         "--die-with-parent", "--new-session", "--hostname", "gauntlet"]
    if uid is None:
        a += ["--unshare-user", "--disable-userns"]
    else:  # root: only what setpriv needs to drop to the sandbox uid; it leaves no capability behind
        a += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    a += ["--ro-bind", "/usr", "/usr"]
    for link in ROOT_LINKS:
        if os.path.islink(link):
            a += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            a += ["--ro-bind", link, link]
    for f in ETC_FILES:
        a += ["--ro-bind-try", f, f]
    a += ["--proc", "/proc", "--dev", "/dev"]
    for dev in devices:
        a += ["--dev-bind-try", dev, dev]
    for mount, size in tmpfs_bytes.items():
        a += ["--size", str(int(size)), "--perms", "1777", "--tmpfs", mount]
    # after the private tmpfs mounts: an interpreter or venv that lives under /tmp (a CI checkout) stays visible
    for p in interpreter_paths():
        a += _dirs_for(p) + ["--ro-bind", p, p]
    for p in binds_rw:
        a += _dirs_for(p) + ["--bind", p, p]
    for p in binds_ro:
        a += _dirs_for(p) + ["--ro-bind", p, p]
    a += ["--chdir", chdir, "--"]
    if uid is not None:
        a += [shutil.which("setpriv") or "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
              "--inh-caps=-all", "--bounding-set=-all", "--"]
    return a


@functools.lru_cache(maxsize=1)
def probe() -> tuple[bool, str]:
    """(works, why not): bubblewrap tried for real, with the options the gauntlet uses."""
    if not sys.platform.startswith("linux"):
        return False, "OS-level isolation needs Linux (bubblewrap)"
    if bwrap_path() is None:
        return False, "bubblewrap (`bwrap`) is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        return False, "`setpriv` (util-linux) is missing: root cannot drop to an unprivileged uid in the sandbox"
    uid = 65534 if os.geteuid() == 0 else None
    argv = bwrap_argv(uid, [], [], "/", {"/tmp": 1 << 20}) + [os.path.realpath(sys.executable), "-S", "-c", "0"]
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=30, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    except (OSError, subprocess.SubprocessError) as exc:
        return False, f"bubblewrap could not start ({type(exc).__name__})"
    if r.returncode != 0:
        msg = r.stderr.decode("utf-8", "replace").strip().splitlines()
        return False, "bubblewrap cannot create the sandbox here (" + (msg[-1][:160] if msg else f"exit {r.returncode}") + \
            "; user namespaces may be disabled)"
    return True, ""
