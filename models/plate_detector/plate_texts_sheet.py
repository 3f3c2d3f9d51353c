#!/usr/bin/env python3
"""Contact sheets for reading the vn_riders plates' texts by eye (models/labels/vn_riders.plate_texts.tsv).

Takes the TSV that `edge-agent eval --dataset ../shared/data/vn_riders --plate-reads FILE` writes (every scored
plate with the agent's read and the text already read by eye) and draws each plate not yet labelled, numbered,
enlarged with a little of its surroundings, captioned with the agent's read as a hint only: the label is what
a person reads on the picture, `?` where the whole plate cannot be read.

    .local/train-venv/bin/python models/plate_detector/plate_texts_sheet.py --shared ../shared \
        --reads /tmp/plate_reads.tsv --out /tmp/plate_texts   # sheet_00.png ... and index.tsv

index.tsv lists number, frame and box of each tile; the labels are typed into the texts file from it.
"""
import argparse
import csv
import pathlib
import sys

import cv2
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import sheet  # noqa: E402

TILE_W, TILE_H = 300, 150
PER_ROW, PER_SHEET = 4, 24


def tile(img, box, lines):
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    # A plate-and-a-half of context: enough to see an occluder or the frame's edge, small enough to read.
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half = max(w * 1.0, h * 2.0)
    a, b = int(max(0, cx - half)), int(max(0, cy - half / 2))
    c, d = int(min(img.shape[1], cx + half)), int(min(img.shape[0], cy + half / 2))
    crop = img[b:d, a:c].copy()
    cv2.rectangle(crop, (int(x1 - a) - 1, int(y1 - b) - 1), (int(x2 - a), int(y2 - b)), (0, 200, 0), 1)
    scale = min(TILE_W / max(1, crop.shape[1]), TILE_H / max(1, crop.shape[0]))
    crop = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))),
                      interpolation=cv2.INTER_CUBIC)
    canvas = np.full((TILE_H, TILE_W, 3), 255, np.uint8)
    canvas[:crop.shape[0], :crop.shape[1]] = crop
    return sheet.captioned(canvas, (TILE_W, TILE_H), lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--reads", required=True, help="TSV written by edge-agent eval --plate-reads")
    ap.add_argument("--out", required=True, help="folder for the sheets and index.tsv")
    ap.add_argument("--all", action="store_true", help="also draw plates already labelled")
    args = ap.parse_args()
    images = pathlib.Path(args.shared) / "data" / "vn_riders" / "images"
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(args.reads, newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if args.all or not r["label"]]
    tiles, index, cache = [], [], {}
    for n, r in enumerate(rows):
        frame = r["frame"]
        if frame not in cache:
            cache.clear()
            path = next(images.glob(frame + ".*"))
            cache[frame] = cv2.imread(str(path))
        box = [float(r[k]) for k in ("x1", "y1", "x2", "y2")]
        hint = f"read {r['read']}" if r["read"] != "-" else f"raw {r['raw'] or '(not found)'}"
        tiles.append(tile(cache[frame], box, [f"#{n} {frame} w{box[2] - box[0]:.0f}", hint]))
        index.append((n, frame, *[f"{v:.1f}" for v in box], r["read"], r["label"]))
    for s in range(0, len(tiles), PER_SHEET):
        sheet.write(out / f"sheet_{s // PER_SHEET:02d}.png", tiles[s:s + PER_SHEET], PER_ROW)
    with open(out / "index.tsv", "w") as f:
        f.write("n\tframe\tx1\ty1\tx2\ty2\tread\tlabel\n")
        for row in index:
            f.write("\t".join(map(str, row)) + "\n")
    print(f"{len(tiles)} plates on {(len(tiles) + PER_SHEET - 1) // PER_SHEET} sheets in {out}")


if __name__ == "__main__":
    main()
