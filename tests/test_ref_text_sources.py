"""Austen extraction (R XDR serialization inside an rdb inside a .deb) and the generated-text fallback.

The parser is always tested on blobs these tests build themselves; the real package is used only when
its .deb is already cached (never downloaded at test time).
"""

import io
import struct
import tarfile
import unicodedata
import zlib

import pytest

from reference_impl import text_sources as ts


def _xdr_strsxp(lines, version=3, latin1_index=None):
    out = [b"X\n", struct.pack(">iii", version, 0x00040201, 0x00030500)]
    if version == 3:
        out += [struct.pack(">i", 5), b"UTF-8"]
    out.append(struct.pack(">ii", 16, len(lines)))
    for i, line in enumerate(lines):
        if line is None:
            out.append(struct.pack(">ii", 9, -1))
            continue
        if i == latin1_index:
            raw, levels = line.encode("latin-1"), 4
        else:
            raw, levels = line.encode("utf-8"), 8 if not line.isascii() else 64
        out.append(struct.pack(">ii", 9 | (levels << 12), len(raw)) + raw)
    return b"".join(out)


def _rdb(*vectors):
    blobs = []
    for payload in vectors:
        blobs.append(struct.pack(">I", len(payload)) + zlib.compress(payload))
    return b"".join(blobs)


def test_character_vector_parse_handles_utf8_latin1_and_na():
    payload = _xdr_strsxp(["EMMA", "", "Caf\u00e9 au lait", None, "na\u00efve"], latin1_index=4)
    assert ts.parse_r_character_vector(payload) == ["EMMA", "", "Caf\u00e9 au lait", "", "na\u00efve"]
    assert ts.parse_r_character_vector(_xdr_strsxp(["a", "b"], version=2)) == ["a", "b"]


def test_rdb_blobs_are_length_prefixed_zlib_streams():
    rdb = _rdb(_xdr_strsxp(["NOVEL ONE", "First line", "wraps here.", "", "Second para."]),
               _xdr_strsxp(["NOVEL TWO", "Only line."]))
    novels = ts.novels_from_rdb(rdb)
    assert novels == [["NOVEL ONE", "First line", "wraps here.", "", "Second para."], ["NOVEL TWO", "Only line."]]
    assert ts.paragraphs(novels[0]) == ["NOVEL ONE First line wraps here.", "Second para."]


@pytest.mark.parametrize("bad", [b"Y\n" + b"\x00" * 20, _xdr_strsxp(["x"])[:-1]])
def test_malformed_serialization_raises_source_error(bad):
    with pytest.raises(ts.SourceError):
        ts.parse_r_character_vector(bad)


def test_wrong_type_and_bad_length_raise():
    payload = bytearray(_xdr_strsxp(["x"]))
    payload[payload.index(b"\x00\x00\x00\x10") + 3] = 14  # REALSXP instead of STRSXP
    with pytest.raises(ts.SourceError, match="type 14"):
        ts.parse_r_character_vector(bytes(payload))
    good = _xdr_strsxp(["abc"])
    with pytest.raises(ts.SourceError, match="header says"):
        list(ts.iter_rdb_blobs(struct.pack(">I", len(good) + 1) + zlib.compress(good)))


def _ar(members):
    out = [b"!<arch>\n"]
    for name, body in members:
        hdr = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(body):<10}`\n".encode()
        out.append(hdr + body + (b"\n" if len(body) % 2 else b""))
    return b"".join(out)


def test_deb_extraction_finds_the_rdb(tmp_path):
    rdb = _rdb(_xdr_strsxp(["PERSUASION", "Sir Walter Elliot,", "of Kellynch Hall."]))
    tar_buf = io.BytesIO()
    with tarfile.open(fileobj=tar_buf, mode="w:xz") as tar:
        info = tarfile.TarInfo("./usr/lib/R/site-library/janeaustenr/data/Rdata.rdb")
        info.size = len(rdb)
        tar.addfile(info, io.BytesIO(rdb))
    deb = tmp_path / "r-cran-janeaustenr_9.9-1_all.deb"
    deb.write_bytes(_ar([("debian-binary", b"2.0\n"), ("data.tar.xz", tar_buf.getvalue())]))
    assert ts.find_austen_deb(tmp_path) == deb
    assert ts.austen_documents(deb) == ["PERSUASION Sir Walter Elliot, of Kellynch Hall."]
    (tmp_path / "not.deb").write_bytes(b"garbage")
    with pytest.raises(ts.SourceError):
        ts.rdb_from_deb(tmp_path / "not.deb")


def test_generated_documents_are_deterministic_and_normalisation_free():
    docs = ts.generated_documents(200, seed=3)
    assert docs == ts.generated_documents(200, seed=3)
    assert docs != ts.generated_documents(200, seed=4)
    text = " ".join(docs)
    assert any(c.isdigit() for c in text) and any(ord(c) > 127 for c in text)
    assert any(p in text for p in ".!?;")
    for d in docs:
        assert d == d.strip() and "  " not in d
        assert unicodedata.normalize("NFKC", d) == d


def test_file_documents_per_file_and_per_line(tmp_path):
    (tmp_path / "b.txt").write_text("line one\n\nline two\n")
    (tmp_path / "a.txt").write_text("alpha\n")
    paths = [str(tmp_path / "b.txt"), str(tmp_path / "a.txt")]
    assert ts.file_documents(paths, per_line=False) == ["alpha\n", "line one\n\nline two\n"]
    assert ts.file_documents(paths, per_line=True) == ["alpha", "line one", "line two"]


def test_real_austen_package_when_cached():
    deb = ts.find_austen_deb()
    if deb is None:
        pytest.skip("r-cran-janeaustenr .deb not cached")
    novels = ts.novels_from_rdb(ts.rdb_from_deb(deb))
    assert len(novels) == 6
    assert [n[0] for n in novels][0] == "EMMA"
    assert any("Emma Woodhouse, handsome, clever, and rich" in p for p in ts.paragraphs(novels[0]))
