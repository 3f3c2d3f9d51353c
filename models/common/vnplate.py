"""Vietnamese plates for training: the grammar (a copy of `edge-agent/plate`'s templates, kept small) and a
renderer of synthetic plates with the real geometry.

Geometry (Circular 24/2023/TT-BCA): motorbike 190x140 mm on two rows; car 520x110 mm on one row or 330x165 mm
on two rows. Backgrounds: white (private), yellow (commercial), blue (state) with their text colours.
Fonts: OSP-DIN (Debian `fonts-opendin`, the closest free look-alike of the plate typeface) and Barlow Condensed
(npm `@fontsource/barlow-condensed`, OFL). Both are looked up at run time, never committed.
"""
import re

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ALPHABET = "0123456789ABCDEFGHKLMNPRSTUVXYZ"
SERIES_LETTERS = "ABCDEFGHKLMNPRSTUVXYZ"
# Assigned province codes (edge-agent/plate/src/province.rs).
PROVINCES = [c for c in range(11, 100) if c not in (13, 42, 44, 45, 46, 87, 91, 96)]

_TEMPLATES = [r"L\d{5}", r"L\d{4}", r"LL\d{5}", r"LL\d{4}", r"LS\d{5}", r"LS\d{4}", r"LLS\d{5}", r"LLS\d{4}"]
_PATTERNS = [re.compile(r"^\d\d" + "".join({"L": f"[{SERIES_LETTERS}]", "S": "[1-9]"}.get(c, c) for c in t) + "$")
             for t in _TEMPLATES]

FONT_PATHS = [
    "/usr/share/fonts/truetype/opendin/OSP-DIN.ttf",
    ".local/fonts/node_modules/@fontsource/barlow-condensed/files/barlow-condensed-latin-500-normal.woff",
    ".local/fonts/node_modules/@fontsource/barlow-condensed/files/barlow-condensed-latin-600-normal.woff",
]


def compact(text):
    return "".join(c for c in text.upper().replace("Đ", "D") if c.isascii() and c.isalnum())


def is_valid(text):
    """True when the characters of `text` form a Vietnamese civilian plate with an assigned province."""
    c = compact(text)
    return any(p.match(c) for p in _PATTERNS) and int(c[:2]) in PROVINCES


def random_plate(rng, kind):
    """(top row, bottom row or None) as printed, for kind 'moto', 'car1' or 'car2'."""
    prov = rng.choice(PROVINCES)
    digits = lambda n: "".join(rng.choice("0123456789") for _ in range(n))
    number = digits(5) if rng.random() < 0.75 else digits(4)
    shown = f"{number[:3]}.{number[3:]}" if len(number) == 5 else number
    L = lambda: rng.choice(SERIES_LETTERS)
    if kind == "moto":
        r = rng.random()
        series = L() + rng.choice("123456789") if r < 0.8 else (L() + L() if r < 0.93 else "MĐ" + rng.choice("123456789"))
        return f"{prov:02d}-{series}", shown
    series = L() if rng.random() < 0.85 else L() + L()
    if kind == "car1":
        return f"{prov:02d}{series}-{shown}", None
    return f"{prov:02d}{series}", shown


_COLOURS = [((235, 235, 235), (20, 20, 20), 0.75), ((40, 190, 230), (20, 20, 20), 0.12),  # BGR: white, yellow
            ((150, 60, 20), (235, 235, 235), 0.08), ((225, 225, 215), (40, 40, 40), 0.05)]  # blue, grey-white


def _fonts():
    fonts = []
    for p in FONT_PATHS:
        try:
            ImageFont.truetype(p, 40)
            fonts.append(p)
        except OSError:
            pass
    if not fonts:
        raise SystemExit("no plate font found: apt-get install fonts-opendin")
    return fonts


_FONT_CACHE = {}


def _font(path, size):
    key = (path, size)
    if key not in _FONT_CACHE:
        _FONT_CACHE[key] = ImageFont.truetype(path, size)
    return _FONT_CACHE[key]


