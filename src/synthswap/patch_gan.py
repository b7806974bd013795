"""A patch discriminator and its hinge losses: the adversarial term that pays for texture.

A restoration or swap network trained on pixel losses alone predicts the average of every sharp
face that could explain its input: smooth skin, soft eyes. A discriminator that judges small
patches (each logit sees 54 px) as real photo or network output pays instead for
the texture a photo has, wherever it is plausible; DeepFaceLab's SAEHD ("GAN power") and every
face restorer since ESRGAN add one for that reason. Spectral normalisation keeps it stable at the
small batches a CPU affords. No I/O here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """(B, 3, H, W) in [0, 1] -> (B, 1, H/8, W/8) realness logits, one per 54 px patch (stride 8)."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            spectral_norm(nn.Conv2d(3, w, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(w, 2 * w, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(2 * w, 4 * w, 4, 2, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(4 * w, 4 * w, 3, 1, 1)), nn.LeakyReLU(0.2),
            spectral_norm(nn.Conv2d(4 * w, 1, 3, 1, 1)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * 2 - 1)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss: real patches above +1, generated ones below -1."""
    return F.relu(1 - real_logits.float()).mean() + F.relu(1 + fake_logits.float()).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """What the generator pays for patches the discriminator finds fake."""
    return -fake_logits.float().mean()
