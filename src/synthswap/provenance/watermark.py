"""An invisible watermark in the pixels: a fixed synthswap marker and 3 bytes of the run id.

The mark is a faint, fixed noise pattern added to the brightness (the same value to B, G and
R), which tiles the frame in 128 x 128 pixel tiles. A tile is 16 x 16 cells of 8 x 8 pixels;
each cell carries one bit as the sign of its part of the pattern: 128 cells the fixed 128-bit
MARKER, 128 cells the payload (the run id, 3 bytes, and a CRC-8 of it, so a damaged id reads as
unreadable, never as another run's), each of its 32 bits in REPEATS = 4 cells scattered over the
tile by a fixed permutation. Marker and payload cells alternate like a chessboard. The
repetition is what a static video needs: its frames share their flat regions, where a strong
re-encode wipes the mark the same way in every frame, so one 16 px cell per bit (version 1)
lost a bit to such a region on d9 after CRF 28 (docs/benchmarks.md, "Watermark").

Embedding is spread spectrum with host-interference cancellation ("improved spread
spectrum", Malvar & Florencio 2003): in each 8 x 8 cell the frame's own correlation
with the pattern is measured and mostly (LAMBDA) subtracted, so the picture does not drown
the bit; the pattern's amplitude is AMPLITUDE grey levels (PSNR about 40 dB, a fine grain).

Detection high-passes the brightness (which removes a brightness change), folds the frame
onto one tile (the sum of all its tiles; a crop only rolls the folded tile), and finds the
marker by cross-correlating the fold with the marker's pattern for every roll at once (FFT),
at each of a list of common resize ratios. The marker is found when the correlation peak
stands Z_FOUND standard deviations above the correlation at the other rolls (unmarked
videos of ../shared: at most 4.8); the payload cells are then read at that roll. Frames of
one video are folded together, and each frame is also read alone at the geometry found.

invisible-watermark's DWT-DCT(-SVD) methods were measured first and rejected: at a strength
that survives CRF 23 their 8-16 px chroma blocks show on skin, and at one that does not show
they are gone after a CRF 23 re-encode (docs/benchmarks.md, "Watermark").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable

import cv2
import numpy as np

MARKER = hashlib.sha256(b"synthswap watermark v2").digest()[:16]  # one bit per marker cell
RUN_ID_BYTES = 3
PAYLOAD_BITS = 8 * (RUN_ID_BYTES + 1)  # the run id and its CRC-8
REPEATS = 4  # payload cells per payload bit
TILE = 128  # pixels; the pattern repeats every TILE pixels in both directions
CELL = 8  # pixels per bit cell; TILE // CELL = 16 cells a side, 256 in a tile
CHIP = 4  # pixels per random +-1 chip of the pattern, before smoothing
AMPLITUDE = 2.5  # grey levels (times the pattern, which has unit standard deviation)
LAMBDA = 0.8  # fraction of the frame's own correlation with the pattern cancelled per region
GAIN_CAP = 3.0  # a region's gain is at most this many AMPLITUDEs (the cancellation is cut there)
HIGHPASS_SIGMA = 2.0  # what detection removes: the picture blurred with this sigma
HIGHPASS_CLIP = 10.0  # edges clipped so a few strong ones do not dominate the correlation
MIN_SIDE = 128  # one tile
SCALES = (1.0, 0.75, 0.5, 2 / 3, 0.8, 0.9, 1.5, 2.0)  # frame size / marked size tried by `detect`
Z_FOUND = 6.5  # marker threshold over a whole search (all rolls and scales)
Z_FRAME = 3.0  # one frame at the geometry already found (a single test; its run id must match too)

_N = TILE // CELL
assert _N * _N // 2 == PAYLOAD_BITS * REPEATS  # half the cells are the marker's


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
    for marker cells; for payload cells a payload bit, its REPEATS cells scattered by a fixed
    permutation drawn from SHA-256, the same on every machine)."""
    p, q = np.mgrid[:_N, :_N]
    is_marker = (p + q) % 2 == 0
    cells = _N * _N // 2
    keys = [hashlib.sha256(b"synthswap layout v2" + i.to_bytes(2, "big")).digest() for i in range(cells)]
    scatter = np.array(sorted(range(cells), key=keys.__getitem__))
    index = np.zeros((_N, _N), np.int64)
    index[is_marker] = np.arange(cells)
    index[~is_marker] = scatter % PAYLOAD_BITS
    return is_marker, index


