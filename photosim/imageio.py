"""Reading photos: fast reduced-size decoding, EXIF metadata, and user-facing errors.

Every failure a photo can have ends up as a :class:`PhotoError` whose message is
meant to be shown to the user as is; the scan records it and goes on.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import PhotoError, PhotoVanished

try:  # HEIC/HEIF from iPhones
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except Exception:  # pragma: no cover - depends on the platform wheel
    HEIF_SUPPORTED = False

SUPPORTED_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".heic", ".heif"}
)

#: Long side, in pixels, of the reduced image handed to the encoder: a little
#: above its input size, so JPEG DCT scaling does most of the downscale for free.
DECODE_SIDE = 320

_EXIF_IFD = 0x8769
_TAG_ORIENTATION = 0x0112
_TAG_MAKE = 0x010F
_TAG_MODEL = 0x0110
_TAG_DATETIME = 0x0132
_TAG_DATETIME_ORIGINAL = 0x9003




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
    """A reduced RGB image plus everything the library records about the file."""

    image: Image.Image
    meta: PhotoMeta
    stat: FileStat
    content_hash: str


def is_supported(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in SUPPORTED_EXTENSIONS


def hash_bytes(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_file(path: str | os.PathLike) -> tuple[bytes, FileStat]:
    """Read a whole file read-only, with the stat of the bytes actually read."""
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise PhotoError("not a regular file")
            data = fh.read()
    except FileNotFoundError as exc:
        raise PhotoVanished("file disappeared during the scan") from exc
    except PermissionError as exc:
        raise PhotoError("permission denied") from exc
    except IsADirectoryError as exc:
        raise PhotoError("is a directory") from exc
    except OSError as exc:
        raise PhotoError(f"cannot read file: {exc.strerror or exc}") from exc
    return data, FileStat(size=len(data), mtime_ns=st.st_mtime_ns)


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


def read_meta(im: Image.Image) -> PhotoMeta:
    """Metadata from an opened (not necessarily loaded) image; size is as displayed."""
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
    width, height = im.size
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return PhotoMeta(width=width, height=height, taken_at=taken, camera=camera, orientation=orientation)


def _decode(source, max_side: int) -> tuple[Image.Image, PhotoMeta]:
    """Open, reduce while decoding, apply EXIF orientation, convert to RGB."""
    with warnings.catch_warnings():
        # Between 1x and 2x Pillow's pixel limit Pillow only warns; we refuse too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(source)
            meta = read_meta(im)
            im.seek(0)  # first frame of animations
            # draft() (JPEG DCT scaling to the smallest scale still >= max_side) must
            # come before load(); thumbnail() then uses reduce() for other formats,
            # so a 40 MP photo never decodes at full size.
            w, h = im.size
            if max(w, h) > max_side:  # ask for the reduced size itself, aspect kept
                scale = max_side / max(w, h)
                im.draft(None, (max(1, round(w * scale)), max(1, round(h * scale))))
            im.thumbnail((max_side, max_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
            im = ImageOps.exif_transpose(im) if meta.orientation != 1 else im
            if im.mode != "RGB":
                im = _to_rgb(im)
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise PhotoError(f"image too large to decode safely ({exc})") from exc
        except UnidentifiedImageError as exc:
            raise PhotoError("not a recognised image format") from exc
        except FileNotFoundError as exc:
            raise PhotoVanished("file disappeared during the scan") from exc
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
            msg = str(exc)
            if "truncated" in msg:
                raise PhotoError("file is truncated") from exc
            raise PhotoError(f"corrupt or unreadable image ({msg or type(exc).__name__})") from exc
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


def decode_bytes(data: bytes, max_side: int = DECODE_SIDE) -> tuple[Image.Image, PhotoMeta]:
    if not data:
        raise PhotoError("empty file")
    return _decode(io.BytesIO(data), max_side)


def read_photo(path: str | os.PathLike, max_side: int = DECODE_SIDE) -> DecodedPhoto:
    """Read one photo for the scanner: bytes once, hash and decode from memory."""
    data, st = read_file(path)
    image, meta = decode_bytes(data, max_side)
    return DecodedPhoto(image=image, meta=meta, stat=st, content_hash=hash_bytes(data))


def open_image(path: str | os.PathLike, max_side: int = DECODE_SIDE) -> Image.Image:
    """Decode any image file (e.g. a query from outside the library)."""
    data, _ = read_file(path)
    return decode_bytes(data, max_side)[0]


def display_path(path: str | os.PathLike) -> str:
    """A path safe to print on any terminal (undecodable bytes escaped)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def as_path(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(os.fspath(path)))
