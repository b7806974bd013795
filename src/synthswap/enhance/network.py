"""The restoration network: a compact residual U-Net that adds detail to an upscaled face.

It works on the face already brought to the size the frame needs (bicubic), and predicts only
what bicubic lacks: the output is the input plus a residual. The full-resolution image is folded
into a half-resolution tensor (pixel unshuffle) before any convolution, and most of the work runs
at a quarter of the resolution, so a 256 px face costs a few GFLOPs: cheap enough for 2 CPU cores.
Sizes that are not a multiple of 4 are padded by reflection and cropped back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from synthswap.options import option


@dataclass(frozen=True)
class EnhanceConfig:
    """The network's shape; `width` is also a flag of `enhance train`."""

    width: int = option(32, "channels at half resolution (twice this at a quarter)", minimum=1)
    blocks_half: int = 2  # residual blocks at half resolution, before and after the quarter-resolution stage
    blocks_quarter: int = 4

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EnhanceConfig:
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


class EnhanceNet(nn.Module):
    """(B, 3, H, W) BGR in [0, 1], upscaled by bicubic -> the same with detail added."""

    MULTIPLE = 4  # the two 2x steps down

    def __init__(self, config: EnhanceConfig = EnhanceConfig()):
        super().__init__()
        self.config = config
        w = config.width
        self.head = nn.Conv2d(12, w, 3, padding=1)
        self.enc = nn.Sequential(*[ResBlock(w) for _ in range(config.blocks_half)])
        self.down = nn.Conv2d(w, 2 * w, 3, stride=2, padding=1)
        self.mid = nn.Sequential(*[ResBlock(2 * w) for _ in range(config.blocks_quarter)])
        self.up = nn.Conv2d(2 * w, 4 * w, 3, padding=1)
        self.dec = nn.Sequential(*[ResBlock(w) for _ in range(config.blocks_half)])
        self.tail = nn.Conv2d(w, 12, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # starts as bicubic: the residual is learned from zero
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % self.MULTIPLE, -w % self.MULTIPLE
        xp = F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
        half = self.enc(F.leaky_relu(self.head(F.pixel_unshuffle(xp * 2 - 1, 2)), 0.2))
        quarter = self.mid(F.leaky_relu(self.down(half), 0.2))
        half = self.dec(half + F.pixel_shuffle(self.up(quarter), 2))
        out = xp + F.pixel_shuffle(self.tail(F.leaky_relu(half, 0.2)), 2)
        return out[..., :h, :w]
