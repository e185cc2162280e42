"""From the user's labels (albums and similarity marks) to training data.

An album is a class: any two of its photos are "similar", a photo of another
album is "not similar". A mark is an explicit (query, result, ±1) judgement.
Everything a fine-tune may not trust is left out here, *before* training, with
a sentence for the user: photos that are gone, photos without cached features,
albums too small to hold a pair, marks that contradict each other or an album.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import PhotosimError


@dataclass
class LabelledSet:
    """Photos usable for training, each with its album (-1: only in marks)."""

    photo_ids: list[int]
    labels: list[int]
    album_names: list[str]
    #: (query, result) photo-id pairs the user marked similar / not similar.
    positives: list[tuple[int, int]] = field(default_factory=list)
    negatives: list[tuple[int, int]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: pairs the duplicates view was told are "not duplicates" (used by marks-only fine-tunes)
    not_duplicates: list[tuple[int, int]] = field(default_factory=list)

    @property
    def marks_only(self) -> bool:
        """Fewer than two albums: the fine-tune learns from the marked pairs alone."""
        return len(self.album_names) < 2

    def row_of(self) -> dict[int, int]:
        return {pid: i for i, pid in enumerate(self.photo_ids)}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def collect_labels(
    albums: dict[str, list[int]],
    marks: Sequence[tuple[int, int, int]],
    usable: set[int],
    gone: set[int] = frozenset(),
    not_duplicates: Sequence[tuple[int, int]] = (),
) -> LabelledSet:
    """Clean labels into a :class:`LabelledSet`, or raise :class:`PhotosimError` saying why
    there is not enough to learn from.

    ``albums`` maps album name → photo ids; ``marks`` are (query, result, label) triples;
    ``usable`` are photos that exist and have cached features; ``gone`` are photos whose
    file no longer exists (reported separately from those merely lacking features);
    ``not_duplicates`` are pairs of the duplicates view's "not duplicates" verdicts: with
    fewer than two albums they are negative pairs beside the marks.
    """
    warnings: list[str] = []
    dropped_gone: set[int] = set()
    dropped_nofeat: set[int] = set()

    def keep(pid: int) -> bool:
        if pid in gone:
            dropped_gone.add(pid)
            return False
        if pid not in usable:
            dropped_nofeat.add(pid)
            return False
        return True

    # Albums: a photo belongs to the first album (by name) that holds it.
    owner: dict[int, int] = {}
    names: list[str] = []
    members: list[list[int]] = []
    in_several = 0
    small: list[str] = []
    for name in sorted(albums):
        ids = [pid for pid in dict.fromkeys(albums[name]) if keep(pid)]
        fresh = [pid for pid in ids if pid not in owner]
        in_several += len(ids) - len(fresh)
        if len(fresh) < 2:
            small.append(name)
            continue
        for pid in fresh:
            owner[pid] = len(names)
        names.append(name)
        members.append(fresh)
    if in_several:
        warnings.append(f"{_plural(in_several, 'photo')} in more than one album counted only "
                        f"in the first of them")
    for name in small:
        warnings.append(f"album '{name}' has fewer than two usable photos and was left out")

    # Marks: normalise pairs; a pair marked both ways, or "not similar" inside one album,
    # is a contradiction and is dropped.
    by_pair: dict[tuple[int, int], set[int]] = {}
    for q, r, label in marks:
        if not (keep(q) & keep(r)):  # both evaluated so both get counted
            continue
        by_pair.setdefault((q, r) if q < r else (r, q), set()).add(1 if label > 0 else -1)
    positives, negatives = [], []
    contradictions = album_conflicts = 0
    for (a, b), labels in sorted(by_pair.items()):
        if len(labels) > 1:
            contradictions += 1
        elif -1 in labels and a in owner and owner.get(a) == owner.get(b):
            album_conflicts += 1
        elif 1 in labels:
            positives.append((a, b))
        else:
            negatives.append((a, b))
    if contradictions:
        warnings.append(f"{_plural(contradictions, 'pair')} of photos marked both similar and not "
                        f"similar: those marks were left out")
    if album_conflicts:
        warnings.append(f"{_plural(album_conflicts, 'mark')} 'not similar' between photos of the "
                        f"same album contradict the album and were left out")
    verdicts: list[tuple[int, int]] = []
    if len(names) < 2:  # marks alone: "not duplicates" verdicts are negative pairs too
        marked = set(positives) | set(negatives)
        for q, r in not_duplicates:
            pair = (q, r) if q < r else (r, q)
            if pair not in marked and keep(q) & keep(r):
                verdicts.append(pair)
        verdicts = sorted(set(verdicts))
    if dropped_gone:
        warnings.append(f"{_plural(len(dropped_gone), 'labelled photo')} no longer exist on disk "
                        f"and were left out")
    if dropped_nofeat:
        warnings.append(f"{_plural(len(dropped_nofeat), 'labelled photo')} are not scanned yet "
                        f"(or failed to decode) and were left out")

    photo_ids = [pid for m in members for pid in m]
    labels_ = [owner[pid] for pid in photo_ids]
    extra = sorted({pid for pair in positives + negatives + verdicts for pid in pair} - set(owner))
    photo_ids += extra
    labels_ += [-1] * len(extra)
    out = LabelledSet(photo_ids, labels_, names, positives, negatives, warnings, verdicts)
    if len(names) < 2:
        check_marks(out)
        if names:
            warnings.append(f"album '{names[0]}' alone cannot be learnt from (an album needs another to be "
                            f"told apart from), so only the marks were used")
    return out


def check_marks(data: LabelledSet) -> None:
    """Raise :class:`PhotosimError` saying what is missing when ``data``'s marks are not enough
    for a fine-tune from marks alone (no albums to learn from)."""
    from .pairs import MIN_EACH, USEFUL_EACH

    pos, neg = len(data.positives), len(data.negatives)
    verdicts = len(data.not_duplicates)
    why = f" ({'; '.join(data.warnings)})" if data.warnings else ""
    found = f"found {marks_in_words(pos, neg)}" + (f" and {_plural(verdicts, 'not-duplicates verdict')}"
                                                    if verdicts else "")
    if not pos and not neg + verdicts:
        usable = f"found {len(data.album_names)} usable album" if data.album_names else "found no usable albums"
        raise PhotosimError(
            f"fine-tuning needs at least two albums with two or more photos each, or marks with "
            f"both 'similar' and 'not similar' results; {usable} and no marks{why}. Nothing was changed.")
    if not pos or not neg + verdicts:
        missing = "similar" if not pos else "not similar"
        raise PhotosimError(
            f"fine-tuning from marks alone needs both 'similar' and 'not similar' marks; {found}, none "
            f"'{missing}'{why}. Mark some results '{missing}' too, or make two albums. Nothing was changed.")
    if pos < MIN_EACH or neg + verdicts < MIN_EACH:
        raise PhotosimError(
            f"fine-tuning from marks alone needs at least {MIN_EACH} 'similar' and {MIN_EACH} 'not similar' "
            f"marks; {found}{why}. Mark at least {USEFUL_EACH} of each for a useful result. Nothing was changed.")


def marks_in_words(similar: int, not_similar: int) -> str:
    return f"{similar} similar and {not_similar} not-similar mark{'' if not_similar == 1 else 's'}"


def album_triplets(labels: Sequence[int], n: int, rng: random.Random) -> np.ndarray:
    """``n`` random (anchor, positive, negative) row triples from album labels."""
    by_album: dict[int, list[int]] = {}
    for row, lab in enumerate(labels):
        if lab >= 0:
            by_album.setdefault(lab, []).append(row)
    albums = [a for a, rows in by_album.items() if len(rows) >= 2]
    if not albums or len(by_album) < 2:
        return np.zeros((0, 3), dtype=np.int64)
    all_rows = [r for rows in by_album.values() for r in rows]
    out = []
    while len(out) < n:
        a_lab = rng.choice(albums)
        anchor, positive = rng.sample(by_album[a_lab], 2)
        negative = rng.choice(all_rows)
        if labels[negative] == a_lab:
            continue
        out.append((anchor, positive, negative))
    return np.asarray(out, dtype=np.int64)


def mark_triplets(data: LabelledSet, rng: random.Random) -> list[tuple[int, int, int]]:
    """Triplets of photo ids from marks. A 'similar' pair gets as negative a photo the user
    marked 'not similar' to either side, else a photo of another album; a 'not similar'
    pair gets as positive an album-mate of the query (or a photo marked similar to it)."""
    owner = {pid: lab for pid, lab in zip(data.photo_ids, data.labels) if lab >= 0}
    by_album: dict[int, list[int]] = {}
    for pid, lab in owner.items():
        by_album.setdefault(lab, []).append(pid)
    neg_of: dict[int, list[int]] = {}
    pos_of: dict[int, list[int]] = {}
    for a, b in data.negatives:
        neg_of.setdefault(a, []).append(b)
        neg_of.setdefault(b, []).append(a)
    for a, b in data.positives:
        pos_of.setdefault(a, []).append(b)
        pos_of.setdefault(b, []).append(a)
    out: list[tuple[int, int, int]] = []
    for q, p in data.positives:
        for anchor, pos in ((q, p), (p, q)):
            cands = [n for n in neg_of.get(anchor, []) if n != pos]
            if not cands and anchor in owner:
                cands = [n for lab, ids in by_album.items() if lab != owner[anchor] for n in ids
                         if n != pos and owner.get(pos) != lab]
            if cands:
                out.append((anchor, pos, rng.choice(cands)))
                break
    for q, n in data.negatives:
        for anchor, neg in ((q, n), (n, q)):
            cands = [p for p in pos_of.get(anchor, []) if p != neg]
            if not cands and anchor in owner:
                cands = [p for p in by_album[owner[anchor]] if p not in (anchor, neg)]
            if cands:
                out.append((anchor, rng.choice(cands), neg))
                break
    return list(dict.fromkeys(out))


def existing(paths: dict[int, str]) -> tuple[set[int], set[int]]:
    """Split photo ids into (file exists, file gone)."""
    ok, gone = set(), set()
    for pid, path in paths.items():
        (ok if os.path.isfile(path) else gone).add(pid)
    return ok, gone
