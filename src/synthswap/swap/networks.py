"""DeepFaceLab-style face-swap autoencoders as plain nn.Modules (no I/O).

Two architectures, as in DeepFaceLab's SAEHD:

- `df`:   a shared encoder and a shared "inter" bottleneck, then one decoder per
          identity. A->A and B->B train the decoders; B->A is "encode B, decode with A".
- `liae`: a shared encoder, two bottlenecks (inter_AB sees both people, inter_B only B)
          and one shared decoder. A's code is [AB(a), AB(a)], B's is [B(b), AB(b)], and
          the swap B->A decodes [AB(b), AB(b)], i.e. B's pose in A's half of the space.

Both decode an image (sigmoid, 0..1, same channel order as the input) and a mask
(sigmoid, 0..1). The resolution must be a multiple of 16: the encoder halves it four
times and the bottleneck rebuilds a res/16 grid that the decoder upsamples back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from synthswap.options import option

ARCHITECTURES = ("df", "liae")
# The parts of each architecture, by attribute name: what `swap train --init` can copy from a
# pretrained model (DeepFaceLab keeps encoder and decoders and re-initialises the bottleneck).
PARTS = {"df": ("encoder", "inter", "decoder_a", "decoder_b"), "liae": ("encoder", "inter_ab", "inter_b", "decoder")}
# Upper bounds on the widths, checked before anything is allocated: a model.json asking for
# more is refused instead of exhausting memory (DeepFaceLab's largest GPU presets stay below).
MAX_DIMS = {"e_dims": 256, "ae_dims": 1024, "d_dims": 256, "d_mask_dims": 128}


def _multiple_of_16(value: int) -> str | None:
    return None if value % 16 == 0 else f"must be a multiple of 16, not {value}"


@dataclass
class SwapConfig:
    """The model's shape; each field is also a flag of `swap train` and `pretrain`."""

    arch: str = option("df", "df: one decoder per identity (stronger likeness); liae: shared decoder (better "
                             "lighting/pose match)", choices=ARCHITECTURES)
    # 64: the shipped pretrained model's size; 96 trains ~1.5x slower on a CPU
    resolution: int = option(64, "face size in pixels, a multiple of 16 from 64 to 256 (the default is the shipped "
                                 "pretrained model's size); with --init of a smaller model, a whole multiple of its "
                                 "size (its weights are grown to this size as a warm start)",
                             minimum=64, maximum=256, check=_multiple_of_16)
    e_dims: int = option(32, "encoder width of the first stage, doubled at each stage (DeepFaceLab uses 64+ on GPU)",
                         minimum=1, maximum=MAX_DIMS["e_dims"])
    ae_dims: int = option(128, "bottleneck (latent) size (256+ on GPU)", minimum=1, maximum=MAX_DIMS["ae_dims"])
    d_dims: int = option(16, "decoder width of the last stage (64 on GPU)", minimum=1, maximum=MAX_DIMS["d_dims"])
    d_mask_dims: int = option(8, "mask-head width of the last stage (22 on GPU)", minimum=1,
                              maximum=MAX_DIMS["d_mask_dims"])

    def validate(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture '{self.arch}'; choose one of {', '.join(ARCHITECTURES)}")
        if not 64 <= self.resolution <= 256 or self.resolution % 16:
            raise ValueError(f"resolution {self.resolution} must be a multiple of 16 between 64 and 256")
        for name, most in MAX_DIMS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= most:
                raise ValueError(f"{name} must be a whole number from 1 to {most}, not {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SwapConfig":
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


class Downscale(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 5, stride=2, padding=2)

    def forward(self, x):
        return _lrelu(self.conv(x))


class Upscale(nn.Module):
    """Conv to 4x channels, then pixel shuffle: DeepFaceLab's checkerboard-free upsampler."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 3, padding=1)

    def forward(self, x):
        return F.pixel_shuffle(_lrelu(self.conv(x)), 2)


class ResidualBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return _lrelu(x + self.conv2(_lrelu(self.conv1(x))))


class Encoder(nn.Module):
    def __init__(self, e_dims: int):
        super().__init__()
        chans = [3, e_dims, e_dims * 2, e_dims * 4, e_dims * 8]
        self.blocks = nn.Sequential(*[Downscale(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.out_channels = chans[-1]

    def forward(self, x):
        return torch.flatten(self.blocks(x), 1)


class Inter(nn.Module):
    """Flattened features -> latent vector of ae_dims -> a res/16 grid, upsampled to res/8."""

    def __init__(self, in_features: int, ae_dims: int, out_ch: int, lowres: int):
        super().__init__()
        self.lowres = lowres
        self.out_ch = out_ch
        self.dense1 = nn.Linear(in_features, ae_dims)
        self.dense2 = nn.Linear(ae_dims, lowres * lowres * out_ch)
        self.upscale = Upscale(out_ch, out_ch)

    def forward(self, x):
        x = self.dense2(self.dense1(x))
        x = x.view(-1, self.out_ch, self.lowres, self.lowres)
        return self.upscale(x)


class Decoder(nn.Module):
    """res/8 grid -> image and mask at full resolution (three 2x upsamplings each)."""

    def __init__(self, in_ch: int, d_dims: int, d_mask_dims: int):
        super().__init__()
        d = d_dims
        self.up = nn.ModuleList([Upscale(in_ch, d * 8), Upscale(d * 8, d * 4), Upscale(d * 4, d * 2)])
        self.res = nn.ModuleList([ResidualBlock(d * 8), ResidualBlock(d * 4), ResidualBlock(d * 2)])
        self.out = nn.Conv2d(d * 2, 3, 1)
        m = d_mask_dims
        self.mask_up = nn.Sequential(Upscale(in_ch, m * 8), Upscale(m * 8, m * 4), Upscale(m * 4, m * 2))
        self.mask_out = nn.Conv2d(m * 2, 1, 1)

    def forward(self, z):
        x = z
        for up, res in zip(self.up, self.res):
            x = res(up(x))
        image = torch.sigmoid(self.out(x))
        mask = torch.sigmoid(self.mask_out(self.mask_up(z)))
        return image, mask


class SwapModel(nn.Module):
    """The whole autoencoder. `forward(a, b)` is the training pass (A->A and B->B);
    `reconstruct(x, "A"|"B")` decodes as one identity; `swap(b)` is B->A."""

    def __init__(self, config: SwapConfig):
        super().__init__()
        config.validate()
        self.config = config
        res = config.resolution
        lowres = res // 16
        self.encoder = Encoder(config.e_dims)
        enc_features = self.encoder.out_channels * lowres * lowres
        ae_out = config.ae_dims  # channels of the bottleneck grid, as in DeepFaceLab (ae_out_ch = ae_dims)
        if config.arch == "df":
            self.inter = Inter(enc_features, config.ae_dims, ae_out, lowres)
            self.decoder_a = Decoder(ae_out, config.d_dims, config.d_mask_dims)
            self.decoder_b = Decoder(ae_out, config.d_dims, config.d_mask_dims)
        else:
            self.inter_ab = Inter(enc_features, config.ae_dims, ae_out, lowres)
            self.inter_b = Inter(enc_features, config.ae_dims, ae_out, lowres)
            self.decoder = Decoder(ae_out * 2, config.d_dims, config.d_mask_dims)

    def _decode(self, features: torch.Tensor, identity: str, swap: bool = False):
        if self.config.arch == "df":
            z = self.inter(features)
            return (self.decoder_a if identity == "A" else self.decoder_b)(z)
        ab = self.inter_ab(features)
        if identity == "A" or swap:
            z = torch.cat([ab, ab], 1)
        else:
            z = torch.cat([self.inter_b(features), ab], 1)
        return self.decoder(z)

    def forward(self, a: torch.Tensor, b: torch.Tensor):
        """Training pass: one encoder call for both batches, returns (A->A, maskA, B->B, maskB)."""
        features = self.encoder(torch.cat([a, b], 0))
        fa, fb = features[: a.shape[0]], features[a.shape[0]:]
        image_a, mask_a = self._decode(fa, "A")
        image_b, mask_b = self._decode(fb, "B")
        return image_a, mask_a, image_b, mask_b

    def reconstruct(self, x: torch.Tensor, identity: str):
        return self._decode(self.encoder(x), identity)

    def swap(self, b: torch.Tensor):
        """B's face with A's identity: the image and the mask decoded for it."""
        return self._decode(self.encoder(b), "A", swap=True)


def _grid_weights_resized(weight: torch.Tensor, channels: int, old: int, new: int, axis: int) -> torch.Tensor:
    """A dense layer's weights over a flattened (channels, old, old) grid, along `axis`, for a
    (channels, new, new) grid: each new cell takes the weights of the old cell it lies in."""
    shape = list(weight.shape)
    grid = weight.reshape(shape[:axis] + [channels, old, old] + shape[axis + 1:])
    factor = new // old
    grid = grid.repeat_interleave(factor, axis + 1).repeat_interleave(factor, axis + 2)
    return grid.reshape(shape[:axis] + [channels * new * new] + shape[axis + 1:])


def resized_state(state: dict[str, torch.Tensor], old: SwapConfig, new: SwapConfig) -> dict[str, torch.Tensor]:
    """A trained model's weights for the same architecture at a larger resolution (2x, 4x).

    The convolutions do not depend on the resolution and are kept. Only the bottleneck's dense
    layers see the res/16 grid: its input weights are spread over the finer grid (and divided by
    the cells each old cell became, so a feature map that is the old one upsampled gives the same
    latent code) and its output weights are copied to every finer cell, so the model starts by
    decoding what the smaller one would, upsampled. A warm start for fine-tuning, which then has
    to learn the detail; far better than random weights when no model of the new size exists.
    """
    if (old.arch, old.e_dims, old.ae_dims, old.d_dims, old.d_mask_dims) != \
            (new.arch, new.e_dims, new.ae_dims, new.d_dims, new.d_mask_dims):
        raise ValueError(f"only the resolution may differ: {old} vs {new}")
    if new.resolution % old.resolution or new.resolution < old.resolution:
        raise ValueError(f"{new.resolution} px is not a whole multiple of {old.resolution} px")
    lo, hi = old.resolution // 16, new.resolution // 16
    enc_ch = old.e_dims * 8
    out = dict(state)
    for key, value in state.items():
        block, layer, name = (key.split(".") + ["", ""])[:3]
        if block not in ("inter", "inter_ab", "inter_b"):
            continue
        if layer == "dense1" and name == "weight":
            out[key] = _grid_weights_resized(value, enc_ch, lo, hi, axis=1) / (hi // lo) ** 2
        elif layer == "dense2":  # weight (cells * channels, ae_dims) and bias (cells * channels)
            out[key] = _grid_weights_resized(value, old.ae_dims, lo, hi, axis=0)
    return out
