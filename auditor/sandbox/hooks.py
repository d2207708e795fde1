"""Audit hook installed inside the sandboxed process (copied there as `_gauntlet_hooks.py`).

Why an audit hook: it sees every file open, program launch and socket call the submission makes through
Python, with no change to the submission's code, so the auditor can say *when* (train / serialize /
eval) something was touched. It is evidence, not the security boundary: the OS-level sandbox (user,
namespaces, rlimits) is what keeps the machine safe; a hostile script could remove this hook's
evidence, but not escape those limits.

Phase tracking (no cooperation from the script needed):
  setup -> probe (the driver's own stages) -> train (the script's main run starts)
  train -> serialize  at the first write of a file in the run folder that is not a log or data file
  serialize -> eval   at the first read of a file that was written in the serialize phase (the
                      round-trip load every record script does before its final evaluation)
The live phase is a first guess; every open of a model file is recorded (`artifact`: write/read)
so the parent can re-derive phases afterwards: evaluation starts at the first read-back after the
LAST model write (a script may save, reload for quantization, and save again).

This file must import only the standard library: it runs before anything else in the child.
"""

from __future__ import annotations

import json
import os
import sys
import time

_LOG_SUFFIXES = (".txt", ".log", ".json", ".jsonl", ".csv", ".md")
_NET_EVENTS = ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr",
               "socket.sendto", "socket.sendmsg", "socket.bind")
_PROC_EVENTS = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                "os.forkpty", "pty.spawn")
MAX_RECORDS = 2000  # ordinary file opens; evidence that decides findings has its own, larger cap
MAX_KEY_RECORDS = 20000
MAX_LINE = 65536
_KEY_KINDS = ("train_shard", "val_shard")


