"""Reading photos: fast reduced-size decoding, EXIF metadata, and user-facing errors.

Every failure a photo can have ends up as a :class:`PhotoError` whose message is
meant to be shown to the user as is; the scan records it and goes on.

Hostile files cost little: a path is opened only when ``stat`` says it is a regular
file, and non-blocking, then checked again with ``fstat`` (a named pipe, a device or a
socket is never read, not even one swapped in after the listing); the first bytes
decide whether the file is an image of a format photosim reads before anything else is
read (a 2 GB file of garbage named ``.jpg`` costs 16 bytes); photos are decoded from the
open file and hashed by streaming, so memory does not grow with the file's size.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import stat
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError, features

from .errors import PhotoError, PhotoVanished
from .raw import RAW_EXTENSIONS, decode_raw, is_raw, looks_raw

try:  # HEIC/HEIF from iPhones
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except Exception:  # pragma: no cover - depends on the platform wheel
    HEIF_SUPPORTED = False

#: AVIF through Pillow's own plugin (wheels of Pillow >= 11.3 have it); without it
#: scans skip ``.avif`` files and queries of one say the format is not recognised.
try:
    AVIF_SUPPORTED = bool(features.check("avif"))
except Exception:  # pragma: no cover - a Pillow too old to know the feature
    AVIF_SUPPORTED = False

SUPPORTED_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif"}
    | ({".avif"} if AVIF_SUPPORTED else set())
    | RAW_EXTENSIONS  # camera RAW photos, read through their embedded preview (photosim.raw)
)

#: The Pillow formats photosim decodes, in the order they are tried: the same for
#: scans and queries, so a query never reads what a scan would skip (and Pillow's
#: other plugins, EPS with its Ghostscript among them, are never handed a user file).
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF") + (
    ("AVIF",) if AVIF_SUPPORTED else ()) + (("HEIF",) if HEIF_SUPPORTED else ())

#: Long side, in pixels, of the reduced image handed to the encoder: a little
#: above its input size, so JPEG DCT scaling does most of the downscale for free.
DECODE_SIDE = 320

#: The decompression-bomb guard, applied to what is actually decoded: at most this
#: many pixels in memory (Pillow's own default limit). A JPEG is decoded reduced
#: (DCT scaling to 1/2, 1/4, 1/8), so a 100 MP camera photo or a 13500x9000 panorama
#: passes, while a PNG or TIFF of that size, which can only be decoded whole, does not.
MAX_DECODED_PIXELS = 89_478_485
#: Declared size above which nothing is decoded, reducible or not (about a gigapixel).
MAX_DECLARED_PIXELS = 1 << 30
#: The most :func:`read_file` holds in memory for one photo; :func:`read_photo` and
#: :func:`open_image` stream from the file and have no such limit.
MAX_READ_BYTES = 256 * 1024 * 1024
#: Bytes read to tell whether a file is an image at all (what ``Image.open`` reads).
SNIFF_BYTES = 16

_EXIF_IFD = 0x8769
_TAG_ORIENTATION = 0x0112
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110
_TAG_DATETIME = 0x0132
_TAG_DATETIME_ORIGINAL = 0x9003

_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
               | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int


@dataclass
class PhotoMeta:
    width: int
    height: int
    taken_at: str | None
    camera: str | None
    orientation: int


@dataclass
class DecodedPhoto:
    """A reduced RGB image plus everything the library records about the file.
    ``image`` and ``meta`` are None when :func:`read_photo` was told to skip decoding."""

    image: Image.Image | None
    meta: PhotoMeta | None
    stat: FileStat
    content_hash: str


def is_supported(path: str | os.PathLike) -> bool:
    name = os.fsdecode(os.fspath(path))
    return os.path.splitext(name)[1].lower() in SUPPORTED_EXTENSIONS


def _new_hash():
    return hashlib.blake2b(digest_size=16)


def hash_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def hash_stream(fh) -> str:
    """The same digest as :func:`hash_bytes` of the file's bytes, read in blocks."""
    return hashlib.file_digest(fh, _new_hash).hexdigest()


