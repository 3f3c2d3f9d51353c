#!/usr/bin/env python3
"""Experiment, not shipped: judge each person riding on a motorbike (the head of each YOLOX-Nano person box in a
motorcyclist box) instead of the top of the motorcyclist box, as issue 23 asks ("each rider"). Trains the same
network as `train.py` on per-person head regions and compares, on the validation clips' labelled motorcyclist boxes,
the shipped model (the box's head region) with this one (the highest p_bare among the box's riders).

    .local/train-venv/bin/python models/helmet_classifier/per_person.py --shared ../shared [--seed 23]

Needs `.local/models/vehicle/yolox_nano_coco_dyn.onnx` (scripts/setup). The person boxes are cached in
`--work/people.tsv`. Labels: `../labels/vn_riders.person_heads.tsv` says how they are made and holds the
eye-checked changes. A person rides in a box as `te_infer::rides` says; `--seated F` also asks that its box
reach down to F of the motorcyclist box's height and be at least F of it tall (a rider sits on the bike: this
drops faces on wall murals, signs and pedestrians' heads that lie in the box's upper part). Figures in the model
card (2026-12-06, per-person).
"""
import argparse
import pathlib
import random
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "reference"))
import train as ht  # noqa: E402
import yolox_reference as yolox  # noqa: E402
from boxes import iou  # noqa: E402
from shufflenet import load_imagenet  # noqa: E402

import datasets  # noqa: E402  (models/common, on the path through train)

LABELS = HERE.parent / "labels/vn_riders.person_heads.tsv"
PERSON = 0


def people(shared, work):
    """{frame: [person box, ...]}: YOLOX-Nano's people as the agent finds them (fitted input, score >= 0.3, NMS)."""
    cache = pathlib.Path(work) / "people.tsv"
    if not cache.exists():
        model = HERE.parents[1] / ".local/models/vehicle/yolox_nano_coco_dyn.onnx"
        session = ort.InferenceSession(str(model))
        lines = []
        for path in sorted((pathlib.Path(shared) / "data/vn_riders/images").glob("*.jpg")):
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            for d in yolox.detect(session, img, fit=True, classes={PERSON: "person"}):
                lines.append(path.stem + "\t" + "\t".join(f"{v:.1f}" for v in d["box"]))
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text("\n".join(lines) + "\n")
    out = {}
    for line in cache.read_text().splitlines():
        f = line.split("\t")
        out.setdefault(f[0], []).append(tuple(float(v) for v in f[1:5]))
    return out


def rides(p, b, seated=0.0):
    """`te_infer::rides`, and with `seated` > 0 the person's box reaches down to that share of the motorcyclist
    box's height and is at least that share of it tall."""
    cx, cy = (p[0] + p[2]) / 2, (p[1] + p[3]) / 2
    inter = max(0, min(p[2], b[2]) - max(p[0], b[0])) * max(0, min(p[3], b[3]) - max(p[1], b[1]))
    inside = inter / max((p[2] - p[0]) * (p[3] - p[1]), 1e-6)
    bh = b[3] - b[1]
    sits = p[3] - b[1] >= seated * bh and p[3] - p[1] >= seated * bh
    return b[0] <= cx <= b[2] and b[1] <= cy <= b[1] + 0.6 * bh and inside >= 0.5 and sits


def corrections():
    out = []
    for line in LABELS.read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("frame\t"):
            continue
        frame, box, action, _ = line.split("\t", 3)
        out.append((frame, tuple(float(v) for v in box.split(",")), action))
    return out


