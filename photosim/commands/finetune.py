"""``photosim finetune``: teach the encoder the user's albums, print before/after metrics."""

from __future__ import annotations

import json
import os
import sys
import time

from ..errors import Cancelled, PhotosimError
from ._common import library_exists, library_path, no_library, open_library, positive_int, show


def register(sub, common) -> None:
    p = sub.add_parser("finetune", parents=[common],
                       help="fine-tune the encoder on albums (sub-folders of DIR) and similarity marks")
    p.add_argument("--albums", metavar="DIR", default=None,
                   help="folder whose sub-folders are albums (scanned into the library first); "
                        "default: the albums already in the library")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="training epochs (default: 12 quick, 16 for few photos; 3 standard; 6 thorough)")
    p.add_argument("--mode", choices=["auto", "quick", "standard", "thorough"], default="auto",
                   help="auto (default): standard where the estimate says it takes at most 10 minutes more "
                        "than quick, else quick; "
                        "quick: the head only, on cached features (seconds; accepting it is instant); "
                        "standard: the head and the network's last five blocks, from what the album import kept "
                        "(minutes; accepting it re-embeds the library, reading again the photos not kept); "
                        "thorough: the last blocks from the photos themselves (much longer)")
    p.add_argument("--no-marks", action="store_true", help="ignore similar / not similar marks")
    p.add_argument("--no-activate", action="store_true", help="keep the new model inactive")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _fmt(m: dict, marks: bool = False) -> str:
    if not m:
        return f"n/a (too few {'marks' if marks else 'photos'} to hold out)"
    if marks:
        return f"held-out marks: AUC {m.get('mark_auc', 0):.3f}  pair accuracy {m.get('mark_accuracy', 0):.3f}"
    return f"Recall@1 {m.get('recall_at_1', 0):.3f}  MAP@R {m.get('map_at_r', 0):.3f}"


def _after_import(message: str, photos: int, albums: int) -> str:
    """A fine-tuning error after ``--albums`` scanned photos in: the library did change."""
    reason = message.removesuffix(" Nothing was changed.").rstrip(".")
    return (f"{reason}. The albums were scanned into the library ({photos} photo{'s' * (photos != 1)}, "
            f"{albums} album{'s' * (albums != 1)}, kept) but no model was made")


