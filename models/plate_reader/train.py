#!/usr/bin/env python3
"""Trains the project's Vietnamese plate reader (a small CRNN with a CTC head) and exports it to ONNX.

One command (from the repository root, with the training venv of models/README.md):

    .local/train-venv/bin/python models/plate_reader/train.py --shared ../shared --threads 2
    python3 models/plate_reader/train.py --shared <shared> --threads 4 --workers 12 --device cuda   # on a GPU (8 min)

Two stages in one run: 40 epochs from scratch in `--work`, then 14 epochs of fine-tuning from the first stage's
best in `--work/stage2`, where pictures that must read as nothing (plates blurred past legibility, background)
are added. Each stage resumes from its `last.pt` when it exists and logs figures per epoch to its `train.log`.
Writes
`models/plate_reader/plate_reader.onnx` from the second stage's best validation epoch. Fixed seeds; the
validation split (`models/common/datasets.py`, listed in `val_crops.txt`) is never trained on.

Input (the agent's `PlateReader` does the same in Rust): an upright plate picture; a two-row plate is cut into a
top band (upper 55%) and a bottom band (lower 55%); each band is resized (bilinear) to height 32 keeping its
aspect, the bands are laid side by side, squeezed to 160 if wider, BGR, (v/255 - 0.5)/0.5, zero padded to
[1, 3, 32, 160]. Output `probs` [1, 40, 32]: per step softmax over blank + the 31 plate characters.
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
import torch.nn.functional as F

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
import datasets  # noqa: E402
import noise  # noqa: E402
import plate_input  # noqa: E402
import training  # noqa: E402
import vnplate  # noqa: E402

sys.path.insert(0, str(HERE))
import char_mix  # noqa: E402
import ppocr_tiny  # noqa: E402

H, W = 32, 160
STEPS = W // 4
CLASSES = 1 + len(vnplate.ALPHABET)
ARCHS = ("crnn", "ppocr-tiny")


def configure(arch):
    """The input height of an architecture (set before any worker forks: compose reads it)."""
    global H
    H = ppocr_tiny.HEIGHT if arch == "ppocr-tiny" else 32


def make_model(args):
    if args.arch == "ppocr-tiny":
        return ppocr_tiny.PpocrTinyReader(CLASSES, pathlib.Path(args.work).parent / "cache")
    return Reader(tuple(int(w) for w in args.widths.split(",")))


ROW_GAP = 0  # set from --row-gap before any worker forks


def compose(bgr, two_rows):
    return plate_input.compose(bgr, two_rows, H, W, ROW_GAP)


def two_rows_of(text):
    return "/" in text


def two_rows_by_aspect(img):
    """The agent's layout rule for a plate picture without a label: narrower than 2.6 x its height is two rows."""
    return img.shape[1] / max(1, img.shape[0]) < 2.6


# The shipped CRNN's channels: six 3x3 convs, then the 2x1 conv that makes one row of features for the GRU.
WIDTHS = (24, 48, 96, 96, 128, 128, 160)


class Reader(nn.Module):
    def __init__(self, widths=WIDTHS):
        super().__init__()

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        a, b, c, d, e, f, g = widths
        self.features = nn.Sequential(
            *block(3, a), nn.MaxPool2d(2),              # 16 x 80
            *block(a, b), nn.MaxPool2d(2),             # 8 x 40
            *block(b, c), *block(c, d), nn.MaxPool2d((2, 1)),   # 4 x 40
            *block(d, e), *block(e, f), nn.MaxPool2d((2, 1)),  # 2 x 40
            nn.Conv2d(f, g, (2, 1), bias=False), nn.BatchNorm2d(g), nn.ReLU(inplace=True),  # 1 x 40
        )
        self.rnn = nn.GRU(g, 80, bidirectional=True, batch_first=True)
        self.head = nn.Linear(160, CLASSES)

    def forward(self, x):
        f = self.features(x).squeeze(2).permute(0, 2, 1)  # B, T, C
        f, _ = self.rnn(f)
        return self.head(f)  # logits B, T, CLASSES


