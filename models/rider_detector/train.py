#!/usr/bin/env python3
"""Trains a motorcyclist detector (rider + motorbike, one class) on whole frames, and exports it to ONNX.

Why: the agent finds vehicles with YOLOX-Nano (COCO), which finds only 0.63 of the labelled motorcyclists of
the vn_riders validation clips (`edge-agent eval`, `rider_vehicle_recall`): rows of motorbikes, riders
overlapping. Every plate on a motorbike it misses is a plate never read (issue 17), and every rider it misses is
a helmet never checked (issue 23). This recipe measures what a detector trained on Vietnamese motorbikes gives.

One command (from the repository root, with the training venv of models/README.md):

    .local/train-venv/bin/python models/rider_detector/train.py --shared ../shared

Resumes from `--work/last.pt`; logs figures per epoch to `--work/train.log`; exports the best validation epoch
to `--out`. Fixed seed; the validation clips of vn_riders (`models/common/datasets.py`, the same clips as the
plate detector's `val_clips.txt`) are never trained on.

Design: FastestDet (BSD-3-Clause, `../shared/models/fastestdet`: its model code and loss, imported from there,
and its COCO weights as the start; the 80-class head is replaced by one class). One stride-16 head over a
512x288 input (a 16:9 frame resized, no padding). Augmented for a junction camera 5-8 m up: zoomed out
(motorbikes down to ~40 px wide at 1080p), squashed vertically, flipped, light and blur.

Export: `input` f32 [1,3,288,512] BGR / 255; `output` f32 [1, 18*32, 6] rows per cell: cx, cy, w, h (input
pixels), objectness, class score.
"""
import argparse
import math
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
sys.path.insert(0, str(HERE.parent / "reference"))
from boxes import iou  # noqa: E402
import datasets  # noqa: E402
import training  # noqa: E402

W, H = 512, 288
STRIDE = 16
MOTORCYCLIST = 2


def fastestdet(shared):
    """FastestDet's Detector with one class, from its COCO weights (all but the class head)."""
    sys.path.insert(0, str(pathlib.Path(shared) / "models/fastestdet"))
    from module import custom_layers  # noqa: E402  (BSD-3-Clause, FastestDet)
    from module.detector import Detector  # noqa: E402
    from module.loss import DetectorLoss  # noqa: E402

    # The shared copy of FastestDet's DetectHead.forward stops before its return; upstream returns the three
    # maps side by side (objectness, box, classes), which is what its loss reads.
    def head_forward(self, x):
        x = self.conv1x1(x)
        return torch.cat((self.sigmoid(self.obj_layers(x)), self.reg_layers(x),
                          self.softmax(self.cls_layers(x))), dim=1)

    custom_layers.DetectHead.forward = head_forward
    DetectorLoss.build_target = build_target

    # Upstream's flag is inverted: `False` loads the ImageNet backbone from a relative path; the COCO weights
    # below replace it anyway.
    model = Detector(1, True)
    coco = torch.load(pathlib.Path(shared) / "models/fastestdet/weights_coco_ap50_0.253.pth", map_location="cpu")
    own = model.state_dict()
    kept = {k: v for k, v in coco.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(kept, strict=False)
    return model, DetectorLoss(torch.device("cpu")), len(kept), len(own)


def build_target(self, preds, targets):
    """FastestDet's target assignment (`DetectorLoss.build_target`) with its bounds check mended. Upstream keeps
    a cell only where `torch.where(gij < H, gij, 0).min(-1) > 0`: both indices are compared with the map's HEIGHT
    and row and column 0 are dropped. Upstream trains square inputs, where that only loses the edge cells; on this
    512x288 input (32x18 cells) every motorcyclist whose centre lies in columns 18-31 (the right 44% of the
    picture) became background, and the runs, flips and all, learnt to see riders on the left half only (the last
    epoch of 2026-12-07's run found 85 of 86 validation riders on the left and 8 of 122 on the right)."""
    _, _, h, w = preds.shape
    gt_box, gt_cls, ps_index = [], [], []
    quadrant = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], device=self.device)
    if targets.shape[0] > 0:
        scale = torch.ones(6, device=self.device)
        scale[2:] = torch.tensor([w, h, w, h], dtype=torch.float32, device=self.device)
        gt = (targets * scale).repeat(4, 1, 1)
        quadrant = quadrant.repeat(gt.size(1), 1, 1).permute(1, 0, 2)
        gij = gt[..., 2:4].long() + quadrant
        inside = (gij[..., 0] >= 0) & (gij[..., 0] < w) & (gij[..., 1] >= 0) & (gij[..., 1] < h)
        gi, gj = gij[inside].T
        ps_index.append((gt[..., 0].long()[inside], gi, gj))
        gt_box.append(gt[..., 2:][inside])
        gt_cls.append(gt[..., 1].long()[inside])
    return gt_box, gt_cls, ps_index


