"""Folder -> Submission. Reads, never executes.

The folder is untrusted: symlinks are not followed, hard links and special files are not read,
sizes are checked before reading, and every decoding step is bounded. Problems become findings
(rule FILES) so the review still gets written; only an unusable path is a tool error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath

from auditor.core import budget
from auditor.load.decode import DecodeError, decode_stub
from auditor.load.configdump import config_dump
from auditor.load.mixlines import mixture_scores
from auditor.core.errors import LoadError
from auditor.core.model import CodeFile, Evidence, Issue, Submission
from auditor.load.subjson import parse_submission_json

MAX_FILES = budget.MAX_FILES
MAX_DEPTH = budget.MAX_DEPTH
MAX_TEXT_BYTES = budget.FILE_BYTES  # logs and code larger than this are not read
MAX_README_BYTES = budget.README_BYTES
SKIP_DIRS = {".git", "__pycache__", ".ipynb_checkpoints", ".venv", "node_modules"}
CODE_SUFFIXES = {".py": "python", ".c": "c", ".cc": "c", ".cpp": "c", ".cu": "c", ".cuh": "c", ".h": "c", ".hpp": "c"}


def _finding(severity: str, message: str, path: str | None = None, text: str = "") -> Issue:
    return Issue("FILES", severity, message, [Evidence(path, None, text)] if path else [])


def _safe_name(rel: str) -> str:
    """File names are attacker-chosen: keep them printable in reports."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in rel)


def scan(root: Path, real_names: dict[str, str] | None = None
         ) -> tuple[list[str], dict[str, os.stat_result], list[Issue]]:
    """List regular files under root (relative POSIX paths, sorted) without following links.

    Names are reported printable (_safe_name); `real_names`, when given, receives safe name -> the
    name on disk, so a file whose name holds a newline or non-UTF-8 bytes is still read."""
    files: list[str] = []
    stats: dict[str, os.stat_result] = {}
    findings: list[Issue] = []
    stack = [(root, 0)]
    while stack:
        d, depth = stack.pop()
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            rel = d.relative_to(root).as_posix()
            findings.append(_finding("warn", f"folder could not be listed ({exc.strerror})", _safe_name(rel)))
            continue
        for e in entries:
            rel = _safe_name(Path(e.path).relative_to(root).as_posix())
            try:
                st = e.stat(follow_symlinks=False)
            except OSError:
                findings.append(_finding("warn", "file could not be inspected", rel))
                continue
            if stat.S_ISLNK(st.st_mode):
                try:
                    target = os.readlink(e.path)
                except OSError:
                    target = "?"
                # realpath, not Path.resolve(): a link loop must not raise (Path.resolve gives RuntimeError)
                resolved = Path(os.path.realpath(Path(d) / target)) if target != "?" else None
                inside = resolved is not None and (resolved == root or root in resolved.parents)
                findings.append(_finding(
                    "warn" if inside else "fail",
                    "symbolic link " + ("inside the folder; not followed" if inside else
                                        "pointing outside the submission folder; not followed"),
                    rel, _safe_name(target)[:200]))
                continue
            if stat.S_ISDIR(st.st_mode):
                if e.name in SKIP_DIRS:
                    continue
                if depth + 1 > MAX_DEPTH:
                    findings.append(_finding("warn", f"folder nested deeper than {MAX_DEPTH} levels; not read", rel))
                    continue
                stack.append((Path(e.path), depth + 1))
                continue
            if not stat.S_ISREG(st.st_mode):
                findings.append(_finding("warn", "special file (device, socket or pipe); not read", rel))
                continue
            if len(files) >= MAX_FILES:
                findings.append(_finding("warn", f"more than {MAX_FILES} files; the rest were not read"))
                return sorted(files), stats, findings
            if rel in stats:
                findings.append(_finding("warn", "file name has unprintable characters and reads the same as "
                                                  "another file's once made printable; not read", rel))
                continue
            on_disk = Path(e.path).relative_to(root).as_posix()
            if on_disk != rel:  # a newline, bidi override or undecodable byte can mislead a reader of the PR
                findings.append(_finding("warn", "file name has unprintable characters (control, bidi or "
                                                  "non-UTF-8 bytes), shown as \ufffd", rel))
            if real_names is not None:
                real_names[rel] = on_disk
            files.append(rel)
            stats[rel] = st
    return sorted(files), stats, findings


