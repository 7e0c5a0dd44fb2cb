"""ControlNet preprocessors that need no downloaded weights: an image in, a control image out, on OpenCV.

Each takes and returns an HxWx3 uint8 RGB array of the same size. depth is the one with a network,
the user's, passed in `Settings.depth`. The output follows the convention
its ControlNet family was trained on: canny, scribble, lineart and softedge draw white lines on black.
Sizes of blurs and strokes are set for a 512-pixel side (ControlNet's training resolution) and grow
with larger images, so a preprocessor looks the same at any size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import UsageError
from .control_types import check_type

TILE_FACTOR = 4  # tile: the detail kept is that of an image this many times smaller


@dataclass(frozen=True)
class Settings:
    canny_low: int = 100
    canny_high: int = 200
    seed: int = 0  # shuffle's random flow
    depth: Any = None  # depth: the user's network (loading/depth.py's DepthEstimator), loaded once per run


def preprocess(kind: str, image: np.ndarray, settings: Settings = Settings()) -> np.ndarray:
    check_type(kind)
    if kind == "depth":
        if settings.depth is None:
            raise UsageError("--control-type depth needs --depth-model MODEL, a transformers depth-estimation model")
        return settings.depth.control_map(image)
    if kind == "canny":
        return canny(image, settings.canny_low, settings.canny_high)
    if kind == "shuffle":
        return shuffle(image, settings.seed)
    return {"scribble": scribble, "lineart": lineart, "softedge": softedge, "tile": tile, "none": _same}[kind](image)


def settings_record(kind: str, settings: Settings) -> dict:
    """The settings that shaped this preprocessor's output (only those it reads), for the record."""
    if kind == "canny":
        return {"low": settings.canny_low, "high": settings.canny_high}
    if kind == "shuffle":
        return {"seed": settings.seed}
    if kind == "tile":
        return {"factor": TILE_FACTOR}
    if kind == "depth" and settings.depth is not None:
        return settings.depth.record()
    return {}


# ---------------------------------------------------------------- the preprocessors


def _same(image: np.ndarray) -> np.ndarray:
    return image


def _scale(image: np.ndarray) -> float:
    return max(1.0, min(image.shape[:2]) / 512)


def _rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2))


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def canny(image: np.ndarray, low: int = 100, high: int = 200) -> np.ndarray:
    """Canny's edges, one pixel wide, white on black (OpenCV takes the strongest channel's gradient)."""
    return _rgb(cv2.Canny(np.ascontiguousarray(image), low, high))


def scribble(image: np.ndarray) -> np.ndarray:
    """A sketch's strokes as the scribble ControlNet wants them: solid, thick, white on black, specks gone.

    A stroke is whatever is darker than the paper around it (a difference of Gaussians, as XDoG does),
    so uneven lighting or a grey paper does not turn into strokes.
    """
    scale = _scale(image)
    grey = _grey(image)
    darker = cv2.GaussianBlur(grey, (0, 0), 5.0 * scale) - cv2.GaussianBlur(grey, (0, 0), 0.5 * scale)
    strokes = (darker > 12).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(strokes, connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= max(6, int(8 * scale * scale))  # pencil dust and JPEG specks
    keep[0] = False
    strokes = keep[labels].astype(np.uint8)
    radius = max(1, round(1.5 * scale))
    strokes = cv2.dilate(strokes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    return _rgb(strokes * 255)


def lineart(image: np.ndarray) -> np.ndarray:
    """A pencil sketch as clean line art, white lines on black (the lineart ControlNets' convention).

    A line is where the drawing is darker than its surroundings, so a filled dark area gives its
    outline rather than a white blob; the strength is normalised by the drawing's typical line, so a
    faint pencil and a dark pen come out alike, and paper grain below a floor is dropped.
    """
    pixels = image.astype(np.float32)
    surroundings = cv2.GaussianBlur(pixels, (0, 0), 6.0 * _scale(image))
    darker = np.min(surroundings - pixels, axis=2).clip(0, 255)
    lines = darker[darker > 8]
    typical = max(16.0, float(np.median(lines))) if lines.size else 16.0
    strength = darker / typical * 127
    strength[darker <= 8] = 0
    return _rgb(strength.clip(0, 255))


def softedge(image: np.ndarray) -> np.ndarray:
    """Soft edges (what HED and PiDiNet give, without their networks): gradient magnitude at three scales, blurred.

    Each scale is normalised on its own so fine texture and large shapes both show; the result has
    grey levels, not the hard 0/255 of canny.
    """
    scale = _scale(image)
    grey = _grey(image)
    total = np.zeros_like(grey)
    for sigma in (1.0, 2.0, 4.0):
        blurred = cv2.GaussianBlur(grey, (0, 0), sigma * scale)
        magnitude = cv2.magnitude(cv2.Sobel(blurred, cv2.CV_32F, 1, 0), cv2.Sobel(blurred, cv2.CV_32F, 0, 1))
        top = float(np.percentile(magnitude, 99.5))
        if top > 1e-3:
            total += np.clip(magnitude / top, 0, 1)
    soft = cv2.GaussianBlur(total / 3, (0, 0), scale)
    soft = np.clip((soft - 0.1) / 0.9, 0, 1)  # a smooth shading or paper grain is not an edge
    return _rgb(np.sqrt(soft) * 255)  # the square root lifts faint edges, as HED's sigmoid does


def tile(image: np.ndarray) -> np.ndarray:
    """The input at a quarter of its detail: what the tile ControlNet was trained to sharpen back."""
    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // TILE_FACTOR), max(1, h // TILE_FACTOR)), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))


def shuffle(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """Content shuffle: every pixel fetched from a place given by a smooth random flow (seeded).

    The colours and textures stay (the shuffle ControlNet transfers style), the layout is scrambled.
    """
    h, w = image.shape[:2]
    rng = np.random.default_rng(seed)
    cell = max(8, min(h, w) // 2)

    def smooth_noise() -> np.ndarray:
        coarse = rng.uniform(0, 1, (h // cell + 2, w // cell + 2)).astype(np.float32)
        fine = cv2.resize(coarse, (w + 2 * cell, h + 2 * cell), interpolation=cv2.INTER_CUBIC)[cell : cell + h, cell : cell + w]
        fine -= fine.min()
        return fine / max(float(fine.max()), 1e-6)

    map_x = smooth_noise() * (w - 1)
    map_y = smooth_noise() * (h - 1)
    return np.ascontiguousarray(cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
