"""Re-exports a plate detector ONNX with a free input size, from the ONNX itself (the shipped v2 was trained on a
session's CPU and its checkpoint is gone).

The exporter folded each batch norm into the convolution before it, so the weights are loaded into a PlateNet
whose batch norms are the identity and whose convolutions take the folded weights and biases, matched to the
ONNX graph's Conv nodes in the order the network runs them (checked by shape). The output of the new graph at
256 x 256 must equal the old one's (checked on real crops and noise), else nothing is written.

    .local/train-venv/bin/python models/plate_detector/reexport.py models/plate_detector/plate_detector.onnx OUT.onnx
"""
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torch.nn as nn
from onnx import numpy_helper

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import train  # noqa: E402


def folded_platenet(onnx_path):
    graph = onnx.load(onnx_path).graph
    weights = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    model = train.PlateNet()
    # Batch norms become the identity; every convolution gets a bias for the folded one.
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(module, child_name, nn.Identity())
            elif isinstance(child, nn.Conv2d) and child.bias is None:
                setattr(module, child_name, nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size,
                                                      child.stride, child.padding, groups=child.groups, bias=True))
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o: order.append(m))
             for m in model.modules() if isinstance(m, nn.Conv2d)]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, train.SIZE, train.SIZE))
    for h in hooks:
        h.remove()
    if len(order) != len(convs):
        raise SystemExit(f"{len(order)} convolutions run in PlateNet, {len(convs)} in the ONNX graph")
    with torch.no_grad():
        for conv, node in zip(order, convs):
            w = weights[node.input[1]]
            b = weights[node.input[2]] if len(node.input) > 2 else np.zeros(w.shape[0], np.float32)
            if tuple(conv.weight.shape) != w.shape:
                raise SystemExit(f"conv {node.name}: ONNX {w.shape}, PlateNet {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w))
            conv.bias.copy_(torch.from_numpy(b))
    return model


def main():
    old, new = sys.argv[1], sys.argv[2]
    model = folded_platenet(old)
    tmp = new + ".tmp"
    train.export_model(model, tmp)
    rng = np.random.default_rng(5)
    inputs = [rng.random((1, 3, train.SIZE, train.SIZE), np.float32) for _ in range(3)]
    frames = sorted((HERE.parents[1].parent / "shared/data/vn_riders/images").glob("*.jpg"))[:6]
    import cv2
    for f in frames:
        canvas, _ = train.letterbox(cv2.imread(str(f))[200:600, 300:700])
        inputs.append(train.to_tensor(canvas)[None])
    a, b = ort.InferenceSession(old), ort.InferenceSession(tmp)
    worst = max(float(np.abs(a.run(None, {"input": x})[0] - b.run(None, {"input": x})[0]).max()) for x in inputs)
    print(f"largest difference from {old} at {train.SIZE}x{train.SIZE}: {worst:.2e} over {len(inputs)} inputs")
    if worst > 1e-3:
        pathlib.Path(tmp).unlink()
        raise SystemExit("outputs differ: not written")
    tall = b.run(None, {"input": rng.random((1, 3, 256, 128), np.float32)})[0]
    print(f"a 128x256 input gives {tall.shape[1]} cells")
    pathlib.Path(tmp).rename(new)


if __name__ == "__main__":
    main()