def _read(root: Path, rel: str, st: os.stat_result, limit: int, findings: list[Issue],
          real: str | None = None, spent: list[int] | None = None) -> bytes | None:
    """The file's bytes, or None (with a finding saying why). `spent` is the folder's running total of
    bytes read, checked against budget.TOTAL_READ_BYTES before reading (a file that would pass it is
    not read, so many files each under the per-file limit cannot add up to gigabytes)."""
    if st.st_nlink > 1:
        findings.append(_finding("warn", f"file has {st.st_nlink} hard links (may alias a file outside the "
                                          "folder); not read", rel))
        return None
    if st.st_size > limit:
        findings.append(_finding("warn", f"{st.st_size:,} bytes; larger than the {limit:,}-byte read limit, "
                                          "not read", rel))
        return None
    if spent is not None:
        if spent[0] + st.st_size > budget.TOTAL_READ_BYTES:
            findings.append(_finding("warn", f"not read: the folder's files read so far ({spent[0]:,} bytes) and "
                                              f"this one ({st.st_size:,} bytes) pass the {budget.TOTAL_READ_BYTES:,}"
                                              "-byte budget for one folder; check this file by hand", rel))
            return None
        spent[0] += st.st_size
    try:
        fd = os.open(root / (real or rel), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            now = os.fstat(fd)
            if ((now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
                    or not stat.S_ISREG(now.st_mode)):
                findings.append(_finding("warn", "file was replaced while the folder was being read; not read", rel))
                return None
            return fh.read(limit + 1)[:limit]
    except OSError as exc:
        findings.append(_finding("warn", f"file could not be read ({exc.strerror})", rel))
        return None


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def is_submission_json(rel: str) -> bool:
    name = rel.lower()
    return "/" not in rel and name.endswith(".json") and (name == "submission.json" or name.startswith("submission_"))


def load_submission(path: str | os.PathLike) -> Submission:  # the reading order is the read budget's priority order
    from auditor.load.logparse import is_log_name, parse_log

    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path) or not os.fspath(path).strip():
        raise LoadError("empty folder path (give the record folder to audit)")
    if "\x00" in os.fspath(path):
        raise LoadError("folder path holds a NUL character")
    root = Path(path)
    try:
        if not root.exists():
            raise LoadError(f"{path}: no such folder")
        if not root.is_dir():
            raise LoadError(f"{path}: not a folder")
        root = root.resolve()
        os.listdir(root)
    except PermissionError:
        raise LoadError(f"{path}: permission denied") from None
    except OSError as exc:
        raise LoadError(f"{path}: cannot be read ({exc.strerror})") from None

    real_names: dict[str, str] = {}
    files, stats, findings = scan(root, real_names)
    if _safe_name(root.name) != root.name:
        findings.append(_finding("warn", "folder name has unprintable characters (control, bidi or non-UTF-8 "
                                          "bytes), shown as \ufffd"))
    track = root.parent.name if root.parent.name.startswith("track_") else None
    sub = Submission(root=root, name=_safe_name(root.name), track=track, files=files, load_issues=findings)

    texts: dict[str, str] = {}
    spent = [0]  # bytes read from the folder so far (budget.TOTAL_READ_BYTES)

    def priority(rel: str) -> tuple[int, str]:  # what the budget goes to first: claims, README, code, logs
        low = rel.lower()
        return (0 if is_submission_json(rel) or low == "readme.md" else
                1 if PurePosixPath(rel).suffix.lower() in CODE_SUFFIXES else 2, rel)

    for rel in sorted(files, key=priority):
        suffix = PurePosixPath(rel).suffix.lower()
        wanted = (suffix in CODE_SUFFIXES or is_log_name(rel) or is_submission_json(rel)
                  or rel.lower() in ("readme.md", "requirements.txt"))
        if not wanted:
            continue
        limit = MAX_README_BYTES if rel.lower() == "readme.md" else MAX_TEXT_BYTES
        data = _read(root, rel, stats[rel], limit, findings, real_names.get(rel, rel), spent)
        if data is None:
            continue
        if is_submission_json(rel):
            sub.meta_files.append(rel)
            if len(sub.meta_files) == 1 or rel == "submission.json":
                meta = parse_submission_json(rel, data)
                if rel == "submission.json" or sub.meta.path is None:
                    sub.meta = meta
            continue
        texts[rel] = _text(data)
        if rel.lower() == "readme.md":
            sub.readme, sub.readme_path = texts[rel], rel
        elif rel.lower() == "requirements.txt":
            sub.requirements = texts[rel]

    decode_spent = ([0], [0])  # bytes built and tokens parsed by the stub decoder, all files together
    py_texts = {k: v for k, v in texts.items() if k.endswith(".py")}  # once, not once per file
    for rel in files:
        suffix = PurePosixPath(rel).suffix.lower()
        if suffix in CODE_SUFFIXES and rel in texts:
            sub.code.append(_code_file(root, rel, texts, CODE_SUFFIXES[suffix], stats, real_names.get(rel, rel),
                                       decode_spent, py_texts))
    log_left = budget.LOG_PARSE_BYTES  # parsing costs ~0.3 s and up to 30 bytes of memory per byte of log
    for rel in files:
        if rel in texts and is_log_name(rel) and PurePosixPath(rel).suffix.lower() not in CODE_SUFFIXES:
            sub.logs.append(rel)
            text = texts[rel]
            if len(text) > log_left:
                cut = text.rfind("\n", 0, max(log_left, 0) + 1)
                text = text[:cut + 1] if cut >= 0 else ""
                findings.append(_finding("warn", f"log only partly parsed: its first {len(text):,} characters "
                                                  f"(logs together are parsed up to {budget.LOG_PARSE_BYTES:,}); "
                                                  "check the rest by hand", rel))
            log_left -= len(text)
            sub.mixture_scores.extend(mixture_scores(rel, text))
            for key, seen in config_dump(rel, text).items():
                sub.log_config.setdefault(key, seen)
            try:
                sub.runs.extend(parse_log(rel, text))
            except (RecursionError, MemoryError):
                findings.append(_finding("warn", "log could not be parsed (too large or too deeply nested)", rel))
    return sub


def _code_file(root: Path, rel: str, texts: dict[str, str], kind: str, stats: dict, real: str | None = None,
               decode_spent: tuple[list[int], list[int]] | None = None,
               py_texts: dict[str, str] | None = None) -> CodeFile:
    text = texts[rel]
    shipped = text.encode("utf-8", errors="replace")
    try:
        fd = os.open(root / (real or rel), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            shipped = fh.read(MAX_TEXT_BYTES)
    except OSError:
        pass
    cf = CodeFile(path=rel, shipped=shipped, text=text, kind=kind)
    if kind != "python":
        return cf
    siblings = py_texts if py_texts is not None else {k: v for k, v in texts.items() if k.endswith(".py")}
    try:
        decoded = decode_stub(text, rel, siblings, *(decode_spent or (None, None)))
    except DecodeError as exc:
        cf.decode_error = str(exc)
        return cf
    except (RecursionError, MemoryError):
        cf.decode_error = "stub too deeply nested to decode"
        return cf
    if decoded is not None:
        cf.text, cf.stub, cf.layers, cf.stub_target = decoded.text, decoded.kind, decoded.layers, decoded.target
    return cf
