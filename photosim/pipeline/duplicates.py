"""Near-duplicate groups: photos linked when their cosine similarity reaches a threshold."""

from __future__ import annotations

import numpy as np

from ..progress import ProgressFn, as_token, emit
from ..values import DuplicateGroup


class _Sets:
    """Union-find over photo ids."""

    def __init__(self, ids):
        self.parent = {pid: pid for pid in ids}

    def find(self, x):
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a, b) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def find_duplicates(store, index, encoder_id: str, dim: int, threshold: float, k: int = 16,
                    progress: ProgressFn | None = None, cancel=None, chunk: int = 1024) -> list[DuplicateGroup]:
    """Groups, largest first; ``photos[0]`` of each is the suggested keeper (largest, then
    biggest file, then path) and ``scores`` are similarities to it."""
    token = as_token(cancel)
    ids, vecs = store.vectors.load(encoder_id, dim)
    if len(ids) < 2:
        return []
    sets = _Sets(ids)
    for start in range(0, len(ids), chunk):
        token.check("duplicate search cancelled")
        labels, scores = index.query_many(vecs[start:start + chunk], k + 1)
        for pid, row_labels, row_scores in zip(ids[start:start + chunk], labels, scores):
            for other, score in zip(row_labels.tolist(), row_scores.tolist()):
                if score < threshold:
                    break
                if other != pid and other in sets.parent:
                    sets.union(pid, other)
        emit(progress, "comparing", min(start + chunk, len(ids)), len(ids))
    groups: dict[int, list[int]] = {}
    for pid in ids:
        groups.setdefault(sets.find(pid), []).append(pid)
    row_of = {pid: i for i, pid in enumerate(ids)}
    members = [g for g in groups.values() if len(g) > 1]
    info = store.photos.photos_by_id([pid for g in members for pid in g])
    out = []
    for g in members:
        photos = sorted((info[p] for p in g), key=lambda p: (-(p.width or 0) * (p.height or 0), -p.size, p.path))
        keeper = vecs[row_of[photos[0].id]]
        out.append(DuplicateGroup(photos, [float(np.dot(vecs[row_of[p.id]], keeper)) for p in photos]))
    out.sort(key=lambda g: (-len(g.photos), g.photos[0].path))
    return out
