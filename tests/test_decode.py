import base64
import lzma
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from auditor.load.decode import MAX_DECODED_BYTES, DecodeError, decode_stub

SOURCE = 'import os\nprint("decoded payload")\nVALUE = 42\n'


def raw_lzma_stub(src: str) -> str:
    payload = lzma.compress(src.encode(), format=lzma.FORMAT_RAW, filters=[{"id": lzma.FILTER_LZMA2}])
    text = base64.b85encode(payload).decode()
    return ("import lzma as L,base64 as B\n"
            f'exec(L.decompress(B.b85decode("{text}"),format=L.FORMAT_RAW,filters=[{{"id":L.FILTER_LZMA2}}]))\n')


def xz_stub(src: str, wrapper_line: bool = True) -> str:
    text = base64.b85encode(lzma.compress(src.encode())).decode()
    head = "__wrapper_size__=1234\n" if wrapper_line else ""
    return f'import lzma,base64\n{head}exec(lzma.decompress(base64.b85decode("{text}")).decode())\n'


def test_raw_lzma2_stub_is_decoded():
    d = decode_stub(raw_lzma_stub(SOURCE), "train_gpt.py", {})
    assert d.text == SOURCE and d.kind == "lzma-raw" and d.layers == 1


def test_xz_container_stub_with_wrapper_size_line():
    d = decode_stub(xz_stub(SOURCE), "train_gpt.py", {})
    assert d.text == SOURCE and d.kind == "lzma-xz"


def test_split_string_literals_and_module_constant():
    text = base64.b85encode(lzma.compress(SOURCE.encode())).decode()
    half = len(text) // 2
    stub = f'import lzma\nimport base64 as b\nP = "{text[:half]}" + "{text[half:]}"\nexec(lzma.decompress(b.b85decode(P)))\n'
    assert decode_stub(stub, "t.py", {}).text == SOURCE


def test_zlib_base64_nested_two_layers():
    inner = xz_stub(SOURCE)
    outer = f'import zlib, base64\nexec(zlib.decompress(base64.b64decode("{base64.b64encode(zlib.compress(inner.encode())).decode()}")))\n'
    d = decode_stub(outer, "t.py", {})
    assert d.text == SOURCE and d.layers == 2 and d.kind == "zlib"


def test_exec_shim_runs_sibling_file():
    d = decode_stub('exec(open("train_gpt_decode.py").read())\n', "train_gpt.py", {"train_gpt_decode.py": SOURCE})
    assert d.kind == "exec-file" and d.target == "train_gpt_decode.py" and d.text == SOURCE


def test_plain_script_is_not_a_stub():
    assert decode_stub(SOURCE, "train_gpt.py", {}) is None


def test_decompression_bomb_is_bounded():
    bomb = base64.b85encode(lzma.compress(b"\0" * (MAX_DECODED_BYTES + 10))).decode()
    with pytest.raises(DecodeError, match="exceeds"):
        decode_stub(f'import lzma,base64\nexec(lzma.decompress(base64.b85decode("{bomb}")))\n', "t.py", {})


def test_malformed_payload_is_a_decode_error():
    with pytest.raises(DecodeError):
        decode_stub('import lzma,base64\nexec(lzma.decompress(base64.b85decode("!!!!not base85")))\n', "t.py", {})


def test_unknown_callee_is_never_called():
    # os.system is not a decoder: the stub is reported, not evaluated
    with pytest.raises(DecodeError, match="not a known decoder"):
        decode_stub('import os\nexec(os.system("touch /tmp/pwned"))\n', "t.py", {})


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises_anything_but_decode_error(text):
    try:
        decode_stub(text, "t.py", {})
    except DecodeError:
        pass


def test_a_stub_that_strips_its_line_breaks_decodes(tmp_path):
    """`exec(lzma.decompress(base64.b85decode(_b.replace(b"\\n", b""))).decode())`: a wrapped literal."""
    import base64 as b64
    import lzma as lz

    from auditor.load.loader import load_submission

    src = "import os\nX = int(os.environ.get('PPM_ENABLED', '0'))\n"
    packed = b64.b85encode(lz.compress(src.encode())).decode()
    wrapped = "\n".join(packed[i:i + 40] for i in range(0, len(packed), 40))
    stub = f'import lzma,base64\n_b=b"""\n{wrapped}\n"""\nexec(lzma.decompress(base64.b85decode(_b.replace(b"\\n",b""))).decode("utf-8"))\n'
    (tmp_path / "train_gpt.py").write_text(stub)
    entry = load_submission(str(tmp_path)).entry_point
    assert entry.decode_error is None and entry.text == src
    grow = stub.replace('_b.replace(b"\\n",b"")', '_b.replace(b"\\n",b"xx")')  # could grow: not evaluated
    (tmp_path / "train_gpt.py").write_text(grow)
    assert "unsupported .replace()" in (load_submission(str(tmp_path)).entry_point.decode_error or "")
