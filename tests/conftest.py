"""Shared test configuration.

Helper kits (recordkit, codekit, adversarial_kit) sit in tests/ and are imported by name: pytest's
default import mode puts this folder on sys.path, so no test file edits sys.path itself.
`../shared` (the labeled real corpora) is optional: tests that read it skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED
