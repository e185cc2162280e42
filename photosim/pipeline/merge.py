"""Merge before trash: the photo kept inherits what only its copies had.

In the library (always, when copies go to the trash with a keeper named): the copies'
album memberships, their similar / not-similar marks (a mark between a copy and its own
keeper is dropped) and their duplicate verdicts ("not duplicates" with a third photo holds
for the keeper too, since the copy *is* the keeper's picture). The keeper's own labels win
where both have one.

On disk (only when asked, never automatic): the copies' date taken and GPS position, when
the keeper lacks them, written into an XMP sidecar next to the keeper, ``<keeper's file
name>.xmp`` (``IMG_0042.CR2.xmp``, as darktable and digiKam name them; unambiguous beside
``IMG_0042.JPG``). A sidecar that exists in either naming (``IMG_0042.CR2.xmp`` or
``IMG_0042.xmp``) is never touched, and the photo itself is never modified: the file is
created with O_EXCL, so not even a race can overwrite one.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from sqlalchemy import or_, select

from ..errors import PhotoError
from ..imageio import display_path
from ..store.schema import AlbumPhoto, Mark, Verdict

_GPS_IFD = 0x8825


@dataclass
class MergeReport:
    """What the keepers inherited: album memberships, marks and verdicts gained, XMP
    sidecars written, and one sentence per sidecar not written."""

    albums: int = 0
    marks: int = 0
    verdicts: int = 0
    sidecars: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        got = [f"{n} {what}{'s' if n != 1 else ''}" for n, what in
               ((self.albums, "album membership"), (self.marks, "mark"), (self.verdicts, "verdict")) if n]
        parts = [f"the keepers inherited {', '.join(got)}"] if got else []
        if self.sidecars:
            parts.append(f"{len(self.sidecars)} XMP sidecar{'s' if len(self.sidecars) != 1 else ''} written")
        return "; ".join(parts + self.notes)


def keepers_of(merge_into, trashed: list[int]) -> dict[int, int]:
    """{copy id: keeper id} from ``merge_into`` (one keeper id for all, or a mapping), less
    keepers that are themselves going to the trash."""
    if merge_into is None:
        return {}
    going = set(trashed)
    pairs = merge_into if isinstance(merge_into, dict) else {c: int(merge_into) for c in trashed}
    return {int(c): int(k) for c, k in pairs.items() if int(c) in going and int(k) not in going and c != k}


def merge_labels(store, pairs: dict[int, int], report: MergeReport) -> None:
    """Give each keeper its copies' albums, marks and verdicts (one transaction)."""
    if not pairs:
        return
    with store.write() as s:
        for copy, keep in pairs.items():
            have = set(s.scalars(select(AlbumPhoto.album_id).where(AlbumPhoto.photo_id == keep)))
            for album in list(s.scalars(select(AlbumPhoto.album_id).where(AlbumPhoto.photo_id == copy))):
                if album not in have:
                    s.add(AlbumPhoto(album_id=album, photo_id=keep))
                    have.add(album)
                    report.albums += 1
            marks = list(s.scalars(select(Mark).where(or_(Mark.query_id == copy, Mark.result_id == copy))))
            for m in marks:
                q = keep if m.query_id == copy else m.query_id
                r = keep if m.result_id == copy else m.result_id
                if q == r:
                    continue  # the copy marked against its own keeper
                if s.scalars(select(Mark.id).where(Mark.query_id == q, Mark.result_id == r)).first() is None:
                    s.add(Mark(query_id=q, result_id=r, label=m.label, created_at=m.created_at))
                    report.marks += 1
            verdicts = list(s.scalars(select(Verdict).where(or_(Verdict.photo_a == copy, Verdict.photo_b == copy))))
            for v in verdicts:
                other = v.photo_b if v.photo_a == copy else v.photo_a
                if other == keep:
                    continue
                a, b = sorted((keep, other))
                if s.get(Verdict, (a, b)) is None:
                    s.add(Verdict(photo_a=a, photo_b=b, verdict=v.verdict, created_at=v.created_at))
                    report.verdicts += 1


# -- XMP sidecars ------------------------------------------------------------------------
def _ratio(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError, ZeroDivisionError):
        return float(v[0]) / float(v[1])


def _gps_from(exif) -> tuple[float, float] | None:
    try:
        gps = exif.get_ifd(_GPS_IFD)
        lat, lon = gps[2], gps[4]
        lat = sum(_ratio(x) / 60 ** i for i, x in enumerate(lat))
        lon = sum(_ratio(x) / 60 ** i for i, x in enumerate(lon))
    except Exception:  # no GPS, or a malformed one: none
        return None
    if str(gps.get(1, "N")).upper().startswith("S"):
        lat = -lat
    if str(gps.get(3, "E")).upper().startswith("W"):
        lon = -lon
    if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None
    return lat, lon


