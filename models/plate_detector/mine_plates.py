#!/usr/bin/env python3
"""Finds the plates the vn_riders labels leave out in the TRAINING frames, so the recipe stops teaching them as
background. The upstream labels are a helmet project's: they box motorbike plates and leave the plates of the
cars parked at the gates unlabelled (hundreds of them in the training clips: `30F-532.62`, `30F-435.41`, ...).
The shipped detector learnt those as background, which is why it scores real car front plates 0.40-0.50.

For every vehicle the agent's detectors find in a training frame (the recipe's cached boxes), the shipped
detector looks at the crop (box + 10%) with a low threshold; a detection that overlaps no labelled plate is a
candidate. The shipped reader reads it (plate box + 6% margin):
- read as a valid Vietnamese plate -> `add_plate` (taught as a plate);
- at least MIN_CHARS characters read, but no valid plate -> `ignore` (neither plate nor background: text-like,
  most often a real plate too small, blurred or cut to read; the first run ignored every candidate and the
  model learnt to box car wheels and windscreens);
- fewer characters -> left out of the file: background, as the upstream labels have it.
Every `add_plate` row is drawn on `--sheet` for a person to check by eye (all 143 of the committed file were
real plates). A run rewrites the file: rows found wrong must be turned into `ignore` by hand again, with the
reason. Validation frames are never touched (their corrections are checked by eye
in `../labels/vn_riders.corrections.tsv`).

    .local/train-venv/bin/python models/plate_detector/mine_plates.py --shared ../shared \
        --out models/labels/vn_riders.train_plates.tsv --sheet .local/train/mined.png
"""
import argparse
import pathlib
import sys

import cv2
import onnxruntime as ort

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
sys.path.insert(0, str(HERE.parent / "reference"))
sys.path.insert(0, str(HERE))
from boxes import iou as box_iou  # noqa: E402
import plate_reference  # noqa: E402
import sheet  # noqa: E402
import vnplate  # noqa: E402
from train import Frames, crop_sample, detect, nms, vehicle_region  # noqa: E402

THRESHOLD = 0.3
MIN_CHARS = 3


def candidates(session, img, plates, boxes):
    """Detections (frame pixels) in the crops of `boxes` that overlap no labelled plate: [(score, box, two)]."""
    samples = [(r, crop_sample(None, img, [], r)) for r in map(vehicle_region, boxes)]
    samples = [(r, s[0]) for r, s in samples if s is not None]
    if not samples:
        return []
    found = []
    for (region, _), dets in zip(samples, detect(session, [c for _, c in samples], THRESHOLD)):
        ox, oy = max(0, int(round(region[0]))), max(0, int(round(region[1])))
        for score, box, _, two in dets:
            found.append((score, [box[0] + ox, box[1] + oy, box[2] + ox, box[3] + oy], two))
    return [d for d in nms(found, 0.3) if all(box_iou(d[1], p[:4]) < 0.1 for p in plates)]


def read_plate(reader, img, box, two):
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * 0.06, (y2 - y1) * 0.06
    H, W = img.shape[:2]
    a, b = max(0, int(x1 - mx)), max(0, int(y1 - my))
    c, d = min(W, int(x2 + mx) + 1), min(H, int(y2 + my) + 1)
    if c - a < 8 or d - b < 4:
        return ""
    got = plate_reference.read(reader, img[b:d, a:c], two >= 0.5)
    return "".join(got["rows"])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--work", default=".local/train/plate_detector")
    ap.add_argument("--detector", default=str(HERE / "plate_detector.onnx"))
    ap.add_argument("--reader", default=str(HERE.parent / "plate_reader/plate_reader.onnx"))
    ap.add_argument("--out", default=str(HERE.parent / "labels/vn_riders.train_plates.tsv"))
    ap.add_argument("--sheet", help="PNG of every add_plate row, for checking by eye")
    args = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    det = ort.InferenceSession(args.detector, opts)
    reader = ort.InferenceSession(args.reader, opts)
    frames = Frames(args.shared, "train", args.work, corrections=True)
    rows, tiles = [], []
    for stem, img, plates, riders, found, cars in frames.items:
        for score, box, two in candidates(det, img, plates, found):
            text = read_plate(reader, img, box, two)
            valid = vnplate.is_valid(text)
            if not valid and len(text) < MIN_CHARS:
                continue
            action = "add_plate" if valid else "ignore"
            why = (f"plate in view, not labelled upstream: detector {score:.2f}, read {text} (checked by eye)"
                   if valid else f"detector {score:.2f}, read '{text}' (no valid plate): not taught either way")
            rows.append([stem, action, *(f"{v:.0f}" for v in box), why])
            if valid and args.sheet:
                x1, y1, x2, y2 = [int(v) for v in box]
                w, h = x2 - x1, y2 - y1
                left, top = max(0, x1 - w), max(0, y1 - 2 * h)
                ctx = img[top:y2 + 2 * h, left:x2 + w].copy()
                cv2.rectangle(ctx, (x1 - left, y1 - top), (x2 - left, y2 - top), (0, 255, 0), 1)
                tiles.append(sheet.captioned(ctx, (200, 110), [f"{len(rows) + 4} {text}", stem[:24]]))
    head = ["# Plates the vn_riders labels leave out in the training frames, found by mine_plates.py (this folder's",
            "# docstring). add_plate: taught as a plate (every one checked by eye on the sheet); ignore: text-like,",
            "# neither plate nor background. Read by train.py --mined only; validation frames are never in this file.",
            "frame\taction\tx1\ty1\tx2\ty2\treason"]
    pathlib.Path(args.out).write_text("\n".join(head + ["\t".join(r) for r in rows]) + "\n")
    adds = sum(r[1] == "add_plate" for r in rows)
    print(f"frames={len(frames.items)} candidates={len(rows)} add_plate={adds} ignore={len(rows) - adds}")
    if args.sheet and tiles:
        sheet.write(args.sheet, tiles, 8)


if __name__ == "__main__":
    main()
