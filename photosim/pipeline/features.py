"""The cache of backbone features: what it keeps, its size, and the library's choice.

Every photo's features (the default) let quick fine-tunes, fp32 / int8 switches and models
sharing a backbone re-make the vectors without reading a photo; they cost ``feature_dim``
float16 values a photo (5 KB with encoder v5: 5 GB per million photos). The other choice
keeps only the photos fine-tuning learns from (in an album, marked, or in a "not
duplicates" verdict): scans then keep no features of other photos, a fine-tune reads the
labelled photos the cache lacks first, and accepting it reads every other photo again.
"""

from __future__ import annotations

from ..values import FeatureCacheInfo

#: bytes of a cached row beside its values (key, index entries), measured with SQLite's dbstat
ROW_BYTES = 40


class FeatureCache:
    def __init__(self, store, active, writable, taps=None, registry=None):
        self._store, self._active, self._writable, self._taps = store, active, writable, taps
        if taps is not None and registry is not None and not taps.readonly:
            self._drop_stale_taps(registry)

    def _drop_stale_taps(self, registry) -> None:
        """Taps no model of the library can use go when it opens: those of a backbone that is
        neither the active one, nor a model's, nor the one a standard fine-tune is accepted
        from (its card's ``taps``). An upgrade that replaced the bundled encoder (v5 -> v5.1)
        left its album imports' taps behind, up to 1 GB that nothing would read."""
        kept = self._taps.backbones()
        if kept <= {self._active.backbone_id}:
            return  # the usual case: nothing but the active backbone's (or none), no card read
        used = {self._active.backbone_id}
        for model in registry.list(self._active.encoder_id):
            used.add(model.backbone_id)
            try:
                taps = registry.card(model.id).extra.get("taps")
            except Exception:  # noqa: BLE001 - an unreadable card keeps nothing alive
                continue
            if isinstance(taps, dict) and isinstance(taps.get("backbone_id"), str):
                used.add(taps["backbone_id"])
        if kept - used:
            self._taps.drop_except(used)

    def feature_cache(self) -> FeatureCacheInfo:
        """What the cache keeps for the active backbone, and its size."""
        features, backbone = self._store.features, self._active.backbone_id
        return FeatureCacheInfo(features.policy, features.count(backbone),
                                self._active.card.feature_dim * 2 + ROW_BYTES, features.count(backbone, labelled=True))

    def set_feature_cache(self, policy: str, *, compact: bool = False, cancel=None) -> int:
        """Keep the features of every photo ("all": from now on; photos read again for any
        reason keep theirs) or of labelled photos only ("labelled": the others' are dropped
        now). ``compact`` gives the freed space back to the disk (SQLite's VACUUM). Returns
        how many photos' features were dropped."""
        self._writable()
        self._store.features.set_policy(policy)
        dropped = self._store.features.drop_unlabelled(cancel) if policy == "labelled" else 0
        if compact:
            self._store.features.compact()
        return dropped

    def drop_taps(self) -> int:
        """Delete the taps album imports keep for standard fine-tuning (photosim.store.taps):
        a standard fine-tune then reads its photos, and accepting one reads them again.
        Returns the bytes freed."""
        self._writable()
        if self._taps is None:
            return 0
        freed = self._taps.bytes()
        self._taps.drop_except(set())
        return freed