def read_gps(path: str) -> tuple[float, float] | None:
    """(latitude, longitude) in degrees from a photo's EXIF, or None: a photo's header (a RAW
    file is read whole, its IFDs may sit anywhere; RAF and CR3 GPS are not read)."""
    from .. import imageio, raw

    try:
        fh, _st = imageio.open_regular(path)
    except PhotoError:
        return None
    with fh:
        try:
            if raw.is_raw(path):
                exif = raw.container_exif(fh.read(imageio.MAX_READ_BYTES))
                return _gps_from(exif) if exif is not None else None
            with imageio._open_image(fh) as im:
                return _gps_from(im.getexif())
        except Exception:  # unreadable: no GPS to offer
            return None


def _xmp_coord(value: float, pos: str, neg: str) -> str:
    """XMP's GPS coordinate form: "DDD,MM.mmmmmmK"."""
    hemi = pos if value >= 0 else neg
    value = abs(value)
    deg = int(value)
    return f"{deg},{(value - deg) * 60:.6f}{hemi}"


_NS = {"x": "adobe:ns:meta/", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
       "exif": "http://ns.adobe.com/exif/1.0/", "photoshop": "http://ns.adobe.com/photoshop/1.0/",
       "xmp": "http://ns.adobe.com/xap/1.0/"}


def xmp_packet(taken_at: str | None, gps: tuple[float, float] | None) -> bytes:
    for prefix, uri in _NS.items():
        ET.register_namespace(prefix, uri)
    root = ET.Element(f"{{{_NS['x']}}}xmpmeta", {f"{{{_NS['x']}}}xmptk": "photosim"})
    rdf = ET.SubElement(root, f"{{{_NS['rdf']}}}RDF")
    attrs = {f"{{{_NS['rdf']}}}about": "", f"{{{_NS['xmp']}}}MetadataDate": time.strftime("%Y-%m-%dT%H:%M:%S"),
             f"{{{_NS['xmp']}}}CreatorTool": "photosim (from a duplicate sent to the trash)"}
    if taken_at:
        attrs[f"{{{_NS['exif']}}}DateTimeOriginal"] = taken_at
        attrs[f"{{{_NS['photoshop']}}}DateCreated"] = taken_at
    if gps:
        attrs[f"{{{_NS['exif']}}}GPSVersionID"] = "2.2.0.0"
        attrs[f"{{{_NS['exif']}}}GPSLatitude"] = _xmp_coord(gps[0], "N", "S")
        attrs[f"{{{_NS['exif']}}}GPSLongitude"] = _xmp_coord(gps[1], "E", "W")
    ET.SubElement(rdf, f"{{{_NS['rdf']}}}Description", attrs)
    body = ET.tostring(root, encoding="unicode")
    return (f'<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n{body}\n<?xpacket end="w"?>\n').encode()


def sidecar_paths(photo_path: str) -> tuple[str, str]:
    """(the sidecar photosim writes, the other common naming), e.g. IMG.CR2.xmp and IMG.xmp."""
    return photo_path + ".xmp", os.path.splitext(photo_path)[0] + ".xmp"


@dataclass
class SidecarPlan:
    keeper: object
    taken_at: str | None
    gps: tuple[float, float] | None
    copies: list[int]


def plan_sidecars(pairs: dict[int, int], photos: dict, keepers: dict) -> list[SidecarPlan]:
    """What each keeper lacks and one of its copies has (read *before* the copies go)."""
    by_keeper: dict[int, list[int]] = {}
    for copy, keep in pairs.items():
        by_keeper.setdefault(keep, []).append(copy)
    plans = []
    for keep_id, copies in by_keeper.items():
        keep = keepers.get(keep_id)
        if keep is None:
            continue
        copies = sorted(copies, key=lambda c: (photos[c].taken_at or "9999", c))
        taken = None if keep.taken_at else next((photos[c].taken_at for c in copies if photos[c].taken_at), None)
        gps = None
        if read_gps(keep.path) is None:
            gps = next((g for g in (read_gps(photos[c].path) for c in copies) if g is not None), None)
        plans.append(SidecarPlan(keep, taken, gps, copies))
    return plans


def write_sidecars(plans: list[SidecarPlan], trashed: set[int], report: MergeReport) -> None:
    for plan in plans:
        if not any(c in trashed for c in plan.copies):
            continue  # no copy left: nothing was lost
        name = display_path(os.path.basename(plan.keeper.path))
        if plan.taken_at is None and plan.gps is None:
            report.notes.append(f"no XMP sidecar for {name}: its copies had no date taken or GPS it lacks")
            continue
        ours, other = sidecar_paths(plan.keeper.path)
        there = next((p for p in (ours, other) if os.path.lexists(p)), None)
        if there is not None:
            report.notes.append(f"{name} already has a sidecar ({display_path(os.path.basename(there))}): "
                                "left untouched, nothing written")
            continue
        try:
            fd = os.open(ours, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        except FileExistsError:
            report.notes.append(f"{name} already has a sidecar: left untouched, nothing written")
            continue
        except OSError as exc:
            report.notes.append(f"could not write a sidecar for {name}: {exc.strerror or exc}")
            continue
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(xmp_packet(plan.taken_at, plan.gps))
        except OSError as exc:
            try:
                os.unlink(ours)
            except OSError:
                pass
            report.notes.append(f"could not write a sidecar for {name}: {exc.strerror or exc}")
            continue
        report.sidecars.append(ours)
