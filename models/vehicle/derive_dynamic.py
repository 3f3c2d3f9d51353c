#!/usr/bin/env python3
"""Derives the rectangular-input vehicle model from the team's pinned YOLOX-Nano file (run by scripts/setup).

The shared file declares a square [1,3,416,416] input. YOLOX itself is fully convolutional (its Reshapes are
[1,85,-1], its Resizes use scales), so the same weights run on any input whose sides are multiples of 32; only
the declared shapes stop ONNX Runtime from accepting one. This names the input's height and width (and the
output's cell count) instead of fixing them, and drops the recorded intermediate shapes (ONNX Runtime infers
them again). Weights and nodes are untouched; the result is byte-for-byte reproducible with the pinned `onnx`
package, so its sha256 is pinned in models/manifest.toml like any other model.

    python models/vehicle/derive_dynamic.py SHARED_MODELS_DIR OUT_DIR
"""
import hashlib
import pathlib
import sys

import onnx

SOURCE = "vehicle/yolox_nano_coco_416.onnx"
SOURCE_SHA256 = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"
TARGET = "vehicle/yolox_nano_coco_dyn.onnx"


def name_dim(dim, name):
    dim.ClearField("dim_value")
    dim.dim_param = name


def main():
    source = pathlib.Path(sys.argv[1]) / SOURCE
    target = pathlib.Path(sys.argv[2]) / TARGET
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SOURCE_SHA256:
        sys.exit(f"{source}: sha256 {digest}, expected the pinned {SOURCE_SHA256}")
    model = onnx.load_from_string(data)
    (images,) = model.graph.input
    (output,) = model.graph.output
    dims = images.type.tensor_type.shape.dim
    if [d.dim_value for d in dims] != [1, 3, 416, 416]:
        sys.exit(f"unexpected input shape {[d.dim_value for d in dims]}")
    name_dim(dims[2], "height")
    name_dim(dims[3], "width")
    name_dim(output.type.tensor_type.shape.dim[1], "cells")
    del model.graph.value_info[:]
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    print(f"{target} sha256 {hashlib.sha256(target.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
