"""Where the reference pipeline's documents come from.

* Jane Austen's novels (public domain), read from Debian's `r-cran-janeaustenr` package. The .deb is an
  `ar` archive holding `data.tar.xz`; inside, `data/Rdata.rdb` is a sequence of blobs, each a 4-byte
  big-endian *uncompressed* length followed by a zlib stream holding an R XDR serialization. Each novel is
  a character vector (STRSXP) of lines (CHARSXP). We parse that ourselves: no R needed.
* A seeded generator of English-like text (spaces, digits, punctuation, some non-ASCII), so tests and
  demos never depend on the network.
* Plain text files: one document per file, or one per line.

Documents from Austen are paragraphs: consecutive non-blank lines joined by single spaces (the package
stores hard-wrapped lines), which keeps them free of the whitespace SentencePiece would normalise away.
"""

from __future__ import annotations

import io
import os
import random
import struct
import subprocess
import tarfile
import zlib
from pathlib import Path

CACHE_DIR = Path(os.environ.get("PGOLF_CACHE", Path.home() / ".cache" / "pgolf-auditor"))
AUSTEN_PACKAGE = "r-cran-janeaustenr"
RDB_MEMBER_SUFFIX = "janeaustenr/data/Rdata.rdb"


class SourceError(RuntimeError):
    """The requested text source is unavailable or malformed."""


# ---------------------------------------------------------------- R serialization (XDR, version 2/3)

