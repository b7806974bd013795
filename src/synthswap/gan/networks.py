"""StyleGAN2 generator and residual discriminator, as plain nn.Modules with no I/O.

Follows Karras et al., "Analyzing and Improving the Image Quality of StyleGAN" (2020) and
the StyleGAN2-ADA code layout: a mapping network z -> w, a synthesis network fed one w per
layer (W+, shape (N, num_ws, w_dim)) with modulated/demodulated convolutions, per-pixel
noise inputs and skip toRGB outputs; a residual discriminator with minibatch standard
deviation. All weights use the equalised learning rate (scaled at run time by 1/sqrt(fan_in)).

Simplifications, chosen for clarity: resampling is bilinear upsampling / average pooling
instead of StyleGAN2's [1,3,3,1] FIR filters (both are low-pass; the FIR version is a few
percent sharper), and there is no fp16 clamping (we use bf16 autocast on CUDA instead).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)
RESOLUTIONS = (32, 64, 128, 256)


# Upper bounds on GanConfig's sizes (see GanConfig.__post_init__).
GAN_MAX_SIZES = {"z_dim": 2048, "w_dim": 2048, "mapping_layers": 16, "channel_base": 131072, "channel_max": 2048,
                 "d_channel_base": 131072, "d_channel_max": 2048, "mbstd_group": 256, "image_channels": 4}


@dataclass
class GanConfig:
    """Everything that fixes the networks' shapes; saved beside every checkpoint as JSON."""

    resolution: int = 64
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 4
    # Channels at resolution r are min(channel_base // r, channel_max), as in StyleGAN2.
    channel_base: int = 1024
    channel_max: int = 128
    d_channel_base: int = 1024
    d_channel_max: int = 128
    mbstd_group: int = 4
    image_channels: int = 3

    def __post_init__(self) -> None:
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {', '.join(map(str, RESOLUTIONS))}, not {self.resolution}")
        # Checked before anything is allocated: a gan.json asking for more is refused instead of
        # exhausting memory (the gpu preset, StyleGAN2 config-f, stays well below every bound).
        for name, most in GAN_MAX_SIZES.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
                raise ValueError(f"{name} must be a whole number from 1 to {most}, not {value!r}")
        for name in ("channel_base", "d_channel_base"):  # at least one channel at the full resolution
            if getattr(self, name) < self.resolution:
                raise ValueError(f"{name} must be at least the resolution {self.resolution}, not {getattr(self, name)}")

    @property
    def num_ws(self) -> int:
        """One w per conv layer plus one for the last toRGB (each block's toRGB shares the next conv's w)."""
        return 2 * int(math.log2(self.resolution)) - 2

    def g_channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    def d_channels(self, res: int) -> int:
        return min(self.d_channel_base // res, self.d_channel_max)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "GanConfig":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


# Presets for --config; widths are what decide CPU speed. "cpu" is the default at 64 px on CPU.
PRESETS: dict[str, dict] = {
    "tiny": dict(z_dim=64, w_dim=64, mapping_layers=2, channel_base=512, channel_max=32,
                 d_channel_base=512, d_channel_max=32),
    # 64 px: 128 channels at 4-8 px down to 16 at 64 px; ~1.5 GFLOP per trained image.
    "cpu": dict(z_dim=128, w_dim=128, mapping_layers=4, channel_base=1024, channel_max=128,
                d_channel_base=1024, d_channel_max=128),
    # 4x the FLOPs of "cpu" (32 channels at 64 px): better images per kimg, 3-4x fewer kimg per hour.
    "cpu-wide": dict(z_dim=128, w_dim=128, mapping_layers=4, channel_base=2048, channel_max=256,
                     d_channel_base=2048, d_channel_max=256),
    # StyleGAN2 config-f widths (channel_base 32768, max 512) for GPUs.
    "gpu": dict(z_dim=512, w_dim=512, mapping_layers=8, channel_base=32768, channel_max=512,
                d_channel_base=32768, d_channel_max=512),
}


def make_config(resolution: int, preset: str = "cpu", **overrides) -> GanConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown GAN config '{preset}' (choose from {', '.join(PRESETS)})")
    values = dict(PRESETS[preset], resolution=resolution)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return GanConfig(**values)


# ---------------------------------------------------------------------------------------------
# Layers with equalised learning rate


class FullyConnected(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0,
                 lr_multiplier: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activation else x


class Conv2d(nn.Module):
    """Plain equalised-lr conv for the discriminator; `down` average-pools by 2 after the conv."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True,
                 activation: bool = True, down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2
        self.activation = activation
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)
        if self.down:
            x = F.avg_pool2d(x, 2)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.activation else x


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool = True, padding: int = 0) -> torch.Tensor:
    """Per-sample weights w' = w * s, divided by their L2 norm (demodulation).

    Computed as StyleGAN2 does in training ("non-fused"): scale the input channels by s,
    run one ordinary conv with the shared weights, scale the output channels by the
    demodulation factors. Mathematically the same as a per-sample (grouped) conv, and
    much faster on CPU, where grouped convs with one group per sample are slow.
    """
    x = x * styles.reshape(styles.shape[0], -1, 1, 1).to(x.dtype)
    x = F.conv2d(x, weight.to(x.dtype), padding=padding)
    if demodulate:
        # sum_{i,k} (w_oik * s_i)^2 = sum_i s_i^2 * sum_k w_oik^2
        dcoefs = torch.rsqrt(styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8)  # (N, O)
        x = x * dcoefs.reshape(dcoefs.shape[0], -1, 1, 1).to(x.dtype)
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally after 2x upsampling) + noise + bias + lrelu."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels * 9)
        self.up = up
        self.resolution = resolution
        # Fixed noise for noise_mode="const" (reproducible images; used by inversion).
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.noise_strength = nn.Parameter(torch.zeros([]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=True, padding=1)
        if noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength
        elif noise_mode == "const":
            x = x + self.noise_const.to(x.dtype) * self.noise_strength
        elif noise_mode != "none":
            raise ValueError(f"noise_mode must be random, const or none, not {noise_mode}")
        x = x + self.bias.reshape(1, -1, 1, 1).to(x.dtype)
        return F.leaky_relu(x, 0.2) * SQRT2


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation: each block's contribution to the skip image."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int):
        super().__init__()
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return x + self.bias.reshape(1, -1, 1, 1).to(x.dtype)


class SynthesisBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, image_channels: int):
        super().__init__()
        self.resolution = resolution
        if in_channels == 0:  # the 4x4 block starts from a learned constant
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
            self.conv0 = None
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, image_channels, w_dim)
        self.num_conv = 1 if self.conv0 is None else 2

    def forward(self, x, img, ws: torch.Tensor, noise_mode: str):
        # ws: (N, num_conv + 1, w_dim) for this block.
        i = 0
        if self.conv0 is None:
            x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1).to(ws.dtype)
        else:
            x = self.conv0(x, ws[:, i], noise_mode)
            i += 1
        x = self.conv1(x, ws[:, i], noise_mode)
        i += 1
        y = self.torgb(x, ws[:, i])
        if img is not None:
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False)
            y = y + img
        return x, y


class SynthesisNetwork(nn.Module):
    """W+ (N, num_ws, w_dim) -> image (N, 3, R, R) in about [-1, 1]."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg = cfg
        self.num_ws = cfg.num_ws
        self.resolutions = [2 ** i for i in range(2, int(math.log2(cfg.resolution)) + 1)]
        blocks = []
        for res in self.resolutions:
            in_ch = 0 if res == 4 else cfg.g_channels(res // 2)
            blocks.append(SynthesisBlock(in_ch, cfg.g_channels(res), cfg.w_dim, res, cfg.image_channels))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.cfg.w_dim:
            raise ValueError(f"ws must have shape (N, {self.num_ws}, {self.cfg.w_dim}), got {tuple(ws.shape)}")
        x = img = None
        index = 0
        for block in self.blocks:
            x, img = block(x, img, ws.narrow(1, index, block.num_conv + 1), noise_mode)
            index += block.num_conv
        return img


class MappingNetwork(nn.Module):
    """z -> w through an MLP with 0.01 learning-rate multiplier; tracks the average w for truncation."""

    def __init__(self, cfg: GanConfig, lr_multiplier: float = 0.01, w_avg_beta: float = 0.995):
        super().__init__()
        self.z_dim, self.w_dim = cfg.z_dim, cfg.w_dim
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.ModuleList(
            FullyConnected(a, b, lr_multiplier=lr_multiplier, activation=True) for a, b in zip(dims[:-1], dims[1:])
        )
        self.w_avg_beta = w_avg_beta
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, update_w_avg: bool = False) -> torch.Tensor:
        x = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)  # normalise 2nd moment
        for layer in self.layers:
            x = layer(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1.0:
            x = self.w_avg.to(x.dtype).lerp(x, truncation_psi)
        return x


class Generator(nn.Module):
    """The API later stages use: `mapping(z) -> w`, `synthesis(ws)`, `w_avg`, `num_ws`."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.w_dim, self.num_ws, self.resolution = cfg.z_dim, cfg.w_dim, cfg.num_ws, cfg.resolution
        self.mapping = MappingNetwork(cfg)
        self.synthesis = SynthesisNetwork(cfg)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def broadcast(self, w: torch.Tensor) -> torch.Tensor:
        """(N, w_dim) -> W+ (N, num_ws, w_dim), the same w for every layer."""
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "random") -> torch.Tensor:
        return self.synthesis(self.broadcast(self.mapping(z, truncation_psi)), noise_mode=noise_mode)


# ---------------------------------------------------------------------------------------------
# Discriminator


class DiscriminatorBlock(nn.Module):
    """Residual block: two convs (the second halves the resolution) plus a 1x1 skip, summed / sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = Conv2d(in_channels, in_channels, 3)
        self.conv1 = Conv2d(in_channels, out_channels, 3, down=True)
        self.skip = Conv2d(in_channels, out_channels, 1, bias=False, activation=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(x)
        x = self.conv1(self.conv0(x))
        return (x + y) / SQRT2


class MinibatchStd(nn.Module):
    """Appends the std of features across groups of samples: lets D see a lack of variety."""

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size, n)
        if n % g != 0:  # odd batch sizes (e.g. the last batch of an evaluation): one group
            g = n
        y = x.float().reshape(g, -1, c, h, w)
        y = (y - y.mean(dim=0)).square().mean(dim=0).add(1e-8).sqrt()  # (n/g, c, h, w)
        y = y.mean(dim=[1, 2, 3]).reshape(-1, 1, 1, 1).repeat(g, 1, h, w).to(x.dtype)
        return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """Image (N, 3, R, R) in [-1, 1] -> logit (N, 1). `features(img)` gives per-block activations."""

    def __init__(self, cfg: GanConfig):
        super().__init__()
        self.cfg = cfg
        res = cfg.resolution
        self.fromrgb = Conv2d(cfg.image_channels, cfg.d_channels(res), 1)
        blocks = []
        while res > 4:
            blocks.append(DiscriminatorBlock(cfg.d_channels(res), cfg.d_channels(res // 2)))
            res //= 2
        self.blocks = nn.ModuleList(blocks)
        ch = cfg.d_channels(4)
        self.mbstd = MinibatchStd(cfg.mbstd_group)
        self.conv = Conv2d(ch + 1, ch, 3)
        self.fc = FullyConnected(ch * 16, ch, activation=True)
        self.out = FullyConnected(ch, 1)

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        """Activations after fromRGB and after each residual block (coarser each time).

        Usable as a perceptual loss: compare these between two images (e.g. mean L2 of
        unit-normalised channels), as inversion does with a trained D.
        """
        x = self.fromrgb(img)
        feats = [x]
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.features(img)[-1]
        x = self.conv(self.mbstd(x))
        x = self.fc(x.flatten(1))
        return self.out(x)