# ---------------------------------------------------------------- data
def load_frames(shared):
    clips = datasets.rider_clips(shared)
    root = pathlib.Path(shared) / "data/vn_riders/images"
    out = {"train": [], "val": []}
    for path in sorted(root.glob("*.jpg")):
        clip, split = clips.get(path.stem, (path.stem, "train"))
        if split not in out:  # "guard": next to a validation block, in neither side
            continue
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            continue
        boxes = [b[1:] for b in datasets.rider_labels(shared, path.stem) if b[0] == MOTORCYCLIST]
        out[split].append((path.stem, img, np.array(boxes, dtype=np.float32).reshape(-1, 4)))
    return out


def augment(rng, img, boxes, size=(W, H), light=True):
    """A training picture of `size` (W x H unless a mosaic's tile) and its boxes in its pixels."""
    W, H = size  # noqa: N806  (the tile's own W and H)
    h0, w0 = img.shape[:2]
    # Zoom out (as from a higher, wider camera) or in a little; squash vertically (looking down).
    zoom = rng.uniform(0.45, 1.15)
    squash = rng.uniform(0.75, 1.0)
    sx, sy = W / w0 * zoom, H / h0 * zoom * squash
    canvas = np.full((H, W, 3), 114, np.uint8)
    resized = cv2.resize(img, (max(1, int(w0 * sx)), max(1, int(h0 * sy))), interpolation=cv2.INTER_AREA)
    rh, rw = resized.shape[:2]
    ox = rng.randint(min(0, W - rw), max(0, W - rw))
    oy = rng.randint(min(0, H - rh), max(0, H - rh))
    # Paste the part that lands on the canvas.
    x0, y0 = max(0, ox), max(0, oy)
    x1, y1 = min(W, ox + rw), min(H, oy + rh)
    canvas[y0:y1, x0:x1] = resized[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    b = boxes.copy()
    b[:, [0, 2]] = b[:, [0, 2]] * sx + ox
    b[:, [1, 3]] = b[:, [1, 3]] * sy + oy
    if rng.random() < 0.5:
        canvas = canvas[:, ::-1].copy()
        b[:, [0, 2]] = W - b[:, [2, 0]]
    # Keep boxes mostly inside; a box cut to under 60% of itself is dropped (neither taught nor punished much).
    kept = []
    for x1b, y1b, x2b, y2b in b:
        cx1, cy1, cx2, cy2 = max(0, x1b), max(0, y1b), min(W, x2b), min(H, y2b)
        if cx2 - cx1 < 6 or cy2 - cy1 < 6:
            continue
        if (cx2 - cx1) * (cy2 - cy1) < 0.6 * (x2b - x1b) * (y2b - y1b):
            continue
        kept.append((cx1, cy1, cx2, cy2))
    if light:
        canvas = photometric(rng, canvas)
    return canvas, np.array(kept, dtype=np.float32).reshape(-1, 4)


def mosaic(rng, frames):
    """Four frames, each augmented into one quarter of the picture, the split point drawn at random: many small
    motorcyclists side by side, as a junction camera sees a queue, which whole phone frames never show."""
    cx, cy = int(W * rng.uniform(0.3, 0.7)), int(H * rng.uniform(0.3, 0.7))
    canvas = np.full((H, W, 3), 114, np.uint8)
    out = []
    for x0, y0, x1, y1 in ((0, 0, cx, cy), (cx, 0, W, cy), (0, cy, cx, H), (cx, cy, W, H)):
        _, img, boxes = frames[rng.randrange(len(frames))]
        tile, b = augment(rng, img, boxes, size=(x1 - x0, y1 - y0), light=False)
        canvas[y0:y1, x0:x1] = tile
        out.extend((bx1 + x0, by1 + y0, bx2 + x0, by2 + y0) for bx1, by1, bx2, by2 in b)
    return photometric(rng, canvas), np.array(out, dtype=np.float32).reshape(-1, 4)


def val_mosaics(frames, seed=5):
    """The validation frames four at a time, each shrunk into a quarter (no other change): the same riders at
    half their size and four times as many to a picture. Fixed order, so every epoch and run sees the same."""
    rng = random.Random(seed)
    order = list(range(len(frames)))
    rng.shuffle(order)
    out = []
    for i in range(0, len(order) - 3, 4):
        canvas = np.full((H, W, 3), 114, np.uint8)
        boxes = []
        for k, j in enumerate(order[i:i + 4]):
            stem, img, b = frames[j]
            h0, w0 = img.shape[:2]
            x0, y0 = (k % 2) * (W // 2), (k // 2) * (H // 2)
            canvas[y0:y0 + H // 2, x0:x0 + W // 2] = cv2.resize(img, (W // 2, H // 2), interpolation=cv2.INTER_AREA)
            sx, sy = (W // 2) / w0, (H // 2) / h0
            boxes.extend((x1 * sx + x0, y1 * sy + y0, x2 * sx + x0, y2 * sy + y0) for x1, y1, x2, y2 in b)
        out.append((f"mosaic{i // 4}", canvas, np.array(boxes, dtype=np.float32).reshape(-1, 4)))
    return out


def photometric(rng, img):
    out = img.astype(np.float32)
    out = out * rng.uniform(0.55, 1.35) + rng.uniform(-25, 25)
    if rng.random() < 0.3:
        k = rng.choice([3, 5])
        out = cv2.GaussianBlur(out, (k, k), 0)
    if rng.random() < 0.3:
        out += np.random.default_rng(rng.randint(0, 1 << 30)).normal(0, rng.uniform(2, 8), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def to_tensor(img):
    return torch.from_numpy(img.transpose(2, 0, 1).copy()).float() / 255.0


def batch(rng, frames, n, mosaic_share=0.0):
    imgs, targets = [], []
    for i in range(n):
        if mosaic_share > 0 and rng.random() < mosaic_share:
            pic, b = mosaic(rng, frames)
        else:
            _, img, boxes = frames[rng.randrange(len(frames))]
            pic, b = augment(rng, img, boxes)
        imgs.append(to_tensor(pic))
        for x1, y1, x2, y2 in b:
            targets.append([i, 0, (x1 + x2) / 2 / W, (y1 + y2) / 2 / H, (x2 - x1) / W, (y2 - y1) / H])
    return torch.stack(imgs), torch.tensor(targets, dtype=torch.float32).reshape(-1, 6)


# ---------------------------------------------------------------- decode, validate
def decode(out):
    """[N, 1+4+1, h, w] -> [N, h*w, 6]: cx, cy, w, h (input pixels), objectness, class score."""
    n, _, gh, gw = out.shape
    gy, gx = torch.meshgrid(torch.arange(gh, dtype=torch.float32), torch.arange(gw, dtype=torch.float32),
                            indexing="ij")
    obj = out[:, 0]
    cx = (out[:, 1].tanh() + gx) / gw * W
    cy = (out[:, 2].tanh() + gy) / gh * H
    bw = out[:, 3].sigmoid() * W
    bh = out[:, 4].sigmoid() * H
    cls = out[:, 5]
    rows = torch.stack([cx, cy, bw, bh, obj, cls], dim=1)
    return rows.reshape(n, 6, gh * gw).permute(0, 2, 1)


class Exported(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return decode(self.model(x))


def nms(dets, thr=0.45):
    dets = sorted(dets, key=lambda d: -d[4])
    kept = []
    for d in dets:
        if all(iou(d, k) < thr for k in kept):
            kept.append(d)
    return kept


def detect(model, img, threshold):
    """Boxes (x1, y1, x2, y2, score) in the frame's pixels."""
    h0, w0 = img.shape[:2]
    pic = cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA)
    with torch.no_grad():
        rows = decode(model(to_tensor(pic)[None]))[0].numpy()
    score = rows[:, 4] ** 0.6 * rows[:, 5] ** 0.4
    dets = []
    for (cx, cy, bw, bh, _, _), s in zip(rows, score):
        if s >= threshold:
            dets.append(((cx - bw / 2) * w0 / W, (cy - bh / 2) * h0 / H, (cx + bw / 2) * w0 / W,
                         (cy + bh / 2) * h0 / H, float(s)))
    return nms(dets)


def validate(model, frames, threshold=0.5):
    """(recall at IoU 0.5, recall at IoU 0.3, precision at IoU 0.5, labelled boxes) on whole frames."""
    model.eval()
    n = found5 = found3 = dets_n = true_dets = 0
    for _, img, boxes in frames:
        dets = detect(model, img, threshold)
        dets_n += len(dets)
        used = [False] * len(dets)
        for box in boxes:
            n += 1
            best, best_i = 0.0, -1
            for i, d in enumerate(dets):
                o = iou(box, d)
                if o > best:
                    best, best_i = o, i
            found3 += best >= 0.3
            if best >= 0.5 and not used[best_i]:
                used[best_i] = True
                found5 += 1
        true_dets += sum(used)
    model.train()
    return found5 / max(n, 1), found3 / max(n, 1), true_dets / max(dets_n, 1), n


# ---------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--work", default=".local/train/rider_detector")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--per-epoch", type=int, default=1024, help="training pictures per epoch")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=31)
    ap.add_argument("--out", default=".local/train/rider_detector/rider_detector.onnx")
    ap.add_argument("--mosaic", type=float, default=0.0, help="share of training pictures made of four frames "
                    "(0 = none, the shipped model's recipe)")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--draw", help="draw the best epoch's detections (red) and the labels (green) on the "
                    "validation frames into this folder, for checking by eye; nothing is trained")
    args = ap.parse_args()
    work, say = training.run_folder(args)
    rng = random.Random(args.seed)
    np.random.seed(args.seed)
    model, loss_fn, loaded, total = fastestdet(args.shared)
    if args.export_only:
        export(work, model, args.out)
        return
    if args.draw:
        draw(work, model, load_frames(args.shared)["val"], pathlib.Path(args.draw))
        return
    frames = load_frames(args.shared)
    mosaics = val_mosaics(frames["val"])
    say(f"data: train frames {len(frames['train'])}, val frames {len(frames['val'])}; "
        f"COCO tensors loaded {loaded}/{total}; params {sum(p.numel() for p in model.parameters())}")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    first, best = training.resume(work, model, opt, say)
    if first == 0:
        r5, r3, p5, n = validate(model, frames["val"])
        m5, _, mp5, mn = validate(model, mosaics)
        say(f"before training (COCO class head replaced): val_recall {r5:.4f} val_recall_iou30 {r3:.4f} "
            f"val_precision {p5:.4f} riders {n} mosaic_recall {m5:.4f} mosaic_precision {mp5:.4f} "
            f"mosaic_riders {mn}")
    steps = args.per_epoch // args.batch
    for epoch in range(first, args.epochs):
        started = time.time()
        totals = np.zeros(3)
        for step in range(steps):
            t = (epoch * steps + step) / (args.epochs * steps)
            warm = min(1.0, (epoch * steps + step + 1) / steps)
            lr = args.lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))
            for g in opt.param_groups:
                g["lr"] = lr
            imgs, targets = batch(rng, frames["train"], args.batch, args.mosaic)
            iou_l, obj_l, cls_l, loss = loss_fn(model(imgs), targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            totals += [float(iou_l.detach()), float(obj_l.detach()), float(cls_l.detach())]
        r5, r3, p5, n = validate(model, frames["val"])
        m5, _, mp5, mn = validate(model, mosaics)
        f1 = 2 * r5 * p5 / max(r5 + p5, 1e-9)
        if f1 > best:
            best = f1
            torch.save(model.state_dict(), work / "best.pt")
        training.checkpoint(work, model, opt, epoch, best)
        say(f"epoch {epoch} lr {lr:.5f} iou {totals[0] / steps:.4f} obj {totals[1] / steps:.4f} "
            f"val_recall {r5:.4f} val_recall_iou30 {r3:.4f} val_precision {p5:.4f} f1 {f1:.4f} riders {n} "
            f"mosaic_recall {m5:.4f} mosaic_precision {mp5:.4f} mosaic_riders {mn} secs {time.time() - started:.0f}")
    export(work, model, args.out)
    say(f"exported best (val f1 {best:.4f}) to {args.out}")


def draw(work, model, frames, folder, threshold=0.5):
    model.load_state_dict(torch.load(work / "best.pt", map_location="cpu"))
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    for stem, img, boxes in frames:
        pic = img.copy()
        for x1, y1, x2, y2 in boxes:
            cv2.rectangle(pic, (int(x1), int(y1)), (int(x2), int(y2)), (0, 200, 0), 3)
        for x1, y1, x2, y2, score in detect(model, img, threshold):
            cv2.rectangle(pic, (int(x1), int(y1)), (int(x2), int(y2)), (0, 0, 255), 1)
            cv2.putText(pic, f"{score:.2f}", (int(x1), int(y1) + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 255), 1)
        cv2.imwrite(str(folder / f"{stem}.jpg"), pic)


def export(work, model, out):
    model.load_state_dict(torch.load(work / "best.pt", map_location="cpu"))
    model.eval()
    torch.onnx.export(Exported(model), torch.zeros(1, 3, H, W), out, input_names=["input"],
                      output_names=["output"], opset_version=17, do_constant_folding=True, dynamo=False)


if __name__ == "__main__":
    main()
