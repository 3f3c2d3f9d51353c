#!/usr/bin/env python3
"""Trains the helmet classifier: from the head region of a motorcyclist box, is anyone on it bare-headed?
Exports it to ONNX.

Why: riding without a helmet, as driver or passenger, is one of the offences Vietnamese junction cameras record
most (issue 23), and the agent cannot see helmets. The motorcyclist detector (`../rider_detector`) gives one box
per motorbike with its riders; this model looks at the top of that box.

One command (from the repository root, with the training venv of models/README.md):

    .local/train-venv/bin/python models/helmet_classifier/train.py --shared ../shared

Resumes from `--work/last.pt`; logs figures per epoch to `--work/train.log`; exports the best validation epoch
to `--out`. Fixed seed; the validation clips of vn_riders (`models/common/datasets.py`, the same clips as the
plate and motorcyclist detectors') are never trained on.

Labels: a motorcyclist box (class 2) with no helmet box (class 0) centred in its upper third is bare-headed,
after the eye-checked corrections of `../labels/vn_riders.helmets.tsv` (helmets the labels miss; boxes with no
head to judge, excluded). Boxes narrower than 48 px (the agent reads no vehicle narrower) or whose top touches
the frame's top (the head is cut off) are left out.

Input `input` f32 [1,3,96,96] RGB / 255: the head region, the box's full width (+5% each side) and from 10% of
its height above its top to 30% below it (little of the clothes: most bare-headed training riders are a few
people in the same shirts, and a first run with 45% learnt the shirts), resized (bilinear) to 96x96. Output `p_bare` f32 [1,1]: the
probability that a rider on it is bare-headed. Design: ShuffleNetV2 from FastestDet's ImageNet weights
(BSD-3-Clause), global average pool, one logit. Augmented for a junction camera: the box jittered as a detector
would place it, small riders (down to 20 px heads) by down- and up-sampling, blur, light, noise, flips. Options
tried for v1 and not shipped (model card): `--backlight` darkens a share of the pictures to silhouettes, `--ema`
judges and keeps an average of the weights; and (2026-12-07) `--extra-heads` adds eye-checked heads of
people outside the motorcyclist boxes.
"""
import argparse
import pathlib
import random
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn as nn

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import datasets  # noqa: E402
import sheet as sheet_png  # noqa: E402
import training  # noqa: E402
sys.path.insert(0, str(HERE.parent / "reference"))
from boxes import iou  # noqa: E402
from shufflenet import Backbone, load_imagenet  # noqa: E402

SIZE = 96
HELMET, MOTORCYCLIST = 0, 2
MIN_WIDTH = 48
# The head region of a motorcyclist box, as shares of its width (each side) and height (above, below the top).
SIDE, ABOVE, BELOW = 0.05, 0.10, 0.30
CORRECTIONS = HERE.parent / "labels/vn_riders.helmets.tsv"


# ---------------------------------------------------------------- data
def corrections():
    out = {}
    for line in CORRECTIONS.read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("frame\t"):
            continue
        frame, rider, action, _ = line.split("\t", 3)
        out[(frame, int(rider))] = action
    return out


def load_detected(path):
    """{frame: [box, ...]}: the motorcyclist boxes the agent checks (`edge-agent eval --checked-riders`)."""
    out = {}
    if not path:
        return out
    for line in pathlib.Path(path).read_text().splitlines():
        if line.startswith("#") or line.startswith("frame\t") or not line.strip():
            continue
        f = line.split("\t")
        out.setdefault(f[0], []).append(tuple(float(v) for v in f[1:5]))
    return out


def load_riders(shared, detected=None):
    """{"train": [...], "val": [...]} of (frame, index, rgb frame, box, bare, the agent's box or None): the
    agent's box is the checked motorcyclist box (`detected`) that overlaps the labelled one most, IoU >= 0.5."""
    detected = detected or {}
    clips = datasets.rider_clips(shared)
    fixes = corrections()
    root = pathlib.Path(shared) / "data/vn_riders/images"
    out = {"train": [], "val": []}
    for path in sorted(root.glob("*.jpg")):
        labels = datasets.rider_labels(shared, path.stem)
        riders = [b[1:] for b in labels if b[0] == MOTORCYCLIST]
        helmets = [b[1:] for b in labels if b[0] == HELMET]
        if not riders:
            continue
        split = clips.get(path.stem, (path.stem, "train"))[1]
        if split not in out:  # "guard": next to a validation block, in neither side
            continue
        img = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for i, (x1, y1, x2, y2) in enumerate(riders):
            action = fixes.get((path.stem, i))
            if action == "exclude" or x2 - x1 < MIN_WIDTH or y1 < 4:
                continue
            top = y1 + (y2 - y1) / 3
            helmeted = any(x1 <= (h[0] + h[2]) / 2 <= x2 and y1 - 10 <= (h[1] + h[3]) / 2 <= top for h in helmets)
            bare = action == "bare" or (not helmeted and action != "helmet")
            box = (x1, y1, x2, y2)
            own = max(detected.get(path.stem, []), key=lambda d: iou(d, box), default=None)
            own = own if own is not None and iou(own, box) >= 0.5 else None
            out[split].append((path.stem, i, img, box, bare, own))
    return out


