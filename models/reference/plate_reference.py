#!/usr/bin/env python3
"""Reference plate detection and plate reading: the onnxruntime Python package with pre- and post-processing
written the way the model authors' code does it (OpenCV), so the Rust code can be checked against it.

- Detector (HyperLPR3 y5fu 320): cv2 INTER_LINEAR letterbox centred, pad 0, RGB / 255; score = obj * best class;
  greedy NMS 0.5. Run on the vn_scenes photos.
- Reader (PP-OCRv6 small rec): a square plate is cut into a top band (upper 55%) and a bottom band (lower
  55%); each band is resized with cv2 INTER_LINEAR to height 48 keeping its aspect, the bands are put side by
  side (squeezed to 320 if wider), padded to 320 with zeros after (v/255 - 0.5)/0.5 on BGR; greedy CTC over
  the Vietnamese plate alphabet only. Run on every 40th vn_plates crop.

The Rust tests compare against the JSON this writes (tests/fixtures/plate_reference.json).
Regenerate:  .local/venv/bin/pip install opencv-python-headless numpy
             .local/venv/bin/python models/reference/plate_reference.py ../shared .local/models > tests/fixtures/plate_reference.json
"""
import json
import math
import pathlib
import sys

import cv2
import numpy as np
import onnxruntime as ort

from boxes import iou

DET_SIZE = 320
DET_THR = 0.5
DET_NMS = 0.5
REC_H, REC_W = 48, 320
ALPHABET = "0123456789ABCDEFGHKLMNPRSTUVXYZ"
TWO_ROW_ASPECT_BELOW = 2.6


def detect(session, bgr):
    h, w = bgr.shape[:2]
    r = min(DET_SIZE / h, DET_SIZE / w)
    nw, nh = int(w * r), int(h * r)
    px, py = (DET_SIZE - nw) // 2, (DET_SIZE - nh) // 2
    canvas = np.zeros((DET_SIZE, DET_SIZE, 3), np.uint8)
    canvas[py:py + nh, px:px + nw] = cv2.resize(bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
    x = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    out = session.run(None, {"input": x})[0][0]
    cands = []
    for row in out:
        cls = 0 if row[13] >= row[14] else 1
        score = float(row[4] * row[13 + cls])
        if row[4] < DET_THR or score < DET_THR:
            continue
        cx, cy, bw, bh = row[:4]
        box = [float((cx - bw / 2 - px) / r), float((cy - bh / 2 - py) / r),
               float((cx + bw / 2 - px) / r), float((cy + bh / 2 - py) / r)]
        corners = [[float((row[5 + 2 * i] - px) / r), float((row[6 + 2 * i] - py) / r)] for i in range(4)]
        cands.append({"score": score, "box": box, "corners": corners,
                      "layout": "one_line" if cls == 0 else "two_line"})
    cands.sort(key=lambda c: -c["score"])
    kept = []
    for c in cands:
        if all(iou(c["box"], k["box"]) <= DET_NMS for k in kept):
            kept.append(c)
    return kept


def read(session, bgr, charset, two_rows):
    h, w = bgr.shape[:2]
    bands = [(0, h)] if not two_rows else [(0, min(h, max(1, round(h * 0.55)))), (min(h - 1, round(h * 0.45)), h)]
    natural = [math.ceil(REC_H * w / (y1 - y0)) for y0, y1 in bands]
    squeeze = REC_W / sum(natural) if sum(natural) > REC_W else 1.0
    widths = [max(1, int(n * squeeze)) for n in natural]
    x = np.zeros((REC_H, REC_W, 3), np.float32)
    at = 0
    for (y0, y1), bw in zip(bands, widths):
        band = cv2.resize(bgr[y0:y1], (bw, REC_H), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        x[:, at:at + bw] = band / 127.5 - 1.0
        at += bw
    probs = session.run(None, {"x": x.transpose(2, 0, 1)[None]})[0][0]
    allowed = [0] + [i + 1 for i, c in enumerate(charset) if c in ALPHABET]
    steps = probs.shape[0]
    boundary = widths[0] * steps / REC_W
    rows, confs, prev = [""] * len(bands), [], 0
    for t in range(steps):
        best = max(allowed, key=lambda k: probs[t, k])
        if best != 0 and best != prev:
            rows[1 if len(bands) == 2 and t + 0.5 >= boundary else 0] += charset[best - 1]
            confs.append(float(probs[t, best]))
        prev = best
    return {"rows": rows, "confidence": sum(confs) / len(confs) if confs else 0.0}


def main():
    shared = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared")
    wheel_models = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else ".local/models")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    det = ort.InferenceSession(str(shared / "models/plate_det/hyperlpr3_y5fu_320x_sim.onnx"), opts)
    rec = ort.InferenceSession(str(wheel_models / "ocr/ppocrv6_small_rec.onnx"), opts)
    charset = (wheel_models / "ocr/ppocrv6_dict.txt").read_text(encoding="utf-8").splitlines()
    detections = {}
    for path in sorted((shared / "data/vn_scenes").iterdir()):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is not None:
            detections[f"vn_scenes/{path.name}"] = detect(det, img)
    reads = {}
    names = [l.split("\t")[0] for l in (shared / "data/vn_plates/gt.tsv").read_text().splitlines()[1:]]
    for name in names[::40]:
        path = shared / "data/vn_plates/images" / f"{name}.jpg"
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        h, w = img.shape[:2]
        reads[f"vn_plates/images/{name}.jpg"] = read(rec, img, charset, w / h < TWO_ROW_ASPECT_BELOW)
    json.dump({"detector_threshold": DET_THR, "detections": detections, "reads": reads}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
