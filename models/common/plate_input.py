"""The plate reader's input, as the agent's `PlateReader` builds it in Rust: a two-row plate is cut into its top
55% and bottom 55%, each band resized (cv2 INTER_LINEAR) to the input's height keeping its aspect, the bands
side by side (squeezed if wider than the input), BGR, (v/255 - 0.5)/0.5, zero padded on the right."""
import math

import cv2
import numpy as np

TOP_END, BOTTOM_START = 0.55, 0.45


def compose(bgr, two_rows, height=32, width=160, gap=0):
    """(float32 [3, height, width], width of the top band). `gap`: zero columns between the two bands (the
    squeeze keeps room for it), so that the bottom row's first character does not touch the top row's last."""
    h, w = bgr.shape[:2]
    if two_rows:
        bands = [(0, min(h, max(1, round(h * TOP_END)))), (min(h - 1, round(h * BOTTOM_START)), h)]
    else:
        bands = [(0, h)]
    natural = [math.ceil(height * w / (y1 - y0)) for y0, y1 in bands]
    gap = gap if len(bands) == 2 else 0
    squeeze = (width - gap) / sum(natural) if sum(natural) > width - gap else 1.0
    widths = [max(1, int(n * squeeze)) for n in natural]
    x = np.zeros((height, width, 3), np.float32)
    at = 0
    for (y0, y1), bw in zip(bands, widths):
        band = cv2.resize(bgr[y0:y1], (bw, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        x[:, at:at + bw] = band / 127.5 - 1.0
        at += bw + gap
    return x.transpose(2, 0, 1), widths[0]