def _text_block(text, font_path, height, width, colour, bg):
    """The text rendered to fill `width` x `height` (stretched like the condensed plate face)."""
    size = 100
    font = _font(font_path, size)
    l, t, r, b = font.getbbox(text.replace("Đ", "D"))
    img = Image.new("RGB", (r - l + 8, b - t + 8), bg)
    ImageDraw.Draw(img).text((4 - l, 4 - t), text.replace("Đ", "D"), font=font, fill=colour)
    arr = np.asarray(img)
    return cv2.resize(arr, (width, height), interpolation=cv2.INTER_AREA)


def render(rng, kind=None, font_paths=None):
    """A synthetic plate, flat and tight: (BGR uint8 image, compact text, rows)."""
    font_paths = font_paths or _fonts()
    kind = kind or rng.choices(["moto", "car1", "car2"], [0.6, 0.3, 0.1])[0]
    top, bottom = random_plate(rng, kind)
    bg, fg, _ = rng.choices(_COLOURS, [c[2] for c in _COLOURS])[0]
    bg = tuple(int(np.clip(v + rng.uniform(-25, 15), 0, 255)) for v in bg)
    mm = {"moto": (190, 140), "car1": (520, 110), "car2": (330, 165)}[kind]
    scale = 2.0
    W, H = int(mm[0] * scale), int(mm[1] * scale)
    plate = np.full((H, W, 3), bg, np.uint8)
    border = max(2, int(4 * scale * rng.uniform(0.6, 1.2)))
    cv2.rectangle(plate, (border, border), (W - border - 1, H - border - 1), fg, max(1, int(2.5 * scale)))
    font = rng.choice(font_paths)
    inner_x = int(W * rng.uniform(0.05, 0.09))
    if bottom is None:
        h = int(H * rng.uniform(0.62, 0.74))
        w = int((W - 2 * inner_x) * rng.uniform(0.92, 1.0))
        block = _text_block(top, font, h, w, fg, bg)
        y = (H - h) // 2
        x = (W - w) // 2
        plate[y:y + h, x:x + w] = block
        rows = [top]
    else:
        h = int(H * rng.uniform(0.34, 0.40))
        gap = int(H * rng.uniform(0.05, 0.09))
        y0 = (H - 2 * h - gap) // 2
        for i, text in enumerate([top, bottom]):
            frac = rng.uniform(0.7, 0.85) if i == 0 else rng.uniform(0.88, 0.98)
            w = int((W - 2 * inner_x) * frac)
            block = _text_block(text, font, h, w, fg, bg)
            x = (W - w) // 2
            y = y0 + i * (h + gap)
            plate[y:y + h, x:x + w] = block
        rows = [top, bottom]
    return plate, compact("".join(rows)), rows


def degrade(rng, img, target_h):
    """Makes a flat plate look photographed: perspective, size, blur, light, noise, JPEG."""
    h, w = img.shape[:2]
    j = 0.06
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = src + np.float32([[rng.uniform(-j, j) * w, rng.uniform(-j, j) * h] for _ in range(4)])
    m = cv2.getPerspectiveTransform(src, dst)
    out = cv2.warpPerspective(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    scale = target_h / h
    out = cv2.resize(out, (max(8, int(w * scale)), max(8, int(target_h))), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        k = rng.uniform(0.3, 1.0 + min(1.0, target_h / 60))
        out = cv2.GaussianBlur(out, (0, 0), k)
    a, b = rng.uniform(0.55, 1.25), rng.uniform(-30, 30)
    out = np.clip(out.astype(np.float32) * a + b + np.random.default_rng(rng.randrange(1 << 30)).normal(0, rng.uniform(0, 10), out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:  # dirt: a few dark blotches
        for _ in range(rng.randint(1, 4)):
            c = (rng.randrange(out.shape[1]), rng.randrange(out.shape[0]))
            cv2.circle(out, c, rng.randint(1, max(2, out.shape[0] // 8)), tuple(int(rng.uniform(40, 120)) for _ in range(3)), -1)
    q = rng.randint(35, 95)
    ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(enc, cv2.IMREAD_COLOR) if ok else out
