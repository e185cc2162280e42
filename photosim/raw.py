"""Camera RAW photos (CR2, CR3, NEF, ARW, DNG, RAF, ORF, RW2), read through their preview.

Every camera stores a JPEG rendering of the shot inside its RAW file (full size on most
bodies, 1024-1620 px on some), made by the camera with its own white balance and tone
curve: that picture is what photosim embeds, shows and verifies, so a RAW and the
camera's JPEG of the same shot look alike to it. The preview comes from LibRaw through
rawpy (``extract_thumb``, it knows every format's layout) when rawpy is installed, else
(and when LibRaw cannot read the file or finds only a small thumbnail) from the largest
JPEG found in the file's bytes. Nothing is ever demosaiced and the file is only read.

The metadata (date taken, camera, orientation) comes from the RAW's own EXIF where the
container has one photosim can parse (the TIFF-based formats: CR2, NEF, ARW, DNG, ORF,
RW2; CR3's CMT1/CMT2 boxes), else from the preview's EXIF (RAF and most others carry
one). The orientation is the RAW's: previews are stored as the sensor saw them.
"""

from __future__ import annotations

import io
import os
import struct

from PIL import Image, JpegImagePlugin

from .errors import PhotoError

#: Extensions read as camera RAW photos (by name: their containers look like TIFF or ISO
#: media files, which must not be decoded as such).
RAW_EXTENSIONS = frozenset({".cr2", ".cr3", ".nef", ".arw", ".dng", ".raf", ".orf", ".rw2"})
RAW_NAMES = "CR2, CR3, NEF, ARW, DNG, RAF, ORF, RW2"

try:  # LibRaw: every RAW format's layout, previews included (rawpy 0.28: a 3 MB wheel)
    import rawpy

    RAWPY = True
except Exception:  # pragma: no cover - a platform without a wheel
    rawpy = None
    RAWPY = False

#: Bytes of a CR3 searched for its EXIF boxes (CMT1, CMT2 sit in the first box, ``moov``).
EXIF_BYTES = 1 << 20
#: At most this many JPEG start markers are tried in one file (a RAW holds 1-4 previews).
MAX_JPEG_CANDIDATES = 64
_CHUNK = 4 << 20
_SOI = b"\xff\xd8\xff"

_TIFF = (b"II*\x00", b"MM\x00*")
_TIFF_LIKE = (b"IIRO", b"IIRS", b"MMOR", b"IIU\x00")  # ORF, RW2: TIFF with another magic
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}
_LIBRAW_FLIP = {0: 1, 3: 3, 5: 8, 6: 6}  # LibRaw's ``flip`` as an EXIF orientation


def is_raw(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fsdecode(os.fspath(path)))[1].lower() in RAW_EXTENSIONS


def looks_raw(head: bytes) -> bool:
    """Whether a file's first bytes are those of a RAW container photosim knows."""
    return (head[:4] in _TIFF or head[:4] in _TIFF_LIKE or head.startswith(b"FUJIFILM")
            or (head[4:8] == b"ftyp" and head[8:12] == b"crx "))


def _not_raw() -> PhotoError:
    return PhotoError(f"not a camera RAW photo: its first bytes are none of the RAW formats photosim reads "
                      f"({RAW_NAMES})")


# -- metadata ------------------------------------------------------------------------
def _exif_from_tiff(data: bytes) -> Image.Exif | None:
    if data[:4] in _TIFF_LIKE:
        data = (b"II*\x00" if data[:2] == b"II" else b"MM\x00*") + data[4:]
    if data[:4] not in _TIFF:
        return None
    exif = Image.Exif()
    try:
        exif.load(data)
    except Exception:
        return None
    return exif if len(exif) else None


def _cr3_exif(data: bytes) -> Image.Exif | None:
    """CR3 (ISO media): IFD0 in the CMT1 box, the EXIF IFD in CMT2."""
    at = data.find(b"CMT1")
    if at < 4:
        return None
    size = struct.unpack(">I", data[at - 4:at])[0]
    exif = _exif_from_tiff(data[at + 4:at - 4 + size])
    if exif is None:
        return None
    at2 = data.find(b"CMT2")
    if at2 >= 4:
        size2 = struct.unpack(">I", data[at2 - 4:at2])[0]
        sub = _exif_from_tiff(data[at2 + 4:at2 - 4 + size2])
        if sub is not None:
            try:  # the EXIF IFD's tags (date taken) beside IFD0's
                exif._ifds[0x8769] = dict(sub)
            except Exception:
                pass
    return exif


def container_exif(data: bytes) -> Image.Exif | None:
    """The RAW's own EXIF, or None (RAF, or a container not parsed). ``data``: the file's
    bytes (a TIFF's IFDs may sit anywhere in it; CR3's boxes are in its first megabyte)."""
    if data[4:8] == b"ftyp":
        return _cr3_exif(data[:EXIF_BYTES])
    return _exif_from_tiff(data)


class _ExifImage:
    """Enough of an image for :func:`photosim.imageio.read_meta` to read an Exif."""

    def __init__(self, exif: Image.Exif, size: tuple[int, int]):
        self._exif, self.size = exif, size

    def getexif(self) -> Image.Exif:
        return self._exif