_STRSXP, _CHARSXP = 16, 9
_NA_STRING_LEN = -1


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def int(self) -> int:
        if self.pos + 4 > len(self.data):
            raise SourceError("truncated R serialization")
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return v

    def bytes(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise SourceError("truncated R serialization")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out


def parse_r_character_vector(payload: bytes) -> list[str]:
    """Decode an XDR R serialization whose top object is a character vector (no attributes needed).

    NA strings become "". Only the subset of the format used by data-only character vectors is read;
    anything else raises SourceError rather than guessing.
    """
    if payload[:2] != b"X\n":
        raise SourceError("not an XDR R serialization")
    r = _Reader(payload)
    r.pos = 2
    version = r.int()
    r.int()  # writer R version
    r.int()  # minimal reader version
    if version == 3:
        r.bytes(r.int())  # native encoding name
    elif version != 2:
        raise SourceError(f"unsupported serialization version {version}")
    flags = r.int()
    if flags & 0xFF != _STRSXP:
        raise SourceError(f"top object has type {flags & 0xFF}, expected a character vector")
    n = r.int()
    out = []
    for _ in range(n):
        cflags = r.int()
        if cflags & 0xFF != _CHARSXP:
            raise SourceError(f"element has type {cflags & 0xFF}, expected CHARSXP")
        length = r.int()
        if length == _NA_STRING_LEN:
            out.append("")
            continue
        raw = r.bytes(length)
        # gp bit 2 (LATIN1_MASK) marks latin-1; UTF8 and ASCII strings decode as UTF-8.
        latin1 = bool((cflags >> 12) & 0x4)
        out.append(raw.decode("latin-1" if latin1 else "utf-8", errors="replace"))
    return out


def iter_rdb_blobs(rdb: bytes):
    """Yield the decompressed payload of every blob in an R lazy-load database."""
    pos = 0
    while pos < len(rdb):
        if pos + 4 > len(rdb):
            raise SourceError("truncated rdb blob header")
        (expected,) = struct.unpack_from(">I", rdb, pos)
        d = zlib.decompressobj()
        try:
            payload = d.decompress(rdb[pos + 4 :])
        except zlib.error as exc:
            raise SourceError(f"bad zlib stream at offset {pos}: {exc}") from None
        if len(payload) != expected:
            raise SourceError(f"blob at {pos}: {len(payload)} bytes, header says {expected}")
        yield payload
        pos = len(rdb) - len(d.unused_data)


def novels_from_rdb(rdb: bytes) -> list[list[str]]:
    """Every character-vector blob in the rdb, as a list of lines (one list per novel)."""
    return [parse_r_character_vector(p) for p in iter_rdb_blobs(rdb)]


def _ar_members(deb: bytes):
    if not deb.startswith(b"!<arch>\n"):
        raise SourceError("not a Debian package (ar archive)")
    pos = 8
    while pos + 60 <= len(deb):
        name = deb[pos : pos + 16].decode("ascii", "replace").strip().rstrip("/")
        size = int(deb[pos + 48 : pos + 58].decode("ascii").strip())
        yield name, deb[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)


def rdb_from_deb(deb_path: Path) -> bytes:
    for name, body in _ar_members(Path(deb_path).read_bytes()):
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                for member in tar.getmembers():
                    if member.name.endswith(RDB_MEMBER_SUFFIX):
                        return tar.extractfile(member).read()
    raise SourceError(f"{deb_path}: no {RDB_MEMBER_SUFFIX} inside")


def find_austen_deb(cache_dir: Path = CACHE_DIR) -> Path | None:
    debs = sorted(Path(cache_dir).glob(f"{AUSTEN_PACKAGE}_*.deb"))
    return debs[-1] if debs else None


def fetch_austen_deb(cache_dir: Path = CACHE_DIR) -> Path:
    """Return the cached .deb, running `apt-get download` into the cache once if needed."""
    found = find_austen_deb(cache_dir)
    if found:
        return found
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["apt-get", "download", AUSTEN_PACKAGE], cwd=cache_dir, check=True,
                       capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        raise SourceError(f"could not download {AUSTEN_PACKAGE}: {exc}") from None
    found = find_austen_deb(cache_dir)
    if not found:
        raise SourceError(f"apt-get download produced no {AUSTEN_PACKAGE} .deb in {cache_dir}")
    return found


def paragraphs(lines: list[str]) -> list[str]:
    """Join hard-wrapped lines into paragraphs; blank lines separate them."""
    out, cur = [], []
    for line in lines + [""]:
        words = line.split()
        if words:
            cur.extend(words)
        elif cur:
            out.append(" ".join(cur))
            cur = []
    return out


def austen_documents(deb_path: Path | None = None, download: bool = True) -> list[str]:
    """All paragraphs of the six novels, in package order."""
    path = deb_path or (fetch_austen_deb() if download else find_austen_deb())
    if path is None:
        raise SourceError(f"{AUSTEN_PACKAGE} .deb not cached in {CACHE_DIR}")
    docs = []
    for novel in novels_from_rdb(rdb_from_deb(path)):
        docs.extend(paragraphs(novel))
    return docs


# ---------------------------------------------------------------- generated English-like text

_SUBJECTS = ["the captain", "my neighbour", "a young clerk", "the old miller", "our guest", "Mrs. Bennet",
             "the committee", "a stranger", "her brother", "the café owner", "the engineer", "Zoë"]
_VERBS = ["walked to", "wrote about", "admired", "forgot", "carried", "visited", "described", "repaired",
          "sold", "noticed", "measured", "praised"]
_OBJECTS = ["the garden", "a letter", "the bridge", "three horses", "the library", "a small boat",
            "the naïve plan", "the harbour", "a silver watch", "the north road", "the piano", "a basket"]
_TAILS = ["before dinner", "in the rain", "with great care", "after the storm", "on Tuesday", "at dawn",
          "without a word", "for the second time", "near the river", "during the fête"]
_CONNECT = ["and then", "but", "because", "although", "so", "while"]


def _sentence(rng: random.Random) -> str:
    parts = [rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
    if rng.random() < 0.6:
        parts.append(rng.choice(_TAILS))
    if rng.random() < 0.3:
        parts += [rng.choice(_CONNECT), rng.choice(_SUBJECTS), rng.choice(_VERBS), rng.choice(_OBJECTS)]
    if rng.random() < 0.25:
        parts.append(f"in {rng.randint(1700, 1899)}")
    if rng.random() < 0.15:
        parts.append(f"for {rng.randint(2, 999)} pounds")
    s = " ".join(parts)
    s = s[0].upper() + s[1:]
    return s + rng.choice([".", ".", ".", "!", "?", ";"])


def generated_documents(n_docs: int, seed: int = 0, min_sentences: int = 2, max_sentences: int = 12) -> list[str]:
    """Deterministic English-like documents: single spaces, no leading/trailing whitespace, NFKC-stable."""
    rng = random.Random(seed)
    return [" ".join(_sentence(rng) for _ in range(rng.randint(min_sentences, max_sentences)))
            for _ in range(n_docs)]


# ---------------------------------------------------------------- plain text files

def file_documents(paths: list[str], per_line: bool) -> list[str]:
    """One document per file (whole text), or one per non-empty line when `per_line`."""
    docs = []
    for p in sorted(paths):
        text = Path(p).read_text(encoding="utf-8")
        if per_line:
            docs.extend(line for line in text.splitlines() if line.strip())
        elif text.strip():
            docs.append(text)
    return docs
