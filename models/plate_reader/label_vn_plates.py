#!/usr/bin/env python3
"""Labels the vn_plates crops whose machine-made label is no valid Vietnamese plate (and that no eye-checked
correction covers), by agreement of PP-OCRv6 small and this project's reader, as `label_riders.py` does for the
vn_riders plates. A crop both read the same, and that the grammar accepts, gets that text (`source` = agree); the
rest is written with `-`. Most of these crops are foreign plates (`iwt`, `PlateBaza`), which get `-`.

    .local/train-venv/bin/python models/plate_reader/label_vn_plates.py --shared ../shared \
        --out models/labels/vn_plates_relabelled.tsv --sheet .local/train/vn_plates_agree.png

`train.py --relabelled <this file>` trains on the agreed ones whose plate falls on the training side of the split
(the same hash of the plate text as every other crop); `edge-agent eval` does not read this file, so the scored
crops do not change.
"""
import argparse
import pathlib
import sys

import cv2

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "common"))
sys.path.insert(0, str(HERE))
import datasets  # noqa: E402
import sheet  # noqa: E402
import vnplate  # noqa: E402
from label_riders import open_readers, pp_read  # noqa: E402
from train import compose, decode, two_rows_by_aspect  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default="../shared")
    ap.add_argument("--model", default=str(HERE / "plate_reader.onnx"))
    ap.add_argument("--pp-ocr", default=".local/models/ocr")
    ap.add_argument("--out", default="models/labels/vn_plates_relabelled.tsv")
    ap.add_argument("--sheet", default=None, help="draw the agreed crops with their text, for checking by eye")
    args = ap.parse_args()
    root = pathlib.Path(args.shared) / "data/vn_plates"
    ours, pp, charset = open_readers(args.model, args.pp_ocr)
    fixes = datasets.load_corrections(HERE.parent / "labels/vn_plates.corrections.tsv")
    rows, agreed = [], []
    for line in (root / "gt.tsv").read_text().splitlines()[1:]:
        f = line.split("\t")
        name, label = f[0], f[1]
        if name in fixes:
            # Checked by eye already: corrected (then valid) or taken out for a reason.
            continue
        if vnplate.is_valid(label):
            continue
        img = cv2.imread(str(root / "images" / f"{name}.jpg"), cv2.IMREAD_COLOR)
        if img is None:
            continue
        two = two_rows_by_aspect(img)
        a = pp_read(pp, charset, img, two)
        x, _ = compose(img, two)
        b, _ = decode(ours.run(None, {"x": x[None]})[0][0])
        ok = a == b and vnplate.is_valid(b)
        side = "val" if datasets.plate_in_val(b) else "train"
        rows.append(f"{name}\t{b if ok else '-'}\t{label}\t{'agree, ' + side if ok else 'pp=' + a + ' ours=' + b}")
        if ok:
            agreed.append((img, f"{name} {b} {side}"))
    pathlib.Path(args.out).write_text(
        "# vn_plates crops whose machine label is no valid Vietnamese plate, read alike by PP-OCRv6 small and the\n"
        "# project's reader (models/plate_reader/label_vn_plates.py); '-' = no agreement, not used. The side is the\n"
        "# split's (a hash of the plate text): only 'train' ones are trained on.\n"
        "name\ttext\tlabel\tsource\n" + "\n".join(rows) + "\n")
    print(f"{len(rows)} crops, {len(agreed)} agreed", file=sys.stderr)
    if args.sheet and agreed:
        sheet.write(args.sheet, [sheet.captioned(img, (200, 120), [caption]) for img, caption in agreed], 8)


if __name__ == "__main__":
    main()