# -- previews --------------------------------------------------------------------------
class _Window:
    """A read-only view of a file from ``start`` on (a JPEG inside a RAW)."""

    def __init__(self, fp, start: int):
        self._fp, self._start = fp, start
        fp.seek(start)

    def read(self, n: int = -1) -> bytes:
        return self._fp.read(n)

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 0:
            return self._fp.seek(self._start + pos) - self._start
        return self._fp.seek(pos, whence) - self._start

    def tell(self) -> int:
        return self._fp.tell() - self._start

    def readline(self, *a):
        return self._fp.readline(*a)


def _jpeg_starts(fp) -> list[int]:
    fp.seek(0)
    out, pos, tail = [], 0, b""
    while len(out) < MAX_JPEG_CANDIDATES:
        block = fp.read(_CHUNK)
        if not block:
            break
        buf, base = tail + block, pos - len(tail)
        at = buf.find(_SOI)
        while at >= 0 and len(out) < MAX_JPEG_CANDIDATES:
            if base + at not in out:
                out.append(base + at)
            at = buf.find(_SOI, at + 1)
        pos += len(block)
        tail = buf[-2:]
    return out


def _embedded_jpegs(fp) -> list[tuple[int, int]]:
    """(area, offset) of every JPEG header Pillow can open inside the file, largest first
    (a camera's lossless raw data, 12- or 14-bit JPEG, is no picture and is skipped)."""
    from .imageio import _HeaderBudget

    found = []
    for start in _jpeg_starts(fp):
        try:
            im = JpegImagePlugin.JpegImageFile(_HeaderBudget(_Window(fp, start)))
        except Exception:
            continue
        w, h = im.size
        if w >= 16 and h >= 16:
            found.append((w * h, start))
    return sorted(found, reverse=True)


def _decode_jpeg(source, max_side: int):
    """A preview JPEG decoded reduced, not turned: (image, its own PhotoMeta)."""
    from .imageio import _open_reduced, _to_rgb

    im, meta = _open_reduced(source, max_side)
    im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    im = _to_rgb(im) if im.mode != "RGB" else im
    im.load()
    return im, meta


def _libraw_preview(data: bytes, max_side: int):
    """(image, preview meta or None, (width, height) of the RAW, orientation) through
    LibRaw, or None when rawpy is missing or LibRaw cannot give a preview."""
    if not RAWPY:
        return None
    try:
        with rawpy.imread(io.BytesIO(data)) as raw:
            sizes = raw.sizes
            thumb = raw.extract_thumb()
    except Exception:  # LibRawError and its kin (unsupported, no thumbnail, I/O): the scan decides
        return None
    orientation = _LIBRAW_FLIP.get(int(sizes.flip), 1)
    dims = (int(sizes.width), int(sizes.height)) if sizes.width and sizes.height else None
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG:
            im, meta = _decode_jpeg(io.BytesIO(bytes(thumb.data)), max_side)
        else:
            im, meta = Image.fromarray(thumb.data).convert("RGB"), None
            im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    except Exception:
        return None
    return im, meta, dims, orientation


def decode_raw(data: bytes, max_side: int):
    """A RAW photo's preview, reduced to ``max_side`` and turned upright, with its
    :class:`photosim.imageio.PhotoMeta` (the RAW's size and EXIF where it has them).
    Raises :class:`PhotoError` with a sentence for the user when there is none."""
    from .imageio import PhotoMeta, read_meta

    if not data:
        raise PhotoError("empty file")
    if not looks_raw(data[:16]):
        raise _not_raw()
    got = _libraw_preview(data, max_side)
    image = meta = dims = None
    orientation = 1
    if got is not None:
        image, meta, dims, orientation = got
    if image is None or max(image.size) < max_side:  # none, or only a small thumbnail: look inside
        fp = io.BytesIO(data)
        tried = False
        for _area, start in _embedded_jpegs(fp):
            if image is not None and _area <= image.size[0] * image.size[1]:
                break
            tried = True
            try:
                image, meta = _decode_jpeg(_Window(fp, start), max_side)
                break
            except Exception:
                continue  # a truncated or damaged preview: the next one
        if image is None:
            if tried:
                raise PhotoError("the RAW photo's embedded preview is truncated or damaged (is the file "
                                 "complete?)")
            raise PhotoError("no embedded preview found in this RAW photo (photosim reads RAW photos through "
                             "the JPEG preview cameras store in them; the file may be truncated or damaged)")
    exif = container_exif(data)
    preview_size = image.size if meta is None else (
        (meta.height, meta.width) if meta.orientation in (5, 6, 7, 8) else (meta.width, meta.height))
    size = dims or preview_size
    own = read_meta(_ExifImage(exif, size)) if exif is not None else None
    taken = (own and own.taken_at) or (meta and meta.taken_at)
    camera = (own and own.camera) or (meta and meta.camera)
    if own is not None and own.orientation != 1:
        orientation = own.orientation
    elif orientation == 1 and meta is not None:
        orientation = meta.orientation
    if orientation != 1:
        image = image.transpose(_TRANSPOSE[orientation])
    width, height = size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return image, PhotoMeta(width=width, height=height, taken_at=taken, camera=camera, orientation=orientation)
