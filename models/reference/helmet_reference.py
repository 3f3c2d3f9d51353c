#!/usr/bin/env python3
"""Reference helmet scores: the project's helmet classifier (models/helmet_classifier) through the onnxruntime
Python package, with the recipe's own head region (models/helmet_classifier/train.py `head_region`: the box's
full width +5% each side, from 10% of its height above its top to 30% below, cv2 INTER_LINEAR to 96x96, RGB / 255).

Boxes: every labelled motorcyclist box (class 2) of the first two frames of each vn_riders validation clip.
The Rust classifier is tested against the JSON this writes (tests/fixtures/helmet_reference.json).
Regenerate:  .local/train-venv/bin/python models/reference/helmet_reference.py ../shared > tests/fixtures/helmet_reference.json
"""
import hashlib
import json
import pathlib
import sys

import cv2
import numpy as np
import onnxruntime as ort

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "models/helmet_classifier"))
sys.path.insert(0, str(ROOT / "models/common"))
import datasets  # noqa: E402
from train import head_region  # noqa: E402

MODEL = ROOT / "models/helmet_classifier/helmet_classifier.onnx"


def main():
    shared = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared")
    session = ort.InferenceSession(str(MODEL))
    clips = {line.strip() for line in (ROOT / "models/plate_detector/val_clips.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    per_clip = {}
    for line in (shared / "data/vn_riders/clips.tsv").read_text().splitlines()[1:]:
        frame, _, clip = line.partition("\t")
        if clip in clips and (shared / "data/vn_riders/images" / f"{frame}.jpg").is_file():
            per_clip.setdefault(clip, []).append(frame)
    out = []
    for clip in sorted(per_clip):
        for frame in sorted(per_clip[clip])[:2]:
            img = cv2.cvtColor(cv2.imread(str(shared / "data/vn_riders/images" / f"{frame}.jpg")), cv2.COLOR_BGR2RGB)
            for c, *box in datasets.rider_labels(shared, frame):
                if c != 2:
                    continue
                x = head_region(img, box).transpose(2, 0, 1)[None].astype(np.float32) / 255.0
                p = float(session.run(None, {"input": x})[0][0][0])
                out.append({"image": f"vn_riders/images/{frame}.jpg", "box": [float(v) for v in box], "p_bare": p})
    json.dump({"model_sha256": hashlib.sha256(MODEL.read_bytes()).hexdigest(), "riders": out}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
