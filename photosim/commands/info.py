"""``photosim info``: counts, folders, failed files with reasons, the encoder."""

from __future__ import annotations

import json

from ..errors import PhotosimError
from ._common import open_library, out, show


def register(sub, common) -> None:
    p = sub.add_parser("info", parents=[common], help="library size, encoder, failed files")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    with open_library(args, readonly=True) as lib:
        try:
            lib.encoder  # noqa: B018 - loaded to say what runs it (and any fallback's reason)
        except PhotosimError:
            pass  # the card's problem is in info().notice
        info = lib.info()
        errors, ignored = lib.problems.list(), lib.problems.ignored()
        calibration = lib.duplicate_calibration()
        cache = lib.feature_cache()
        taps = lib.taps.bytes()
    if args.json:
        d = info.to_dict()  # photos, indexed, errors (a count), encoder_id, encoder_dim, ...
        d["dim"] = info.encoder_dim
        d["duplicate_threshold"] = {"library": calibration.threshold, "model": calibration.model,
                                    "keep_both_pairs": calibration.copies,
                                    "not_duplicates_pairs": calibration.different}
        d["feature_cache"] = {"policy": cache.policy, "photos": cache.photos, "bytes": cache.bytes}
        d["taps_bytes"] = taps
        d["failed"] = [{"path": p.path, "error": p.error} for p in errors]
        d["ignored"] = [{"path": p.path, "error": p.error} for p in ignored]
        out(json.dumps(d, indent=1))
        return 0
    out(f"library:   {show(info.path)} (schema {info.schema_version})")
    ign = f", {len(ignored)} of them ignored" if ignored else ""
    out(f"photos:    {info.photos} ({info.indexed} indexed, {info.errors} failed{ign})")
    if info.unindexed:
        out(f"note:      {info.unindexed} photos have no vector of this encoder: run photosim scan again")
    out(f"model:     {show(info.model_name)} ({info.encoder_id}, dim {info.encoder_dim})")
    out(f"copies:    likely from similarity {calibration.describe()}")
    if info.backend:
        runtime = "ONNX Runtime" if info.backend == "onnxruntime" else "PyTorch"
        out(f"runs on:   {(info.device or 'cpu').upper()}, {runtime}")
    if info.notice:
        out(f"note:      {info.notice}")
    if info.index_building is not None:
        out(f"index:     being built, {int(100 * info.index_building)}% (searches meanwhile are exact, over "
            "the vectors read so far)")
    elif info.indexed and not info.index_size:
        out(f"index:     missing or out of date: built again from the {info.indexed} stored vectors by the "
            "next search (in the background in the app)")
    else:
        out(f"index:     {info.index_size} vectors")
    kept = "every photo" if cache.policy == "all" else "labelled photos only"
    size = f"{cache.bytes / 2**30:.1f} GB" if cache.bytes >= 2**30 else f"{cache.bytes / 2**20:.1f} MB"
    out(f"features:  {cache.photos} cached ({kept}), about {size} (`photosim features` to choose)")
    if taps:
        out(f"taps:      about {taps / 2**20:.0f} MB kept from album imports for standard fine-tuning "
            "(dropped once a model of another backbone is accepted; `photosim features --drop-taps` now)")
    for r in info.roots:
        out(f"folder:    {show(r)}")
    for e in info.excluded:
        out(f"excluded:  {show(e)}")
    if not info.photos:
        out("note:      no photos yet: run `photosim scan DIR` to add some")
    for p in errors:
        out(f"failed:    {show(p.path)}: {p.error}")
    if ignored:
        out(f"ignored:   {len(ignored)} failed file{'s' if len(ignored) != 1 else ''} "
            "(`photosim problems --unignore` lists them again)")
    return 0
