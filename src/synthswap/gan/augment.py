"""Limited-data augmentation for the discriminator: DiffAugment ops with an ADA-style probability.

DiffAugment (Zhao et al. 2020): colour (brightness, saturation, contrast), translation
(1/8 of the image, zero padded) and cutout (a square of half the image side), all
differentiable, so G is trained through them. They are applied to every image D sees,
real and fake alike (and in the R1 pass), otherwise D would learn to tell them apart by
the augmentation itself. Following ADA (Karras et al. 2020), each op is applied to each
image with probability p, and p is tuned on the fly from the overfitting heuristic
r_t = E[sign(D(real))]: above the target (0.6) D is too sure about the reals, so p rises.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

POLICIES = ("color", "translation", "cutout")

AUGMENT_MODES = ("ada", "fixed", "none")  # adaptive p, a constant p, off


def _brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def _saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean


def _contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ratio*size pixels; pixels shifted in are zero. Gather keeps it differentiable."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gb, gy, gx = torch.meshgrid(
        torch.arange(n, device=x.device), torch.arange(h, device=x.device), torch.arange(w, device=x.device),
        indexing="ij",
    )
    gy = (gy + ty + 1).clamp(0, h + 1)
    gx = (gx + tx + 1).clamp(0, w + 1)
    padded = torch.nn.functional.pad(x, [1, 1, 1, 1])
    return padded.permute(0, 2, 3, 1)[gb, gy, gx].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of ratio*size pixels at a random place in each image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    yy = torch.arange(h, device=x.device).reshape(1, h, 1)
    xx = torch.arange(w, device=x.device).reshape(1, 1, w)
    inside = ((yy - cy + ch // 2) >= 0) & ((yy - cy + ch // 2) < ch) & ((xx - cx + cw // 2) >= 0) & ((xx - cx + cw // 2) < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


OPS = {
    "color": [_brightness, _saturation, _contrast],
    "translation": [_translation],
    "cutout": [_cutout],
}


class AugmentPipe(nn.Module):
    """Applies each op of `policy` to each image with probability `p` (p=1: plain DiffAugment)."""

    def __init__(self, policy: str = "color,translation,cutout", p: float = 0.0):
        super().__init__()
        names = [s.strip() for s in policy.split(",") if s.strip()]
        unknown = [s for s in names if s not in OPS]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown}; choose from {', '.join(POLICIES)}")
        self.policy = names
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0 or not self.policy:
            return x
        for name in self.policy:
            for op in OPS[name]:
                if self.p >= 1:
                    x = op(x)
                else:
                    apply = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) < self.p).to(x.dtype)
                    x = apply * op(x) + (1 - apply) * x
        return x


class AdaController:
    """ADA's feedback loop: every `interval` steps, move p by sign(r_t - target) * batch*interval/(speed_kimg*1000).

    With speed_kimg=20, p can go from 0 to 1 in 20k images (ADA uses 500k for runs of millions;
    our CPU runs see tens of thousands of images, so it has to react faster).
    """

    def __init__(self, pipe: AugmentPipe, target: float = 0.6, interval: int = 4, speed_kimg: float = 20.0):
        self.pipe = pipe
        self.target = target
        self.interval = interval
        self.speed_kimg = speed_kimg
        self.sign_sum = 0.0
        self.count = 0.0
        self.rt = 0.0
        self._steps = 0
        self._pending: list[torch.Tensor] = []

    def state_dict(self) -> dict:
        """Everything needed to resume the feedback loop exactly (JSON-able)."""
        self._flush()
        return {"p": self.pipe.p, "sign_sum": self.sign_sum, "count": self.count, "rt": self.rt, "steps": self._steps}

    def load_state_dict(self, state: dict) -> None:
        self.pipe.p = float(state["p"])
        self.sign_sum, self.count = float(state["sign_sum"]), float(state["count"])
        self.rt, self._steps = float(state["rt"]), int(state["steps"])
        self._pending = []

    def accumulate(self, real_logits: torch.Tensor) -> None:
        # Kept as a tensor until `step` needs it: a float() here would wait for the GPU every step.
        self._pending.append(torch.sign(real_logits.detach().float()).sum())
        self.count += real_logits.numel()

    def _flush(self) -> None:
        if self._pending:
            self.sign_sum += float(torch.stack(self._pending).sum())
            self._pending = []

    def step(self, global_batch: int) -> None:
        self._steps += 1
        if self._steps % self.interval != 0:
            return
        self._flush()
        stats = torch.tensor([self.sign_sum, self.count], dtype=torch.float64)
        if dist.is_initialized():  # every replica must arrive at the same p
            dist.all_reduce(stats)
        self.sign_sum = self.count = 0.0
        if stats[1] == 0:
            return
        self.rt = float(stats[0] / stats[1])
        adjust = (1.0 if self.rt > self.target else -1.0) * global_batch * self.interval / (self.speed_kimg * 1000)
        self.pipe.p = min(max(self.pipe.p + adjust, 0.0), 1.0)