_PATTERN = _pattern()
_IS_MARKER, _INDEX = _layout()
_MARKER_SIGNS = 2.0 * _bits(MARKER) - 1.0
_PIXEL_CELL = np.kron(np.arange(_N * _N).reshape(_N, _N), np.ones((CELL, CELL), np.int64))  # (TILE, TILE)
_TEMPLATE = _PATTERN * np.kron(np.where(_IS_MARKER, _MARKER_SIGNS[_INDEX], 0.0), np.ones((CELL, CELL)))
_TEMPLATE_FFT = np.conj(np.fft.fft2(_TEMPLATE))


def _highpass(plane: np.ndarray) -> np.ndarray:
    r = plane - cv2.GaussianBlur(plane, (0, 0), HIGHPASS_SIGMA)
    return np.clip(r, -HIGHPASS_CLIP, HIGHPASS_CLIP)


def _kappa() -> float:
    """How much of the pattern survives the high-pass (per unit of pattern added)."""
    tiled = np.tile(_PATTERN, (3, 3))
    hp = (tiled - cv2.GaussianBlur(tiled, (0, 0), HIGHPASS_SIGMA))[TILE:2 * TILE, TILE:2 * TILE]
    return float((hp * _PATTERN).sum() / (_PATTERN * _PATTERN).sum())


_KAPPA = _kappa()


def can_mark(shape: tuple[int, ...]) -> bool:
    return min(shape[0], shape[1]) >= MIN_SIDE


def cell_signs(run_id: bytes) -> np.ndarray:
    """(16, 16) signs of one tile's cells: the marker's and the payload's bits as +-1."""
    if len(run_id) != RUN_ID_BYTES:
        raise WatermarkError(f"the run id must be {RUN_ID_BYTES} bytes, not {len(run_id)}")
    payload = 2.0 * _bits(run_id + bytes([crc8(run_id)])) - 1.0
    signs = np.empty((_N, _N))
    signs[_IS_MARKER] = _MARKER_SIGNS[_INDEX[_IS_MARKER]]
    signs[~_IS_MARKER] = payload[_INDEX[~_IS_MARKER]]
    return signs


def luma(bgr: np.ndarray) -> np.ndarray:
    """The plane the watermark lives in (float32 grey levels); what `detect` reads of a frame."""
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)


