"""Stand-in for `zstandard` when it is not installed (21 of 83 record scripts compress with it).

Frames are LZMA inside a private marker, so a script's own compress/decompress round trip works and
its evaluation can run; the artifact size it reports is then an LZMA size, not a zstd size, and the
gauntlet's artifact bytes are approximate for such scripts. A real installed zstandard always wins
(this directory is at the end of sys.path).
"""

import lzma as _lzma

__gauntlet_shim__ = True

try:  # tell the auditor this stand-in was used (reported in the gauntlet's notes)
    import _gauntlet_hooks

    _gauntlet_hooks.emit({"event": "shim", "name": "zstandard"})
except ImportError:
    pass
__version__ = "0.0.0+auditor-lzma-stand-in"
_MAGIC = b"AUDITOR-ZSTD-STANDIN\x00"


class ZstdError(Exception):
    pass


class ZstdCompressor:
    def __init__(self, level=3, **kwargs):
        self.level = level

    def compress(self, data):
        return _MAGIC + _lzma.compress(bytes(data), preset=6)


class ZstdDecompressor:
    def __init__(self, **kwargs):
        pass

    def decompress(self, data, max_output_size=0):
        data = bytes(data)
        if not data.startswith(_MAGIC):
            raise ZstdError("not a frame written by the auditor's zstandard stand-in")
        return _lzma.decompress(data[len(_MAGIC):])


def compress(data, level=3):
    return ZstdCompressor(level).compress(data)


def decompress(data, max_output_size=0):
    return ZstdDecompressor().decompress(data)
