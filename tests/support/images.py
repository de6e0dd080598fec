"""Test images built byte by byte: JPEG headers as encoders write them, uncompressed BMPs as Qt writes them."""

from __future__ import annotations

import struct

import numpy as np


def jpeg(width: int, height: int, *, sof: int = 0xC0, before_sof: bytes = b"", pad: int = 0) -> bytes:
    """The header of a JPEG as encoders write it (SOI, APP0, [more], SOFn, SOS), entropy data, EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    frame = bytes([0xFF, sof]) + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    scan = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + app0 + before_sof + frame + scan + bytes(pad) + b"\xff\xd9"


def bmp(rgb: np.ndarray, bpp: int = 24, top_down: bool = False) -> bytes:
    """An uncompressed BMP of `rgb` (h, w, 3): 24-bit BI_RGB, or 32-bit BI_BITFIELDS with masks as Qt writes it."""
    h, w, _ = rgb.shape
    channels = bpp // 8
    stride = (w * channels + 3) // 4 * 4
    pixels = rgb[:, :, ::-1]
    if channels == 4:
        pixels = np.concatenate([pixels, np.full((h, w, 1), 255, np.uint8)], axis=2)
    rows = pixels if top_down else pixels[::-1]
    body = b"".join(row.tobytes() + bytes(stride - w * channels) for row in rows)
    masks = struct.pack("<III", 0xFF0000, 0xFF00, 0xFF) if bpp == 32 else b""
    offset = 14 + 40 + len(masks)
    info = struct.pack(
        "<IiiHHIIiiII", 40, w, -h if top_down else h, 1, bpp, 3 if bpp == 32 else 0, len(body), 2835, 2835, 0, 0
    )
    return b"BM" + struct.pack("<IHHI", offset + len(body), 0, 0, offset) + info + masks + body