def load(shared, work, seated):
    """Per-person riders as `train.load_riders` gives them ((frame, index, rgb, person box, bare, None)) and the
    labelled motorcyclist boxes of the validation clips with the people riding in each. The boxes, which are
    scored and which are bare-headed, are `train.load_riders`'s."""
    found = people(shared, work)
    fixes = corrections()
    box_fixes = ht.corrections()
    out = {"train": [], "val": []}
    val_boxes = []
    taken, helmets = set(), {}
    for split, bikes in ht.load_riders(shared).items():
        for frame, i, img, box, box_bare, _ in bikes:
            if frame not in helmets:
                helmets[frame] = [b[1:] for b in datasets.rider_labels(shared, frame) if b[0] == ht.HELMET]
            action = box_fixes.get((frame, i))
            riders = [p for p in found.get(frame, []) if rides(p, box, seated)]
            if split == "val":
                val_boxes.append((frame, img, box, box_bare, riders))
            for k, p in enumerate(found.get(frame, [])):
                if (frame, k) in taken or p not in riders or p[2] - p[0] < 12:
                    continue
                taken.add((frame, k))
                pw, ph = p[2] - p[0], p[3] - p[1]
                own_helmet = any(p[0] - 0.1 * pw <= (h[0] + h[2]) / 2 <= p[2] + 0.1 * pw
                                 and p[1] - 0.15 * ph <= (h[1] + h[3]) / 2 <= p[1] + 0.35 * ph for h in helmets[frame])
                fix = next((a for f, b, a in fixes if f == frame and iou(b, p) >= 0.8), None)
                if fix == "exclude" or (action == "helmet" and not own_helmet and fix is None):
                    continue
                if fix is not None:
                    bare = fix == "bare"
                elif own_helmet:
                    bare = False
                elif box_bare:
                    bare = True
                else:
                    continue  # a person without a helmet box in a helmeted box: left out unless checked
                out[split].append((frame, i, img, p, bare, None))
    return out, val_boxes


def table(val_boxes, box_model, person_model):
    def run(m, img, b):
        return float(m(ht.to_tensor([ht.head_region(img, b)]))[0])
    rows = []
    for _, img, box, bare, riders in val_boxes:
        with torch.no_grad():
            rows.append((bare, run(box_model, img, box), max((run(person_model, img, p) for p in riders), default=0.0)))
    n = sum(r[0] for r in rows)
    print(f"labelled validation motorcyclists {len(rows)} ({n} bare-headed); fined rightly / wrongly:")
    for t in (0.5, 0.7, 0.8, 0.85, 0.9, 0.95):
        cells = [f"{sum(r[k] >= t and r[0] for r in rows)}/{sum(r[k] >= t and not r[0] for r in rows)}" for k in (1, 2)]
        print(f"  p_bare >= {t:.2f}: box model {cells[0]}  per-person {cells[1]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--work", default=".local/train/helmet_per_person")
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--seated", type=float, default=0.5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    data, val_boxes = load(args.shared, args.work, args.seated)
    train, val = data["train"], data["val"]
    print(f"per-person riders: train {len(train)} ({sum(r[4] for r in train)} bare-headed), "
          f"val {len(val)} ({sum(r[4] for r in val)} bare-headed); seed {args.seed}")
    model = ht.HelmetNet()
    load_imagenet(model.backbone, args.shared)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = 1536 // 32
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.epochs * steps)
    loss_fn = nn.BCEWithLogitsLoss()
    truth = [r[4] for r in val]
    for epoch in range(args.epochs):
        rng.seed(args.seed * 1000 + epoch)
        began, total = time.time(), 0.0
        for _ in range(steps):
            x, y = ht.batch(rng, train, 32)
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        t, prec, rec = ht.best_threshold(ht.scores(model, val), truth)
        print(f"epoch {epoch:2d} loss {total / steps:.4f} per-person val threshold {t:.2f}: precision {prec:.4f} "
              f"recall {rec:.4f} | {time.time() - began:.0f} s", flush=True)
    model.eval()
    box_model = ort.InferenceSession(str(HERE / "helmet_classifier.onnx"))
    table(val_boxes, lambda x: box_model.run(None, {"input": x.numpy()})[0][:, 0],
          lambda x: torch.sigmoid(model(x)))


if __name__ == "__main__":
    main()
