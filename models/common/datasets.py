"""The team's datasets, loaded once, and their validation splits (never trained on).

- vn_plates: split by plate: every crop of one plate text stays on one side. The name prefixes (`3xemay`,
  `12xemay`) are not independent sources: 855 of the 1,403 usable crops are linked through shared plates, so
  splitting by prefix would put most of the set on one side; the plate (one vehicle, seen in several frames)
  is the near-duplicate unit.
- vn_riders: split by phone clip (`clips.tsv`).
Both splits are a fixed hash of the group name: the same on every machine and every run.
"""
import hashlib
import pathlib
import re

import cv2

from vnplate import compact, is_valid

VAL_SHARE = 0.2


def _in_val(key, share=VAL_SHARE):
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def plate_in_val(text):
    """Whether a plate (its text) is on the validation side of the reader's split."""
    return _in_val(compact(text))


def plate_group(name):
    m = re.match(r"^(\d*)([A-Za-z]+)(\d+)$", name)
    if not m:
        return name
    prefix, letters, num = m.groups()
    if letters in ("ndata", "iwt"):
        return f"{letters}{int(num) // 50}"
    return prefix + letters


def load_corrections(path):
    out = {}
    for line in pathlib.Path(path).read_text().splitlines():
        if not line or line.startswith("#") or line.startswith("name\t"):
            continue
        f = line.split("\t")
        out[f[0]] = None if f[2] == "-" else f[2]
    return out


def vn_plates(shared, corrections_path):
    """[(name, bgr image, label text with rows, split)] for every crop whose label is a valid VN plate."""
    root = pathlib.Path(shared) / "data/vn_plates"
    fixes = load_corrections(corrections_path)
    rows = [l.split("\t") for l in (root / "gt.tsv").read_text().splitlines()[1:] if l.strip()]
    items = []
    for f in rows:
        name, text = f[0], f[1]
        if name in fixes:
            if fixes[name] is None:
                continue
            text = fixes[name]
        if not is_valid(text):
            continue
        img = cv2.imread(str(root / "images" / f"{name}.jpg"), cv2.IMREAD_COLOR)
        if img is None:
            continue
        items.append([name, img, text, plate_group(name)])
    return [(n, img, t, "val" if plate_in_val(t) else "train") for n, img, t, _ in items]


def rider_clips(shared):
    """frame stem -> (clip, split)."""
    root = pathlib.Path(shared) / "data/vn_riders"
    out = {}
    for line in (root / "clips.tsv").read_text().splitlines()[1:]:
        frame, clip = line.split("\t")
        out[frame] = (clip, "val" if _in_val(clip, 0.25) else "train")
    return out


def rider_labels(shared, stem):
    """[(class, x1, y1, x2, y2)] in pixels of the 1280x720 frame."""
    path = pathlib.Path(shared) / "data/vn_riders/labels" / f"{stem}.txt"
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        f = line.split()
        if len(f) != 5:
            continue
        c, cx, cy, w, h = int(f[0]), *map(float, f[1:])
        out.append((c, (cx - w / 2) * 1280, (cy - h / 2) * 720, (cx + w / 2) * 1280, (cy + h / 2) * 720))
    return out
