"""The team's datasets, loaded once, and their validation splits (never trained on).

- vn_plates: split by plate: every crop of one plate text stays on one side. The name prefixes (`3xemay`,
  `12xemay`) are not independent sources: 855 of the 1,403 usable crops are linked through shared plates, so
  splitting by prefix would put most of the set on one side; the plate (one vehicle, seen in several frames)
  is the near-duplicate unit.
- vn_riders: split by source (`rider_source`): a phone clip, the whole `IMG_52xx_mp4` session, one photo with its
  Roboflow copies, or a block of the gate camera's frames. `clips.tsv` names one clip per frame outside the phone
  clips, and splitting by its names put frames of one video, and copies of one photo, on both sides (found
  2026-12-07; fixed 2026-12-07, tenth session).
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


# The gate camera (`image_<n>`, 145 frames numbered in the order they were filmed) is one fixed view: it is
# split in blocks of frame numbers, and a rider crosses the view in a few numbers (199-201, 218-221, 238-240 and
# 277-280 hold one rider each, looked at by eye), so training leaves out its frames this close to a validation
# block.
GATE_BLOCK = 20
GATE_GUARD = 5


def _gate_number(clip):
    """The frame number of a gate-camera clip (`image_<n>`), or None."""
    gate = re.match(r"^image_(\d+)$", clip)
    return int(gate.group(1)) if gate else None


def rider_source(clip):
    """The recording a vn_riders clip comes from; frames of one source share vehicles, so it is the split's unit.
    - gate camera `image_<n>`: a block of GATE_BLOCK frame numbers;
    - `Image<k>_JPG.rf.<hash>.jpg`: Roboflow's augmented copies of one photo `Image<k>_JPG`;
    - `IMG_52xx_mp4-<n>`: one session of short videos at one gate (`30-N1 9500` is in three of them);
    - phone clips `IMG_5xxx_MOV`: the clip."""
    gate = _gate_number(clip)
    if gate is not None:
        return f"image_block{gate // GATE_BLOCK}"
    photo = re.match(r"^(Image\d+_JPG)", clip)
    if photo:
        return photo.group(1)
    if re.match(r"^IMG_\d+_mp4", clip):
        return "IMG_mp4"
    return clip


def rider_clips(shared):
    """frame stem -> (clip, split); split is "train", "val", or "guard" (gate frames next to a validation block:
    in neither side)."""
    root = pathlib.Path(shared) / "data/vn_riders"
    out = {}
    for line in (root / "clips.tsv").read_text().splitlines()[1:]:
        frame, clip = line.split("\t")
        out[frame] = (clip, "val" if _in_val(rider_source(clip), 0.25) else "train")
    gate = {n: frame for frame, (clip, _) in out.items() if (n := _gate_number(clip)) is not None}
    val_gate = [n for n, frame in gate.items() if out[frame][1] == "val"]
    for n, frame in gate.items():
        if out[frame][1] == "train" and any(abs(n - v) <= GATE_GUARD for v in val_gate):
            out[frame] = (out[frame][0], "guard")
    return out


def write_val_clips(shared, path):
    """Writes the validation clips, one per line, for `edge-agent eval --only-clips`."""
    clips = sorted({clip for clip, split in rider_clips(shared).values() if split == "val"})
    pathlib.Path(path).write_text(
        "# vn_riders clips held out for validation (models/common/datasets.py: a fixed hash of each clip's source,\n"
        "# rider_source); never trained on. Written by `python models/common/datasets.py --write-val-clips`.\n"
        + "".join(f"{c}\n" for c in clips))


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


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--write-val-clips", metavar="FILE", help="write the vn_riders validation clips to FILE")
    args = ap.parse_args()
    if args.write_val_clips:
        write_val_clips(args.shared, args.write_val_clips)