class Exported(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return torch.softmax(self.m(x), dim=-1)


def encode(text):
    return [1 + vnplate.ALPHABET.index(c) for c in vnplate.compact(text)]


def decode(probs, first_width=None):
    """Greedy CTC: (text, min char prob)."""
    best = probs.argmax(-1)
    out, confs, prev = [], [], 0
    for t, c in enumerate(best.tolist()):
        if c != 0 and c != prev:
            out.append(vnplate.ALPHABET[c - 1])
            confs.append(float(probs[t, c]))
        prev = c
    return "".join(out), (min(confs) if confs else 0.0)


def augment(rng, img, strong=True, two_rows=True, tall=False, salt=0.0, shear=0.0):
    h, w = img.shape[:2]
    # The rectifier's margins: a little of the surroundings, or a little cut off.
    m = lambda lo, hi, n: int(rng.uniform(lo, hi) * n)
    top, bottom, left, right = m(-0.04, 0.12, h), m(-0.04, 0.12, h), m(-0.03, 0.08, w), m(-0.03, 0.08, w)
    if tall and not two_rows and rng.random() < 0.5:
        # The agent cuts a one-row plate with 30% of its height above and below its corners (recognizer.rs),
        # and the detector's corners sit anywhere from the characters to the plate's frame.
        top, bottom = m(0.0, 0.4, h), m(0.0, 0.4, h)
    pad = cv2.copyMakeBorder(img, max(0, top), max(0, bottom), max(0, left), max(0, right),
                             cv2.BORDER_REPLICATE if rng.random() < 0.5 else cv2.BORDER_CONSTANT,
                             value=tuple(int(rng.uniform(0, 255)) for _ in range(3)))
    y0, y1 = max(0, -top), pad.shape[0] - max(0, -bottom)
    x0, x1 = max(0, -left), pad.shape[1] - max(0, -right)
    img = pad[y0:y1, x0:x1]
    h, w = img.shape[:2]
    if two_rows and rng.random() < shear:
        # A leaning two-row plate (seen from the side): the detector learnt corners from axis-aligned boxes, so the
        # agent's cut keeps the lean, and the bottom row's first digit sits at the cut's edge (reader card).
        k = rng.uniform(-0.3, 0.3)
        # Widened by the lean, so that no character is pushed out of the picture.
        mat = np.float32([[1, k, max(0.0, -k * h)], [0, 1, 0]])
        img = cv2.warpAffine(img, mat, (w + int(abs(k) * h), h), borderMode=cv2.BORDER_REPLICATE)
        h, w = img.shape[:2]
    if strong and rng.random() < 0.5:
        ang = rng.uniform(-4, 4)
        mat = cv2.getRotationMatrix2D((w / 2, h / 2), ang, 1.0)
        img = cv2.warpAffine(img, mat, (w, h), borderMode=cv2.BORDER_REPLICATE)
    if strong and rng.random() < 0.3:
        # The evaluation's --blur is a Gaussian on the original picture: train on the same.
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 3.0))
    if rng.random() < 0.3:
        s = rng.uniform(0.3, 0.8)
        small = cv2.resize(img, (max(4, int(w * s)), max(4, int(h * s))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        a, b = rng.uniform(0.6, 1.3), rng.uniform(-30, 30)
        img = np.clip(img.astype(np.float32) * a + b, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if rng.random() < salt:
        img = noise.salt_and_pepper(rng, img)
    return img


def band_mix(rng, a, b):
    """A new real-looking two-row plate: the top row of one real crop over the bottom row of another, so that
    the reader cannot learn the training plates' (series, number) pairs by heart. Both are resized to the first's
    size and cut at half height; the label joins the first's top row and the second's bottom row."""
    (ia, ta), (ib, tb) = a, b
    h, w = ia.shape[:2]
    ib = cv2.resize(ib, (w, h), interpolation=cv2.INTER_LINEAR)
    cut = h // 2
    return np.vstack([ia[:cut], ib[cut:]]), ta.split("/")[0] + "/" + tb.split("/")[1]


_POOLS = {}


def synthetic_pool(n, seed, workers=None):
    """n rendered plates; the same (n, seed) is rendered once per process (both stages use the same pool)."""
    if (n, seed) not in _POOLS:
        _POOLS[(n, seed)] = _render_pool(n, seed, workers)
    return _POOLS[(n, seed)]


POOL_CHUNK = 500


def _render_pool(n, seed, workers=None):
    """Rendered in chunks of POOL_CHUNK plates, each with its own seed (the same pool with or without workers)."""
    jobs = [(min(POOL_CHUNK, n - i), seed * 1000 + i // POOL_CHUNK) for i in range(0, n, POOL_CHUNK)]
    chunks = workers.map(_render_chunk, jobs) if workers is not None else map(_render_chunk, jobs)
    return [plate for chunk in chunks for plate in chunk]


def _render_chunk(job):
    n, seed = job
    rng = random.Random(seed)
    fonts = vnplate._fonts()
    pool = []
    for _ in range(n):
        plate, _, rows = vnplate.render(rng, font_paths=fonts)
        img = vnplate.degrade(rng, plate, rng.uniform(18, 90))
        pool.append((img, "/".join(rows)))
    return pool


def illegible(rng, pool, frames):
    """A picture that must read as nothing: a plate blurred past legibility, or background with no plate.
    Taught with an empty CTC target (all blank), so that the reader says nothing rather than guess."""
    if frames and rng.random() < 0.4:
        img = rng.choice(frames)
        h, w = img.shape[:2]
        pw = rng.uniform(30, 120)
        ph = pw * rng.uniform(0.3, 0.8)
        x, y = rng.uniform(0, w - pw), rng.uniform(0, h - ph)
        return img[int(y):int(y + ph), int(x):int(x + pw)].copy(), ""
    img, text = rng.choice(pool)
    h = img.shape[0]
    char_h = h * (0.36 if "/" in text else 0.68)
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), char_h * rng.uniform(0.45, 0.8))
    else:
        n = max(3, int(char_h * rng.uniform(0.9, 1.6)))
        k = np.zeros((n, n), np.float32)
        k[n // 2, :] = 1.0 / n
        m = cv2.getRotationMatrix2D((n / 2 - 0.5, n / 2 - 0.5), rng.uniform(0, 180), 1.0)
        k = cv2.warpAffine(k, m, (n, n))
        img = cv2.filter2D(img, -1, k / max(1e-6, k.sum()))
    return img, ""


def background_frames(shared):
    """A few vn_riders training frames with their plates painted over, as the source of no-plate patches."""
    out = []
    for stem, (clip, split) in sorted(datasets.rider_clips(shared).items())[::10]:
        if split != "train":
            continue
        img = cv2.imread(str(pathlib.Path(shared) / "data/vn_riders/images" / f"{stem}.jpg"))
        if img is None:
            continue
        for c, x1, y1, x2, y2 in datasets.rider_labels(shared, stem):
            if c == 1:
                cv2.rectangle(img, (int(x1) - 4, int(y1) - 4), (int(x2) + 4, int(y2) + 4), (90, 90, 90), -1)
        out.append(img)
    return out


def _batch(job):
    """One batch, augmented with its own seed (so the result does not depend on how many workers make them)."""
    chunk, seed, strong, (tall, salt, shear) = job
    rng = random.Random(seed)
    xs, ys, lens = [], [], []
    for img, text, *layout in chunk:
        # A crop labelled without its row break carries its layout (by aspect, as the agent reads it).
        two = layout[0] if layout else (two_rows_of(text) if text else two_rows_by_aspect(img))
        img = augment(rng, img, strong, two, tall, salt, shear) if strong is not None else img
        x, _ = compose(img, two)
        xs.append(x)
        t = encode(text)
        ys.extend(t)
        lens.append(len(t))
    return np.stack(xs), ys, lens


def batches(items, rng, bs, strong, workers=None, extra_aug=(False, 0.0, 0.0)):
    """Shuffled batches of (pictures, targets, target lengths); made by `workers` (a multiprocessing pool) when
    given, in order. `extra_aug`: (tall one-row margins, share of pictures with salt-and-pepper specks,
    share of two-row pictures leaned)."""
    order = list(range(len(items)))
    rng.shuffle(order)
    jobs = [([items[j] for j in order[i:i + bs]], rng.randrange(1 << 31), strong, extra_aug)
            for i in range(0, len(order), bs)]
    made = workers.imap(_batch, jobs, chunksize=2) if workers is not None else map(_batch, jobs)
    for xs, ys, lens in made:
        yield torch.from_numpy(xs), torch.tensor(ys), torch.tensor(lens)


def device_of(model):
    return next(model.parameters()).device


def silence(model, items):
    """Share of illegible pictures read as nothing or with a character below 0.4 (the agent's MIN_CHARACTER)."""
    model.eval()
    quiet = 0
    with torch.no_grad():
        x = torch.from_numpy(np.stack([compose(img, two_rows_by_aspect(img))[0] for img, _ in items]))
        for p in torch.softmax(model(x.to(device_of(model))), -1).cpu():
            text, conf = decode(p)
            quiet += int(not text or conf < 0.4)
    model.train()
    return quiet / max(1, len(items))


def state_from_onnx(path, model):
    """The CRNN's weights out of its exported ONNX (to fine-tune a model whose checkpoint is gone): the export
    folded each batch norm into its conv, so the convs take the folded weights and the batch norms become the
    identity plus the folded bias (train with --freeze-bn so that they stay so); the GRU's gates go from ONNX's
    order (update, reset, new) to torch's (reset, update, new)."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(path).graph
    init = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    conv_keys = [k for k in state if k.startswith("features.") and k.endswith(".weight") and state[k].dim() == 4]
    assert len(convs) == len(conv_keys), (len(convs), len(conv_keys))
    for node, key in zip(convs, conv_keys):
        state[key] = init[node.input[1]]
        bn = f"features.{int(key.split('.')[1]) + 1}."
        state[bn + "weight"] = torch.ones_like(state[bn + "weight"])
        state[bn + "bias"] = init[node.input[2]]
        state[bn + "running_mean"] = torch.zeros_like(state[bn + "running_mean"])
        state[bn + "running_var"] = torch.full_like(state[bn + "running_var"], 1.0 - 1e-5)
    gru = next(n for n in graph.node if n.op_type == "GRU")
    w, r, b = (init[name] for name in gru.input[1:4])
    hidden = r.shape[-1]
    reorder = lambda t: torch.cat([t[hidden:2 * hidden], t[:hidden], t[2 * hidden:]])
    for d, suffix in ((0, ""), (1, "_reverse")):
        state[f"rnn.weight_ih_l0{suffix}"] = reorder(w[d])
        state[f"rnn.weight_hh_l0{suffix}"] = reorder(r[d])
        state[f"rnn.bias_ih_l0{suffix}"] = reorder(b[d][:3 * hidden])
        state[f"rnn.bias_hh_l0{suffix}"] = reorder(b[d][3 * hidden:])
    matmul = next(n for n in graph.node if n.op_type == "MatMul")
    state["head.weight"] = init[matmul.input[1]].t().contiguous()
    state["head.bias"] = init["m.head.bias"]
    return state


def freeze_batch_norm(model):
    """Batch norms keep their running statistics in training too (a fine-tuning run from folded weights)."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
            m.train = lambda mode=True, m=m: m
    return model


def evaluate(model, items):
    model.eval()
    right, wrong = 0, []
    with torch.no_grad():
        for i in range(0, len(items), 128):
            chunk = items[i:i + 128]
            x = torch.from_numpy(np.stack([compose(img, two_rows_of(t))[0] for img, t, *_ in chunk]))
            probs = torch.softmax(model(x.to(device_of(model))), -1).cpu()
            for (img, text, *rest), p in zip(chunk, probs):
                read, conf = decode(p)
                if read == vnplate.compact(text):
                    right += 1
                else:
                    wrong.append((rest[0] if rest else "", text, read, conf))
    model.train()
    return right / max(1, len(items)), wrong


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--work", default=".local/train/plate_reader")
    ap.add_argument("--arch", choices=ARCHS, default="crnn",
                    help="crnn: the CRNN from scratch (input 32 high); ppocr-tiny: PP-OCRv6 tiny fine-tuned "
                         "(input 48 high; ppocr_tiny.py)")
    ap.add_argument("--epochs", type=int, default=None, help="stage 1 epochs (default 40 crnn, 20 ppocr-tiny)")
    ap.add_argument("--synthetic", type=int, default=12000, help="synthetic plates rendered once per run")
    ap.add_argument("--synthetic-per-epoch", type=int, default=3000)
    ap.add_argument("--extra", nargs="+", default=["models/labels/vn_riders_plates.tsv"],
                    help="files of plate crops cut from vn_riders frames (train clips only): labelled by agreement "
                         "(the default), or read by eye (models/labels/vn_riders_plates.eye.tsv, not in the "
                         "shipped recipe)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="torch device to train on (cuda on a GPU machine)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes that render and augment pictures (0: in the training process); the pictures "
                         "do not depend on this number")
    ap.add_argument("--seed", type=int, default=17)
    ap.add_argument("--relabelled", default="",
                    help="also train on these vn_plates crops whose machine label is no valid plate, labelled by "
                         "agreement of two readers (label_vn_plates.py: models/labels/vn_plates_relabelled.tsv), "
                         "those on the training side; off by default: tried on 2026-12-05, see the model card")
    ap.add_argument("--out", default=str(HERE / "plate_reader.onnx"))
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--init", default=None,
                    help="start from these weights (a best.pt, or an exported .onnx of the crnn): a fine-tuning run")
    ap.add_argument("--lr", type=float, default=None, help="stage 1 learning rate (default 2e-3 crnn, 1e-3 ppocr-tiny)")
    ap.add_argument("--real-repeat", type=int, default=2, help="times each real training crop is seen per epoch")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="validate and export a moving average of the weights with this decay (0: off; 0.998 with "
                         "--real-repeat 3 was tried and was no better, see train.log)")
    ap.add_argument("--band-mix", type=float, default=1.0,
                    help="per epoch, this many times the real two-row training crops are added as band mixes "
                         "(one crop's top row over another's bottom row)")
    ap.add_argument("--char-mix", type=float, default=0.0,
                    help="per epoch, this many times the real training crops are added as character mixes (1-3 "
                         "characters swapped for other crops' characters of their kind; char_mix.py; off by default)")
    ap.add_argument("--illegible-per-epoch", type=int, default=0,
                    help="pictures that must read as nothing (plates blurred past legibility, background)")
    ap.add_argument("--stage2-epochs", type=int, default=None,
                    help="then fine-tune this many epochs from the first stage's best, in <work>/stage2, with "
                         "--stage2-illegible pictures per epoch that must read as nothing (0: one stage only; default "
                         "14 crnn, 8 ppocr-tiny)")
    ap.add_argument("--freeze-bn", action="store_true",
                    help="batch norms keep their running statistics (with --init FILE.onnx: fine-tuning exported weights)")
    ap.add_argument("--tall-margins", action="store_true",
                    help="half the one-row plates get 0-40%% of their height above and below (the agent's cut)")
    ap.add_argument("--salt", type=float, default=0.0, help="share of pictures with salt-and-pepper specks")
    ap.add_argument("--shear", type=float, default=0.0,
                    help="share of two-row pictures leaned sideways by up to 0.3 of their height")
    ap.add_argument("--row-gap", type=int, default=0,
                    help="zero columns between a two-row plate's bands in the input (the agent's reader must use the same)")
    ap.add_argument("--widths", default=",".join(map(str, WIDTHS)),
                    help="crnn: channels of its six 3x3 convs and of the 2x1 conv before the GRU (seven numbers)")
    ap.add_argument("--stage2-lr", type=float, default=5e-4)
    ap.add_argument("--stage2-illegible", type=int, default=600)
    ap.add_argument("--teacher", default=None,
                    help="an exported CRNN reader (ONNX, shipped widths) whose per-step outputs the model also learns "
                         "(distillation; off by default)")
    ap.add_argument("--distill", type=float, default=1.0, help="weight of the teacher's loss beside CTC")
    ap.add_argument("--distill-temperature", type=float, default=2.0)
    args = ap.parse_args()
    tiny = args.arch == "ppocr-tiny"
    args.epochs = args.epochs if args.epochs is not None else (20 if tiny else 40)
    args.lr = args.lr if args.lr is not None else (1e-3 if tiny else 2e-3)
    args.stage2_epochs = args.stage2_epochs if args.stage2_epochs is not None else (8 if tiny else 14)
    if args.char_mix > 0 and args.row_gap:
        ap.error("--char-mix cannot be combined with --row-gap: its strips are composed without the gap")
    configure(args.arch)
    global ROW_GAP
    ROW_GAP = args.row_gap

    first = pathlib.Path(args.work)
    second = first / "stage2"
    if args.export_only:
        export(args, second if args.stage2_epochs > 0 else first, args.out)
        return
    # Forked before anything touches the GPU; the workers only render and augment.
    args.pool = training.worker_pool(args.workers)
    run_stage(args, first, args.init, args.lr, args.epochs, args.illegible_per_epoch)
    if args.stage2_epochs > 0:
        run_stage(args, second, str(first / "best.pt"), args.stage2_lr, args.stage2_epochs, args.stage2_illegible)
    export(args, second if args.stage2_epochs > 0 else first, args.out)
    print(f"exported to {args.out}")


def run_stage(args, work, init, lr, epochs, illegible_per_epoch):
    """One training stage in its own folder (resumable there); its best weights in <work>/best.pt."""
    stage_args = argparse.Namespace(**{**vars(args), "work": str(work)})
    work, say = training.run_folder(stage_args)
    say(f"# stage in {work}: arch {args.arch}, init {init}, lr {lr}, epochs {epochs}, illegible per epoch {illegible_per_epoch}")

    device = torch.device(args.device)
    model = make_model(args)
    if init and init.endswith(".onnx"):
        model.load_state_dict(state_from_onnx(init, model))
    elif init:
        model.load_state_dict(torch.load(init, map_location="cpu"))
    if args.freeze_bn:
        freeze_batch_norm(model)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    teacher = load_teacher(args.teacher, device) if args.teacher else None
    ema = training.Ema(model, args.ema) if args.ema > 0 else None
    start, best = training.resume(work, model, opt, say, ema=ema, map_location=device)
    if start >= epochs:
        return

    real = datasets.vn_plates(args.shared, HERE.parent / "labels/vn_plates.corrections.tsv")
    train = [(img, t) for _, img, t, s in real if s == "train"]
    val = [(img, t, n) for n, img, t, s in real if s == "val"]
    # The split as a file, so that `edge-agent eval --only-crops` scores the same crops along the agent's path.
    (HERE / "val_crops.txt").write_text(
        "# vn_plates crops of the reader's validation split (models/common/datasets.py), never trained on\n"
        + "".join(f"{n}\n" for n in sorted(n for _, _, n in val)))
    extra = load_extra(args.shared, args.extra) + load_relabelled(args.shared, args.relabelled)
    # Similar shapes only, so that the cut at half height falls between the rows of both.
    two_row_train = [(img, t) for img, t in train if "/" in t and 0.9 < img.shape[1] / max(1, img.shape[0]) < 2.2]
    say(f"data: vn_plates train {len(train)}, val {len(val)}; extra (vn_riders crops of train clips, relabelled "
        f"vn_plates crops of the training side) {len(extra)}")
    aligned = char_mix.align(train) if args.char_mix > 0 else []
    donors = char_mix.index(aligned)
    if aligned:
        say(f"character mixes: {len(aligned)} training crops segmented into characters")
    t0 = time.time()
    workers = args.pool
    pool = synthetic_pool(args.synthetic, args.seed, workers)
    say(f"synthetic pool {len(pool)} in {time.time() - t0:.0f} s; params {sum(p.numel() for p in model.parameters())}")
    frames = background_frames(args.shared) if illegible_per_epoch else []
    # A fixed set of pictures that must read as nothing, never trained on (own seed, own synthetic plates).
    held_rng = random.Random(args.seed + 999)
    held_pool = synthetic_pool(200, args.seed + 999) if illegible_per_epoch else []
    held_out_illegible = [illegible(held_rng, held_pool, frames) for _ in range(300)] if held_pool else []
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    total_steps = epochs
    for epoch in range(start, epochs):
        rng = random.Random(args.seed * 1000 + epoch)
        rate = lr * 0.5 * (1 + math.cos(math.pi * epoch / total_steps)) + 2e-5
        for g in opt.param_groups:
            g["lr"] = rate
        items = train * args.real_repeat + extra + rng.sample(pool, min(len(pool), args.synthetic_per_epoch))
        items += [illegible(rng, pool, frames) for _ in range(illegible_per_epoch)]
        items += [band_mix(rng, rng.choice(two_row_train), rng.choice(two_row_train))
                  for _ in range(int(args.band_mix * len(two_row_train)))]
        if aligned:
            # A strip is the composed input already: trained as one row, it composes back to itself.
            items += [(*char_mix.mix(rng, aligned, donors), False) for _ in range(int(args.char_mix * len(train)))]
        t0, losses = time.time(), []
        for x, y, lens in batches(items, rng, 64, True, workers, (args.tall_margins, args.salt, args.shear)):
            logits = model(x.to(device))
            lp = F.log_softmax(logits, -1).permute(1, 0, 2)
            steps = torch.full((x.shape[0],), STEPS, dtype=torch.long)
            loss = ctc(lp, y.to(device), steps.to(device), lens.to(device))
            if teacher is not None:
                loss = loss + args.distill * distillation(logits, teacher, x.to(device), args.distill_temperature)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            if ema is not None:
                ema.update(model)
            losses.append(loss.item())
        live_acc, _ = evaluate(model, val)
        judged = ema.model if ema is not None else model
        acc, wrong = evaluate(judged, val)
        silent = silence(judged, held_out_illegible) if held_out_illegible else float("nan")
        two = [v for v in val if "/" in v[1]]
        acc2, _ = evaluate(judged, two)
        say(f"epoch {epoch} lr {rate:.5f} loss {np.mean(losses):.4f} val_exact {acc:.4f} val_two_row {acc2:.4f} "
            f"live_val_exact {live_acc:.4f} n_val {len(val)} illegible_silent {silent:.3f} "
            f"secs {time.time() - t0:.0f}")
        if acc >= best:
            best = acc
            torch.save({k: v.cpu() for k, v in judged.state_dict().items()}, work / "best.pt")
            with open(work / "val_misses.tsv", "w") as f:
                f.write("name\tlabel\tread\tmin_char_prob\n")
                for n, t, r, c in wrong:
                    f.write(f"{n}\t{t}\t{r}\t{c:.3f}\n")
        training.checkpoint(work, model, opt, epoch, best, ema=ema)
    say(f"stage done: best val exact {best:.4f}")


def load_teacher(path, device):
    """The teacher of a distillation run: an exported reader of the shipped widths, back in torch (frozen)."""
    teacher = Reader()
    teacher.load_state_dict(state_from_onnx(path, teacher))
    teacher.eval().to(device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def distillation(logits, teacher, x, temperature):
    """KL divergence from the teacher's per-step distribution to the student's, both softened by `temperature`.
    Both models have the same 40 steps over the same picture, so step t of one is step t of the other."""
    with torch.no_grad():
        target = F.softmax(teacher(x) / temperature, -1)
    log_student = F.log_softmax(logits / temperature, -1)
    kl = F.kl_div(log_student.flatten(0, 1), target.flatten(0, 1), reduction="batchmean")
    return kl * temperature * temperature


def load_extra(shared, paths):
    clips = datasets.rider_clips(shared)
    missing = [p for p in paths if not pathlib.Path(p).is_file()]
    if missing:  # a mistyped path must not train silently without its crops
        raise SystemExit(f"--extra: no such file: {', '.join(missing)}")
    lines = [line for p in map(pathlib.Path, paths) for line in p.read_text().splitlines()]
    out = []
    for line in lines:
        f = line.split("\t")
        if line.startswith("#") or len(f) < 7 or f[0] == "name" or f[1] == "-":
            continue
        stem = f[0].rsplit("#", 1)[0]
        if clips.get(stem, ("", "val"))[1] != "train":
            continue
        img = cv2.imread(str(pathlib.Path(shared) / "data/vn_riders/images" / f"{stem}.jpg"))
        if img is None:
            continue
        x1, y1, x2, y2 = map(float, f[2:6])
        crop = img[int(y1):int(math.ceil(y2)), int(x1):int(math.ceil(x2))]
        if crop.size:
            out.append((crop, f[1], two_rows_by_aspect(crop)))
    return out


def load_relabelled(shared, path):
    """vn_plates crops with an invalid machine label that two readers read alike (label_vn_plates.py): those whose
    plate falls on the training side of the split, with their layout by aspect."""
    if not path:
        return []
    out = []
    for line in pathlib.Path(path).read_text().splitlines():
        f = line.split("\t")
        if line.startswith("#") or len(f) < 4 or f[0] == "name" or f[1] == "-":
            continue
        if datasets.plate_in_val(f[1]):
            continue
        img = cv2.imread(str(pathlib.Path(shared) / "data/vn_plates/images" / f"{f[0]}.jpg"), cv2.IMREAD_COLOR)
        if img is not None:
            out.append((img, f[1], two_rows_by_aspect(img)))
    return out


def export(args, work, out):
    model = make_model(args)
    model.load_state_dict(torch.load(pathlib.Path(work) / "best.pt", map_location="cpu"))
    model.eval()
    wrapped = Exported(model).eval()
    torch.onnx.export(wrapped, torch.zeros(1, 3, H, W), out, input_names=["x"], output_names=["probs"],
                      opset_version=17, dynamo=False)
    if ROW_GAP:  # part of the input: the agent's reader takes it from the model (metadata `row_gap`)
        import onnx
        graph = onnx.load(out)
        onnx.helper.set_model_props(graph, {"row_gap": str(ROW_GAP)})
        onnx.save(graph, out)


if __name__ == "__main__":
    main()