def _special_file(mode: int) -> str | None:
    """Why a file of this type is not read, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a photo"
    if stat.S_ISFIFO(mode):
        return "not a regular file (a named pipe): not read"
    if stat.S_ISSOCK(mode):
        return "not a regular file (a socket): not read"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "not a regular file (a device): not read"
    return "not a regular file: not read"


def _os_error(exc: OSError) -> PhotoError:
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return PhotoVanished("no such file")
    if isinstance(exc, PermissionError):
        return PhotoError("permission denied")
    if isinstance(exc, IsADirectoryError):
        return PhotoError("is a folder, not a photo")
    if exc.errno == errno.ELOOP:
        return PhotoError("cannot read file: a loop of symbolic links")
    return PhotoError(f"cannot read file: {exc.strerror or exc}")


def open_regular(path: str | os.PathLike) -> tuple[io.BufferedReader, os.stat_result]:
    """Open a file read-only if, and only if, it is a regular file.

    The type is checked before opening (a named pipe or a device is never opened), the
    open is non-blocking (a pipe swapped in after that check cannot block it), and the
    type is checked again on the open descriptor. Returns the open file and its fstat.
    """
    try:
        why = _special_file(os.stat(path).st_mode)
        if why:
            raise PhotoError(why)
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _os_error(exc) from exc
    try:
        st = os.fstat(fd)
        why = _special_file(st.st_mode)
        if why:
            raise PhotoError(why)
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise


def _formats() -> list[tuple[str, object, object]]:
    Image.init()
    return [(f, *Image.OPEN[f]) for f in IMAGE_FORMATS if f in Image.OPEN]


def sniff(prefix: bytes) -> str | None:
    """The first photosim format whose signature ``prefix`` (the file's first
    :data:`SNIFF_BYTES`) carries, or None: then the file is not an image photosim reads."""
    for name, _factory, accept in _formats():
        ok = accept(prefix) if accept is not None else True
        if ok and not isinstance(ok, str):
            return name
    return None


#: What a format's header parser may read before the image is identified: garbage
#: after a JPEG signature makes Pillow's marker search read it one byte at a time
#: (100 s for 2 GB), while a real header (EXIF, ICC profile, XMP) takes a few dozen reads.
MAX_HEADER_READS = 65_536
MAX_HEADER_BYTES = 64 * 1024 * 1024


class _HeaderBudget:
    """A file wrapper that refuses more than :data:`MAX_HEADER_READS` reads or
    :data:`MAX_HEADER_BYTES` bytes while a header is parsed; ``done()`` lifts it for
    decoding the pixels."""

    def __init__(self, fp):
        self._fp = fp
        self._limited = True
        self._reads = 0
        self._bytes = 0

    def done(self) -> None:
        self._limited = False

    def read(self, n: int = -1) -> bytes:
        if self._limited:
            self._reads += 1
            self._bytes += n if n is not None and n >= 0 else 0  # read(): HEIF reads it all
            if self._reads > MAX_HEADER_READS or self._bytes > MAX_HEADER_BYTES:
                raise PhotoError("corrupt or unreadable image (no image data where its header "
                                 "should be)")
        return self._fp.read(n)

    def __getattr__(self, name):
        return getattr(self._fp, name)


def _open_image(fp) -> Image.Image:
    """``Image.open`` limited to :data:`IMAGE_FORMATS` and to a budget of header reads
   , without Pillow's bomb check at open: :func:`_decode` checks what is
    actually decoded, after ``draft()`` (Pillow's check looks at the declared size,
    before a JPEG could be reduced)."""
    fp.seek(0)
    prefix = fp.read(SNIFF_BYTES)
    for _name, factory, accept in _formats():
        ok = accept(prefix) if accept is not None else True
        if not ok or isinstance(ok, str):
            continue
        fp.seek(0)
        budget = _HeaderBudget(fp)
        try:
            im = factory(budget, "")
        except (SyntaxError, IndexError, TypeError, struct.error):
            continue  # as Image.open: the next plugin may know it
        budget.done()
        return im
    raise UnidentifiedImageError("not a recognised image format")


def read_file(path: str | os.PathLike) -> tuple[bytes, FileStat]:
    """Read a photo's bytes read-only, with the stat of the file as opened.

    Only a regular file is read (see :func:`open_regular`). A file whose first bytes
    are not those of an image photosim reads is not read further: its first bytes are
    returned (decoding them says "not a recognised image format"). An image file larger
    than :data:`MAX_READ_BYTES` is refused; :func:`read_photo` streams instead.
    """
    fh, st = open_regular(path)
    fstat = FileStat(size=st.st_size, mtime_ns=st.st_mtime_ns)
    with fh:
        try:
            head = fh.read(SNIFF_BYTES)
            if not head or (not looks_raw(head) if is_raw(path) else sniff(head) is None):
                return head, fstat
            if st.st_size > MAX_READ_BYTES:
                raise PhotoError(f"file too large to read as a photo ({_size_text(st.st_size)}; "
                                 f"photosim reads photos of up to {_size_text(MAX_READ_BYTES)})")
            return head + fh.read(MAX_READ_BYTES + 1 - len(head)), fstat
        except OSError as exc:
            raise _os_error(exc) from exc


def _size_text(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def _exif_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value).replace("\x00", "").strip()
    return text or None


def _parse_exif_date(text: str | None) -> str | None:
    if not text:
        return None
    for fmt in ("%Y:%m:%d %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text[:19], fmt).isoformat()
        except ValueError:
            continue
    return None


def read_meta(im: Image.Image, size: tuple[int, int] | None = None) -> PhotoMeta:
    """Metadata from an opened (not necessarily loaded) image; size is as displayed.
    ``size``: the stored size, when ``im`` was already reduced by ``draft()``."""
    try:
        exif = im.getexif()
    except Exception:  # malformed EXIF must not cost the photo
        exif = Image.Exif()
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:
        sub = {}
    orientation = exif.get(_TAG_ORIENTATION, 1)
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        orientation = 1
    make = _exif_text(exif.get(_TAG_MAKE))
    model = _exif_text(exif.get(_TAG_MODEL))
    camera = model if make and model and model.lower().startswith(make.lower().split()[0]) else (
        " ".join(p for p in (make, model) if p) or None
    )
    taken = _parse_exif_date(_exif_text(sub.get(_TAG_DATETIME_ORIGINAL))) or _parse_exif_date(
        _exif_text(exif.get(_TAG_DATETIME))
    )
    width, height = size or im.size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return PhotoMeta(width=width, height=height, taken_at=taken, camera=camera, orientation=orientation)


def _too_large(w: int, h: int) -> PhotoError:
    return PhotoError(f"image too large to decode safely ({w}x{h} pixels)")


def _decode(source, max_side: int) -> tuple[Image.Image, PhotoMeta]:
    """Open, reduce while decoding, apply EXIF orientation, convert to RGB."""
    with _decode_errors():
        return _finish(*_open_reduced(source, max_side), max_side)


@contextmanager
def _decode_errors():
    """Pillow's and the OS's exceptions while decoding, as messages for the user."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoError(f"image too large to decode safely ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise PhotoError("not a recognised image format") from exc
    except FileNotFoundError as exc:
        raise PhotoVanished("no such file") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error) as exc:
        msg = str(exc)
        if "truncated" in msg:
            raise PhotoError("file is truncated") from exc
        raise PhotoError(f"corrupt or unreadable image ({msg or type(exc).__name__})") from exc


