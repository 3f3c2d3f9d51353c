"""Character mixes: new real-looking plates made of the training crops' own characters (`train.py --char-mix`).

Why: v2 reads its training plates almost perfectly and other vehicles' plates less well (model card): it learns
the training plates' strings. Band mixes (`train.py --band-mix`) swap whole rows; character mixes swap single
characters, so that a glyph is read by its shape, not by the plate it sits in.

How: each training crop is composed as the reader sees it (both rows side by side, 32 px high). Its characters
are found as the tall blobs of ink in each band; a crop is used only where there are exactly as many as its label
has characters in that row (the reader's CTC peaks were tried first: they sit off the characters' centres). A mix
takes one crop's strip and replaces one to three of its characters by characters of the same kind (digit for
digit, letter for letter) cut from other crops, each resized to the columns it replaces and matched to their mean
and spread per channel; the label changes with them. The strip is stored at twice the input's height and trained
as a one-row picture, which composes back to the same input (so it cannot be combined with `--row-gap`).
"""
import sys
import pathlib

import cv2
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import plate_input  # noqa: E402
import vnplate  # noqa: E402

SCALE = 2  # strips are stored this many times the input's size


def _strip(bgr, two_rows, height):
    """The composed input as a BGR picture (content columns only) and the top band's width, in input pixels."""
    x, top = plate_input.compose(bgr, two_rows, height=height)
    img = ((x.transpose(1, 2, 0) + 1.0) * 127.5).round().clip(0, 255).astype(np.uint8)
    used = np.nonzero(np.abs(x).sum(axis=(0, 1)) > 0)[0]
    width = int(used[-1]) + 1 if len(used) else 0
    return img[:, :width], top


def _glyphs(band, n):
    """[(x0, x1)] of the `n` characters of one composed band (grey), left to right, or None: the tall connected
    components of the ink (the minority side of an Otsu threshold), when there are exactly `n` of them."""
    h = band.shape[0]
    _, ink = cv2.threshold(band, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if (ink > 0).mean() > 0.5:
        ink = 255 - ink
    count, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=4)
    tall = sorted((x, y, x + cw, y + ch) for x, y, cw, ch, area in stats[1:count]
                  if 0.4 * h <= ch <= 0.98 * h and cw <= 0.45 * h + 2 and area >= 0.04 * h * h)
    if len(tall) != n:
        return None
    # The characters of a row share their height and top: a piece of the plate's frame or a blur that happens to
    # make the count is told apart by that.
    tops, heights = np.array([t[1] for t in tall]), np.array([t[3] - t[1] for t in tall])
    if np.abs(heights - np.median(heights)).max() > 0.12 * np.median(heights) \
            or np.abs(tops - np.median(tops)).max() > 0.1 * h:
        return None
    if any(a[2] > b[0] for a, b in zip(tall, tall[1:])):
        return None
    return [(t[0], t[2]) for t in tall]


def align(crops, height=32):
    """[(strip at SCALE, text, [(x0, x1, char), ...])] for the crops (BGR, label) whose every character is found
    as one tall blob of ink in its band (see `_glyphs`); columns in the stored strip's pixels, each character's
    span reaching halfway to its neighbours."""
    out = []
    for bgr, text in crops:
        two = "/" in text
        strip, top = _strip(bgr, two, height)
        width = strip.shape[1]
        if width < 8:
            continue
        big = cv2.resize(strip, (width * SCALE, height * SCALE), interpolation=cv2.INTER_LINEAR)
        grey = cv2.cvtColor(big, cv2.COLOR_BGR2GRAY)
        chars = vnplate.compact(text)
        rows = [vnplate.compact(r) for r in text.split("/")] if two else [chars]
        bands = [(0, top * SCALE), (top * SCALE, width * SCALE)] if two else [(0, width * SCALE)]
        spans = []
        for (lo, hi), row in zip(bands, rows):
            found = _glyphs(grey[:, lo:hi], len(row))
            if found is None:
                break
            for k, ((x0, x1), ch) in enumerate(zip(found, row)):
                left = lo if k == 0 else lo + (found[k - 1][1] + x0) // 2
                right = hi if k == len(row) - 1 else lo + (x1 + found[k + 1][0]) // 2
                spans.append((left, right, ch))
        else:
            out.append((big, text, spans))
    return out


def _kind(ch):
    return "digit" if ch.isdigit() else "letter"


def index(aligned):
    """kind -> [(strip index, span index)], for drawing donors."""
    out = {"digit": [], "letter": []}
    for i, (_, _, spans) in enumerate(aligned):
        for j, (_, _, ch) in enumerate(spans):
            out[_kind(ch)].append((i, j))
    return out


def mix(rng, aligned, donors):
    """(picture, label): one strip with 1-3 of its characters replaced by other crops' characters of their kind."""
    strip, text, spans = aligned[rng.randrange(len(aligned))]
    img = strip.astype(np.float32)
    chars = list(vnplate.compact(text))
    for j in rng.sample(range(len(spans)), min(len(spans), rng.randint(1, 3))):
        x0, x1, ch = spans[j]
        pool = donors[_kind(ch)]
        di, dj = pool[rng.randrange(len(pool))]
        d_strip, _, d_spans = aligned[di]
        d0, d1, d_ch = d_spans[dj]
        patch = cv2.resize(d_strip[:, d0:d1], (x1 - x0, img.shape[0]), interpolation=cv2.INTER_LINEAR)
        patch = patch.astype(np.float32)
        here = img[:, x0:x1]
        # The donor takes this plate's light and contrast, channel by channel.
        patch = (patch - patch.mean((0, 1))) / (patch.std((0, 1)) + 1e-3) * here.std((0, 1)) + here.mean((0, 1))
        # Two columns of cross-fade at each seam, so that no hard edge marks a mix.
        alpha = np.ones(x1 - x0, np.float32)
        fade = min(2, (x1 - x0) // 4)
        for k in range(fade):
            alpha[k] = alpha[-1 - k] = (k + 1) / (fade + 1)
        img[:, x0:x1] = here * (1 - alpha[None, :, None]) + patch * alpha[None, :, None]
        chars[j] = d_ch
    out = "".join(chars)
    two = "/" in text
    n_top = len(vnplate.compact(text.split("/")[0])) if two else len(out)
    label = out[:n_top] + "/" + out[n_top:] if two else out
    return np.clip(img, 0, 255).astype(np.uint8), label
