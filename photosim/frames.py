"""Flat frames around a picture: found and trimmed before a photo is embedded.

A copy with a border ("a border with text": a white or dark frame, a caption in it) shares
that frame with every other framed copy in the library, and the encoder sees the frame as
much as the picture. With 160 framed copies of 160 photos in one library (the duplicates
benchmark's "border" edit), a framed copy's nearest neighbour was another framed copy of a
different photo 10 times in 160; with the frames trimmed, never (``photosim/card.py``:
``trim_frames``; the README's "The bundled encoder" has the figures).

A side counts as a frame when, walking in from the edge:

* its outermost line is flat (nearly all of it within :data:`TOLERANCE` of one colour);
* the lines after it are mostly that colour (:data:`BAND`: a caption in the frame is allowed)
  and keep it (:data:`DRIFT`: a sky's smooth gradient is flat along each line, not inwards);
* the picture then begins sharply: the line where it does is mostly another colour
  (:data:`PICTURE`) while one of the three lines before it is still almost all frame
  (:data:`SHARP`). A flat background that gives way to an object's outline (a product shot
  on white) thins out line by line and is left alone;
* the frame is at least 1 % of the side (and two lines) and at most a quarter of it.

What is left must keep at least 40 % of the photo, and photos under 64 px are left alone.
Trimming depends only on the pixels, so an original and its resized, re-encoded or turned
copies trim alike.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: a pixel is the frame's colour when every channel is within this of it (0-255)
TOLERANCE = 24
#: share of the outermost line in the frame's colour
OUTER = 0.95
#: share of every line of the frame in its colour (text in the frame allowed)
BAND = 0.6
#: the first line of the picture has less than this share in the frame's colour
PICTURE = 0.5
#: one of the three lines before the picture has at least this share
SHARP = 0.9
#: the frame's lines keep its colour: their median within this of the outermost line's
#: (JPEG moves a dark frame's colour by up to 12 in one channel)
DRIFT = 14
#: a frame is at most this share of the side, and at least MIN_DEPTH of it
MAX_DEPTH = 0.25
MIN_DEPTH = 0.01
#: what is left keeps at least this share of the area
MIN_AREA = 0.4
#: photos whose shorter side is smaller are left alone: in a 32 px photo two flat lines of sky
#: are "a frame" (17 % of CIFAR-10's photos were trimmed, and its triplet accuracy fell 0.006)
MIN_SIDE = 64


def _depth(lines: np.ndarray) -> int:
    """How many of ``lines`` (lines × pixels × 3, uint8; the outermost first) are a frame."""
    n = len(lines)
    outer = lines[0].astype(np.int16)
    colour = np.median(outer, axis=0)
    if (np.abs(outer - colour).max(axis=1) <= TOLERANCE).mean() < OUTER:
        return 0  # most photos end here: their edge is not flat
    limit = max(1, int(n * MAX_DEPTH))
    band = lines[:limit + 1].astype(np.int16)
    share = (np.abs(band - colour).max(axis=2) <= TOLERANCE).mean(axis=1)
    inside = np.flatnonzero(share < PICTURE)
    if not len(inside):
        return 0  # flat as far as a frame may reach: not a frame (or not one we can tell)
    d = int(inside[0])
    if d < max(2, int(np.ceil(n * MIN_DEPTH))):
        return 0
    if (share[:max(1, d - 1)] < BAND).any():  # (the last line may blend frame and picture)
        return 0
    if share[max(0, d - 3):d].max() < SHARP:
        return 0
    # flat inwards too: the lines of a frame keep its colour, where a sky's smooth gradient
    # drifts away from it line by line until it leaves the tolerance all at once (the three
    # lines next to the picture may carry its blur or a resize's ringing)
    if np.abs(np.median(band[:max(1, d - 3)], axis=1) - colour).max() > DRIFT:
        return 0
    return d


def frame_box(image: Image.Image) -> tuple[int, int, int, int] | None:
    """The picture inside a flat frame as (left, top, right, bottom), or None when ``image``
    has no frame (see the module's docstring)."""
    a = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    h, w = a.shape[:2]
    if min(h, w) < MIN_SIDE:
        return None
    cols = a.transpose(1, 0, 2)
    top, bottom, left, right = _depth(a), _depth(a[::-1]), _depth(cols), _depth(cols[::-1])
    if not (top or bottom or left or right):
        return None
    box = (left, top, w - right, h - bottom)
    if (box[2] - box[0]) * (box[3] - box[1]) < MIN_AREA * w * h:
        return None
    return box


def trim_frame(image: Image.Image) -> Image.Image:
    """``image`` without its flat frame (``image`` itself when it has none)."""
    box = frame_box(image)
    return image if box is None else image.crop(box)
