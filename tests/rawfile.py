"""Small camera RAW files made in the test: a DNG laid out as cameras and Adobe's
converter write one (IFD0: the JPEG preview, its EXIF and orientation; a SubIFD: the CFA
raw data, 16-bit Bayer), which LibRaw opens, and a blob with JPEGs inside for the
byte-scan fallback. Nothing binary is committed."""

from __future__ import annotations

import io
import struct

from PIL import Image

# TIFF field types
BYTE, ASCII, SHORT, LONG, RATIONAL = 1, 2, 3, 4, 5
_SIZE = {BYTE: 1, ASCII: 1, SHORT: 2, LONG: 4, RATIONAL: 8}


def jpeg_bytes(image: Image.Image, quality: int = 92, exif: Image.Exif | None = None) -> bytes:
    buf = io.BytesIO()
    kw = {"exif": exif} if exif is not None else {}
    image.convert("RGB").save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


class _Tiff:
    """A little-endian TIFF writer: IFDs of (tag, type, values) with data blobs placed after."""

    def __init__(self):
        self.buf = bytearray(b"II*\x00\x00\x00\x00\x00")

    def blob(self, data: bytes) -> int:
        if len(self.buf) % 2:
            self.buf += b"\x00"
        at = len(self.buf)
        self.buf += data
        return at

    def ifd(self, entries: list[tuple[int, int, object]], next_ifd: int = 0) -> tuple[int, int]:
        """Write an IFD; returns (its offset, offset of its next-IFD pointer)."""
        entries = sorted(entries)
        packed = []
        for tag, typ, values in entries:
            if typ == ASCII:
                raw = values.encode() + b"\x00"
                count = len(raw)
            else:
                values = values if isinstance(values, list | tuple) else [values]
                if typ == RATIONAL:
                    raw = b"".join(struct.pack("<II", *v) for v in values)
                else:
                    raw = b"".join(struct.pack({BYTE: "<B", SHORT: "<H", LONG: "<I"}[typ], v) for v in values)
                count = len(values)
            packed.append((tag, typ, count, raw))
        # out-of-line values first, then the IFD
        fixed = []
        for tag, typ, count, raw in packed:
            if len(raw) > 4:
                fixed.append((tag, typ, count, struct.pack("<I", self.blob(raw))))
            else:
                fixed.append((tag, typ, count, raw.ljust(4, b"\x00")))
        at = self.blob(b"")
        self.buf += struct.pack("<H", len(fixed))
        for tag, typ, count, raw in fixed:
            self.buf += struct.pack("<HHI", tag, typ, count) + raw
        nxt = len(self.buf)
        self.buf += struct.pack("<I", next_ifd)
        return at, nxt

    def point(self, where: int, value: int) -> None:
        self.buf[where:where + 4] = struct.pack("<I", value)


def make_dng(preview: Image.Image, *, taken: str | None = "2024:05:01 10:00:00", make: str = "Canon",
             model: str = "Canon EOS 5D", orientation: int = 1, raw_size=(64, 48),
             preview_jpeg: bytes | None = None) -> bytes:
    """A DNG holding ``preview`` as its JPEG preview (IFD0) and a small Bayer raw image
    (SubIFD), with Make, Model, Orientation and DateTimeOriginal in the RAW's own EXIF."""
    t = _Tiff()
    jpeg = preview_jpeg if preview_jpeg is not None else jpeg_bytes(preview)
    w, h = raw_size
    raw = bytes(range(256)) * (w * h * 2 // 256 + 1)
    raw_at = t.blob(raw[: w * h * 2])
    jpeg_at = t.blob(jpeg)
    sub_at, _ = t.ifd([
        (254, LONG, 0), (256, LONG, w), (257, LONG, h), (258, SHORT, 16), (259, SHORT, 1),
        (262, SHORT, 32803), (273, LONG, raw_at), (277, SHORT, 1), (278, LONG, h),
        (279, LONG, w * h * 2), (284, SHORT, 1),
        (33421, SHORT, [2, 2]), (33422, BYTE, [0, 1, 1, 2]),
        (50714, LONG, 0), (50717, LONG, 65535),  # BlackLevel, WhiteLevel
    ])
    exif_entries = [(0x9003, ASCII, taken)] if taken else [(0x9000, BYTE, list(b"0231"))]
    exif_at, _ = t.ifd(exif_entries)
    pw, ph = preview.size
    ifd0 = [
        (254, LONG, 1), (256, LONG, pw), (257, LONG, ph), (258, SHORT, [8, 8, 8]), (259, SHORT, 7),
        (262, SHORT, 6), (273, LONG, jpeg_at), (277, SHORT, 3), (278, LONG, ph), (279, LONG, len(jpeg)),
        (271, ASCII, make), (272, ASCII, model), (274, SHORT, orientation),
        (330, LONG, sub_at), (0x8769, LONG, exif_at),
        (50706, BYTE, [1, 4, 0, 0]), (50707, BYTE, [1, 1, 0, 0]), (50708, ASCII, model),
        (50721, RATIONAL, [(1, 1)] * 9),  # ColorMatrix1
    ]
    ifd0_at, _ = t.ifd(ifd0)
    t.point(4, ifd0_at)
    return bytes(t.buf)


def make_jpeg_blob(images: list[Image.Image], magic: bytes = b"FUJIFILMCCD-RAW 0201") -> bytes:
    """A RAW-like file LibRaw does not know: a header, then the JPEGs, with filler between."""
    out = bytearray(magic.ljust(64, b"\x00"))
    for im in images:
        out += bytes(range(7, 250, 3)) * 40
        out += jpeg_bytes(im)
    out += b"\x00" * 1000
    return bytes(out)


def _tiff_ifd(entries) -> bytes:
    t = _Tiff()
    at, _ = t.ifd(entries)
    t.point(4, at)
    return bytes(t.buf)


def make_cr3(preview: Image.Image, *, model: str = "Canon EOS R5", taken: str = "2024:08:09 10:11:12",
             orientation: int = 1) -> bytes:
    """A CR3-like ISO media file: ``ftyp`` (brand crx), IFD0 in a CMT1 box and the EXIF IFD
    in CMT2 (as Canon writes them), the preview JPEG in ``mdat``."""
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    cmt1 = _tiff_ifd([(271, ASCII, "Canon"), (272, ASCII, model), (274, SHORT, orientation)])
    cmt2 = _tiff_ifd([(0x9003, ASCII, taken)])
    ftyp = box(b"ftyp", b"crx " + struct.pack(">I", 1) + b"crx isom")
    moov = box(b"moov", box(b"uuid", b"\x85\xc0\xb6\x87\x82\x0f\x11\xe0\x81\x11\xf4\xce\x46\x2b\x6a\x48"
                                     + box(b"CMT1", cmt1) + box(b"CMT2", cmt2)))
    return ftyp + moov + box(b"mdat", b"\x00" * 64 + jpeg_bytes(preview) + b"\x00" * 64)
