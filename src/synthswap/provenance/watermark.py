"""An invisible watermark in the pixels: a fixed synthswap marker and 3 bytes of the run id.

Layout. The mark is a faint noise pattern added to the brightness (the same value to B, G and
R) that tiles the frame in 128 x 128 pixel tiles. A tile is 16 x 16 cells of 8 x 8 pixels; each
cell carries one bit as the sign of its part of the pattern. Marker and payload cells alternate
like a chessboard: 128 cells the fixed 128-bit MARKER, 128 cells the payload, the run id (3
bytes) and a CRC-8 of it (so a damaged id reads as unreadable, never as another run's) under a
rate-1/3 convolutional code (constraint length 7, zero-tailed: 114 coded bits, 14 of them in a
second cell), scattered over the tile by a fixed permutation and read by soft-decision Viterbi:
at the same energy per cell it corrects far more than version 2's 4 repeats per bit.

Strength: a perceptual mask. The eye sees a faint grain on flat areas, hardly at all in texture
and on edges, nor in dark, clipped or strongly coloured pixels. So the pattern is multiplied per
pixel by a just-noticeable-difference style mask: zero where the picture's local contrast is
under FLAT_STD grey levels, rising in proportion to the contrast up to TEXTURE_STD (so the mark
sits in strong texture and on edges, where SSIM and the eye tolerate it, rather than on faint
texture), cut in dark (< DARK), near-white and saturated pixels; every frame's mark is then
brought to MAX_RMS (PSNR about 44.8 dB). (Host interference cancellation, which version 2 used,
was measured to spend the masked budget on cancelling rather than on the bit, and was dropped.)

Time. The mark's sign follows the frame index through a 7-long m-sequence (SEQUENCE), so the
grain changes from frame to frame instead of sitting still over a static background, and its
average over any 7 frames is a seventh of one frame's. Detection sums the frames by phase and
tries the sequence's seven shifts (a clip cut from the middle starts anywhere): the right shift
adds the marks coherently while the static picture, which folding used to add up as coherently
as the mark, now mostly cancels. A change of frame rate breaks the sequence (see docs).

Detection undoes geometry first. The tiling is its own synchronisation template: the
autocorrelation of the high-passed brightness (frames of each sign summed) has peaks at the tile's lattice
vectors, wherever the mark is; their angle and length give the rotation and scale that an edit
applied (a rotation, a resize, a letterbox). Where they are too faint (a small copy) the common
resize ratios are guesses too (and, for a small copy, the exact ratios from the sizes videos are
made at, with more frames folded), and the best guesses are refined by a small search (each guess
warps the phases' summed residuals, not every frame). A filmed screen's perspective blurs the
lattice: when nothing reads, every guess is tried again under a keystone of each edge pair. A mirror, a
turn by 90 degrees and a crop leave the lattice square: the folded tile (every tile of the frame
summed onto one) is then a mirror, turn and roll of the marked one, and all eight mirrors/turns
are tried, each at every roll at once (FFT cross-correlation with the marker). The residual read
is whitened (divided by its local RMS) and weighted by the mask as this frame shows it: a
matched filter. The marker is found when the correlation peak stands Z_FOUND standard deviations
above the correlation at the other rolls; the payload cells are then read at that roll, from
every frame warped back before its high-pass. At MAX_RMS one frame alone seldom decodes; the
frames together do.

invisible-watermark's DWT-DCT(-SVD) methods were measured first and rejected: at a strength that
survives CRF 23 their 8-16 px chroma blocks show on skin, and at one that does not show they are
gone after a CRF 23 re-encode (docs/benchmarks.md, "Watermark").
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np

MARKER = hashlib.sha256(b"synthswap watermark v2").digest()[:16]  # one bit per marker cell
RUN_ID_BYTES = 3
PAYLOAD_BITS = 8 * (RUN_ID_BYTES + 1)  # the run id and its CRC-8
CODE = (0o133, 0o171, 0o165)  # a rate-1/3 convolutional code, constraint length 7 (free distance 15)
CONSTRAINT = 7
CODED_BITS = len(CODE) * (PAYLOAD_BITS + CONSTRAINT - 1)  # 114, zero-tailed; 14 of them in a second cell
TILE = 128  # pixels; the pattern repeats every TILE pixels in both directions
CELL = 8  # pixels per bit cell; TILE // CELL = 16 cells a side, 256 in a tile
CHIP = 4  # pixels per random +-1 chip of the pattern, before smoothing
AMPLITUDE = 6.0  # grey levels where the mask is 1 (times the pattern, which has unit standard deviation)
MAX_RMS = 1.45  # grey levels: the mark's RMS over a video frame (PSNR 44.5-45 dB after rounding)
STILL_MAX_RMS = 2.6  # an image's (PSNR about 39.8 dB): one frame alone has no others to add up with
MAX_AMPLITUDE = 18.0  # grey levels where the mask is 1, at most, on a frame with little texture
MASK_SIGMA = 2.0  # the neighbourhood (Gaussian sigma, pixels) whose contrast masks the mark
FLAT_STD = 0.5  # local contrast (grey levels) under which the mark is off: the eye sees grain there
TEXTURE_STD = 24.0  # local contrast at which the mark has its full amplitude (below: in proportion; SSIM >= 0.995)
WHITEN_SIGMA, WHITEN_FLOOR = 3.0, 1.5  # detection divides the residual by its local RMS (+ floor)
DARK, BRIGHT = (16.0, 48.0), (232.0, 250.0)  # brightness ramps: off below 16 / above 250
SATURATED = (120.0, 200.0)  # colour saturation (max - min of B, G, R) over which the mark fades out
HIGHPASS_SIGMA = 2.0  # what detection removes: the picture blurred with this sigma
HIGHPASS_KSIZE = 13  # ... over 3 sigma each way (OpenCV's default, 4 sigma, costs 1.7x for 0.3% of the weight)
BAR_STD = 1.5  # grey levels: a border row or column flatter than this in every frame is a bar, cut off
MIN_SIDE = 128  # the smallest frame that is marked (one tile)
MIN_DETECT_SIDE = 64  # the smallest frame read (a marked frame downscaled to half a tile)
SCALE_RANGE = (0.2, 2.6)  # frame size / marked size that the synchronisation looks for
SEARCH_FRAMES = 120  # frames folded for the geometry as it is (verify reads 120): a static picture cancels
# over the sign sequence, so more frames keep adding to the mark (GRID after CRF 23 needs them at PSNR 44)
# A smaller copy carries fewer marked pixels per frame and costs less per frame: it is read and searched
# with more frames, up to the pixels of SEARCH_FRAMES frames of 480 x 480 (a 160 px copy: about 1,000).
SEARCH_PIXELS = SEARCH_FRAMES * 480 * 480
MAX_SEARCH_FRAMES = 1500
SYNC_CANDIDATES = 4  # lattice guesses tried when the frame as it is shows no marker
COMMON_SCALES = (0.5, 1 / 3, 0.25, 0.75, 2 / 3, 1.5, 2.0, 2.25)  # resize ratios tried as well
# A letterboxed or pillarboxed picture was enlarged to fit: its scale is tried from the sizes videos are
# commonly made at, as its height or its width (the lattice misses the odd ratios this gives, e.g. 512 ->
# 720 px: 1.406).
COMMON_HEIGHTS = (240, 288, 360, 480, 512, 540, 576, 720, 1080)
MAX_FIT_SCALE = 3.2
REFINED = 2  # of all these guesses, the best this many are refined
# A filmed screen (Geometry.keystone), searched when nothing else reads: the best guesses and the common
# resize ratios of a scale in this range with the top or bottom edge, or the left or right one, narrowed by
# 3% (the benchmark's filmed screen narrows the top by 3%); the best then refined by KEYSTONE_STEP.
KEYSTONES = ((0.03, 0.0), (-0.03, 0.0), (0.0, 0.03), (0.0, -0.03))
KEYSTONE_SCALES = (0.3, 1.5)
KEYSTONE_STEP = 0.015
KEYSTONE_BELOW = 9.0  # the perspective search also runs when the best plain guess reads a z under this
REFINE_STEPS = ((0.25, 0.006), (0.1, 0.002))  # degrees and relative scale: rounds of 8 around each guess
Z_FOUND = 7.0  # marker threshold over a whole search (every geometry, mirror, turn and roll)
Z_FRAME = 3.0  # one frame at the geometry already found (a single test; its run id must match too)
# The mark's sign by frame index (mod 7): an m-sequence, so that its seven shifts are nearly orthogonal (the
# right one sums the frames' marks coherently, a wrong one to -1/7) and the mark does not sit still.
SEQUENCE = np.array([1.0, 1.0, 1.0, -1.0, 1.0, -1.0, -1.0], np.float32)
PERIOD = len(SEQUENCE)

_N = TILE // CELL
assert CODED_BITS <= _N * _N // 2  # half the cells are the marker's, the other half the coded payload


class WatermarkError(Exception):
    """A frame too small to carry the watermark, or a run id of the wrong size."""


def crc8(data: bytes) -> int:
    """CRC-8 (polynomial 0x07) of `data`."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def _bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, np.uint8)).astype(np.int64)


