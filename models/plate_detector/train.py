#!/usr/bin/env python3
"""Trains the project's plate detector: finds plates, their four corners and their layout (one or two rows)
in a vehicle's crop, and exports it to ONNX.

One command (from the repository root, with the training venv of models/README.md):

    .local/train-venv/bin/python models/plate_detector/train.py --shared ../shared
    python3 models/plate_detector/train.py --shared <shared> --device cuda --workers 12 ...   # on a GPU

With `--workers`, batches are made by a pool of processes, each batch from its own seed (seed, epoch, batch), so
the crops do not depend on the worker count; without it the shipped recipe's single random sequence is kept.

Resumes from `--work/last.pt`; logs figures per epoch to `--work/train.log`; writes
`models/plate_detector/plate_detector.onnx` from the best validation epoch. Fixed seeds; validation clips of
vn_riders (`models/common/datasets.py`) are never trained on.

Design: the agent tracks vehicles with YOLOX first, so this is a second stage that looks at one vehicle's crop
(its box grown by 10% on each side), letterboxed top-left into 256x256 (pad 114, RGB / 255). A 15 px plate in
a 1080p frame is ~40 px in the crop of a motorbike. Backbone: ShuffleNetV2 (FastestDet's ImageNet weights,
BSD-3), its stride 8/16/32 features reduced to 32 channels, added at stride 8, one small head per cell:
objectness, box (distances to the four sides), four corners, layout. The export decodes to the row format of
the agent's `PlateDetector`: [1, 1024, 15] = cx, cy, w, h, objectness, corners (x, y) x 4 (TL, TR, BR, BL),
P(one row), P(two rows), in input pixels.

Training crops come from vn_riders frames (MIT): each motorcyclist box, random vehicle-sized crops around each
plate, (with `--detector-crops`) the boxes the agent's own detectors find (the project's motorcyclist detector
and YOLOX-Nano, cached in `--work`), crops with no plate, and synthetic plates (models/common/vnplate.py) pasted in perspective, whose
corners are exact. Real plates are labelled with axis-aligned boxes only: their corners are the box's.
Scale is augmented down to plates 14-40 px wide, the size a 5-8 m high junction camera sees.
"""
import argparse
import json
import math
import multiprocessing
import pathlib
import random
import sys
import time

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
sys.path.insert(0, str(HERE.parent / "reference"))
from boxes import iou as box_iou  # noqa: E402
import datasets  # noqa: E402
import noise  # noqa: E402
import training  # noqa: E402
import vnplate  # noqa: E402
from shufflenet import Backbone, load_imagenet  # noqa: E402

SIZE = 256
STRIDE = 8
GRID = SIZE // STRIDE
PAD = 114
# Augmentations that are off in the shipped recipe, set from the command line before the workers fork.
EXTRA_AUG = {"salt": 0.0}
TWO_ROW_ASPECT_BELOW = 2.6


