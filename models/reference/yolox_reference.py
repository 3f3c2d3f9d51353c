#!/usr/bin/env python3
"""Reference vehicle detections: YOLOX-Nano through the onnxruntime Python package, with the pre- and
post-processing written the way the YOLOX authors' demo code does it (cv2 INTER_LINEAR letterbox top-left with
pad 114, BGR 0..255; grid/stride decode; argmax class; class-agnostic NMS), restricted to vehicle classes
before NMS as the agent does.

The Rust detector is tested against the JSON this writes (tests/fixtures/yolox_reference.json).
Regenerate:  .local/venv/bin/pip install opencv-python-headless numpy
             .local/venv/bin/python models/reference/yolox_reference.py ../shared > tests/fixtures/yolox_reference.json
"""
import json
import pathlib
import sys

import cv2
import numpy as np
import onnxruntime as ort

from boxes import iou

SIZE = 416
STRIDES = (8, 16, 32)
VEHICLES = {1: "bicycle", 2: "car", 3: "motorbike", 5: "bus", 7: "truck"}
SCORE_THR = 0.3
NMS_THR = 0.45


def preprocess(img):
    padded = np.full((SIZE, SIZE, 3), 114, dtype=np.uint8)
    r = min(SIZE / img.shape[0], SIZE / img.shape[1])
    resized = cv2.resize(img, (int(img.shape[1] * r), int(img.shape[0] * r)), interpolation=cv2.INTER_LINEAR)
    padded[: resized.shape[0], : resized.shape[1]] = resized
    return padded.transpose(2, 0, 1)[None].astype(np.float32), r


def decode(out):
    grids, strides = [], []
    for s in STRIDES:
        n = SIZE // s
        xv, yv = np.meshgrid(np.arange(n), np.arange(n))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((n * n, 1), s))
    grids, strides = np.concatenate(grids), np.concatenate(strides)
    out = out.copy()
    out[:, :2] = (out[:, :2] + grids) * strides
    out[:, 2:4] = np.exp(out[:, 2:4]) * strides
    return out


def detect(session, img):
    tensor, r = preprocess(img)
    out = decode(session.run(None, {"images": tensor})[0][0])
    cls = out[:, 5:].argmax(1)
    score = out[:, 4] * out[np.arange(len(cls)), 5 + cls]
    cands = []
    for i in np.where(score >= SCORE_THR)[0]:
        if int(cls[i]) not in VEHICLES:
            continue
        cx, cy, w, h = out[i, :4]
        box = [float(v) for v in ((cx - w / 2) / r, (cy - h / 2) / r, (cx + w / 2) / r, (cy + h / 2) / r)]
        cands.append((float(score[i]), VEHICLES[int(cls[i])], box))
    cands.sort(key=lambda c: -c[0])
    kept = []
    for c in cands:
        if all(iou(c[2], k[2]) <= NMS_THR for k in kept):
            kept.append(c)
    H, W = img.shape[:2]
    return [
        {"class": c, "score": s, "box": [min(max(b[0], 0), W), min(max(b[1], 0), H), min(max(b[2], 0), W), min(max(b[3], 0), H)]}
        for s, c, b in kept
    ]


def main():
    shared = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(shared / "models/vehicle/yolox_nano_coco_416.onnx"), opts)
    result = {}
    for path in sorted((shared / "data/vn_scenes").iterdir()):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        result[f"vn_scenes/{path.name}"] = detect(session, img)
    json.dump({"model_sha256": "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
               "score_threshold": SCORE_THR, "nms_iou": NMS_THR, "images": result}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
