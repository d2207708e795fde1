"""`auditor` command line. Each subcommand lives in auditor/commands/<name>.py and exposes
`add_parser(subparsers)` and `run(args) -> int`.

Exit codes: the verdict's (auditor/core/grades.py: 0 PASS, 1 FAIL, 3 NEEDS_REVIEW), 2 for a tool error.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import os
import sys

from auditor import __version__
from auditor.core.errors import ToolError
from auditor.core.grades import EXIT_INTERRUPTED, EXIT_TOOL_ERROR

COMMANDS = ["run", "review", "rules", "ci", "frontier", "comment", "hook", "conform"]

EXIT_ERROR = EXIT_TOOL_ERROR

# Modules that only the code-executing parts need (`--gauntlet`, `conform`): the `gauntlet` extra.
EXTRA_MODULES = {"torch", "numpy", "sentencepiece", "brotli"}


def missing_dependency_line(exc: ImportError, prog: str = "auditor") -> str:
    """One stderr line for an import that failed: which module, and the install that brings it.

    A traceback here would exit 1, which a CI gate reads as a FAIL verdict on the PR under audit."""
    name = (exc.name or str(exc) or "?").split(".")[0]
    if name in EXTRA_MODULES:
        fix = "this part executes code and needs the extra: pip install 'pgolf-auditor[gauntlet]'"
    else:
        fix = "the install is incomplete: reinstall the auditor (pip install -e . in its checkout)"
    return f"{prog}: error: cannot import {name!r} ({type(exc).__name__}); {fix}\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 already; keep it to one line
        sys.stderr.write(f"auditor: error: {message}\n")
        raise SystemExit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="auditor", description="Audit Parameter Golf record submissions.")
    parser.add_argument("--version", action="version", version=f"auditor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        if importlib.util.find_spec(f"auditor.commands.{name}") is None:
            continue  # a command whose module is not part of this build
        module = importlib.import_module(f"auditor.commands.{name}")
        module.add_parser(sub)
    return parser


def _utf8_streams() -> None:
    """Reports are UTF-8 whatever the locale: the same bytes everywhere, and a latin-1 or ASCII
    console (PYTHONIOENCODING, some CI runners) cannot crash the write after the audit ran."""
    for stream, errors in ((sys.stdout, "replace"), (sys.stderr, "backslashreplace")):
        enc = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if enc != "utf8" and hasattr(stream, "reconfigure"):
            try:
                stream.reconfigure(encoding="utf-8", errors=errors)
            except (ValueError, OSError, io.UnsupportedOperation):
                pass


def main(argv: list[str] | None = None) -> int:
    _utf8_streams()
    try:
        return _dispatch(argv)
    except ImportError as exc:
        if os.environ.get("AUDITOR_DEBUG"):
            raise
        sys.stderr.write(missing_dependency_line(exc))
        return EXIT_ERROR


def _dispatch(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_ERROR
    try:
        return int(args.func(args))
    except ImportError:
        raise  # main() turns it into one line
    except ToolError as exc:
        sys.stderr.write(f"auditor: error: {exc}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("auditor: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_ERROR
    except RecursionError:
        sys.stderr.write("auditor: error: input too deeply nested to analyse\n")
        return EXIT_ERROR
    except MemoryError:
        sys.stderr.write("auditor: error: out of memory while auditing\n")
        return EXIT_ERROR
    except Exception as exc:  # a bug must not exit 1, which CI would read as a FAIL verdict
        if os.environ.get("AUDITOR_DEBUG"):
            raise
        msg = " ".join(str(exc).split())[:200]
        sys.stderr.write(f"auditor: error: internal error ({type(exc).__name__}: {msg}); please report it "
                         "(AUDITOR_DEBUG=1 shows the traceback)\n")
        return EXIT_ERROR
