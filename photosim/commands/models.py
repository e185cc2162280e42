"""``photosim models list|use ID|revert|delete ID|rename ID NAME|precision [fp32|int8]``: the
versioned encoders of a library, and the precision the active one runs at."""

from __future__ import annotations

import json

from .. import precision as variants
from ..card import valid_model_id
from ..errors import PhotosimError
from ._common import ProgressBar, open_library, out, show


def register(sub, common) -> None:
    p = sub.add_parser("models", parents=[common], help="list, switch or revert encoder models")
    p.add_argument("action", choices=["list", "use", "revert", "delete", "rename", "precision"])
    p.add_argument("model_id", nargs="?", metavar="ID",
                   help="a model ID; for precision: fp32 (exact) or int8 (" + variants.INT8_COST + ")")
    p.add_argument("name", nargs="*", metavar="NAME", help="rename: the model's new name (its id stays)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.action == "precision":
        return _precision(args)
    if args.action in ("use", "delete", "rename"):
        if not args.model_id:
            raise PhotosimError(f"models {args.action} needs a model ID (see: photosim models list)")
        if not valid_model_id(args.model_id):
            raise PhotosimError(f"'{show(args.model_id)}' is not a model ID: IDs are names (letters, digits, "
                                "'.', '_', '-'), never paths; see photosim models list")
    with open_library(args, readonly=args.action == "list") as lib:
        if args.action == "list":
            models = lib.models()
            if args.json:
                out(json.dumps([m.to_dict() for m in models], indent=1))
                return 0
            for m in models:
                mark = "*" if m.active else " "
                what = "bundled" if m.bundled else (f"{m.created or '?'}  {m.mode or 'fine-tune'} from "
                                                     f"{m.based_on}, {len(m.albums)} albums")
                score = (f"  MAP@R {m.before.get('map_at_r', 0):.3f} -> {m.after.get('map_at_r', 0):.3f}"
                         if m.after else "")
                out(f"{mark} {show(m.name)}  [{show(m.id)}]  {what if not m.problem or m.created else 'damaged'}"
                    f"{score}")
                if m.problem:
                    out(f"    cannot be used: {show(m.problem)}")
            return 0
        if args.action == "rename":
            name = lib.rename_model(args.model_id, " ".join(args.name))
            out(f"{args.model_id} is now called “{show(name)}”")
        elif args.action == "use":
            lib.use_model(args.model_id)
            _index_built(lib)
            out(f"active model is now {show(lib.card.display_name)} ({lib.encoder_id})")
        elif args.action == "revert":
            target = lib.revert_model()
            _index_built(lib)
            out(f"active model is now {show(lib.card.display_name)} ({target})")
        else:
            lib.delete_model(args.model_id)
            out(f"deleted {args.model_id}")
    return 0


def _precision(args) -> int:
    """Show, or switch the active model to, a precision (a model switch: every photo is read
    again in int8; back to fp32 re-uses the cached fp32 features)."""
    wanted = args.model_id
    if wanted is not None and wanted not in variants.PRECISIONS:
        raise PhotosimError(f"precision is fp32 or int8 ({variants.INT8_COST}), not '{show(wanted)}'")
    with open_library(args, readonly=wanted is None) as lib:
        base, now = variants.split(lib.encoder_id)
        if wanted is None or wanted == now:
            out(f"{base} runs in {now}" + (f" ({variants.INT8_COST})" if now == "int8" else ""))
            return 0
        lib.use_model(variants.variant_id(base, wanted))
        _index_built(lib)
        out(f"{base} now runs in {wanted}; the library's vectors were re-made ({lib.encoder_id})")
    return 0


def _index_built(lib) -> None:
    """The new model's index is built in the background: wait (with a bar) so it is saved."""
    bar = ProgressBar()
    try:
        lib.wait_index(progress=bar)
    finally:
        bar.close()