def load_extra_heads(shared, path):
    """Training riders from people outside every labelled motorcyclist box (`--extra-heads`): rows of
    frame, person box (x1,y1,x2,y2), bare|helmet, checked by eye; training clips only."""
    if not path:
        return []
    clips = datasets.rider_clips(shared)
    root = pathlib.Path(shared) / "data/vn_riders/images"
    out, images = [], {}
    for line in pathlib.Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#") or line.startswith("frame\t"):
            continue
        stem, box, label = line.split("\t")[:3]
        if clips.get(stem, (stem, "train"))[1] != "train":
            raise SystemExit(f"{path}: {stem} is a validation frame")
        if stem not in images:
            images[stem] = cv2.cvtColor(cv2.imread(str(root / f"{stem}.jpg"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        out.append((stem, -1, images[stem], tuple(float(v) for v in box.split(",")), label == "bare", None))
    return out


def head_region(img, box, jitter=None):
    """The head region of `box` (x1, y1, x2, y2) resized to SIZE x SIZE; `jitter` (rng) moves the box's edges
    as a detector would."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if jitter is not None:
        x1 += jitter.uniform(-0.08, 0.08) * w
        x2 += jitter.uniform(-0.08, 0.08) * w
        y1 += jitter.uniform(-0.06, 0.06) * h
        h *= jitter.uniform(0.85, 1.15)
        w = x2 - x1
    rx1, rx2 = x1 - SIDE * w, x2 + SIDE * w
    ry1, ry2 = y1 - ABOVE * h, y1 + BELOW * h
    H, W = img.shape[:2]
    ix1, iy1 = int(max(0, round(rx1))), int(max(0, round(ry1)))
    ix2, iy2 = int(min(W, round(rx2))), int(min(H, round(ry2)))
    if ix2 - ix1 < 2 or iy2 - iy1 < 2:
        return np.zeros((SIZE, SIZE, 3), np.uint8)
    return cv2.resize(img[iy1:iy2, ix1:ix2], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)


def augment(rng, pic, backlight=0.0):
    if rng.random() < 0.5:
        pic = pic[:, ::-1]
    if rng.random() < backlight:  # against a bright sky or wall the head is a dark silhouette: shape, not colour
        lut = (255.0 * (np.arange(256) / 255.0) ** rng.uniform(1.8, 3.5)).astype(np.uint8)
        pic = lut[pic]
    if rng.random() < 0.5:  # a far rider: the head region only 20-60 px across
        s = rng.uniform(20, 60)
        small = cv2.resize(pic, (int(s), int(s)), interpolation=cv2.INTER_AREA)
        pic = cv2.resize(small, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        pic = cv2.GaussianBlur(pic, (0, 0), rng.uniform(0.5, 2.0))
    out = pic.astype(np.float32) * rng.uniform(0.5, 1.4) + rng.uniform(-30, 30)
    if rng.random() < 0.3:
        out += np.random.default_rng(rng.getrandbits(32)).normal(0, rng.uniform(2, 10), out.shape).astype(np.float32)
    if rng.random() < 0.3:  # colour is no cue: most bare-headed training riders share a few shirts
        out[:] = out.mean(axis=2, keepdims=True)
    elif rng.random() < 0.5:
        out = out[:, :, rng.sample(range(3), 3)]
    return np.clip(out, 0, 255).astype(np.uint8)


def to_tensor(pics):
    return torch.from_numpy(np.stack(pics).transpose(0, 3, 1, 2).copy()).float() / 255.0


def batch(rng, riders, n, backlight=0.0, own_share=0.0):
    """Half bare-headed, half helmeted (the labels hold about one bare-headed rider in three)."""
    bare = [r for r in riders if r[4]]
    helmeted = [r for r in riders if not r[4]]
    picks = [rng.choice(bare if k % 2 else helmeted) for k in range(n)]
    boxes = [r[5] if r[5] is not None and rng.random() < own_share else r[3] for r in picks]
    pics = [augment(rng, head_region(r[2], b, rng), backlight) for r, b in zip(picks, boxes)]
    return to_tensor(pics), torch.tensor([float(r[4]) for r in picks])


# ---------------------------------------------------------------- model
class HelmetNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(192, 1)

    def forward(self, x):
        _, _, p3 = self.backbone(x)
        return self.head(self.drop(p3.mean(dim=(2, 3))))[:, 0]


class Exported(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return torch.sigmoid(self.model(x))[:, None]


# ---------------------------------------------------------------- validate
def scores(model, riders, own=False):
    """p_bare of each rider on its labelled box, or (`own`) on the agent's box (riders that have one)."""
    model.eval()
    with torch.no_grad():
        out = []
        for k in range(0, len(riders), 64):
            chunk = riders[k:k + 64]
            boxes = [r[5] if own else r[3] for r in chunk]
            out.extend(torch.sigmoid(model(to_tensor([head_region(r[2], b) for r, b in zip(chunk, boxes)]))).tolist())
    model.train()
    return out


def own_scores(model, val, val_own):
    """p_bare of every validation rider on the agent's box; 0 (never fined) where it has none."""
    scored = iter(scores(model, val_own, own=True))
    return [next(scored) if r[5] is not None else 0.0 for r in val]


def figures(p_bare, truth, threshold):
    fined = [p >= threshold for p in p_bare]
    tp = sum(f and t for f, t in zip(fined, truth))
    fp = sum(f and not t for f, t in zip(fined, truth))
    n_bare = sum(truth)
    return tp / max(tp + fp, 1), tp / max(n_bare, 1), tp, fp


def epoch_score(precision, recall, min_precision=0.97):
    """How good an epoch is: its recall where precision reaches `min_precision`, else below every such epoch."""
    return recall if precision >= min_precision else precision - 1.0


def best_threshold(p_bare, truth, min_precision=0.97):
    """(threshold, precision, recall): the lowest threshold whose precision reaches `min_precision` (most
    recall), or the one with the best precision if none does."""
    best = None
    for t in [0.5 + 0.01 * k for k in range(50)]:
        prec, rec, _, _ = figures(p_bare, truth, t)
        if prec >= min_precision and (best is None or rec > best[2]):
            best = (t, prec, rec)
    if best is None:
        t = max([0.5 + 0.01 * k for k in range(50)], key=lambda t: figures(p_bare, truth, t)[0])
        best = (t, *figures(p_bare, truth, t)[:2])
    return best


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--work", default=".local/train/helmet_classifier")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--per-epoch", type=int, default=1536, help="training pictures per epoch")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--out", default=".local/train/helmet_classifier/helmet_classifier.onnx")
    ap.add_argument("--ema", type=float, default=0.0, help="judge and keep an average of the weights (0: the last step's)")
    ap.add_argument("--backlight", type=float, default=0.0,
                    help="share of pictures darkened to a silhouette (gamma 1.8-3.5)")
    ap.add_argument("--detected", help="the agent's checked motorcyclist boxes (edge-agent eval --checked-riders): "
                    "train on them too, and judge epochs on them")
    ap.add_argument("--own-share", type=float, default=0.5,
                    help="with --detected: share of training pictures cut from the agent's box instead of the label's")
    ap.add_argument("--extra-heads", help="more training heads: people outside the labelled motorcyclist boxes, "
                    "checked by eye (frame, box, bare|helmet)")
    ap.add_argument("--judge-at", type=float, default=None,
                    help="choose the epoch by its recall at this p_bare (the agent's no_helmet_at, 0.95) with precision "
                         ">= 0.97, instead of at its own best threshold; with --detected, on the agent's own boxes")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--sheet", help="write the validation riders' head regions with their scores to this PNG")
    args = ap.parse_args()
    work, say = training.run_folder(args)
    rng = random.Random(args.seed)
    np.random.seed(args.seed)

    data = load_riders(args.shared, load_detected(args.detected))
    train, val = data["train"], data["val"]
    extra = load_extra_heads(args.shared, args.extra_heads)
    train = train + extra
    truth = [r[4] for r in val]
    # On the agent's own boxes: a labelled rider without one is never fined (scored 0).
    val_own = [r for r in val if r[5] is not None]
    own_share = args.own_share if args.detected else 0.0
    model = HelmetNet()
    loaded = load_imagenet(model.backbone, args.shared)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    ema = training.Ema(model, args.ema) if args.ema > 0 else None
    start, best = training.resume(work, model, opt, say, ema=ema)
    if args.export_only or args.sheet:
        model.load_state_dict(torch.load(work / "best.pt", weights_only=False))
        if args.sheet:
            sheet(model, val, args.sheet)
        if args.export_only:
            export(model, args.out)
        return
    if start == 0:
        say(f"data: train riders {len(train)} ({sum(r[4] for r in train)} bare-headed), val riders {len(val)} "
            f"({sum(truth)} bare-headed); the agent's own box for {sum(r[5] is not None for r in train)} training and "
            f"{len(val_own)} validation riders; extra heads {len(extra)} ({sum(r[4] for r in extra)} bare-headed); backbone tensors loaded {loaded}; seed {args.seed}")
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * (args.per_epoch // args.batch))
    for _ in range(start * (args.per_epoch // args.batch)):
        sched.step()
    loss_fn = nn.BCEWithLogitsLoss()
    for epoch in range(start, args.epochs):
        rng.seed(args.seed * 1000 + epoch)
        began, total = time.time(), 0.0
        for _ in range(args.per_epoch // args.batch):
            x, y = batch(rng, train, args.batch, args.backlight, own_share)
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update(model)
            total += loss.item()
        judged = ema.model if ema is not None else model
        p = scores(judged, val)
        t, prec, rec = best_threshold(p, truth)
        p5, r5, _, _ = figures(p, truth, 0.5)
        score = epoch_score(prec, rec)
        at = ""
        if args.judge_at is not None:
            # The agent fines at one fixed p_bare (`no_helmet_at`): an epoch whose best threshold is elsewhere is of
            # no use to it.
            prec_at, rec_at, _, _ = figures(p, truth, args.judge_at)
            score = epoch_score(prec_at, rec_at)
            at = f" | at {args.judge_at:.2f}: precision {prec_at:.4f} recall {rec_at:.4f}"
        own = ""
        if val_own:
            p_own = own_scores(judged, val, val_own)
            t_own, prec_own, rec_own = best_threshold(p_own, truth)
            own = f" | own boxes, threshold {t_own:.2f}: precision {prec_own:.4f} recall {rec_own:.4f}"
            if args.judge_at is not None:
                # Both given: the agent's own boxes at the agent's fixed threshold (until 2026-12-07 the own boxes'
                # best threshold silently replaced --judge-at here).
                t_own = args.judge_at
                prec_own, rec_own, _, _ = figures(p_own, truth, t_own)
                own += f" | own boxes at {t_own:.2f}: precision {prec_own:.4f} recall {rec_own:.4f}"
            score = epoch_score(prec_own, rec_own)
        say(f"epoch {epoch:2d} loss {total / (args.per_epoch // args.batch):.4f} val@0.5 precision {p5:.4f} "
            f"recall {r5:.4f} | threshold {t:.2f}: precision {prec:.4f} recall {rec:.4f}{at}{own} | "
            f"{time.time() - began:.0f} s")
        # The first epoch is kept whatever it scores: a run in which no epoch fines anyone at --judge-at
        # (every score -1, the starting figure) must still leave one to export.
        if score > best or not (work / "best.pt").exists():
            best = score
            torch.save(judged.state_dict(), work / "best.pt")
        training.checkpoint(work, model, opt, epoch, best, ema=ema)
    model.load_state_dict(torch.load(work / "best.pt", weights_only=False))
    p = scores(model, val)
    t, prec, rec = best_threshold(p, truth)
    say(f"best: threshold {t:.2f} precision {prec:.4f} recall {rec:.4f} on {len(val)} validation riders "
        f"({sum(truth)} bare-headed)")
    export(model, args.out)


def sheet(model, val, path):
    """Every validation rider's head region with its p_bare, label in the corner (red: bare-headed)."""
    p = scores(model, val)
    tiles = []
    for r, s in zip(val, p):
        t = cv2.cvtColor(head_region(r[2], r[3]), cv2.COLOR_RGB2BGR)
        cv2.putText(t, f"{s:.2f}", (2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 255) if r[4] else (0, 255, 0), 1)
        tiles.append(t)
    sheet_png.write(path, tiles, 12, fill=0)


def export(model, out):
    model.eval()
    pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(Exported(model), torch.zeros(1, 3, SIZE, SIZE), out, input_names=["input"],
                      output_names=["p_bare"], opset_version=17, dynamo=False)
    print(f"exported {out}")


if __name__ == "__main__":
    main()
