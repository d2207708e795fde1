"""codesize: the records' minify + compress + base85 wrapper size, and shim + sibling accounting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from auditor.analysis import codesize as cs

SMALL = '''"""Module docstring that the minifier drops."""
import os


def train(steps):
    """Docstring."""
    total = 0  # comment
    for i in range(steps):
        assert i >= 0, "never"
        total += i * 2
    return total


def _compressed_code_size(code):
    minified = code
    return len(code), len(minified)


if __name__ == "__main__":
    print(train(int(os.environ.get("STEPS", "10"))))
'''

BROTLI_RECIPE = '''def _compressed_code_size(code):
    import brotli
    compressed = brotli.compress(minified, quality=11)
    return 1, 2
'''


@pytest.fixture
def builtin(monkeypatch):
    monkeypatch.setattr(cs, "_load_minifier", lambda: None)


def test_recipe_is_read_from_the_script():
    assert cs.detect_recipe(SMALL) == cs.LZMA
    assert cs.detect_recipe(BROTLI_RECIPE) == cs.BROTLI
    assert cs.detect_recipe("x = 1\n") is None


def test_builtin_minifier_output(builtin):
    out, how = cs.minify(SMALL)
    assert how == "builtin"
    assert out.decode().splitlines()[:3] == ["import os", "def train(steps):", "\ttotal=0"]
    assert b"Docstring" not in out and b"comment" not in out and b"assert i>=0,'never'" in out
    assert b"assert" not in cs.minify(SMALL, cs.BROTLI)[0]


def test_builtin_sizes(builtin):
    lz = cs.code_size(SMALL)
    assert (lz.raw, lz.compressed, lz.recipe, lz.minifier) == (395, 400, cs.LZMA, "builtin")
    assert cs.compressed_code_size(SMALL, cs.BROTLI) == 256


def test_wrapper_is_the_records_text(builtin):
    # the wrapper adds 65 bytes around base85(lzma(minified)); base85 is 5 bytes per 4
    minified, _ = cs.minify(SMALL)
    import base64
    import lzma
    assert cs.compressed_code_size(SMALL) == 65 + len(base64.b85encode(lzma.compress(minified)))


@pytest.mark.skipif(cs._load_minifier() is None, reason="python-minifier not installed")
def test_python_minifier_sizes():
    assert cs.code_size(SMALL).minifier.startswith("python-minifier")
    assert cs.compressed_code_size(SMALL) == 395
    assert cs.compressed_code_size(SMALL, cs.BROTLI) == 260


def test_explains_with_tolerance():
    exact = cs.CodeSize(100_000, 27_555, cs.LZMA, "python-minifier 3.4.0")
    assert cs.explains(27_572, exact) and not cs.explains(27_700, exact)
    rough = cs.CodeSize(100_000, 27_825, cs.LZMA, "builtin")
    assert cs.explains(27_555, rough)  # the built-in minifier over-counts by about 1 %
    assert not cs.explains(27_900, rough)  # but never under-counts


SHIM = 'exec(open(__file__.replace("train_gpt.py","train_gpt_decode.py")).read())\n'


def test_exec_shim_counts_shim_and_sibling():
    files = {"train_gpt.py": SHIM, "train_gpt_decode.py": b"x" * 1000, "README.md": "r"}
    assert cs.shipped_code_bytes(files) == (74 + 1000, ["train_gpt.py", "train_gpt_decode.py"])


def test_runpy_shim_and_plain_script():
    files = {"train_gpt.py": "import runpy\nrunpy.run_path('impl/main.py')\n", "impl/main.py": "y = 2\n"}
    assert cs.shipped_code_bytes(files) == (44 + 6, ["train_gpt.py", "impl/main.py"])
    assert cs.shipped_code_bytes({"train_gpt.py": SMALL, "other.py": "z"}) == (395, ["train_gpt.py"])


CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"
_LOGGED = re.compile(r"^Code size \(compressed\): (\d+) bytes$", re.M)


@pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus not present")
def test_corpus_logged_compressed_sizes_are_explained():
    seen = 0
    for script in sorted(CORPUS.rglob("train_gpt.py")):
        logged = {int(x) for log in script.parent.glob("*.log")
                  for x in _LOGGED.findall(log.read_text(errors="replace"))}
        if not logged:
            continue
        size = cs.code_size(script.read_text(encoding="utf-8"))
        assert all(cs.explains(v, size) for v in logged), (script.parent.name, logged, size)
        seen += 1
    assert seen == 6
