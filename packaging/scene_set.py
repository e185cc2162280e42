"""Build-time only: a development set of "the same place, another shot" from high-resolution photos.

Each source photo becomes one group of ``shots`` photos, as a person standing at one place
takes them: windows of 30-65% of the side (most overlap, some only share the place), at different positions and aspect
ratios (4:3, 3:2, 16:9, portrait), with a small change of camera angle (perspective), of
exposure and colour, each saved as a JPEG of 1024 px on the long side. Photos of one group
are "similar", photos of different groups are not.

Sources are found under ``--photos`` (e.g. the Debian wallpaper packages: gnome-backgrounds,
plasma-workspace-wallpapers, mate-backgrounds, ukui-wallpapers, each under its own licence;
credit them where figures on them appear). One design ships in many resolutions and as light
and dark variants: :func:`source_groups` keeps one file per design (the largest), so that no
two groups show the same picture.

The groups are split once, by a fixed seed, into ``train`` / ``val`` / ``test`` thirds:
the encoder's whitening learns from ``train``, its configuration is chosen on ``val``, and
only ``test`` is reported.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path

from PIL import Image, ImageEnhance

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from photosim import edits  # noqa: E402

EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp"}
MIN_SIDE = 1000  # smaller files are previews, icons or phone-portrait variants
SPLITS = ("train", "val", "test")


def design_of(path: Path) -> str:
    """The design a wallpaper file shows: KDE's ``wallpapers/NAME/contents/...`` is NAME;
    elsewhere the file stem without a resolution or light/dark suffix."""
    parts = path.parts
    if "contents" in parts:
        return parts[parts.index("contents") - 1]
    stem = re.sub(r"[_-](\d+x\d+|d|l|dark|light|Dark|Light)$", "", path.stem)
    return re.sub(r"-(Cold|Dark|Warm|Radioactive)-", "-", stem)  # Ubuntu MATE's colour variants


def source_groups(photos: Path) -> dict[str, Path]:
    """One file per design (the largest in pixels, then by path), designs sorted by name."""
    best: dict[str, tuple[int, str, Path]] = {}
    for p in sorted(photos.rglob("*")):
        if p.suffix.lower() not in EXTENSIONS or not p.is_file() or "screenshot" in p.name or "images_dark" in p.parts:
            continue
        try:
            with Image.open(p) as im:
                w, h = im.size
        except OSError:
            continue
        if min(w, h) < MIN_SIDE:
            continue
        key = design_of(p)
        cand = (w * h, str(p), p)
        if key not in best or cand[:2] > best[key][:2]:
            best[key] = cand
    return {k: best[k][2] for k in sorted(best)}


def split_groups(names: list[str], seed: int = 0) -> dict[str, str]:
    """Design -> "train" / "val" / "test", in thirds drawn with ``seed``."""
    order = sorted(names)
    random.Random(seed).shuffle(order)
    n = len(order)
    return {name: SPLITS[min(2, i * 3 // max(1, n))] for i, name in enumerate(order)}


def shot(img: Image.Image, rng: random.Random, long_side: int = 1024) -> Image.Image:
    """One "other shot" of the place in ``img``."""
    w, h = img.size
    aspect = rng.choice([4 / 3, 3 / 2, 16 / 9, 3 / 4, 1.0])
    side = rng.uniform(0.3, 0.65)
    cw = side * w
    ch = cw / aspect
    if ch > h * 0.95:  # a tall window in a wide photo: fit the height
        ch = h * rng.uniform(0.6, 0.95)
        cw = min(w, ch * aspect)
    # centres near the middle third, so the shots of one place overlap
    cx = w / 2 + rng.uniform(-0.25, 0.25) * w
    cy = h / 2 + rng.uniform(-0.25, 0.25) * h
    x0 = int(min(max(0, cx - cw / 2), w - cw))
    y0 = int(min(max(0, cy - ch / 2), h - ch))
    out = img.crop((x0, y0, x0 + int(cw), y0 + int(ch)))
    out = edits.perspective(out, rng, strength=0.1)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.7, 1.3))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.8, 1.2))
    out = ImageEnhance.Color(out).enhance(rng.uniform(0.7, 1.3))
    s = long_side / max(out.size)
    return out.resize((max(1, round(out.size[0] * s)), max(1, round(out.size[1] * s))), Image.Resampling.LANCZOS)


def build(photos: Path, out: Path, shots: int = 5, seed: int = 0) -> dict[str, list[Path]]:
    """Write ``out/SPLIT/DESIGN/shot-K.jpg``; returns the files by split (cached: existing files stay)."""
    sources = source_groups(photos)
    splits = split_groups(list(sources), seed)
    written: dict[str, list[Path]] = {s: [] for s in SPLITS}
    for name, path in sources.items():
        folder = out / splits[name] / name
        targets = [folder / f"shot-{k}.jpg" for k in range(shots)]
        if not all(t.is_file() for t in targets):
            folder.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as im:
                im.draft("RGB", (2400, 2400))
                img = im.convert("RGB")
            img.thumbnail((2400, 2400), Image.Resampling.LANCZOS)
            rng = random.Random(f"{seed}:{name}")
            for t in targets:
                shot(img, rng).save(t, quality=90)
        written[splits[name]] += targets
    return written


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, required=True, help="folder searched for high-resolution photos")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--shots", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    got = build(a.photos, a.out, a.shots, a.seed)
    for split, files in got.items():
        print(f"{split}: {len(files) // max(1, a.shots)} places, {len(files)} photos")


if __name__ == "__main__":
    main()
