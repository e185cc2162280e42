"""Plain value types of the public API (no ORM objects leak out of the library)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field


from .errors import Cancelled, PhotosimError  # noqa: F401 - re-exported for older imports
from .progress import Progress



@dataclass(frozen=True)
class PhotoInfo:
    id: int
    path: str
    size: int
    mtime_ns: int
    width: int | None
    height: int | None
    taken_at: str | None
    camera: str | None
    orientation: int | None
    status: str
    error: str | None
    content_hash: str | None

    @property
    def name(self) -> str:
        return os.path.basename(self.path)

    @property
    def folder(self) -> str:
        return os.path.dirname(self.path)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @classmethod
    def from_row(cls, row) -> PhotoInfo:
        return cls(
            id=row.id, path=row.path, size=row.size, mtime_ns=row.mtime_ns, width=row.width,
            height=row.height, taken_at=row.taken_at, camera=row.camera,
            orientation=row.orientation, status=row.status, error=row.error,
            content_hash=row.content_hash,
        )


@dataclass(frozen=True)
class Match:
    """A photo found for a query and its cosine ``score``; ``reasons`` says in words why
    (verified copies: how much of the query it holds, at what resolution, how it was
    verified); empty for plain similarity results."""

    photo: PhotoInfo
    score: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class CopyMatch(Match):
    """A verified copy of a query photo (``Library.copies_of``): ``holds`` the share of the
    query's picture inside it (0-1), ``resolution`` its pixels per pixel of that picture
    (2.0: twice as sharp), ``source`` True when it holds all of the query at least at the
    query's resolution: then the query is most likely a copy of it."""

    holds: float = 0.0
    resolution: float = 1.0
    source: bool = False


@dataclass
class QueryResult:
    query: str
    results: list[Match] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict:
        out = {"query": self.query, "results": [_result(m) for m in self.results]}
        if self.error:
            out["error"] = self.error
        return out


def _result(m: Match) -> dict:
    """A result as JSON; a verified copy (``copies_first``) says so, and how it holds the query."""
    out = {"path": m.photo.path, "score": round(m.score, 6)}
    if isinstance(m, CopyMatch):
        out.update(copy=True, reasons=list(m.reasons))
    return out


@dataclass
class DuplicateGroup:
    """Copies of one photo (``tier`` "exact" or "near"), or a *stack* of other shots of one
    scene (``tier`` "similar", never proposed for the trash). ``photos[0]`` is the keeper
    (the best copy); ``scores[i]`` is the similarity of ``photos[i]`` to it and
    ``reasons[i]`` says, in words, why it is in the group and how it compares."""

    photos: list[PhotoInfo]
    scores: list[float]
    tier: str = "near"
    reasons: list[list[str]] = field(default_factory=list)

    @property
    def keeper(self) -> PhotoInfo:
        return self.photos[0]

    def to_dict(self) -> dict:
        reasons = self.reasons or [[] for _ in self.photos]
        return {"tier": self.tier, "keeper": self.photos[0].path,
                "photos": [{"path": p.path, "score": round(s, 6), "reasons": list(r), "keep": i == 0,
                            "size": p.size, "width": p.width, "height": p.height}
                           for i, (p, s, r) in enumerate(zip(self.photos, self.scores, reasons))]}


class DuplicateGroups(list):
    """A list of :class:`DuplicateGroup` with ``notices`` (what was refused, in words) and
    ``threshold``, the similarity from which neighbours were checked."""

    def __init__(self, groups=(), notices=(), threshold: float | None = None):
        super().__init__(groups)
        self.notices: list[str] = list(notices)
        self.threshold = threshold


@dataclass
class ScanProgress(Progress):
    """``stage``: "listing" | "scanning" | "removing" | "saving" | "done"."""

    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0
    elapsed: float = 0.0
    current: str | None = None

    @property
    def read(self) -> int:
        """Photos read in this scan (already-indexed unchanged ones cost a stat, not a read)."""
        return max(0, self.done - self.unchanged)

    @property
    def rate(self) -> float:
        """Photos read per second in this scan (unchanged ones do not count)."""
        return self.read / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        if self.done <= 0 or self.total <= self.done or self.rate <= 0:
            return None
        return (self.total - self.done) / self.rate


@dataclass
class ScanReport:
    roots: list[str]
    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    reembedded: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    unreadable_folders: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FeatureCacheInfo:
    """What the feature cache keeps (``policy``: "all" or "labelled"), for how many photos
    of the active backbone, and its size on disk (``per_photo`` bytes each, about)."""

    policy: str
    photos: int
    per_photo: int
    #: of ``photos``, those fine-tuning learns from (kept under either policy)
    labelled: int = 0

    @property
    def bytes(self) -> int:
        return self.photos * self.per_photo


@dataclass
class LibraryInfo:
    path: str
    schema_version: int
    photos: int
    indexed: int
    errors: int
    encoder_id: str
    encoder_dim: int
    index_size: int
    roots: list[str]
    device: str | None
    #: Why the library is not on the model it was last switched to, or why its encoder runs
    #: slower than it could (PyTorch instead of ONNX Runtime); "" when all is well.
    notice: str = ""
    #: What runs the encoder once loaded: "onnxruntime" or "torch" (None: not loaded yet).
    backend: str | None = None
    #: How far the background build of the index is (0..1), None when the index is ready.
    index_building: float | None = None
    #: Sub-folders of ``roots`` that scans skip (``Library.exclude_folder``).
    excluded: list[str] = field(default_factory=list)
    #: The active model's display name (the user's, else one made from how it was made).
    model_name: str = ""

    @property
    def unindexed(self) -> int:
        """Readable photos without a vector of the active encoder (e.g. after photosim
        shipped a new encoder); a re-scan embeds them."""
        return max(0, self.photos - self.errors - self.indexed)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["unindexed"] = self.unindexed
        return d


@dataclass(frozen=True)
class AlbumInfo:
    id: int
    name: str
    source: str  # "folder" (from a sub-folder) | "user" (made in the app)
    count: int


@dataclass(frozen=True)
class FolderInfo:
    """A folder of the library that holds photos: ``count`` readable photos in it and
    below, ``children`` its sub-folders that hold some (by name), ``more``: it has
    sub-folders that were not listed (the tree stops at a size limit)."""

    path: str
    count: int
    children: tuple[FolderInfo, ...] = ()
    more: bool = False

    @property
    def name(self) -> str:
        return os.path.basename(self.path.rstrip(os.sep)) or self.path


@dataclass(frozen=True)
class MarkInfo:
    """The user said ``result`` is (label=+1) or is not (label=-1) similar to ``query``."""

    query_id: int
    result_id: int
    label: int