def _parity(x: int) -> int:
    return bin(x).count("1") & 1


def encode(bits: np.ndarray) -> np.ndarray:
    """The convolutional code of `bits` (0/1), zero-tailed so the decoder ends in state 0."""
    state, out = 0, []
    for b in [*bits.tolist(), *[0] * (CONSTRAINT - 1)]:
        state = ((state << 1) | int(b)) & ((1 << CONSTRAINT) - 1)
        out.extend(_parity(state & g) for g in CODE)
    return np.array(out, np.int64)


def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """Per state (the last 6 bits) and input bit: the next state and the +-1 code symbols."""
    states = 1 << (CONSTRAINT - 1)
    nxt = np.zeros((states, 2), np.int64)
    sym = np.zeros((states, 2, len(CODE)))
    for st in range(states):
        for b in (0, 1):
            full = (st << 1) | b
            nxt[st, b] = full & (states - 1)
            sym[st, b] = [2.0 * _parity(full & g) - 1.0 for g in CODE]
    return nxt, sym


_NEXT, _SYMBOLS = _trellis()


def decode(soft: np.ndarray) -> np.ndarray:
    """Soft-decision Viterbi: the PAYLOAD_BITS bits whose code best correlates with `soft`
    (CODED_BITS scores, positive for a 1)."""
    states = _NEXT.shape[0]
    into = np.arange(states)
    prev = np.stack([into >> 1, (into >> 1) | (states >> 1)], axis=1)  # the two states leading into each
    bit = into & 1  # the input bit that leads into it
    metric = np.full(states, -np.inf)
    metric[0] = 0.0
    back = []
    for t in range(PAYLOAD_BITS + CONSTRAINT - 1):
        gains = _SYMBOLS[prev, bit[:, None]] @ soft[len(CODE) * t:len(CODE) * (t + 1)]  # (states, 2)
        total = metric[prev] + gains
        if t >= PAYLOAD_BITS:
            total[bit == 1] = -np.inf  # the tail is zeros
        choice = np.argmax(total, axis=1)
        back.append(prev[into, choice])
        metric = total[into, choice]
    state, bits = 0, []
    for t in range(len(back) - 1, -1, -1):
        bits.append(state & 1)
        state = back[t][state]
    return np.array(bits[::-1][:PAYLOAD_BITS], np.int64)


