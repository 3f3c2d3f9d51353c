"""ShuffleNetV2 (Ma et al. 2018) as the recipes use it: written for this project, with parameter names that match
FastestDet's ImageNet state dict (`../shared/models/fastestdet/module/shufflenetv2.pth`, BSD-3-Clause), so
those weights load as the starting point."""
import pathlib

import torch
import torch.nn as nn


class Block(nn.Module):
    """A ShuffleNetV2 unit (Ma et al. 2018), written for this project; names match FastestDet's state dict."""

    def __init__(self, inp, oup, mid, stride):
        super().__init__()
        self.stride = stride
        outputs = oup - inp
        self.branch_main = nn.Sequential(
            nn.Conv2d(inp, mid, 1, 1, 0, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid),
            nn.Conv2d(mid, outputs, 1, 1, 0, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True))
        if stride == 2:
            self.branch_proj = nn.Sequential(
                nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
                nn.Conv2d(inp, inp, 1, 1, 0, bias=False), nn.BatchNorm2d(inp), nn.ReLU(inplace=True))

    def forward(self, x):
        if self.stride == 1:
            b, c, h, w = x.shape
            x = x.reshape(b * c // 2, 2, h * w).permute(1, 0, 2).reshape(2, -1, c // 2, h, w)
            return torch.cat((x[0], self.branch_main(x[1])), 1)
        return torch.cat((self.branch_proj(x), self.branch_main(x)), 1)


class Backbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.first_conv = nn.Sequential(nn.Conv2d(3, 24, 3, 2, 1, bias=False), nn.BatchNorm2d(24), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 24
        for name, reps, cout in (("stage2", 4, 48), ("stage3", 8, 96), ("stage4", 4, 192)):
            blocks = []
            for i in range(reps):
                blocks.append(Block(cin if i == 0 else cin // 2, cout, cout // 2, 2 if i == 0 else 1))
                cin = cout
            setattr(self, name, nn.Sequential(*blocks))

    def forward(self, x):
        x = self.maxpool(self.first_conv(x))
        p1 = self.stage2(x)
        p2 = self.stage3(p1)
        return p1, p2, self.stage4(p2)


def load_imagenet(backbone, shared):
    """Loads FastestDet's ImageNet weights into `backbone`; the number of tensors loaded."""
    sd = torch.load(pathlib.Path(shared) / "models/fastestdet/module/shufflenetv2.pth", map_location="cpu")
    missing = backbone.load_state_dict(sd, strict=False)
    return len(sd) - len(missing.unexpected_keys)