def _open_reduced(source, max_side: int) -> tuple[Image.Image, PhotoMeta]:
    """Open (header only), ask for a reduced decode, and apply the bomb guard.

    The guard looks at what will be decoded: ``draft()`` (JPEG DCT scaling to the
    smallest scale still >= ``max_side``) comes first, before anything loads the
    pixels (EXIF of a PNG, ``load()``, ``thumbnail()``), and the guard then refuses an
    image that would still decode to more than :data:`MAX_DECODED_PIXELS`."""
    im = _open_image(source)
    w, h = im.size
    if w * h > MAX_DECLARED_PIXELS:
        raise _too_large(w, h)
    if max(w, h) > max_side:  # ask for the reduced size itself, aspect kept
        scale = max_side / max(w, h)
        im.draft(None, (max(1, round(w * scale)), max(1, round(h * scale))))
    if im.size[0] * im.size[1] > MAX_DECODED_PIXELS:
        raise _too_large(w, h)
    return im, read_meta(im, (w, h))


def _finish(im: Image.Image, meta: PhotoMeta, max_side: int) -> tuple[Image.Image, PhotoMeta]:
    """Decode the pixels of an image from :func:`_open_reduced`: reduced, upright, RGB."""
    # thumbnail() uses reduce() for formats without draft(); the first frame of an
    # animation is the one decoded.
    im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    im = ImageOps.exif_transpose(im) if meta.orientation != 1 else im
    if im.mode != "RGB":
        im = _to_rgb(im)
    im.load()
    return im, meta


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGB", im.size, (255, 255, 255))
        background.paste(im, mask=im.getchannel("A"))
        return background
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v * (1 / 256)).convert("L")
    return im.convert("RGB")