def _pattern() -> np.ndarray:
    """The fixed (TILE, TILE) pattern: +-1 chips from SHA-256 in counter mode (the same on every
    machine and numpy version), smoothed with wrap-around so tiles join seamlessly; std 1."""
    n = (TILE // CHIP) ** 2
    stream = b"".join(hashlib.sha256(b"synthswap pattern v1" + i.to_bytes(4, "big")).digest()
                      for i in range(-(-n // 256)))
    chips = 2.0 * _bits(stream)[:n].reshape(TILE // CHIP, TILE // CHIP) - 1.0
    p = np.kron(chips, np.ones((CHIP, CHIP)))
    p = cv2.GaussianBlur(np.tile(p, (3, 3)), (0, 0), CHIP / 4)[TILE:2 * TILE, TILE:2 * TILE]
    return p / p.std()


def _layout() -> tuple[np.ndarray, np.ndarray]:
    """Per cell (16 x 16): whether it is a marker cell, and which bit it carries (the marker's bit
    for marker cells; for payload cells a coded payload bit, its cells scattered by a fixed
    permutation drawn from SHA-256, the same on every machine)."""
    p, q = np.mgrid[:_N, :_N]
    is_marker = (p + q) % 2 == 0
    cells = _N * _N // 2
    keys = [hashlib.sha256(b"synthswap layout v2" + i.to_bytes(2, "big")).digest() for i in range(cells)]
    scatter = np.array(sorted(range(cells), key=keys.__getitem__))
    index = np.zeros((_N, _N), np.int64)
    index[is_marker] = np.arange(cells)
    index[~is_marker] = scatter % CODED_BITS
    return is_marker, index


_PATTERN = _pattern().astype(np.float32)
_IS_MARKER, _INDEX = _layout()
_MARKER_SIGNS = 2.0 * _bits(MARKER) - 1.0
_PIXEL_CELL = np.kron(np.arange(_N * _N).reshape(_N, _N), np.ones((CELL, CELL), np.int64))  # (TILE, TILE)
_TEMPLATE = _PATTERN * np.kron(np.where(_IS_MARKER, _MARKER_SIGNS[_INDEX], 0.0), np.ones((CELL, CELL)))
_TEMPLATE_FFT = np.conj(np.fft.rfft2(_TEMPLATE))
# Per shift o of the sequence (rows) the sign of each phase (index mod PERIOD, columns).
_SHIFTS = np.array([[SEQUENCE[(j + o) % PERIOD] for j in range(PERIOD)] for o in range(PERIOD)], np.float32)


def sign(index: int) -> float:
    """The mark's sign on frame `index` of a video (an image is frame 0)."""
    return float(SEQUENCE[index % PERIOD])


def _highpass(plane: np.ndarray) -> np.ndarray:
    """The residual detection reads: the picture less its blur, divided by its own local RMS, so
    that texture (where the mark is strongest, and the picture's noise too) does not drown the
    rest (a whitening measured to raise the marker's z by about a quarter), and weighted by the
    mask the embedder used (as well as it can be told from this frame): a matched filter that
    reads where the mark is and not the flat areas, where it is not.

    The residual is full size; the weight (mask over local RMS) is smooth, so it is computed on
    the frame at half size and enlarged: a quarter of the pixels for two of the three blurs and
    the element-wise work, which made detection 1.8x faster (docs/benchmarks.md, "Detection under
    10 ms"; the same reads and no false positive on the issue's edits)."""
    blurred = cv2.GaussianBlur(plane, (HIGHPASS_KSIZE, HIGHPASS_KSIZE), HIGHPASS_SIGMA)
    r = cv2.subtract(plane, blurred, dst=blurred)  # in place: a fresh frame-sized array costs page faults
    h, w = plane.shape
    half = ((w + 1) // 2, (h + 1) // 2)
    # Half size by 2 x 2 means: the same Gaussian as at full size is then sigma_h with
    # (2 sigma_h)^2 + 1/3 = sigma^2 (a 2 px box's variance is 1/3 px^2).
    y = cv2.resize(plane, half, interpolation=cv2.INTER_AREA)
    yy = cv2.resize(cv2.multiply(plane, plane), half, interpolation=cv2.INTER_AREA)
    rr = cv2.resize(cv2.multiply(r, r), half, interpolation=cv2.INTER_AREA)
    weight = _visibility(y, _half_sigma(MASK_SIGMA), yy, erode=_ERODE_HALF)
    weight /= cv2.sqrt(cv2.GaussianBlur(rr, (0, 0), _half_sigma(WHITEN_SIGMA))) + np.float32(WHITEN_FLOOR)
    return cv2.multiply(r, cv2.resize(weight, (w, h), interpolation=cv2.INTER_LINEAR), dst=r)


def _half_sigma(sigma: float) -> float:
    """The Gaussian sigma at half size that, after a 2 x 2 mean, blurs as `sigma` does at full size."""
    return float(np.sqrt(sigma * sigma - 1.0 / 3.0) / 2.0)


def can_mark(shape: tuple[int, ...]) -> bool:
    return min(shape[0], shape[1]) >= MIN_SIDE


def cell_signs(run_id: bytes) -> np.ndarray:
    """(16, 16) signs of one tile's cells: the marker's and the payload's bits as +-1."""
    if len(run_id) != RUN_ID_BYTES:
        raise WatermarkError(f"the run id must be {RUN_ID_BYTES} bytes, not {len(run_id)}")
    payload = 2.0 * encode(_bits(run_id + bytes([crc8(run_id)]))) - 1.0
    signs = np.empty((_N, _N))
    signs[_IS_MARKER] = _MARKER_SIGNS[_INDEX[_IS_MARKER]]
    signs[~_IS_MARKER] = payload[_INDEX[~_IS_MARKER]]
    return signs


def luma(bgr: np.ndarray) -> np.ndarray:
    """The plane the watermark lives in (float32 grey levels); what `detect` reads of a frame."""
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)


def _ramp(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    out = (x - np.float32(lo)) * np.float32(1.0 / (hi - lo))
    return np.minimum(np.maximum(out, 0.0, out=out), 1.0, out=out)  # in place: np.clip is several times slower


_ERODE = np.ones((5, 5), np.uint8)
_ERODE_HALF = np.ones((3, 3), np.uint8)  # 6 x 6 at full size


def _visibility(y: np.ndarray, sigma: float = MASK_SIGMA, yy: np.ndarray | None = None,
                erode: np.ndarray = _ERODE) -> np.ndarray:
    """The brightness-only part of the mask: contrast masking times the luminance ramps. Detection
    computes it too, on the frame it reads (at half size: `sigma` and `erode` for that size, `yy`
    the squares' means), to weight each pixel by the mark it can carry."""
    mean = cv2.GaussianBlur(y, (0, 0), sigma)
    var = cv2.GaussianBlur(cv2.multiply(y, y) if yy is None else yy, (0, 0), sigma)
    var -= cv2.multiply(mean, mean)
    contrast = _ramp(cv2.sqrt(np.maximum(var, 0.0, out=var)), FLAT_STD, TEXTURE_STD)
    # Eroding the contrast term (a min over 5 x 5) keeps the mark off the flat side of an edge.
    out = cv2.erode(contrast, erode)
    out *= _ramp(mean, *DARK)
    out *= 1.0 - _ramp(mean, *BRIGHT)
    return out


def perceptual_mask(bgr: np.ndarray) -> np.ndarray:
    """Per pixel 0-1: how much of the mark the eye will not see there (float32, frame-sized).

    Contrast masking: the local standard deviation of the brightness (Gaussian window), 0 under
    FLAT_STD and 1 from TEXTURE_STD. Luminance: off in the dark (the grain is a large relative
    change there and codecs quantise it into blotches) and near white (it would clip). Colour:
    fading out on strongly saturated pixels, where adding grey to B, G and R shifts the hue.
    """
    b, g, r = cv2.split(bgr)
    saturation = cv2.subtract(cv2.max(cv2.max(b, g), r), cv2.min(cv2.min(b, g), r))
    colour = 1.0 - _ramp(cv2.blur(saturation, (5, 5)).astype(np.float32), *SATURATED)
    return _visibility(luma(bgr)) * colour


@functools.lru_cache(maxsize=8)
def _tile(run_id: bytes) -> np.ndarray:
    """One (TILE, TILE) tile of the mark at full strength: AMPLITUDE x the cells' signs x the pattern."""
    signs = np.repeat(np.repeat(cell_signs(run_id).astype(np.float32), CELL, 0), CELL, 1)
    return AMPLITUDE * signs * _PATTERN


def embed(bgr: np.ndarray, run_id: bytes, weight: np.ndarray | None = None, index: int = 0,
          rms: float | None = None) -> np.ndarray:
    """The frame with the watermark (a new uint8 array); WatermarkError under 128 px a side.
    `weight` (frame-sized, 0-1) scales the mark per pixel on top of the perceptual mask, e.g.
    fainter on a face. `index`: the frame's index in its video, which sets the mark's sign
    (SEQUENCE), so that over a still background the grain changes from frame to frame. `rms`: the
    frame's budget (default MAX_RMS; a still image, with no frames to add up, takes STILL_MAX_RMS)."""
    if not can_mark(bgr.shape):
        raise WatermarkError(f"a {bgr.shape[1]}x{bgr.shape[0]} frame is too small to watermark "
                             f"(at least {MIN_SIDE} px on each side)")
    h, w = bgr.shape[:2]
    mask = perceptual_mask(bgr)
    if weight is not None:
        mask = mask * weight.astype(np.float32)
    added = mask * np.tile(_tile(bytes(run_id)), (-(-h // TILE), -(-w // TILE)))[:h, :w] * sign(index)
    # Every frame spends the same budget: its mark brought to MAX_RMS, fainter on a busy picture,
    # stronger (up to MAX_AMPLITUDE where the mask is 1) where little of the picture can hide it.
    actual = float(np.sqrt(np.mean(added * added)))
    added *= min((MAX_RMS if rms is None else rms) / max(actual, 1e-6), MAX_AMPLITUDE / AMPLITUDE)
    # The same whole grey levels to B, G and R, in 16-bit integers (cheaper than floats on three channels).
    out = bgr.astype(np.int16)
    out += np.rint(added).astype(np.int16)[..., None]
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Detection: synchronise (rotation, scale), fold, then the eight mirrors/turns of the fold.


@dataclass(frozen=True)
class Geometry:
    """How a frame relates to the marked one: rotated by `angle` degrees and resized by `scale`."""

    angle: float = 0.0
    scale: float = 1.0
    # A filmed screen's perspective, before the rotation and resize: the top edge narrower than the bottom by
    # this fraction of the width at each end (negative: the bottom edge narrower), and the left edge shorter
    # than the right by this fraction of the height (negative: the right edge shorter).
    keystone: tuple[float, float] = (0.0, 0.0)

    @property
    def identity(self) -> bool:
        return abs(self.angle) < 0.05 and abs(self.scale - 1.0) < 0.002 and self.keystone == (0.0, 0.0)


def _autocorrelation(residuals: list[np.ndarray]) -> np.ndarray:
    """The circular autocorrelation of the residuals (each the sum of frames of one sign: the
    autocorrelation does not care which), summed, on a twice-padded grid, centred, with the
    picture's own smooth autocorrelation removed and each lag expressed in local standard
    deviations: lattice peaks stand out as z-scores."""
    h, w = residuals[0].shape
    power = 0.0
    for r in residuals:
        padded = np.zeros((2 * h, 2 * w), np.float32)
        padded[:h, :w] = r
        spectrum = np.fft.rfft2(padded)
        power = power + (spectrum * np.conj(spectrum)).real
    ac = np.fft.fftshift(np.fft.irfft2(power, s=(2 * h, 2 * w))).astype(np.float32)
    ac -= cv2.GaussianBlur(ac, (0, 0), 4.0)
    spread = np.sqrt(cv2.GaussianBlur(ac * ac, (0, 0), 24.0)) + 1e-6
    return ac / spread


def _sample(ac: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`ac` at (x, y) offsets from its centre (bilinear)."""
    cy, cx = ac.shape[0] // 2, ac.shape[1] // 2
    x, y = points[..., 0] + cx, points[..., 1] + cy
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    ok = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < ac.shape[1]) & (y0 + 1 < ac.shape[0])
    x0, y0 = np.where(ok, x0, 0), np.where(ok, y0, 0)
    v = (ac[y0, x0] * (1 - fx) * (1 - fy) + ac[y0, x0 + 1] * fx * (1 - fy)
         + ac[y0 + 1, x0] * (1 - fx) * fy + ac[y0 + 1, x0 + 1] * fx * fy)
    return np.where(ok, v, 0.0)


def synchronise(residuals: list[np.ndarray], candidates: int = 2) -> list[Geometry]:
    """The likeliest geometries (best first) from the lattice peaks of the residuals'
    autocorrelation: a lag v and its quarter turn, both peaks, give angle and scale."""
    ac = _autocorrelation(residuals)
    h, w = residuals[0].shape
    reach = 0.8 * min(h, w)  # beyond this the overlap is too small to show a peak
    lo, hi = TILE * SCALE_RANGE[0], min(TILE * SCALE_RANGE[1], reach)
    if hi <= lo:
        return []
    # One quadrant of lags (angle -45..45 degrees) covers the lattice's four primary vectors.
    r = int(np.ceil(hi))
    ys, xs = np.mgrid[-r:r + 1, 0:r + 1].astype(np.float32)
    rad, ang = np.hypot(xs, ys), np.degrees(np.arctan2(ys, xs))
    keep = (rad >= lo) & (rad <= hi) & (ang >= -45) & (ang < 45)
    v = np.stack([xs[keep], ys[keep]], axis=-1)
    score = _lattice_score(ac, v)
    found: list[Geometry] = []
    taken: list[np.ndarray] = []
    for k in np.argsort(-score):
        if len(found) == candidates:
            break
        if any(np.hypot(*(v[k] - t)) < 6 for t in taken):
            continue
        taken.append(v[k])
        best = _refine(ac, v[k])
        found.append(Geometry(float(np.degrees(np.arctan2(best[1], best[0]))), float(np.hypot(*best)) / TILE))
    return found


def _lattice_score(ac: np.ndarray, v: np.ndarray) -> np.ndarray:
    """How well lags v (n, 2) look like a lattice vector: the peaks at v, its quarter turn and both
    diagonals, less the strongest of the four (a rotated frame's straight borders draw ridges
    through v and its quarter turn, never through the diagonals)."""
    q = np.stack([-v[..., 1], v[..., 0]], axis=-1)
    peaks = np.stack([_sample(ac, v), _sample(ac, q), _sample(ac, v + q), _sample(ac, v - q)])
    return peaks.sum(axis=0) - peaks.max(axis=0)


def _refine(ac: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The lag vector to a tenth of a pixel, by the lattice's peaks at v and at twice v."""
    best, best_score = v, -np.inf
    offsets = np.stack(np.meshgrid(np.arange(-1, 1.01, 0.1), np.arange(-1, 1.01, 0.1)), axis=-1).reshape(-1, 2)
    cand = v + offsets
    score = _lattice_score(ac, cand) + _lattice_score(ac, 2 * cand)
    k = int(np.argmax(score))
    if score[k] > best_score:
        best = cand[k]
    return best


def _warp_back(geometry: Geometry, h: int, w: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The map (3 x 3: marked coordinates -> the frame's, about the centres) of `geometry` for an
    h x w frame, and the marked picture's size (width, height) that holds all of it."""
    s, a = geometry.scale, np.radians(geometry.angle)
    c, sn = abs(np.cos(a)), abs(np.sin(a))
    out_w, out_h = int(np.ceil((w * c + h * sn) / s)), int(np.ceil((w * sn + h * c) / s))
    # Output (marked) coordinates -> input: x_in = s R(angle) (x_out - centre_out) + centre_in.
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre_in, centre_out = np.array([(w - 1) / 2, (h - 1) / 2]), np.array([(out_w - 1) / 2, (out_h - 1) / 2])
    affine = np.vstack([np.hstack([rot, (centre_in - rot @ centre_out)[:, None]]), [0.0, 0.0, 1.0]])
    top, left = geometry.keystone
    if top == 0.0 and left == 0.0:
        return affine, (out_w, out_h)
    # The keystone moves the marked picture's corners (top-left, top-right, bottom-right, bottom-left;
    # x right, y down) before the rotation and resize.
    dx, dy = top * out_w, left * out_h
    corners = np.float32([[0, 0], [out_w, 0], [out_w, out_h], [0, out_h]])
    moved = corners + np.float32([[max(dx, 0), max(dy, 0)], [-max(dx, 0), max(-dy, 0)],
                                  [-max(-dx, 0), -max(-dy, 0)], [max(-dx, 0), -max(dy, 0)]])
    return affine @ cv2.getPerspectiveTransform(corners, moved), (out_w, out_h)


def _undo_frame(plane: np.ndarray, geometry: Geometry) -> np.ndarray:
    """The residual of a frame brought back to the marked geometry, the frame warped first and
    high-passed there (zero outside the picture): slower than `_undo` of its residual, and on a
    downscaled copy it reads more of the mark (d3 at 0.5x: the run id, which `_undo` missed)."""
    if geometry.identity:
        return _highpass(plane)
    m, size = _warp_back(geometry, *plane.shape)
    flags = cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP
    back = cv2.warpPerspective(plane, m, size, flags=flags, borderMode=cv2.BORDER_REPLICATE)
    inside = cv2.warpPerspective(np.ones_like(plane), m, size, flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP)
    return _highpass(back) * cv2.erode(inside, np.ones((5, 5), np.uint8))


def _undo(residual: np.ndarray, geometry: Geometry) -> np.ndarray:
    """A residual (`_highpass`) brought back to the marked orientation and size (about its
    centre), zero outside the picture. The residual is warped rather than the frame, so that a
    sum of residuals (the frames of one phase) is warped once: the search costs the same for any
    number of frames (the high-pass is isotropic, and at the scales searched keeps the chips)."""
    if geometry.identity:
        return residual
    m, size = _warp_back(geometry, *residual.shape)
    return cv2.warpPerspective(residual, m, size, flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)


def _fold(residual: np.ndarray) -> np.ndarray:
    """A residual summed onto one (TILE, TILE) tile."""
    h, w = residual.shape
    padded = np.zeros((-(-h // TILE) * TILE, -(-w // TILE) * TILE), np.float32)
    padded[:h, :w] = residual
    return padded.reshape(padded.shape[0] // TILE, TILE, padded.shape[1] // TILE, TILE).sum(axis=(0, 2))


def _orient(fold: np.ndarray, k: int) -> np.ndarray:
    """The k-th of the tile's eight mirrors/turns (0: as is)."""
    return np.rot90(fold[:, ::-1] if k >= 4 else fold, k % 4)


def _correlation(fold: np.ndarray) -> np.ndarray:
    """Correlation of the fold with the marker's pattern at every roll (dy, dx) of the tile."""
    return np.fft.irfft2(np.fft.rfft2(fold) * _TEMPLATE_FFT, s=fold.shape)


def _z(corr: np.ndarray, at: tuple[int, int]) -> float:
    return float((corr[at] - corr.mean()) / max(corr.std(), 1e-12))


def _run_id(fold: np.ndarray, roll: tuple[int, int]) -> bytes | None:
    """The payload read at a roll: the run id, or None when its CRC does not match (a chance match:
    1 in 256 of the reads that fail, and only where the marker was found)."""
    aligned = np.roll(fold, (-roll[0], -roll[1]), axis=(0, 1))
    cells = np.bincount(_PIXEL_CELL.ravel(), (aligned * _PATTERN).ravel(), _N * _N).reshape(_N, _N)
    soft = np.bincount(_INDEX[~_IS_MARKER], cells[~_IS_MARKER], CODED_BITS)  # each coded bit's cells summed
    data = np.packbits(decode(soft / max(float(np.abs(soft).mean()), 1e-12))).tobytes()
    return data[:RUN_ID_BYTES] if crc8(data[:RUN_ID_BYTES]) == data[RUN_ID_BYTES] else None


@dataclass
class Detection:
    """What `detect` found in a set of frames of one video (or one image)."""

    found: bool
    run_id: str | None  # hex of the 3 bytes, when found and its CRC matches
    z: float  # the marker's correlation peak in standard deviations (found: >= Z_FOUND)
    frames: int  # frames read
    frames_decoded: int  # frames that read the same run id alone (and show the marker, z >= Z_FRAME)
    scale: float | None  # frame size / marked size, when found
    angle: float | None = None  # degrees the picture was turned by, when found
    mirrored: bool | None = None  # whether the picture was mirrored, when found
    keystone: tuple[float, float] | None = None  # a filmed screen's perspective (Geometry.keystone), when found

    @property
    def confidence(self) -> float:
        """The fraction of frames that decode on their own."""
        return self.frames_decoded / self.frames if self.frames else 0.0

    def to_dict(self) -> dict:
        return {"found": self.found, "run_id": self.run_id, "z": round(self.z, 2), "frames": self.frames,
                "frames_decoded": self.frames_decoded, "confidence": round(self.confidence, 3),
                "scale": self.scale, "angle": self.angle, "mirrored": self.mirrored,
                "keystone": list(self.keystone) if self.keystone else None}


def _by_phase(residuals: list[np.ndarray], indices: list[int]) -> tuple[list[np.ndarray | None], np.ndarray]:
    """The residuals summed by their frame's phase in the sign sequence (None: no frame of that
    phase), and how many frames each sum holds."""
    sums: list[np.ndarray | None] = [None] * PERIOD
    count = np.zeros(PERIOD, np.float32)
    for r, i in zip(residuals, indices):
        j = i % PERIOD
        total = sums[j]
        if total is None:
            sums[j] = r.copy()
        else:
            total += r  # in place: these are frame-sized
        count[j] += 1
    return sums, count


def _phases(sums: list[np.ndarray | None], count: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(PERIOD, TILE, TILE): each phase's sum undone by `geometry` and folded, less its share of
    the frames' mean (what stands still: the static picture, and a seventh of the mark)."""
    out = np.stack([np.zeros((TILE, TILE), np.float32) if r is None else _fold(_undo(r, geometry)) for r in sums])
    if np.count_nonzero(count) > 1:  # one phase alone (an image) has no still part to tell apart
        out -= count[:, None, None] * (out.sum(axis=0) / count.sum())
    return out


def _best_orientation(phases: np.ndarray, geometry: Geometry,
                      orientations: Iterable[int] = range(8)) -> tuple[float, Geometry, int, int, tuple[int, int]]:
    """(z, geometry, orientation, shift, roll) of the best mirror/turn of the tile and shift of the
    sign sequence (a clip cut from the middle starts at any phase): every shift's signed sum of
    the phases, correlated with the marker at every roll at once."""
    best: tuple[float, Geometry, int, int, tuple[int, int]] = (-np.inf, geometry, 0, 0, (0, 0))
    used = np.flatnonzero(np.abs(phases).sum(axis=(1, 2)) > 0)
    shifts = range(PERIOD) if len(used) > 1 else range(1)  # one phase: a single sign, the same at every shift
    weights = _SHIFTS[np.ix_(list(shifts), used)].astype(np.complex128)
    for k in orientations:
        spectra = np.fft.rfft2(np.stack([_orient(phases[j], k) for j in used])) * _TEMPLATE_FFT
        # Every shift's signed sum of the phases at once: one product of (shifts x phases) by (phases x
        # frequencies), one batched inverse FFT (a tensordot per shift spent most of the search here).
        corrs = np.fft.irfft2((weights @ spectra.reshape(len(used), -1)).reshape(-1, *spectra.shape[1:]),
                              s=(TILE, TILE))
        for o, corr in zip(shifts, corrs):
            if len(used) == 1:
                corr *= np.sign(corr.flat[np.argmax(np.abs(corr))])  # a single frame: either sign
            at = np.unravel_index(int(np.argmax(corr)), corr.shape)
            z = _z(corr, at)
            if z > best[0]:
                best = (z, geometry, k, o, (int(at[0]), int(at[1])))
    return best


def _without_bars(planes: list[np.ndarray]) -> tuple[list[np.ndarray], bool]:
    """The frames without their flat borders: the black bars of a letterbox or pillarbox (a flat wall
    at an edge goes too; it carries no mark). Bars are no picture, yet their edges dominate the
    residuals' autocorrelation and hide the lattice; what is cut only moves the tile's origin, and
    every roll of the tile is searched anyway. A row or column is a bar where it is flat in every
    frame of a sample. Also says whether anything was cut."""
    sample = planes[:: max(1, len(planes) // 8)][:8]
    rows = np.all([p.std(axis=1) < BAR_STD for p in sample], axis=0)
    cols = np.all([p.std(axis=0) < BAR_STD for p in sample], axis=0)
    if rows.all() or cols.all() or not (rows[[0, -1]].any() or cols[[0, -1]].any()):
        return planes, False  # a flat picture, or no bar at an edge
    top, bottom = int(np.argmin(rows)), len(rows) - int(np.argmin(rows[::-1]))
    left, right = int(np.argmin(cols)), len(cols) - int(np.argmin(cols[::-1]))
    if min(bottom - top, right - left) < MIN_DETECT_SIDE:
        return planes, False
    return [p[top:bottom, left:right] for p in planes], True


def frames_to_read(width: int, height: int, frames: int = SEARCH_FRAMES) -> int:
    """How many frames of a `width` x `height` video to fold: `frames`, or more for a small picture,
    up to the pixels of SEARCH_PIXELS (each frame of a small copy holds less of the mark and costs less)."""
    return int(min(MAX_SEARCH_FRAMES, max(frames, SEARCH_PIXELS // max(1, width * height))))


def detect(planes: Iterable[np.ndarray], search_frames: int = SEARCH_FRAMES, indices: Iterable[int] | None = None) -> Detection:
    """Look for the watermark in the `luma` planes of frames of one video (or one image).

    `indices`: each plane's frame index in the video (default 0, 1, 2, ...), for the mark's sign.
    On `search_frames` frames spread over the list: the geometry (as is, and the lattice's best
    guesses), then for each the folded residuals in all eight mirrors/turns and every shift of
    the sign sequence, until the marker stands out. Then the payload is read from all frames
    folded together at that geometry, each with its sign, and each frame alone gives the confidence.
    """
    planes = list(planes)
    index = list(range(len(planes))) if indices is None else list(indices)
    keep = [i for i, p in enumerate(planes) if min(p.shape[:2]) >= MIN_DETECT_SIDE]
    shapes = [planes[i].shape for i in keep]
    if len(set(shapes)) > 1:  # one video has one size; an odd frame out is left out
        keep = [i for i in keep if planes[i].shape == max(set(shapes), key=shapes.count)]
    planes, index = [planes[i] for i in keep], [index[i] for i in keep]
    if not planes:
        return Detection(False, None, 0.0, 0, 0, None)
    planes, boxed = _without_bars(planes)
    search_frames = frames_to_read(planes[0].shape[1], planes[0].shape[0], search_frames)
    step = max(1, len(planes) // search_frames)
    sample, sample_index = planes[::step][:search_frames], index[::step][:search_frames]
    plain = [_highpass(p) for p in sample]
    sums, count = _by_phase(plain, sample_index)

    def attempt(geometry: Geometry) -> tuple[float, Geometry, int, int, tuple[int, int]]:
        return _best_orientation(_phases(sums, count, geometry), geometry)

    best = attempt(Geometry())
    if best[0] < Z_FOUND:
        # The lattice's guesses, each tried as it is; the REFINED best of them then searched around:
        # the lattice gives angle and scale to about a pixel of the tile, and a small search brings
        # the frame's far corners back onto the pattern's 4 px chips.
        # Where the lattice is too faint to see (a small copy), the common resize ratios are guesses too.
        # A faint lattice gives a rotation's angle better than its scale (a sub-multiple of the tile
        # can win): each guess's angle at scale 1 is tried as well, a rotation without a resize.
        lattice = synchronise([r for r in sums if r is not None], SYNC_CANDIDATES)
        candidates = [*lattice, *(Geometry(g.angle, 1.0) for g in lattice), *(Geometry(0.0, s) for s in COMMON_SCALES)]
        # A copy resized from one of the sizes videos are made at: its exact ratio (a 480 px video at 0.33 is
        # 158 px, 0.329; the ratio 1/3 alone leaves the tile's far side a chip off, beyond the refinement)
        side = min(planes[0].shape[:2])
        candidates += [Geometry(0.0, side / size) for size in COMMON_HEIGHTS
                       if SCALE_RANGE[0] <= side / size <= 0.9]
        if boxed:  # a picture fitted into a frame with bars: from one of the sizes videos are made at (by
            # its height or its width: a flat edge of the picture itself may have gone with the bars)
            scales = {side / size for side in planes[0].shape[:2] for size in COMMON_HEIGHTS}
            candidates += [Geometry(0.0, s) for s in sorted(scales) if 1.0 < s <= MAX_FIT_SCALE]
        guesses = sorted(map(attempt, candidates), key=lambda t: -t[0])[:REFINED]
        for found in guesses:
            for step_angle, step_scale in REFINE_STEPS:
                around = [Geometry(found[1].angle + da * step_angle, found[1].scale * (1 + ds * step_scale))
                          for da in (-1, 0, 1) for ds in (-1, 0, 1) if da or ds]
                found = max([found, *map(attempt, around)], key=lambda t: t[0])
            best = max(best, found, key=lambda t: t[0])
            if best[0] >= Z_FOUND:
                break
        if best[0] < KEYSTONE_BELOW:
            # A filmed screen: a perspective that the lattice does not show (its peaks only blur) and that
            # keeps every guess above under the threshold, or just over it, too far off to read the run id
            # (the benchmark's d0 at 0.717 for 0.75). The refined guesses and the common resize ratios
            # again under each of KEYSTONES, upright only (a screen is filmed upright), then the best in
            # every orientation, refined. (Every guess under every keystone doubled an unmarked video's search.)
            bases = [t[1] for t in guesses] + [Geometry(0.0, s) for s in COMMON_SCALES]
            screened = [_best_orientation(_phases(sums, count, g), g, orientations=(0,))
                        for c in bases if KEYSTONE_SCALES[0] <= c.scale <= KEYSTONE_SCALES[1]
                        for g in (Geometry(c.angle, c.scale, ks) for ks in KEYSTONES)]
            if screened:
                found = attempt(max(screened, key=lambda t: t[0])[1])
                g = found[1]
                axis = 0 if g.keystone[0] else 1
                around = [Geometry(g.angle, g.scale * (1 + ds * REFINE_STEPS[0][1]),
                                   (g.keystone[0] + dk * KEYSTONE_STEP * (axis == 0),
                                    g.keystone[1] + dk * KEYSTONE_STEP * (axis == 1)))
                          for dk in (-1, 0, 1) for ds in (-1, 0, 1) if dk or ds]
                best = max(best, found, *map(attempt, around), key=lambda t: t[0])
    z, geometry, k, shift, roll = best
    if z < Z_FOUND:
        return Detection(False, None, z, len(planes), 0, None)
    done = dict(zip(range(0, step * len(plain), step), plain)) if geometry.identity else {}  # no second high-pass
    single = len({i % PERIOD for i in index}) == 1
    # The payload is read from every frame warped back before its high-pass (`_undo_frame`).
    folds = [_orient(_fold(done[n] if n in done else _undo_frame(p, geometry)), k) for n, p in enumerate(planes)]
    if not single:  # each frame less what stands still in all of them (as in _phases), then its sign undone
        still = sum(folds) / len(folds)
        folds = [f - still for f in folds]
    folds = [f * SEQUENCE[(i + shift) % PERIOD] for f, i in zip(folds, index)]
    total = sum(folds)
    if single and _correlation(total)[roll] < 0:  # one sign only, which the search took either way
        folds, total = [-f for f in folds], -total
    corr = _correlation(total)  # the peak again on every frame: the sample's may sit a pixel off
    near = [((roll[0] + dy) % TILE, (roll[1] + dx) % TILE) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    roll = max(near, key=lambda r: corr[r])
    z = max(z, _z(corr, roll))
    run_id = _run_id(total, roll)
    decoded = sum(1 for f in folds if run_id is not None and _z(_correlation(f), roll) >= Z_FRAME
                  and _run_id(f, roll) == run_id)  # the cheap test first: few frames pass it
    angle = geometry.angle + 90.0 * (k % 4)
    return Detection(True, run_id.hex() if run_id else None, z, len(planes), decoded, round(geometry.scale, 4),
                     round((angle + 180.0) % 360.0 - 180.0, 2), k >= 4,
                     (round(geometry.keystone[0], 4), round(geometry.keystone[1], 4)) if any(geometry.keystone) else None)