def embed(bgr: np.ndarray, run_id: bytes, weight: np.ndarray | None = None) -> np.ndarray:
    """The frame with the watermark (a new uint8 array); WatermarkError under 128 px a side.
    `weight` (frame-sized, 0-1) scales the mark per pixel, e.g. fainter on a face."""
    if not can_mark(bgr.shape):
        raise WatermarkError(f"a {bgr.shape[1]}x{bgr.shape[0]} frame is too small to watermark "
                             f"(at least {MIN_SIDE} px on each side)")
    h, w = bgr.shape[:2]
    rows, cols = -(-h // CELL), -(-w // CELL)  # one region per cell, the last ones cut by the frame's edge
    pattern = np.tile(_PATTERN, (-(-h // TILE), -(-w // TILE)))[:rows * CELL, :cols * CELL]
    host = np.zeros_like(pattern)
    host[:h, :w] = _highpass(luma(bgr))

    def region_sums(a: np.ndarray) -> np.ndarray:
        return a.reshape(rows, CELL, cols, CELL).sum(axis=(1, 3))

    inside = np.zeros_like(pattern)
    inside[:h, :w] = 1.0
    own = region_sums(host * pattern) / np.maximum(region_sums(inside * pattern * pattern), 1e-9)
    i, j = np.mgrid[:rows, :cols]
    signs = cell_signs(run_id)[i % _N, j % _N]
    gain = np.clip(AMPLITUDE * signs - LAMBDA * own / _KAPPA, -GAIN_CAP * AMPLITUDE, GAIN_CAP * AMPLITUDE)
    added = (np.kron(gain, np.ones((CELL, CELL))) * pattern)[:h, :w]
    if weight is not None:
        added = added * weight
    return np.clip(np.rint(bgr.astype(np.float32) + added[..., None]), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Detection


def _fold(plane: np.ndarray, scale: float) -> np.ndarray:
    """The high-passed plane, brought back to the marked size, summed onto one (TILE, TILE) tile."""
    if scale != 1.0:
        h, w = plane.shape
        plane = cv2.resize(plane, (round(w / scale), round(h / scale)), interpolation=cv2.INTER_CUBIC)
    r = _highpass(plane)
    h, w = r.shape
    padded = np.zeros((-(-h // TILE) * TILE, -(-w // TILE) * TILE))
    padded[:h, :w] = r
    return padded.reshape(padded.shape[0] // TILE, TILE, padded.shape[1] // TILE, TILE).sum(axis=(0, 2))


def _correlation(fold: np.ndarray) -> np.ndarray:
    """Correlation of the fold with the marker's pattern at every roll (dy, dx) of the tile."""
    return np.real(np.fft.ifft2(np.fft.fft2(fold) * _TEMPLATE_FFT))


def _z(corr: np.ndarray, at: tuple[int, int]) -> float:
    return float((corr[at] - corr.mean()) / max(corr.std(), 1e-12))


def _run_id(fold: np.ndarray, roll: tuple[int, int]) -> bytes | None:
    """The payload read at a roll: the run id, or None when its CRC does not match. When it does
    not, the least certain bit alone is flipped and tried once more (a chance match of the CRC
    then: 1 in 256 of the reads that failed, and only where the marker was found)."""
    aligned = np.roll(fold, (-roll[0], -roll[1]), axis=(0, 1))
    cells = np.bincount(_PIXEL_CELL.ravel(), (aligned * _PATTERN).ravel(), _N * _N).reshape(_N, _N)
    scores = np.bincount(_INDEX[~_IS_MARKER], cells[~_IS_MARKER], PAYLOAD_BITS)  # each bit's cells summed
    bits = (scores > 0).astype(np.int64)
    for flip in (None, int(np.argmin(np.abs(scores)))):
        if flip is not None:
            bits[flip] ^= 1
        data = np.packbits(bits).tobytes()
        if crc8(data[:RUN_ID_BYTES]) == data[RUN_ID_BYTES]:
            return data[:RUN_ID_BYTES]
    return None


@dataclass
class Detection:
    """What `detect` found in a set of frames of one video (or one image)."""

    found: bool
    run_id: str | None  # hex of the 3 bytes, when found and its CRC matches
    z: float  # the marker's correlation peak in standard deviations (found: >= Z_FOUND)
    frames: int  # frames read
    frames_decoded: int  # frames that read the same run id alone (and show the marker, z >= Z_FRAME)
    scale: float | None  # frame size / marked size, when found

    @property
    def confidence(self) -> float:
        """The fraction of frames that decode on their own."""
        return self.frames_decoded / self.frames if self.frames else 0.0

    def to_dict(self) -> dict:
        return {"found": self.found, "run_id": self.run_id, "z": round(self.z, 2), "frames": self.frames,
                "frames_decoded": self.frames_decoded, "confidence": round(self.confidence, 3),
                "scale": self.scale}


def detect(planes: Iterable[np.ndarray], search_frames: int = 16, scales: Iterable[float] = SCALES) -> Detection:
    """Look for the watermark in the `luma` planes of frames of one video (or one image).

    The scale and roll are searched on `search_frames` frames spread over the list, folded
    together, scale by scale until the marker stands out; then the payload is read from all
    frames folded together, and each frame alone gives the confidence.
    """
    planes = [p for p in planes if can_mark(p.shape)]
    if not planes:
        return Detection(False, None, 0.0, 0, 0, None)
    sample = planes[::max(1, len(planes) // search_frames)][:search_frames]
    best = (-np.inf, 1.0, (0, 0))
    for scale in scales:
        corr = _correlation(sum(_fold(p, scale) for p in sample))
        roll = np.unravel_index(int(np.argmax(corr)), corr.shape)
        z = _z(corr, roll)
        if z > best[0]:
            best = (z, scale, (int(roll[0]), int(roll[1])))
        if z >= Z_FOUND:
            break
    z, scale, roll = best
    if z < Z_FOUND:
        return Detection(False, None, z, len(planes), 0, None)
    folds = [_fold(p, scale) for p in planes]
    total = sum(folds)
    corr = _correlation(total)  # the peak again on every frame: the sample's may sit a pixel off
    near = [((roll[0] + dy) % TILE, (roll[1] + dx) % TILE) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    roll = max(near, key=lambda r: corr[r])
    z = max(z, _z(corr, roll))
    run_id = _run_id(total, roll)
    decoded = sum(1 for f in folds if run_id is not None and _run_id(f, roll) == run_id
                  and _z(_correlation(f), roll) >= Z_FRAME)
    return Detection(True, run_id.hex() if run_id else None, z, len(planes), decoded, round(scale, 4))
