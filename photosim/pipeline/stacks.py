"""Shots that belong together but are not copies: bursts and RAW + JPEG pairs.

- **RAW + JPEG of one shot**: a camera writing both saves ``IMG_0042.CR2`` beside
  ``IMG_0042.JPG``; the two are one shot in two formats (same folder and name stem), or,
  renamed or moved, a RAW and a non-RAW photo of one camera taken at the same second that
  look alike. Keeping the RAW and trashing the JPEG (or the reverse) is a choice about
  formats, not about copies: they are offered as a stack, never for the trash.
- **Bursts**: photos of one camera whose date taken (EXIF DateTimeOriginal) is at most
  :data:`BURST_GAP` seconds after the previous one's, each similar to the previous
  (cosine >= the stack bound). Frames of a burst are different moments, never copies of
  each other. Two photos with the very same date taken may be one photo and its edited
  copy (a copy keeps the EXIF), so only verification decides about those.

Nothing here reads a file: paths, dates, cameras and vectors come from the library.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable

from ..raw import is_raw

#: Most seconds between two consecutive frames of a burst (EXIF dates have 1 s steps).
BURST_GAP = 2.0
#: A longer run (a time-lapse) is cut into stacks of this many frames, so the pairs stay few.
MAX_BURST = 60


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


def _taken(p) -> _dt.datetime | None:
    try:
        return _dt.datetime.fromisoformat(p.taken_at) if p.taken_at else None
    except ValueError:
        return None


def _fmt(p) -> str:
    return os.path.splitext(p.path)[1].lstrip(".").upper()


class Shots:
    """``pairs``: {(a, b): [reason, ...]} of photos that make a stack (RAW + JPEG, bursts);
    ``not_copies``: the pairs among them that must never be offered as copies."""

    def __init__(self, info: dict, cos: Callable[[int, int], float], similar_from: float,
                 candidates=()):
        self.info, self.cos, self.low = info, cos, similar_from
        self.pairs: dict[tuple[int, int], list[str]] = {}
        self.not_copies: set[tuple[int, int]] = set()
        self._raw_jpeg(candidates)
        self._bursts()

    def _add(self, a: int, b: int, why: str, not_copy: bool = True) -> None:
        key = _pair(a, b)
        reasons = self.pairs.setdefault(key, [])
        if why not in reasons:
            reasons.append(why)
        if not_copy:
            self.not_copies.add(key)

    def _raw_jpeg(self, candidates) -> None:
        by_stem: dict[tuple[str, str], list[int]] = {}
        for pid, p in self.info.items():
            folder, name = os.path.split(p.path)
            by_stem.setdefault((folder, os.path.splitext(name)[0].lower()), []).append(pid)
        for ids in by_stem.values():
            raws = [i for i in ids if is_raw(self.info[i].path)]
            for r in raws:
                for o in ids:
                    if o not in raws:
                        self._add(r, o, f"RAW + {_fmt(self.info[o])} of one shot (same name: "
                                        f"{os.path.basename(self.info[r].path)})")
        for a, b in candidates:  # renamed or moved: one camera, the same second, alike
            pa, pb = self.info[a], self.info[b]
            if is_raw(pa.path) == is_raw(pb.path) or not (pa.camera and pa.camera == pb.camera):
                continue
            ta, tb = _taken(pa), _taken(pb)
            if ta is not None and ta == tb:
                r, o = (pa, pb) if is_raw(pa.path) else (pb, pa)
                self._add(a, b, f"RAW + {_fmt(o)} of one shot (same camera, taken at the same second)")

    def _bursts(self) -> None:
        by_camera: dict[str, list[tuple[_dt.datetime, int]]] = {}
        for pid, p in self.info.items():
            t = _taken(p)
            if p.camera and t is not None:
                by_camera.setdefault(p.camera, []).append((t, pid))
        for camera, shots in by_camera.items():
            shots.sort()
            run = [shots[0]]
            for prev, cur in zip(shots, shots[1:]):
                gap = (cur[0] - prev[0]).total_seconds()
                if gap <= BURST_GAP and len(run) < MAX_BURST and self.cos(prev[1], cur[1]) >= self.low:
                    run.append(cur)
                    continue
                self._burst(camera, run)
                run = [cur]
            self._burst(camera, run)

    def _burst(self, camera: str, run: list[tuple[_dt.datetime, int]]) -> None:
        if len(run) < 2 or run[0][0] == run[-1][0]:
            return  # one photo, or all at one second: copies or not, verification says
        span = (run[-1][0] - run[0][0]).total_seconds()
        why = f"burst: {len(run)} shots in {span:.0f} s ({camera})"
        for i, (ta, a) in enumerate(run):
            for tb, b in run[i + 1:]:
                self._add(a, b, why, not_copy=ta != tb)
