"""Red team: one hostile script per attack, run through the sandbox as the auditor would, with containment
checked from outside (a listener that logs nothing, canaries absent, no survivors, `ipcs` unchanged,
the evidence intact). Each attack runs in the root path (this process, when it is root) and in the
non-root path (a throwaway user, created when the suite runs as root). Plain-Python scripts: each run
takes a few seconds; memory and disk are capped in the tens of MiB.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

import redteam_kit
from auditor.sandbox import isolation

OK, WHY = isolation.probe()
ROOT = Path(__file__).resolve().parents[1]
USER = "auditor-redteam"
SECRET = f"redteam-secret-{uuid.uuid4().hex}"


def _ensure_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pass
    if not shutil.which("useradd"):
        return None
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        return None


def _hidden_ancestor(path: str) -> str | None:
    """The first ancestor of the interpreter prefix other users cannot traverse (/root under pyenv)."""
    parts = Path(path).parts
    for i in range(2, len(parts) + 1):
        p = str(Path(*parts[:i]))
        if not os.stat(p).st_mode & 0o001:
            return p
    return None


def _as_user(pw, home: Path, attack: str, ctx: dict) -> dict:
    """The auditor as an ordinary user: the kit's runner under the throwaway uid. Where the interpreter
    sits under a folder others cannot enter (/root), a private mount namespace shows that user the
    prefix alone, at the same path."""
    # a venv's own prefix may be visible (a CI checkout under /tmp) while its base interpreter is not
    prefix = next((os.path.realpath(p) for p in (sys.base_prefix, sys.prefix)
                   if _hidden_ancestor(os.path.realpath(p))), os.path.realpath(sys.prefix))
    hidden = _hidden_ancestor(prefix)
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}", "AUDITOR_TEST_PARENT_SECRET": SECRET}
    run = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", "--",
           os.path.realpath(sys.executable), str(ROOT / "tests" / "redteam_kit.py"), attack, json.dumps(ctx)]
    if hidden:
        save = f"/tmp/auditor-redteam-prefix-{uuid.uuid4().hex[:8]}"
        script = (f'mkdir -p {save} && mount --rbind {prefix} {save} && '
                  f'mount -t tmpfs -o mode=0755,size=1m none {hidden} && mkdir -p {prefix} && '
                  f'mount --rbind {save} {prefix} && exec "$@"')
        run = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *run]
    r = subprocess.run(run, env=env, cwd="/", capture_output=True, text=True, timeout=120)
    if hidden:
        shutil.rmtree(save, ignore_errors=True) if "save" in locals() else None
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(params=["root", "user"])
def path(request, tmp_path):
    """(run(attack, ctx) -> result, home folder, name): one per way the auditor runs."""
    if not OK:
        pytest.skip(f"bubblewrap cannot run here: {WHY}")
    if request.param == "root":
        if os.geteuid() != 0:
            pytest.skip("the root path needs the suite to run as root")
        home = tmp_path / "roothome"
        home.mkdir()
        os.environ["AUDITOR_TEST_PARENT_SECRET"] = SECRET
        try:
            yield (lambda attack, ctx: redteam_kit.run_attack(attack, ctx)), home, "root"
        finally:
            os.environ.pop("AUDITOR_TEST_PARENT_SECRET", None)
        return
    if os.geteuid() != 0:  # already an ordinary user: this process is the non-root path
        os.environ["AUDITOR_TEST_PARENT_SECRET"] = SECRET
        yield (lambda attack, ctx: redteam_kit.run_attack(attack, ctx)), Path.home(), "user"
        os.environ.pop("AUDITOR_TEST_PARENT_SECRET", None)
        return
    pw = _ensure_user()
    if pw is None or not shutil.which("setpriv") or not shutil.which("unshare"):
        pytest.skip("cannot create a throwaway user here (useradd/setpriv/unshare missing)")
    home = tmp_path / "home"
    home.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    os.chmod(home, 0o700)
    yield (lambda attack, ctx: _as_user(pw, home, attack, ctx)), home, "user"


def _owned(p: Path, home: Path) -> None:
    st = os.stat(home)
    os.chown(p, st.st_uid, st.st_gid)


class Listener:
    """A TCP or Unix listener on the host that records every connection it accepts."""

    def __init__(self, unix: str | None = None):
        if unix:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(unix)
            os.chmod(unix, 0o777)
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.accepted: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            conn.settimeout(1)
            try:
                self.accepted.append(conn.recv(100))
            except OSError:
                self.accepted.append(b"")
            conn.close()

    def close(self) -> list[bytes]:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()
        return self.accepted


def _everything(res: dict) -> str:
    return json.dumps(res)


def test_network_tcp_to_the_host_is_contained(path):
    run, _home, _ = path
    lst = Listener()
    try:
        res = run("network_tcp", {"port": lst.sock.getsockname()[1]})
    finally:
        got = lst.close()
    assert got == []
    assert "tried python" not in res["stdout"]  # the hook blocked the Python socket and recorded it
    assert any(e.get("event") == "network" and e.get("blocked") for e in res["events"])


def test_host_unix_socket_is_unreachable(path):
    run, _home, _ = path
    sock = f"/tmp/auditor-redteam-{uuid.uuid4().hex[:8]}.sock"
    lst = Listener(unix=sock)
    try:
        res = run("network_unix", {"unix": sock})
    finally:
        got = lst.close()
        os.unlink(sock)
    assert got == []
    assert res["stdout"].split() == ["failed", "FileNotFoundError"]


def test_host_files_private_files_and_the_auditors_environment_stay_secret(path, tmp_path):
    run, home, who = path
    canary = Path(f"/var/tmp/auditor-redteam-{uuid.uuid4().hex[:8]}")
    canary.write_text(SECRET + "-world-readable")
    os.chmod(canary, 0o644)
    private = home / "id_rsa"
    private.write_text(SECRET + "-private")
    os.chmod(private, 0o600)
    _owned(private, home)
    try:
        res = run("secrets", {"paths": [str(canary), str(private)]})
    finally:
        canary.unlink()
    assert SECRET not in _everything(res)
    assert res["rc"] == 0


def test_writes_outside_the_run_folder_do_not_land(path, tmp_path):
    run, home, who = path
    tag = uuid.uuid4().hex[:8]
    bashrc = home / ".bashrc"
    bashrc.write_text("# rc\n")
    _owned(bashrc, home)
    original = tmp_path / "submission"
    original.mkdir()
    (original / "train_gpt.py").write_text("print(1)\n")
    os.chmod(tmp_path, 0o755)
    shutil.chown(original, user=os.stat(home).st_uid)
    _owned(original / "train_gpt.py", home)
    targets = [f"/run/lock/auditor-redteam-{tag}", f"/tmp/auditor-redteam-{tag}", f"/var/tmp/auditor-redteam-{tag}",
               f"/dev/shm/auditor-redteam-{tag}", str(bashrc), str(original / "train_gpt.py")]
    res = run("writes_outside", {"targets": targets})
    for t in targets[:4]:
        assert not os.path.exists(t), t
    assert bashrc.read_text() == "# rc\n"
    assert (original / "train_gpt.py").read_text() == "print(1)\n"
    assert res["rc"] == 0


def _shm_ids() -> set[str]:
    out = subprocess.run(["ipcs", "-m"], capture_output=True, text=True).stdout
    return {ln.split()[1] for ln in out.splitlines() if ln[:2] == "0x"}


def _with_marker(marker: str) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{d}/cmdline").read_bytes():
                    pids.append(int(d))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not shutil.which("ipcs"), reason="ipcs (util-linux) is missing")
def test_lingering_processes_and_sysv_shm_die_with_the_run(path):
    run, _home, _ = path
    marker = f"auditor-redteam-linger-{uuid.uuid4().hex[:8]}"
    before = _shm_ids()
    res = run("linger_shm", {"marker": marker})
    assert res["stdout"].count("shm ") == 3 and "forked" in res["stdout"]
    assert _with_marker(marker) == []
    assert _shm_ids() == before


def test_memory_is_a_total_over_forked_children(path):
    run, _home, _ = path
    res = run("forked_memory", {"each": 160 << 20, "memory_total": 256 << 20, "wall": 40})
    assert res["limit"]["kind"] == "memory total"
    assert res["limit"]["observed"] > 256 << 20
    assert res["wall_s"] < 30


def test_many_files_stay_within_the_disk_budget(path):
    run, _home, who = path
    res = run("many_files", {"n": 9, "mib": 8, "disk": 32 << 20})
    written = sum(v for k, v in res["files"].items() if k.startswith("fill"))
    assert not Path("/dev/shm/fill0.bin").exists() and not Path("/tmp/fill0.bin").exists()
    if "tmpfs" in res["isolation"]["totals"]:
        assert written <= 32 << 20  # a hard cap: the run folder is a tmpfs of that size
        assert "stopped . " in res["stdout"]
    else:  # ordinary user: the parent's watchdog (and its last look) reports the total
        assert res["limit"]["kind"] == "disk total"
    assert "stopped /dev/shm" in res["stdout"] and "stopped /tmp" in res["stdout"]


def test_the_host_process_list_is_invisible(path):
    run, _home, _ = path
    res = run("host_proc", {})
    first = res["stdout"].splitlines()[0]
    assert first.startswith("pids ") and int(first.split()[1]) <= 4
    assert "pytest" not in res["stdout"] and "redteam_kit" not in res["stdout"]


def test_the_script_cannot_rewrite_its_evidence(path):
    run, _home, _ = path
    res = run("events_rewrite", {})
    assert "rewrote" not in res["stdout"]
    net = [e for e in res["events"] if e.get("event") == "network"]
    assert [(e["call"], e["blocked"]) for e in net] == [("socket.getaddrinfo", True)]


def test_the_parent_follows_no_link_the_script_planted(path, tmp_path):
    run, home, who = path
    secret = (Path("/root") if who == "root" else home) / f"auditor-redteam-{uuid.uuid4().hex[:8]}"
    secret.write_text(SECRET + "-deputy")
    os.chmod(secret, 0o600)
    _owned(secret, home) if who == "user" else None
    try:
        res = run("symlink_deputy", {"secret_path": str(secret)})
    finally:
        secret.unlink()
    assert res["stdout"].strip() == "planted"
    assert res["logs"] == {} and SECRET not in _everything(res)


def test_gauntlet_refuses_with_one_line_and_exit_2_without_isolation(monkeypatch, capsys):
    """Where bubblewrap cannot isolate the run, the gauntlet refuses unless --unsafe-no-sandbox."""
    import auditor.sandbox.gauntlet as g
    from auditor.cli import main

    monkeypatch.setattr(g, "isolation_mode", lambda: "session")
    monkeypatch.setattr(isolation, "probe", lambda: (False, "bubblewrap (`bwrap`) is not installed"))
    rc = main(["run", str(ROOT / "examples" / "austen_demo"), "--gauntlet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and "bubblewrap (`bwrap`) is not installed" in err and "--unsafe-no-sandbox" in err