def run(args) -> int:
    if args.albums:
        if not os.path.isdir(args.albums):  # before a library is created for it
            raise PhotosimError(f"no such folder: {show(args.albums)}" if not os.path.exists(args.albums)
                                else f"not a folder: {show(args.albums)}")
    elif not library_exists(library_path(args)):
        raise no_library(args)

    live = sys.stderr.isatty() and not args.json

    def progress(p) -> None:
        if live:
            eta = f"{p.eta:4.0f} s" if p.eta is not None else "-"
            if p.stage == "preparing":  # thorough mode reads the labelled photos first (minutes)
                sys.stderr.write(f"\r{p.detail or 'reading labelled photos'} {p.step}/{p.steps}  ETA {eta}   ")
            else:
                loss = f"{p.loss:.4f}" if p.loss is not None else "-"
                sys.stderr.write(f"\repoch {p.epoch}/{p.epochs}  step {p.step}/{p.steps}  loss {loss}  ETA {eta}   ")
            sys.stderr.flush()

    def switching(p) -> None:
        if live:
            sys.stderr.write(f"\r{p.stage} {p.done}/{p.total}        ")
            sys.stderr.flush()

    with open_library(args, readonly=False, create=bool(args.albums)) as lib:
        from ..training.choose import AUTO, choose_mode
        from ..training.estimate import duration, estimate_finetune, learn

        # Told before anything starts (bad labels fail here, with the fine-tune's own sentence).
        mode = args.mode
        if mode == AUTO:
            choice = choose_mode(lib, None, folder=args.albums, use_marks=not args.no_marks, epochs=args.epochs)
            mode, told = choice.mode, choice.estimate
            print(f"photosim: mode {mode}: {choice.reason}", file=sys.stderr, flush=True)
        else:
            told = estimate_finetune(lib, None, folder=args.albums, mode=mode, use_marks=not args.no_marks,
                                     epochs=args.epochs)
        stages = None if not args.no_activate else [k for k in told.stages if k != "accept"]
        print(f"photosim: fine-tuning will take {told.words(stages)}", file=sys.stderr, flush=True)
        t_start = t_scan = time.perf_counter()  # the estimate itself is not part of what it estimates
        albums = lib.import_albums(args.albums) if args.albums else None
        scan_s = time.perf_counter() - t_scan
        names = [a.name for a in albums] if albums is not None else None
        try:
            result = lib.finetune(names, use_marks=not args.no_marks, mode=mode, epochs=args.epochs,
                                  seed=args.seed, progress=progress, estimate=told)
        except (KeyboardInterrupt, Cancelled):
            sys.stderr.write("\n")
            kept = "; the albums scanned in are kept" if albums is not None else ""
            print(f"photosim: fine-tuning cancelled; the active model is unchanged{kept}", file=sys.stderr)
            return 130
        except PhotosimError as exc:
            if albums is None:
                raise
            scanned = len(lib.photos(folder=os.path.abspath(args.albums)))
            raise PhotosimError(_after_import(str(exc), scanned, len(albums))) from exc
        finally:
            if live:
                sys.stderr.write("\n")
        activated = False
        note = None
        accept_s = None
        if not args.no_activate:
            if result.refusal:
                note = f"{result.refusal} Kept inactive (use: photosim models use {result.model_id})"
            elif result.before and not result.improved:
                what = "held-out marks" if result.marks_only else "held-out photos"
                note = (f"the new model is not better than the active one on {what}; "
                        f"kept inactive (use: photosim models use {result.model_id})")
            else:
                t = time.perf_counter()
                lib.use_model(result.model_id, progress=switching)
                lib.wait_index(progress=switching)  # built in the background: saved before we exit
                accept_s = time.perf_counter() - t
                if live:
                    sys.stderr.write("\n")
                activated = True
        learn(told, {"scan": scan_s if albums is not None and told.stages.get("scan") else None,
                     "accept": accept_s})
        real = time.perf_counter() - t_start
        ran = [k for k in told.stages if k != "accept" or activated]
        told_s = sum(told.stages[k] for k in ran)
        closing = f"took {duration(real, about=False)} (estimated {duration(told_s)})"
        if args.json:
            d = result.to_dict()
            d["activated"] = activated
            d["note"] = note
            d["estimate"] = {"total_s": round(told_s, 1), "stages": {k: round(v, 1) for k, v in told.stages.items()},
                             "source": told.source, "load": round(told.load, 2), "device": told.device}
            d["total_s"] = round(real, 1)
            d["stages_s"] = {**({"scan": round(scan_s, 1)} if albums is not None else {}),
                             **result.record.stage_seconds, **({"accept": round(accept_s, 1)} if activated else {})}
            print(json.dumps(d, indent=1))
            return 0
        source = (f"{result.n_marks} marks ({result.n_val} held out)" if result.marks_only
                  else f"{len(result.albums)} albums, {result.n_marks} marks, {result.n_train} photos trained, "
                       f"{result.n_val} held out")
        print(f"model {result.model_id} (from {result.based_on}), {source}")
        for w in result.warnings:
            print(f"  note: {w}")
        print(f"  before: {_fmt(result.before, result.marks_only)}")
        print(f"  after:  {_fmt(result.after, result.marks_only)}")
        print(f"  {closing}")
        if activated:
            print(f"  active model is now {result.model_id}")
        elif note:
            print(f"  {note}")
        else:
            print(f"  kept inactive (use: photosim models use {result.model_id})")
    return 0
