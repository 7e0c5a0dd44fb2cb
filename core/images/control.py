"""ControlNet preprocessors that need no downloaded weights: an image in, a control image out, on OpenCV.

Each takes and returns an HxWx3 uint8 RGB array of the same size. depth and openpose run the user's
network, loaded once per run and passed in `Settings.networks`. The output follows the convention
its ControlNet family was trained on: canny, scribble, lineart and softedge draw white lines on black.
Sizes of blurs and strokes are set for a 512-pixel side (ControlNet's training resolution) and grow
with larger images, so a preprocessor looks the same at any size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..errors import UsageError
from .control_types import MODEL_KINDS, WITH_A_MODEL, check_type, model_flag

TILE_FACTOR = 4  # tile: the detail kept is that of an image this many times smaller


@dataclass(frozen=True)
class Settings:
    canny_low: int = 100
    canny_high: int = 200
    seed: int = 0  # shuffle's random flow
    networks: dict[str, Any] = field(default_factory=dict)  # depth, openpose: loading/annotators.load's, by type


def preprocess(kind: str, image: np.ndarray, settings: Settings = Settings()) -> np.ndarray:
    check_type(kind)
    if kind in WITH_A_MODEL:
        if kind not in settings.networks:
            raise UsageError(f"--control-type {kind} needs {model_flag(kind)} MODEL, {MODEL_KINDS[kind]}")
        return settings.networks[kind].control_map(image)
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
    if kind in settings.networks:
        return settings.networks[kind].record()
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


# ---------------------------------------------------------------- OpenPose's drawing

# OpenPose's 18 body points (nose, neck, right shoulder, elbow, wrist, left shoulder, elbow, wrist, right hip,
# knee, ankle, left hip, knee, ankle, right eye, left eye, right ear, left ear), the 17 limbs between them and
# one colour each: the picture the openpose ControlNets were trained on, so these are fixed by that format.
POSE_LIMBS = ((1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17))
POSE_COLOURS = ((255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0), (0, 255, 85), (0, 255, 170),
                (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85))
# COCO's 17 points (what ViTPose finds) in OpenPose's order; the neck, which COCO lacks, is between the shoulders.
COCO_TO_OPENPOSE = (0, None, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)


def openpose_points(coco: np.ndarray) -> np.ndarray:
    """One person's COCO points (17 rows of x, y, or NaN where not seen) as OpenPose's 18."""
    points = np.full((18, 2), np.nan, np.float32)
    for ours, theirs in enumerate(COCO_TO_OPENPOSE):
        if theirs is not None:
            points[ours] = coco[theirs]
    points[1] = (coco[5] + coco[6]) / 2  # NaN unless both shoulders are seen
    return points


def draw_pose(people: list[np.ndarray], height: int, width: int) -> np.ndarray:
    """OpenPose's picture of each person's 18 points: limbs as ellipses at 60% of their colour on black, then a dot per point."""
    canvas = np.zeros((height, width, 3), np.uint8)
    thick = max(1, round(4 * _scale(canvas)))  # 4 pixels at 512, as the ControlNets saw them
    for points in people:
        for (a, b), colour in zip(POSE_LIMBS, POSE_COLOURS):
            if np.isnan(points[[a, b]]).any():
                continue
            (x0, y0), (x1, y1) = points[a], points[b]
            length = float(np.hypot(x1 - x0, y1 - y0))
            angle = float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
            polygon = cv2.ellipse2Poly((int(round((x0 + x1) / 2)), int(round((y0 + y1) / 2))), (int(round(length / 2)), thick), int(round(angle)), 0, 360, 1)
            cv2.fillConvexPoly(canvas, polygon, tuple(int(c * 0.6) for c in colour))
        for point, colour in zip(points, POSE_COLOURS):
            if not np.isnan(point).any():
                cv2.circle(canvas, (int(round(point[0])), int(round(point[1]))), thick, colour, thickness=-1)
    return canvas