# ---------------------------------------------------------------- model
def cbr(cin, cout, k=1, groups=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, 1, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class PlateNet(nn.Module):
    OUT = 1 + 4 + 8 + 1  # objectness, ltrb, corners, two-row logit

    def __init__(self):
        super().__init__()
        self.backbone = Backbone()
        self.l1, self.l2, self.l3 = cbr(48, 48), cbr(96, 48), cbr(192, 48)
        self.neck = nn.Sequential(cbr(48, 48, 5, groups=48), cbr(48, 64), cbr(64, 64, 5, groups=64), cbr(64, 64))
        self.head = nn.Conv2d(64, self.OUT, 1)
        nn.init.constant_(self.head.bias, 0.0)
        with torch.no_grad():
            self.head.bias[0] = -4.0

    def forward(self, x):
        p1, p2, p3 = self.backbone(x)
        f = self.l1(p1) + F.interpolate(self.l2(p2), scale_factor=2, mode="nearest") \
            + F.interpolate(self.l3(p3), scale_factor=4, mode="nearest")
        return self.head(self.neck(f))  # B, OUT, GRID, GRID


def cell_centres(device=None):
    ys, xs = torch.meshgrid(torch.arange(GRID, device=device), torch.arange(GRID, device=device), indexing="ij")
    return (xs.float() + 0.5) * STRIDE, (ys.float() + 0.5) * STRIDE


def decode_maps(out):
    """Raw maps -> boxes (x1,y1,x2,y2), corners [.., 8], objectness prob, two-row prob; all per cell."""
    cx, cy = cell_centres(out.device)
    ltrb = torch.exp(out[:, 1:5].clamp(-6, 6)) * STRIDE
    x1, y1, x2, y2 = cx - ltrb[:, 0], cy - ltrb[:, 1], cx + ltrb[:, 2], cy + ltrb[:, 3]
    corners = out[:, 5:13] * (4 * STRIDE)
    corners = corners + torch.stack([cx, cy] * 4)[None]
    return torch.stack([x1, y1, x2, y2], 1), corners, torch.sigmoid(out[:, 0]), torch.sigmoid(out[:, 13])


class Exported(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        box, corners, obj, two = decode_maps(self.m(x))
        b = box.shape[0]
        cxcywh = torch.stack([(box[:, 0] + box[:, 2]) / 2, (box[:, 1] + box[:, 3]) / 2,
                              box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]], 1)
        rows = torch.cat([cxcywh, obj[:, None], corners, (1 - two)[:, None], two[:, None]], 1)  # B, 15, G, G
        return rows.reshape(b, 15, GRID * GRID).permute(0, 2, 1)


def load_backbone(model, shared):
    return load_imagenet(model.backbone, shared)


# ---------------------------------------------------------------- data
def letterbox(img):
    h, w = img.shape[:2]
    s = min(SIZE / w, SIZE / h)
    nw, nh = max(1, int(w * s)), max(1, int(h * s))
    canvas = np.full((SIZE, SIZE, 3), PAD, np.uint8)
    canvas[:nh, :nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return canvas, s


def to_tensor(canvas_bgr):
    return cv2.cvtColor(canvas_bgr, cv2.COLOR_BGR2RGB).astype(np.float32).transpose(2, 0, 1) / 255.0


def boxes_by_action(path):
    """action -> frame stem -> boxes, of a label file: plates added by eye
    (`models/labels/vn_riders.corrections.tsv`, action add_plate) or mined in the training frames
    (`models/labels/vn_riders.train_plates.tsv`, add_plate / ignore; see mine_plates.py; the second eye pass in
    `vn_riders.train_plates_2.tsv` also has background, for an earlier candidate that is no plate)."""
    out = {}
    for line in pathlib.Path(path).read_text().splitlines():
        f = line.split("\t")
        if line.startswith("#") or len(f) < 6 or f[0] == "frame":
            continue
        out.setdefault(f[1], {}).setdefault(f[0], []).append(tuple(float(v) for v in f[2:6]))
    return out


def added_plates(path, action="add_plate"):
    """frame stem -> the boxes of one action in a label file (`boxes_by_action`)."""
    return boxes_by_action(path).get(action, {})


def detector_boxes(shared, work, stems):
    """frame stem -> {"found": vehicle boxes as the agent's detectors see them (the project's motorcyclist
    detector and YOLOX-Nano's vehicles, reference pre/post-processing in models/reference), "cars": YOLOX-Nano's
    cars, buses and trucks}, cached in the work folder. The agent crops these boxes, not the labelled ones, which
    sit tighter: training on them teaches the plate detector the crops it will be given."""
    cache = pathlib.Path(work) / "detector_boxes_v2.json"
    if not cache.exists():
        # In a process of its own: ONNX Runtime's thread pools in this one would hang the batch workers it forks.
        child = multiprocessing.get_context("spawn").Process(target=_write_detector_boxes,
                                                             args=(shared, str(cache), stems))
        child.start()
        child.join()
        if child.exitcode != 0:
            sys.exit(f"finding the detector boxes failed (exit {child.exitcode})")
    return json.loads(cache.read_text())


def _write_detector_boxes(shared, cache, stems):
    import onnxruntime as ort
    import rider_reference
    import yolox_reference
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    riders = ort.InferenceSession(str(rider_reference.MODEL), opts)
    yolox = ort.InferenceSession(str(pathlib.Path(shared) / "models/vehicle/yolox_nano_coco_416.onnx"), opts)
    out = {}
    for stem in stems:
        img = cv2.imread(str(pathlib.Path(shared) / "data/vn_riders/images" / f"{stem}.jpg"))
        if img is None:
            continue
        vehicles = yolox_reference.detect(yolox, img)
        boxes = [d["box"] for d in rider_reference.detect(riders, img)] + [d["box"] for d in vehicles]
        out[stem] = {"found": [b for b in boxes if b[2] - b[0] >= 48],
                     "cars": [d["box"] for d in vehicles
                              if d["class"] in ("car", "bus", "truck") and d["box"][2] - d["box"][0] >= 80]}
    pathlib.Path(cache).write_text(json.dumps(out))


MINED_FILE = str(HERE.parent / "labels/vn_riders.train_plates.tsv")


class Frames:
    def __init__(self, shared, split, work, corrections=False, mined=False, mined_files=(MINED_FILE,)):
        clips = datasets.rider_clips(shared)
        added = added_plates(HERE.parent / "labels/vn_riders.corrections.tsv") if corrections else {}
        # Only training frames are in the mined files; validation frames keep their labels checked by eye.
        mined_plates, self.unsure, background = {}, {}, {}
        for mined_file in mined_files if mined else ():
            by_action = boxes_by_action(mined_file)
            for into, action in ((mined_plates, "add_plate"), (self.unsure, "ignore"), (background, "background")):
                # "ignore": candidates nobody could confirm, neither plate nor background.
                for stem, boxes in by_action.get(action, {}).items():
                    into.setdefault(stem, []).extend(boxes)
        # A later file's eye check of an earlier file's candidate (the same box, as a plate or as no plate) wins.
        for stem, boxes in self.unsure.items():
            settled = set(mined_plates.get(stem, [])) | set(background.get(stem, []))
            boxes[:] = [b for b in boxes if b not in settled]
        stems = sorted(clips)
        found = detector_boxes(shared, work, stems)
        self.items = []
        for stem in stems:
            if clips[stem][1] != split:
                continue
            img = cv2.imread(str(pathlib.Path(shared) / "data/vn_riders/images" / f"{stem}.jpg"))
            if img is None:
                continue
            labels = datasets.rider_labels(shared, stem)
            plates = [l[1:] for l in labels if l[0] == 1] + added.get(stem, []) + mined_plates.get(stem, [])
            riders = [l[1:] for l in labels if l[0] == 2]
            boxes = found.get(stem, {})
            self.items.append((stem, img, plates, riders, boxes.get("found", []), boxes.get("cars", [])))


def plate_target(box, corners=None):
    x1, y1, x2, y2 = box
    if corners is None:
        corners = [x1, y1, x2, y1, x2, y2, x1, y2]
    two = 1.0 if (x2 - x1) / max(1e-3, y2 - y1) < TWO_ROW_ASPECT_BELOW else 0.0
    return [x1, y1, x2, y2, *corners, two]


def vehicle_region(box, margin=0.1):
    """A vehicle's box grown by `margin` of its size on each side: the crop the agent cuts for plate detection."""
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    return (x1 - mx, y1 - my, x2 + mx, y2 + my)


def crop_sample(rng, img, plates, region, unsure=()):
    """Cuts `region` (x1,y1,x2,y2) out of the frame; plates -> targets in crop pixels (whole plates only), or
    'ignore' boxes for plates cut off and for `unsure` boxes (neither taught as a plate nor as background)."""
    H, W = img.shape[:2]
    x1, y1, x2, y2 = [int(round(v)) for v in region]
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(W, x2), min(H, y2)
    if x2 - x1 < 8 or y2 - y1 < 8:
        return None
    crop = img[y1:y2, x1:x2].copy()
    targets, ignore = [], []
    for p in plates:
        px1, py1, px2, py2 = p[:4]
        ix = max(0, min(px2, x2) - max(px1, x1)) * max(0, min(py2, y2) - max(py1, y1))
        area = (px2 - px1) * (py2 - py1)
        shifted = [px1 - x1, py1 - y1, px2 - x1, py2 - y1]
        if area > 0 and ix / area > 0.95:
            corners = None if len(p) == 4 else [c - (x1 if i % 2 == 0 else y1) for i, c in enumerate(p[4:12])]
            targets.append(plate_target(shifted, corners))
        elif ix > 0:
            ignore.append(shifted)
    for ux1, uy1, ux2, uy2 in unsure:
        if min(ux2, x2) > max(ux1, x1) and min(uy2, y2) > max(uy1, y1):
            ignore.append([ux1 - x1, uy1 - y1, ux2 - x1, uy2 - y1])
    return crop, targets, ignore


def paste_synthetic(rng, crop, targets, fonts):
    """A synthetic plate in perspective somewhere in the crop; its exact corners become a target."""
    plate, _, rows = vnplate.render(rng, font_paths=fonts)
    h, w = crop.shape[:2]
    pw = rng.uniform(0.12, 0.45) * w
    ph = pw * plate.shape[0] / plate.shape[1]
    if ph > 0.5 * h or pw < 10:
        return
    cx, cy = rng.uniform(pw / 2 + 2, w - pw / 2 - 2), rng.uniform(ph / 2 + 2, h - ph / 2 - 2)
    ang = math.radians(rng.uniform(-12, 12))
    j = 0.12
    base = [(-pw / 2, -ph / 2), (pw / 2, -ph / 2), (pw / 2, ph / 2), (-pw / 2, ph / 2)]
    dst = []
    for bx, by in base:
        bx, by = bx * (1 + rng.uniform(-j, j)), by * (1 + rng.uniform(-j, j))
        dst.append((cx + bx * math.cos(ang) - by * math.sin(ang), cy + bx * math.sin(ang) + by * math.cos(ang)))
    dst = np.float32(dst)
    src = np.float32([[0, 0], [plate.shape[1], 0], [plate.shape[1], plate.shape[0]], [0, plate.shape[0]]])
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(plate, m, (w, h))
    mask = cv2.warpPerspective(np.full(plate.shape[:2], 255, np.uint8), m, (w, h))
    shade = rng.uniform(0.5, 1.1)
    crop[mask > 127] = np.clip(warped[mask > 127].astype(np.float32) * shade, 0, 255).astype(np.uint8)
    xs, ys = dst[:, 0], dst[:, 1]
    t = plate_target([xs.min(), ys.min(), xs.max(), ys.max()], dst.reshape(-1).tolist())
    t[-1] = 1.0 if len(rows) == 2 else 0.0
    targets.append(t)


def photometric(rng, img):
    if rng.random() < 0.5:
        a, b = rng.uniform(0.5, 1.3), rng.uniform(-35, 30)
        img = np.clip(img.astype(np.float32) * a + b, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.4, 1.5))
    if rng.random() < 0.2:
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(2, 10), img.shape)
        img = np.clip(img.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return img


def make_sample(rng, frames, fonts, train, detector_crops=0.0):
    """One training crop. `detector_crops`: the share of crops cut from the agent's own detector boxes (0 in
    the shipped recipe; the other kinds keep their proportions)."""
    stem, img, plates, riders, found, cars = frames.items[rng.randrange(len(frames.items))]
    # No extra draw when the share is 0, so the shipped recipe's random sequence is unchanged.
    if detector_crops > 0 and found and rng.random() < detector_crops:
        # The agent's crop: a detector's box grown by 10% (jittered a little).
        x1, y1, x2, y2 = rng.choice(found)
        mx, my = (x2 - x1) * rng.uniform(0.07, 0.13), (y2 - y1) * rng.uniform(0.07, 0.13)
        region = (x1 - mx, y1 - my, x2 + mx, y2 + my)
        return finish_sample(rng, img, plates, region, fonts, train, frames.unsure.get(stem, ()))
    r = rng.random()
    if r < 0.35 and riders:
        x1, y1, x2, y2 = rng.choice(riders)
        mx, my = (x2 - x1) * rng.uniform(0.05, 0.15), (y2 - y1) * rng.uniform(0.05, 0.15)
        region = (x1 - mx, y1 - my, x2 + mx, y2 + my)
    elif r < 0.8 and plates:
        px1, py1, px2, py2 = rng.choice(plates)
        pw = px2 - px1
        cw = pw * rng.uniform(2.2, 8.0)
        ch = cw * rng.uniform(0.6, 1.8)
        cx = (px1 + px2) / 2 + rng.uniform(-0.35, 0.35) * (cw - pw)
        cy = (py1 + py2) / 2 - rng.uniform(-0.05, 0.4) * ch
        region = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
    else:
        cw = rng.uniform(80, 500)
        ch = cw * rng.uniform(0.6, 1.8)
        x, y = rng.uniform(0, 1280 - cw), rng.uniform(0, max(1, 720 - ch))
        region = (x, y, x + cw, y + ch)
    return finish_sample(rng, img, plates, region, fonts, train, frames.unsure.get(stem, ()))


def finish_sample(rng, img, plates, region, fonts, train, unsure=()):
    """Cuts `region`, augments it for training, letterboxes it: (canvas, targets, ignore boxes)."""
    got = crop_sample(rng, img, plates, region, unsure)
    if got is None:
        return None
    crop, targets, ignore = got
    if train:
        if rng.random() < 0.25:
            paste_synthetic(rng, crop, targets, fonts)
        # A camera 5-8 m up sees plates shortened vertically and smaller: squash and shrink.
        if rng.random() < 0.4:
            sy = rng.uniform(0.7, 1.0)
            crop = cv2.resize(crop, (crop.shape[1], max(8, int(crop.shape[0] * sy))))
            for t in targets:
                for i in (1, 3, 5, 7, 9, 11):
                    t[i] *= sy
            ignore = [[a, b * sy, c, d * sy] for a, b, c, d in ignore]
        if targets and rng.random() < 0.4:
            pw = max(t[2] - t[0] for t in targets)
            want = rng.uniform(14, 40)
            if pw > want:
                s = want / pw
                small = cv2.resize(crop, (max(4, int(crop.shape[1] * s)), max(4, int(crop.shape[0] * s))),
                                   interpolation=cv2.INTER_AREA)
                crop = cv2.resize(small, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR)
        crop = photometric(rng, crop)
        # No extra draw when the share is 0, so the shipped recipe's random sequence is unchanged.
        if EXTRA_AUG["salt"] > 0 and rng.random() < EXTRA_AUG["salt"]:
            crop = noise.salt_and_pepper(rng, crop)
    canvas, s = letterbox(crop)
    targets = [[v * s for v in t[:12]] + [t[12]] for t in targets]
    ignore = [[v * s for v in b] for b in ignore]
    return canvas, targets, ignore


def build_targets(targets, ignore):
    """Per-cell training targets: objectness (1 at cells near a plate's centre), mask, box, corners, layout."""
    obj = np.zeros((GRID, GRID), np.float32)
    weight = np.ones((GRID, GRID), np.float32)
    reg = np.zeros((13, GRID, GRID), np.float32)
    pos = np.zeros((GRID, GRID), bool)
    for b in ignore:
        gx1, gy1 = int(max(0, b[0] // STRIDE)), int(max(0, b[1] // STRIDE))
        gx2, gy2 = int(min(GRID - 1, b[2] // STRIDE)), int(min(GRID - 1, b[3] // STRIDE))
        weight[gy1:gy2 + 1, gx1:gx2 + 1] = 0
    for t in sorted(targets, key=lambda t: -(t[2] - t[0]) * (t[3] - t[1])):
        x1, y1, x2, y2 = t[:4]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        rx = max(STRIDE * 0.6, (x2 - x1) * 0.2)
        ry = max(STRIDE * 0.6, (y2 - y1) * 0.2)
        for gy in range(max(0, int((cy - ry) // STRIDE)), min(GRID, int((cy + ry) // STRIDE) + 1)):
            for gx in range(max(0, int((cx - rx) // STRIDE)), min(GRID, int((cx + rx) // STRIDE) + 1)):
                ccx, ccy = (gx + 0.5) * STRIDE, (gy + 0.5) * STRIDE
                if not (x1 < ccx < x2 and y1 < ccy < y2):
                    continue
                obj[gy, gx] = 1
                weight[gy, gx] = 1
                pos[gy, gx] = True
                reg[:, gy, gx] = [x1, y1, x2, y2, *t[4:12], t[12]]
    return obj, weight, reg, pos


def batch(rng, frames, fonts, n, train, detector_crops=0.0):
    xs, objs, ws, regs, poss = [], [], [], [], []
    while len(xs) < n:
        s = make_sample(rng, frames, fonts, train, detector_crops)
        if s is None:
            continue
        canvas, targets, ignore = s
        o, w, r, p = build_targets(targets, ignore)
        xs.append(to_tensor(canvas))
        objs.append(o), ws.append(w), regs.append(r), poss.append(p)
    t = lambda a: torch.from_numpy(np.stack(a))
    return t(xs), t(objs), t(ws), t(regs), t(poss)


# What the batch-making workers read (set before the pool forks, shared copy-on-write).
_WORKER_DATA = {}


def _batch_job(job):
    """One training batch from its own seed: the same batch whichever worker makes it."""
    seed, epoch, index, n, detector_crops = job
    rng = random.Random(seed * 1_000_003 + epoch * 10_007 + index)
    return batch(rng, _WORKER_DATA["train"], _WORKER_DATA["fonts"], n, True, detector_crops)


def giou(a, b):
    ix1, iy1 = torch.max(a[:, 0], b[:, 0]), torch.max(a[:, 1], b[:, 1])
    ix2, iy2 = torch.min(a[:, 2], b[:, 2]), torch.min(a[:, 3], b[:, 3])
    inter = (ix2 - ix1).clamp(0) * (iy2 - iy1).clamp(0)
    area = lambda x: (x[:, 2] - x[:, 0]).clamp(0) * (x[:, 3] - x[:, 1]).clamp(0)
    union = area(a) + area(b) - inter + 1e-6
    cx1, cy1 = torch.min(a[:, 0], b[:, 0]), torch.min(a[:, 1], b[:, 1])
    cx2, cy2 = torch.max(a[:, 2], b[:, 2]), torch.max(a[:, 3], b[:, 3])
    c = (cx2 - cx1) * (cy2 - cy1) + 1e-6
    iou = inter / union
    return iou - (c - union) / c, iou


def loss_fn(out, obj, weight, reg, pos):
    box, corners, _, _ = decode_maps(out)
    logits = out[:, 0]
    p = torch.sigmoid(logits)
    bce = F.binary_cross_entropy_with_logits(logits, obj, reduction="none")
    focal = bce * ((obj - p).abs() ** 2) * weight
    npos = pos.sum().clamp(min=1)
    l_obj = focal.sum() / npos
    if pos.any():
        pb = box.permute(0, 2, 3, 1)[pos]
        tb = reg[:, :4].permute(0, 2, 3, 1)[pos]
        g, _ = giou(pb, tb)
        l_box = (1 - g).mean()
        size = torch.stack([tb[:, 2] - tb[:, 0], tb[:, 3] - tb[:, 1]] * 4, 1).clamp(min=4)
        pc = corners.permute(0, 2, 3, 1)[pos]
        tc = reg[:, 4:12].permute(0, 2, 3, 1)[pos]
        l_corner = (F.smooth_l1_loss(pc / size, tc / size, reduction="none")).mean()
        l_cls = F.binary_cross_entropy_with_logits(out[:, 13].permute(0, 1, 2)[pos], reg[:, 12][pos])
    else:
        l_box = l_corner = l_cls = out.sum() * 0
    return l_obj + 2 * l_box + l_corner + 0.5 * l_cls, (l_obj.item(), l_box.item(), l_corner.item(), l_cls.item())


# ---------------------------------------------------------------- evaluation
def nms(dets, thr=0.5):
    dets = sorted(dets, key=lambda d: -d[0])
    keep = []
    for d in dets:
        if all(box_iou(d[1], k[1]) <= thr for k in keep):
            keep.append(d)
    return keep


def detect(model, crops, threshold):
    """Plates in each crop (crop pixels): [(score, box, corners, two_row_prob)]. `model`: the torch model, or
    an onnxruntime session of an exported one."""
    canv = [letterbox(c) for c in crops]
    x = np.stack([to_tensor(c) for c, _ in canv])
    if hasattr(model, "run"):
        rows = np.concatenate([model.run(None, {"input": x[i:i + 1]})[0] for i in range(len(x))])
    else:
        device = next(model.parameters()).device
        with torch.no_grad():
            rows = Exported(model)(torch.from_numpy(x).to(device)).cpu().numpy()
    out = []
    for r, (_, s) in zip(rows, canv):
        dets = []
        for row in r[r[:, 4] >= threshold]:
            score = row[4] * max(row[13], row[14])
            if score < threshold:
                continue
            cx, cy, w, h = row[:4] / s
            dets.append((float(score), [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], row[5:13] / s, row[14]))
        out.append(nms(dets))
    return out


def validate(model, frames, threshold=0.4, on="labelled"):
    """Recall and precision at IoU 0.5 in motorcyclist crops of validation clips (box + 10%), plates >= 16 px
    wide inside a crop. `on`: `labelled` motorcyclist boxes (the shipped recipe), or `detector` boxes (the crops
    the agent makes; a plate in two overlapping crops counts in each), or `labelled+cars`: the labelled
    motorcyclists and YOLOX-Nano's cars, buses and trucks (car plates are one-row plates the riders lack)."""
    if hasattr(model, "eval"):
        model.eval()
    tp = fp = fn = 0
    for stem, img, plates, riders, found, cars in frames.items:
        boxes = found if on == "detector" else riders + (cars if on == "labelled+cars" else [])
        regions = [vehicle_region(b) for b in boxes]
        samples = [crop_sample(None, img, plates, r) for r in regions]
        samples = [(r, s) for r, s in zip(regions, samples) if s is not None]
        if not samples:
            continue
        per_crop = detect(model, [s[0] for _, s in samples], threshold)
        for (region, (crop, targets, _)), dets in zip(samples, per_crop):
            gts = [t[:4] for t in targets if t[2] - t[0] >= 16]
            used = set()
            for d in dets:
                m = max(range(len(gts)), key=lambda i: box_iou(d[1], gts[i]), default=None)
                if m is not None and m not in used and box_iou(d[1], gts[m]) >= 0.5:
                    used.add(m)
                    tp += 1
                else:
                    fp += 1
            fn += len(gts) - len(used)
    if hasattr(model, "train"):
        model.train()
    rec = tp / max(1, tp + fn)
    prec = tp / max(1, tp + fp)
    return rec, prec, tp + fn


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--work", default=".local/train/plate_detector")
    ap.add_argument("--epochs", type=int, default=24)
    ap.add_argument("--per-epoch", type=int, default=1920, help="training crops per epoch")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--out", default=str(HERE / "plate_detector.onnx"))
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--export-epoch", choices=["best", "last"], default="best",
                    help="with --export-only: the recipe's best epoch or the last one (v2 is its run's last epoch)")
    ap.add_argument("--score-onnx", help="print an exported model's validation figures (as logged per epoch) and stop")
    ap.add_argument("--detector-crops", type=float, default=0.0,
                    help="share of training crops cut from the agent's detector boxes (experiment; 0 as shipped)")
    ap.add_argument("--val-on", choices=["labelled", "detector", "labelled+cars"], default="labelled",
                    help="validation crops: labelled motorcyclist boxes (as shipped), the agent's detector boxes, "
                         "or labelled motorcyclists and YOLOX-Nano's cars")
    ap.add_argument("--corrections", action="store_true",
                    help="train and validate with the plates added by eye (models/labels/vn_riders.corrections.tsv)")
    ap.add_argument("--mined", action="store_true",
                    help="train with the plates mined in the training frames (models/labels/vn_riders.train_plates.tsv, "
                         "mine_plates.py): checked plates taught, unconfirmed candidates ignored")
    ap.add_argument("--mined-file", nargs="+", default=[MINED_FILE],
                    help="the files --mined reads (default: the shipped recipe's; add "
                         "models/labels/vn_riders.train_plates_2.tsv for the second eye pass, not shipped)")
    ap.add_argument("--device", default="cpu", help="torch device to train on (cuda on a GPU machine)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes making batches (0: the shipped recipe's single random sequence)")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="validate and export an exponential moving average of the weights with this decay (0: off)")
    ap.add_argument("--salt", type=float, default=0.0,
                    help="share of training crops given salt-and-pepper specks at their own resolution (0 as shipped)")
    args = ap.parse_args()
    EXTRA_AUG["salt"] = args.salt
    work, say = training.run_folder(args)
    if args.score_onnx:
        import onnxruntime as ort
        session = ort.InferenceSession(args.score_onnx)
        rec, prec, n = validate(session, Frames(args.shared, "val", work, args.corrections), on=args.val_on)
        say(f"{args.score_onnx}: val_recall {rec:.4f} val_precision {prec:.4f} "
            f"f1 {2 * rec * prec / max(1e-9, rec + prec):.4f} plates {n}")
        return

    if args.export_only:
        export(work, args.out, args.export_epoch)
        return
    train = Frames(args.shared, "train", work, args.corrections, args.mined, args.mined_file)
    val = Frames(args.shared, "val", work, args.corrections)
    fonts = vnplate._fonts()
    # Forked before anything touches the GPU; the workers only crop, paste and augment.
    _WORKER_DATA.update(train=train, fonts=fonts)
    pool = training.worker_pool(args.workers)
    device = torch.device(args.device)
    model = PlateNet()
    loaded = load_backbone(model, args.shared)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    ema = training.Ema(model, args.ema) if args.ema > 0 else None
    start, best = training.resume(work, model, opt, say, ema=ema, map_location=device)
    say(f"data: train frames {len(train.items)}, val frames {len(val.items)}; backbone tensors loaded {loaded}; "
        f"params {sum(p.numel() for p in model.parameters())}; device {device}; workers {args.workers}")
    bs = 32
    for epoch in range(start, args.epochs):
        rng = random.Random(args.seed * 1000 + epoch)
        lr = 3e-3 * 0.5 * (1 + math.cos(math.pi * epoch / args.epochs)) + 3e-5
        if epoch == 0:
            lr = 1e-3
        for g in opt.param_groups:
            g["lr"] = lr
        t0, parts = time.time(), []
        steps = args.per_epoch // bs
        if pool is not None:
            jobs = [(args.seed, epoch, i, bs, args.detector_crops) for i in range(steps)]
            made = pool.imap(_batch_job, jobs, chunksize=2)
        else:
            made = (batch(rng, train, fonts, bs, True, args.detector_crops) for _ in range(steps))
        for x, obj, w, reg, pos in made:
            x, obj, w, reg, pos = (t.to(device) for t in (x, obj, w, reg, pos))
            loss, part = loss_fn(model(x), obj, w, reg, pos)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            if ema is not None:
                ema.update(model)
            parts.append(part)
        judged = ema.model if ema is not None else model
        rec, prec, n = validate(judged, val, on=args.val_on)
        f = 2 * rec * prec / max(1e-9, rec + prec)
        m = np.mean(parts, 0)
        say(f"epoch {epoch} lr {lr:.5f} obj {m[0]:.4f} box {m[1]:.4f} corner {m[2]:.4f} cls {m[3]:.4f} "
            f"val_recall {rec:.4f} val_precision {prec:.4f} f1 {f:.4f} plates {n} secs {time.time() - t0:.0f}")
        if f >= best:
            best = f
            torch.save({k: v.cpu() for k, v in judged.state_dict().items()}, work / "best.pt")
        training.checkpoint(work, model, opt, epoch, best, ema=ema)
    export(work, args.out)
    say(f"exported best (val f1 {best:.4f}) to {args.out}")


def export(work, out, epoch="best"):
    model = PlateNet()
    if epoch == "last":
        model.load_state_dict(torch.load(pathlib.Path(work) / "last.pt", weights_only=False)["model"])
    else:
        model.load_state_dict(torch.load(pathlib.Path(work) / "best.pt"))
    model.eval()
    torch.onnx.export(Exported(model), torch.zeros(1, 3, SIZE, SIZE), out, input_names=["input"],
                      output_names=["output"], opset_version=17, dynamo=False)


if __name__ == "__main__":
    main()