def decode_bytes(data: bytes, max_side: int = DECODE_SIDE, *,
                 name: str | os.PathLike | None = None) -> tuple[Image.Image, PhotoMeta]:
    """Decode a photo's bytes; ``name`` (its file name) says whether it is a camera RAW
    photo, read through its embedded preview (:mod:`photosim.raw`)."""
    if not data:
        raise PhotoError("empty file")
    if name is not None and is_raw(name):
        with _decode_errors():
            return decode_raw(data, max_side)
    return _decode(io.BytesIO(data), max_side)


def _read_raw(fh, st: os.stat_result) -> bytes:
    """A RAW file's bytes (LibRaw reads a file whole), within :data:`MAX_READ_BYTES`."""
    if st.st_size > MAX_READ_BYTES:
        raise PhotoError(f"file too large to read as a RAW photo ({_size_text(st.st_size)}; "
                         f"photosim reads photos of up to {_size_text(MAX_READ_BYTES)})")
    fh.seek(0)
    try:
        return fh.read(MAX_READ_BYTES + 1)
    except OSError as exc:
        raise _os_error(exc) from exc


def _decode_file(fh, st: os.stat_result, max_side: int) -> tuple[Image.Image, PhotoMeta]:
    """Decode from an open regular file: the first bytes decide first, then Pillow
    reads what it needs (never the whole file into memory)."""
    try:
        head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise _os_error(exc) from exc
    if not head:
        raise PhotoError("empty file")
    if sniff(head) is None:
        raise PhotoError("not a recognised image format")
    return _decode(fh, max_side)


def read_photo(path: str | os.PathLike, max_side: int = DECODE_SIDE, *,
               skip_decode=None) -> DecodedPhoto:
    """Read one photo for a scan: hashed by streaming and decoded from the file, so
    memory does not grow with its size.

    ``skip_decode(content_hash)`` returning True (a known photo, moved or copied)
    leaves ``image`` and ``meta`` None. A :class:`PhotoError` raised here carries the
    file's :class:`FileStat` as ``exc.stat`` (None when the file could not be opened),
    so a caller can record the failure against the file as it was."""
    fh, st = open_regular(path)
    fstat = FileStat(size=st.st_size, mtime_ns=st.st_mtime_ns)
    with fh:
        try:
            head = fh.read(SNIFF_BYTES)
            if not head:
                raise PhotoError("empty file")
            if is_raw(path):
                data = _read_raw(fh, st)
                digest = hash_bytes(data)
                if skip_decode is not None and skip_decode(digest):
                    return DecodedPhoto(image=None, meta=None, stat=fstat, content_hash=digest)
                image, meta = decode_bytes(data, max_side, name=path)
                return DecodedPhoto(image=image, meta=meta, stat=fstat, content_hash=digest)
            if sniff(head) is None:
                raise PhotoError("not a recognised image format")
            with _decode_errors():
                im, meta = _open_reduced(fh, max_side)  # the header first: garbage ends here
                pos = fh.tell()
                fh.seek(0)
                digest = hash_stream(fh)
                if skip_decode is not None and skip_decode(digest):
                    return DecodedPhoto(image=None, meta=None, stat=fstat, content_hash=digest)
                fh.seek(pos)
                image, meta = _finish(im, meta, max_side)
        except PhotoError as exc:
            exc.stat = fstat
            raise
        except OSError as exc:
            err = _os_error(exc)
            err.stat = fstat
            raise err from exc
    return DecodedPhoto(image=image, meta=meta, stat=fstat, content_hash=digest)


def open_image(path: str | os.PathLike, max_side: int = DECODE_SIDE) -> Image.Image:
    """Decode any image file (e.g. a query from outside the library), reduced, from
    the file itself: only a regular file, only what the decoder needs of it."""
    return open_image_meta(path, max_side)[0]


def open_image_meta(path: str | os.PathLike, max_side: int = DECODE_SIDE) -> tuple[Image.Image, PhotoMeta]:
    """:func:`open_image` and what the file says of itself (its full size, upright)."""
    fh, st = open_regular(path)
    with fh:
        if is_raw(path):
            return decode_bytes(_read_raw(fh, st), max_side, name=path)
        return _decode_file(fh, st, max_side)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def display_path(path: str | os.PathLike) -> str:
    """A path safe to print on one line of any terminal: undecodable bytes, newlines,
    tabs and other control characters (terminal escape sequences) backslash-escaped."""
    try:
        text = os.fsencode(path).decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is no escaped byte
        text = os.fspath(path).encode("utf-8", "backslashreplace").decode("utf-8")
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def as_path(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.fspath(path)))
