#!/usr/bin/env python3
"""Reference vehicle detections: YOLOX-Nano through the onnxruntime Python package, with the pre- and
post-processing written the way the YOLOX authors' demo code does it (cv2 INTER_LINEAR letterbox top-left with
pad 114, BGR 0..255; grid/stride decode; argmax class; class-agnostic NMS), restricted to vehicle classes
before NMS as the agent does.

With `--fit`, the input is fitted to the picture (416 on the long side, the other side the next multiple of 32:
416x256 for 16:9) and the model is the derived one with a named input size (scripts/setup makes it).

The Rust detector is tested against the JSON this writes (tests/fixtures/yolox_reference.json, yolox_fit_reference.json).
Regenerate:  .local/venv/bin/pip install opencv-python-headless numpy
             .local/venv/bin/python models/reference/yolox_reference.py ../shared > tests/fixtures/yolox_reference.json
             .local/venv/bin/python models/reference/yolox_reference.py ../shared --fit > tests/fixtures/yolox_fit_reference.json
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


def fit_input(w, h, long_side=SIZE, stride=32):
    """(width, height) of the fitted input: the long side, the other the next multiple of `stride`."""
    align = lambda v: max(1, -(-v // stride)) * stride
    if w >= h:
        return long_side, min(align(max(1, int(h * long_side / w))), long_side)
    return min(align(max(1, int(w * long_side / h))), long_side), long_side


def preprocess(img, size=(SIZE, SIZE)):
    in_w, in_h = size
    padded = np.full((in_h, in_w, 3), 114, dtype=np.uint8)
    r = min(in_h / img.shape[0], in_w / img.shape[1])
    resized = cv2.resize(img, (int(img.shape[1] * r), int(img.shape[0] * r)), interpolation=cv2.INTER_LINEAR)
    padded[: resized.shape[0], : resized.shape[1]] = resized
    return padded.transpose(2, 0, 1)[None].astype(np.float32), r


def decode(out, size=(SIZE, SIZE)):
    grids, strides = [], []
    for s in STRIDES:
        nx, ny = size[0] // s, size[1] // s
        xv, yv = np.meshgrid(np.arange(nx), np.arange(ny))
        grids.append(np.stack((xv, yv), 2).reshape(-1, 2))
        strides.append(np.full((nx * ny, 1), s))
    grids, strides = np.concatenate(grids), np.concatenate(strides)
    out = out.copy()
    out[:, :2] = (out[:, :2] + grids) * strides
    out[:, 2:4] = np.exp(out[:, 2:4]) * strides
    return out


def detect(session, img, fit=False, classes=VEHICLES):
    """The detections of `classes` (COCO id -> name; the vehicles unless told), class-agnostic NMS among them."""
    size = fit_input(img.shape[1], img.shape[0]) if fit else (SIZE, SIZE)
    tensor, r = preprocess(img, size)
    out = decode(session.run(None, {"images": tensor})[0][0], size)
    cls = out[:, 5:].argmax(1)
    score = out[:, 4] * out[np.arange(len(cls)), 5 + cls]
    cands = []
    for i in np.where(score >= SCORE_THR)[0]:
        if int(cls[i]) not in classes:
            continue
        cx, cy, w, h = out[i, :4]
        box = [float(v) for v in ((cx - w / 2) / r, (cy - h / 2) / r, (cx + w / 2) / r, (cy + h / 2) / r)]
        cands.append((float(score[i]), classes[int(cls[i])], box))
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
    args = [a for a in sys.argv[1:] if a != "--fit"]
    fit = "--fit" in sys.argv[1:]
    shared = pathlib.Path(args[0] if args else "../shared")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    if fit:
        model = pathlib.Path(__file__).resolve().parents[2] / ".local/models/vehicle/yolox_nano_coco_dyn.onnx"
        sha = "7aed9b01374ef0f35c1f347c4c89f3804e5b300125ede1d2cc4e83d0843e6f1f"
    else:
        model = shared / "models/vehicle/yolox_nano_coco_416.onnx"
        sha = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"
    session = ort.InferenceSession(str(model), opts)
    result = {}
    for path in sorted((shared / "data/vn_scenes").iterdir()):
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        result[f"vn_scenes/{path.name}"] = detect(session, img, fit)
    json.dump({"model_sha256": sha, "score_threshold": SCORE_THR, "nms_iou": NMS_THR, "images": result},
              sys.stdout, indent=1)


if __name__ == "__main__":
    main()
