"""Text chunks in a PNG stream: how synthswap writes provenance into images.

A module of its own, below both `media` (which writes PNGs) and `provenance.metadata` (which
says what the text is), so that neither imports the other's way round.
"""

from __future__ import annotations

import struct
import zlib


def png_with_text(png: bytes, text: dict[str, str]) -> bytes:
    """`png` with one tEXt chunk per entry, inserted after the IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG stream")
    ihdr_end = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4
    chunks = b""
    for key, value in text.items():
        data = key.encode("latin-1") + b"\0" + value.encode("latin-1", "replace")
        chunks += struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(">I", zlib.crc32(b"tEXt" + data))
    return png[:ihdr_end] + chunks + png[ihdr_end:]
