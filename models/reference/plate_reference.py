#!/usr/bin/env python3
"""Reference plate detection and plate reading for the project's own models: the onnxruntime Python package
with the pre- and post-processing of the training recipes (models/plate_detector/train.py,
models/plate_reader/train.py), OpenCV for decoding and resizing, so the Rust code can be checked against it.

- Detector: vehicle crops (each motorcyclist box of the first vn_riders validation frames, grown by 10% on each
  side as the pipeline cuts a vehicle, rounded to whole pixels), cv2 INTER_LINEAR letterbox top-left into
  256x256, pad 114, RGB / 255; score = objectness x best layout score; greedy NMS 0.5.
- Reader: every 40th vn_plates crop; a square plate (width/height < 2.6) is cut into a top band (upper 55%) and
  a bottom band (lower 55%), each band resized with cv2 INTER_LINEAR to the model's input height keeping its
  aspect, side by side with the model's `row_gap` metadata (zero columns, none if absent) between them
  (squeezed to the input's width if wider), BGR, (v/255 - 0.5)/0.5, zero padded; greedy CTC.
  The input size is the one the model declares (32 x 160 for the shipped reader), as the agent takes it.

The Rust tests compare against the JSON this writes (tests/fixtures/plate_reference.json).
Regenerate:  .local/venv/bin/python models/reference/plate_reference.py ../shared > tests/fixtures/plate_reference.json
"""
import json
import pathlib
import sys

import cv2
import numpy as np
import onnxruntime as ort

from boxes import iou

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "common"))
from plate_input import compose  # noqa: E402  (the recipe's own input, shared with training)

ROOT = pathlib.Path(__file__).resolve().parents[2]
DET_SIZE = 256
DET_PAD = 114
DET_THR = 0.5
DET_NMS = 0.5
ALPHABET = "0123456789ABCDEFGHKLMNPRSTUVXYZ"
TWO_ROW_ASPECT_BELOW = 2.6
CROPS = 24


def detect(session, rgb_crop):
    h, w = rgb_crop.shape[:2]
    r = min(DET_SIZE / h, DET_SIZE / w)
    nw, nh = max(1, int(w * r)), max(1, int(h * r))
    canvas = np.full((DET_SIZE, DET_SIZE, 3), DET_PAD, np.uint8)
    canvas[:nh, :nw] = cv2.resize(rgb_crop, (nw, nh), interpolation=cv2.INTER_LINEAR)
    x = canvas.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    out = session.run(None, {"input": x})[0][0]
    cands = []
    for row in out:
        cls = 0 if row[13] >= row[14] else 1
        score = float(row[4] * row[13 + cls])
        if row[4] < DET_THR or score < DET_THR:
            continue
        cx, cy, bw, bh = row[:4]
        box = [float((cx - bw / 2) / r), float((cy - bh / 2) / r), float((cx + bw / 2) / r), float((cy + bh / 2) / r)]
        corners = [[float(row[5 + 2 * i] / r), float(row[6 + 2 * i] / r)] for i in range(4)]
        cands.append({"score": score, "box": box, "corners": corners,
                      "layout": "one_line" if cls == 0 else "two_line"})
    cands.sort(key=lambda c: -c["score"])
    kept = []
    for c in cands:
        if all(iou(c["box"], k["box"]) <= DET_NMS for k in kept):
            kept.append(c)
    return kept


def read(session, bgr, two_rows):
    _, _, rec_h, rec_w = session.get_inputs()[0].shape
    gap = int(session.get_modelmeta().custom_metadata_map.get("row_gap", "0"))
    x, top_width = compose(bgr, two_rows, rec_h, rec_w, gap)
    probs = session.run(None, {"x": x[None]})[0][0]
    steps = probs.shape[0]
    boundary = (top_width + gap / 2) * steps / rec_w
    rows, confs, prev = [""] * (2 if two_rows else 1), [], 0
    for t in range(steps):
        best = int(np.argmax(probs[t]))
        if best != 0 and best == prev:
            confs[-1] = max(confs[-1], float(probs[t, best]))
        elif best != 0:
            rows[1 if two_rows and t + 0.5 >= boundary else 0] += ALPHABET[best - 1]
            confs.append(float(probs[t, best]))
        prev = best
    return {"rows": rows, "confidence": sum(confs) / len(confs) if confs else 0.0}


def vehicle_crops(shared):
    """(image path relative to data/, [x1, y1, x2, y2]) for the motorcyclists of validation frames."""
    lines = (ROOT / "models/plate_detector/val_clips.txt").read_text().splitlines()
    val = {l.strip() for l in lines if l.strip() and not l.startswith("#")}
    frames = [l.split("\t") for l in (shared / "data/vn_riders/clips.tsv").read_text().splitlines()[1:]]
    out = []
    for frame, clip in sorted(frames):
        if clip not in val:
            continue
        for line in (shared / "data/vn_riders/labels" / f"{frame}.txt").read_text().splitlines():
            c, cx, cy, w, h = line.split()
            if c != "2":
                continue
            cx, cy, w, h = float(cx) * 1280, float(cy) * 720, float(w) * 1280, float(h) * 720
            x1, y1 = max(0, int(cx - w / 2 - 0.1 * w)), max(0, int(cy - h / 2 - 0.1 * h))
            x2, y2 = min(1280, int(cx + w / 2 + 0.1 * w)), min(720, int(cy + h / 2 + 0.1 * h))
            out.append((f"vn_riders/images/{frame}.jpg", [x1, y1, x2, y2]))
        if len(out) >= CROPS:
            break
    return out[:CROPS]


def main():
    shared = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    det = ort.InferenceSession(str(ROOT / "models/plate_detector/plate_detector.onnx"), opts)
    rec = ort.InferenceSession(str(ROOT / "models/plate_reader/plate_reader.onnx"), opts)
    detections = []
    for name, (x1, y1, x2, y2) in vehicle_crops(shared):
        img = cv2.imread(str(shared / "data" / name), cv2.IMREAD_COLOR)
        crop = cv2.cvtColor(img[y1:y2, x1:x2], cv2.COLOR_BGR2RGB)
        detections.append({"image": name, "crop": [x1, y1, x2, y2], "plates": detect(det, crop)})
    reads = {}
    names = [l.split("\t")[0] for l in (shared / "data/vn_plates/gt.tsv").read_text().splitlines()[1:]]
    for name in names[::40]:
        path = shared / "data/vn_plates/images" / f"{name}.jpg"
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        h, w = img.shape[:2]
        reads[f"vn_plates/images/{name}.jpg"] = read(rec, img, w / h < TWO_ROW_ASPECT_BELOW)
    json.dump({"detector_threshold": DET_THR, "detections": detections, "reads": reads}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
