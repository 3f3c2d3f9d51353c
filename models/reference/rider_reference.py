#!/usr/bin/env python3
"""Reference motorcyclist detections: the project's rider detector (models/rider_detector) through the
onnxruntime Python package, with the recipe's pre- and post-processing (models/rider_detector/train.py
`detect`): the frame shrunk to 512x288 with cv2 INTER_AREA (stretched, no padding), BGR / 255; score =
objectness^0.6 x class^0.4; greedy NMS 0.45; boxes scaled back to the frame and clipped to it.

Images: every vn_scenes photo, and the first frame of each vn_riders validation clip (never trained on).
The Rust detector is tested against the JSON this writes (tests/fixtures/rider_reference.json).
Regenerate:  .local/venv/bin/python models/reference/rider_reference.py ../shared > tests/fixtures/rider_reference.json
"""
import hashlib
import json
import pathlib
import sys

import cv2
import numpy as np
import onnxruntime as ort

from boxes import iou

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODEL = ROOT / "models/rider_detector/rider_detector.onnx"
W, H = 512, 288
SCORE_THR = 0.5
NMS_THR = 0.45


def detect(session, img):
    h0, w0 = img.shape[:2]
    pic = cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)
    rows = session.run(None, {"input": pic.transpose(2, 0, 1)[None].astype(np.float32) / 255.0})[0][0]
    score = rows[:, 4].clip(0) ** 0.6 * rows[:, 5].clip(0) ** 0.4
    cands = []
    for (cx, cy, bw, bh, _, _), s in zip(rows, score):
        if s >= SCORE_THR:
            box = [float((cx - bw / 2) * w0 / W), float((cy - bh / 2) * h0 / H),
                   float((cx + bw / 2) * w0 / W), float((cy + bh / 2) * h0 / H)]
            cands.append((float(s), box))
    cands.sort(key=lambda c: -c[0])
    kept = []
    for c in cands:
        if all(iou(c[1], k[1]) <= NMS_THR for k in kept):
            kept.append(c)
    return [{"score": s, "box": [min(max(b[0], 0), w0), min(max(b[1], 0), h0), min(max(b[2], 0), w0),
                                 min(max(b[3], 0), h0)]} for s, b in kept]


def main():
    shared = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(MODEL), opts)
    names = [f"vn_scenes/{p.name}" for p in sorted((shared / "data/vn_scenes").iterdir())]
    riders = shared / "data/vn_riders"
    clips = {line.strip() for line in (ROOT / "models/plate_detector/val_clips.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    first = {}
    for line in (riders / "clips.tsv").read_text().splitlines():
        frame, _, clip = line.partition("\t")
        if clip in clips and (riders / "images" / f"{frame}.jpg").is_file():
            first.setdefault(clip, frame)
    names += [f"vn_riders/images/{frame}.jpg" for frame in sorted(first.values())]
    result = {}
    for name in names:
        img = cv2.imread(str(shared / "data" / name), cv2.IMREAD_COLOR)
        if img is not None:
            result[name] = detect(session, img)
    json.dump({"model_sha256": hashlib.sha256(MODEL.read_bytes()).hexdigest(), "score_threshold": SCORE_THR,
               "nms_iou": NMS_THR, "images": result}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
