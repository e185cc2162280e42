"""Re-embedding and switching models.

The rule that makes a switch safe: nothing searches rely on changes until the very
end. Every vector of the new model is stored first (under its own id, invisible to
searches), photos without cached features for its backbone are read afresh, and
only then is the active model flipped and the index rebuilt. Cancelling or failing
at any point leaves the previous model active with its vectors and index intact.
"""

from __future__ import annotations

from .. import precision as variants
from ..errors import PhotosimError, UnknownModel
from ..progress import ProgressFn, emit
from .embed import embed_from_taps, embed_photos, project_cached


def reembed(store, encoder, progress: ProgressFn | None = None, cancel=None) -> tuple[int, int]:
    """Vectors of every readable photo under ``encoder`` from cached features, no decoding;
    returns (re-embedded, photos lacking features)."""
    ok = store.photos.ids(status="ok")
    have = store.features.photo_ids(encoder.backbone_id)
    todo = [pid for pid in ok if pid in have]
    done = 0
    for ids, _ in project_cached(store, encoder, todo, cancel):
        done += len(ids)
        emit(progress, "re-embedding", done, len(todo))
    return done, len(ok) - len(todo)


def rebuild_index(index, progress: ProgressFn | None = None) -> None:
    """Start building the index afresh from the stored vectors, in the background
    (:class:`photosim.index.IndexBuild`: searches answer meanwhile; ``wait_index`` waits)."""
    index.rebuild()
    emit(progress, "indexing", 0, 1, "the index is being built in the background")


def switch_model(store, registry, active, index, model_id: str, progress: ProgressFn | None = None,
                 cancel=None, taps=None) -> tuple[int, int]:
    """Make ``model_id`` active once all its vectors are stored; returns (vectors made,
    photos that could not be read). Vectors come from cached features, else from the
    taps (``taps``, a TapStore) of a standard fine-tune, else from the photos read
    again. Other models' vectors are dropped (re-made from cached features on demand)."""
    card = registry.usable(model_id)
    previous = active.encoder_id
    encoder = registry.load(card.id)
    done, lacking = reembed(store, encoder, progress, cancel)
    if lacking:
        have = store.vectors.photo_ids(card.id)
        todo = [pid for pid in store.photos.ids(status="ok") if pid not in have]
        tapped = set(embed_from_taps(store, encoder, taps, todo, progress, cancel))
        todo = [pid for pid in todo if pid not in tapped]
        read = embed_photos(store, encoder, todo, progress, cancel)
        done, lacking = done + len(tapped) + read, lacking - len(tapped) - read
    if card.id != previous:
        history = store.meta.get("model_history", [])
        store.meta.set("model_history", (history + [previous])[-50:])
    active.set(card.id)
    if taps is not None:  # the old backbone's taps serve no model now
        taps.drop_except({encoder.card.backbone_id})
    store.vectors.keep_only(card.id)  # first: the build's generation is then the one it saves under
    rebuild_index(index, progress)
    return done, lacking


def previous_model(store, registry, active_id: str) -> tuple[str, list[str]]:
    """The model that was active before the current one (else the bundled one), and the
    history left once it is taken."""
    history = list(store.meta.get("model_history", []))
    while history:
        candidate = history.pop()
        try:
            registry.model_dir(candidate)
        except UnknownModel:  # deleted since
            continue
        if candidate != active_id:
            return candidate, history
    return registry.bundled.id, history


def delete_model(store, registry, model_id: str, active_id: str) -> None:
    """Forget a fine-tune (never the active or the bundled one), its vectors, and its
    backbone's cached features when no model left uses that backbone (a thorough
    fine-tune's own: a few KB per photo)."""
    if variants.split(model_id)[0] == variants.split(active_id)[0]:  # the active model in any precision
        raise PhotosimError("the active model cannot be deleted; switch to another one first")
    backbone = registry.card(model_id).backbone_id
    registry.delete(model_id)
    store.vectors.drop(model_id)
    if backbone not in {m.backbone_id for m in registry.list(active_id)}:
        store.features.drop(backbone)