class _State:
    def __init__(self, events_path: str, run_dir: str, data_dir: str, block_network: bool):
        self.events_path = events_path
        self.run_dir = os.path.realpath(run_dir)
        self.data_dir = os.path.realpath(data_dir)
        self.block_network = block_network
        self.phase = "setup"
        self.written: set[str] = set()
        self.last_artifact: str | None = None
        self.epoch = 0
        self.seen: set[tuple] = set()
        self.count = 0
        self.key_count = 0
        self.fd = _connect(events_path)
        self.tag = ""  # "b": the flip test's second evaluation (a forked child of the script's run)
        self.busy = False
        self.ignore = tuple(os.path.realpath(p) + os.sep for p in
                            {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
                            | set(p for p in sys.path if p.endswith("site-packages")))

    def emit(self, record: dict) -> None:
        key = record.get("event") != "open" or record.get("kind") in _KEY_KINDS or record.get("artifact")
        if key:
            if self.key_count >= MAX_KEY_RECORDS:
                return
            self.key_count += 1
        else:
            if self.count >= MAX_RECORDS:
                return
            self.count += 1
        record["phase"] = record.get("phase", self.phase)
        if self.tag:
            record["flip"] = self.tag
        record.setdefault("t", round(time.monotonic(), 3))
        line = json.dumps(record, default=str)
        if len(line) > MAX_LINE:  # keep the record valid JSON: shorten its large fields instead
            line = json.dumps({k: (v if len(json.dumps(v, default=str)) < 1000 else "<truncated>")
                               for k, v in record.items()}, default=str)[:MAX_LINE]
        if self.fd is None:
            return
        data = (line + "\n").encode("utf-8", "replace")
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError:
            pass


STATE: _State | None = None


def _connect(path: str) -> int | None:
    """The parent's evidence socket (a stream it reads as events happen; nothing is kept in a file the
    script could rewrite). Connected before the hook is installed, so it records no event of its own."""
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        s.close()
        return None
    return s.detach()


def reconnect(tag: str) -> None:
    """In a forked child (the flip test's run B): a connection of its own, every record tagged."""
    if STATE is None:
        return
    STATE.busy = True  # the auditor's own connection is not the script's network use
    try:
        old, STATE.fd = STATE.fd, _connect(STATE.events_path)
    finally:
        STATE.busy = False
    if old is not None:
        try:
            os.close(old)  # this process's copy only; the parent keeps its connection
        except OSError:
            pass
    STATE.tag = tag


def set_phase(phase: str) -> None:
    if STATE is not None and STATE.phase != phase:
        STATE.phase = phase
        STATE.emit({"event": "phase", "phase": phase})


def emit(record: dict) -> None:
    if STATE is not None:
        STATE.emit(record)


def _classify(path: str) -> str:
    base = os.path.basename(path)
    if base.startswith("fineweb_train_") and base.endswith(".bin"):
        return "train_shard"
    if base.startswith("fineweb_val_") and base.endswith(".bin"):
        return "val_shard"
    if base.endswith(".model") or base.endswith(".vocab"):
        return "tokenizer"
    return "file"


def _is_write(mode, flags) -> bool:
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    if isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
        return True
    return False


def _on_open(st: _State, args) -> None:
    path, mode, flags = (list(args) + [None, None, None])[:3]
    if isinstance(path, bytes):
        path = path.decode("utf-8", "replace")
    if not isinstance(path, str):
        return  # an fd: nothing new
    full = os.path.realpath(os.path.abspath(path))
    if full.startswith(st.ignore) or full.startswith(("/proc/", "/sys/", "/dev/")):
        return
    write = _is_write(mode, flags)
    kind = _classify(full)
    in_run = full.startswith(st.run_dir + os.sep)
    rel = os.path.relpath(full, st.run_dir) if in_run else full
    if in_run and rel.split(os.sep, 1)[0] == ".gauntlet":
        return  # the auditor's own shims and records
    artifact = None
    if write and in_run and kind == "file" and st.phase in ("train", "serialize", "eval"):
        top = rel.split(os.sep, 1)[0]
        if top not in ("logs", "data", "tmp", ".gauntlet") and not full.endswith(_LOG_SUFFIXES):
            st.written.add(full)
            artifact = "write"
            if st.phase == "train":
                set_phase("serialize")
    elif not write and full in st.written:
        artifact = "read"
        if st.phase == "serialize":
            set_phase("eval")
    if artifact is not None and artifact != st.last_artifact:
        st.last_artifact = artifact
        st.epoch += 1  # a new write/read alternation: record opens again, the parent re-derives phases
    key = ("open", rel, write, st.phase, st.epoch)
    if key in st.seen:
        return
    st.seen.add(key)
    st.emit({"event": "open", "path": rel, "write": write, "kind": kind, "artifact": artifact})


def _hook(event: str, args) -> None:
    st = STATE
    if st is None or st.busy:
        return
    if event == "open":
        st.busy = True
        try:
            _on_open(st, args)
        finally:
            st.busy = False
        return
    if event in _NET_EVENTS or event == "urllib.Request":
        st.busy = True
        try:
            target = args[1] if event in ("socket.connect", "socket.sendto", "socket.bind") and len(args) > 1 \
                else (args[0] if args else None)
            family = getattr(args[0], "family", None) if event.startswith("socket.") and args else None
            unix = family is not None and int(family) == 1  # AF_UNIX stays local
            blocked = st.block_network and not unix and event != "urllib.Request"
            st.emit({"event": "network", "call": event, "target": repr(target)[:200], "blocked": blocked})
        finally:
            st.busy = False
        if blocked:
            raise PermissionError(f"network access is blocked in the auditor's sandbox ({event})")
        return
    if event in _PROC_EVENTS:
        st.busy = True
        try:
            what = args[0] if args else None
            if event == "subprocess.Popen" and len(args) > 1:
                what = args[1] if args[1] is not None else args[0]
            st.emit({"event": "process", "call": event, "target": repr(what)[:300]})
        finally:
            st.busy = False
        return
    if event == "ctypes.dlopen":
        st.emit({"event": "dlopen", "target": repr(args[0] if args else None)[:200]})


def install(events_path: str, run_dir: str, data_dir: str, block_network: bool = True) -> None:
    """Install once per process; later calls (e.g. a re-imported sitecustomize) are ignored."""
    global STATE
    if STATE is not None:
        return
    STATE = _State(events_path, run_dir, data_dir, block_network)
    sys.addaudithook(_hook)
