"""The tool's own errors: each is one line on stderr and exit code 2, never a verdict."""

from __future__ import annotations


class ToolError(Exception):
    """A problem with the auditor's input or invocation: one line to stderr, exit code 2."""


class LoadError(Exception):
    """The path given is not a folder that can be read at all (missing, not a directory, unreadable).

    Problems *inside* a readable folder are never a LoadError: they become issues the FILES rule judges.
    """



class SandboxUnavailable(ToolError):
    """The gauntlet was asked for and no OS-level isolation of the required strength exists here."""
