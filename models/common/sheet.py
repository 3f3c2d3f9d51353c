"""Contact sheets: many small pictures on one PNG, for checking labels and model output by eye."""
import cv2
import numpy as np


def captioned(img, size, lines, colours=((0, 0, 200), (200, 0, 0))):
    """`img` resized to `size` (w, h) over a white band with one caption line each (BGR colours in turn)."""
    w, h = size
    tile = np.vstack([cv2.resize(img, (w, h)), np.full((4 + 14 * len(lines), w, 3), 255, np.uint8)])
    for i, line in enumerate(lines):
        cv2.putText(tile, line, (2, h + 13 + 14 * i), 0, 0.38, colours[i % len(colours)], 1)
    return tile


def write(path, tiles, per_row, fill=255):
    """The tiles (all one shape) in rows of `per_row`, the last row padded with `fill`."""
    tiles = list(tiles)
    while len(tiles) % per_row:
        tiles.append(np.full_like(tiles[0], fill))
    cv2.imwrite(str(path), np.vstack([np.hstack(tiles[i:i + per_row]) for i in range(0, len(tiles), per_row)]))
