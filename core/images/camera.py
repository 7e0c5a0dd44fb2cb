"""Deforum's 3D camera: each pixel stands at its depth, the camera moves, and the frame is resampled.

Deforum's model, reimplemented from its documented behaviour: a pixel at normalised position (x, y)
in [-1, 1] (pixel centres) with depth z is the point (x, y, z). A still pinhole camera and a moved
one, both with the given vertical field of view, project that point; the frame is then sampled at
each pixel's own position minus how far its point moved on screen. Depth runs from 1 (nearest) to
2 (farthest); a flat depth is 1 everywhere. Translations are in Deforum's units, 200 to one unit of
depth; rotations are degrees, about x, then y, then z (Deforum's "XYZ" Euler angles).

Deforum projects with an aspect ratio of 1 (its default aspect_ratio_schedule), so a pixel moves the
same number of pixels per unit in x and in y. Its near and far planes only set the projected depth,
which a 2D frame throws away: they do not change the picture, here as in Deforum.

Flat depth and translation_z alone make a zoom about the frame's centre: a point at depth 1 comes to
depth 1 - d (d = translation_z / 200), so it lands s / (1 - d) times as far from the centre (s =
1 / tan(fov / 2)), and the frame is sampled at c + (p - c) * k with k = 1 - s * d / (1 - d). That is
the 2D zoom 1 / k about c = ((W - 1) / 2, (H - 1) / 2): see `zoom_for_translation_z`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import UsageError
from .motion import BORDERS

TRANSLATION_SCALE = 1 / 200  # Deforum's (from Disco Diffusion)
NEAREST, FARTHEST = 1.0, 2.0
_EPSILON = 1e-4  # a point moved to or behind the camera is sampled far off the frame, where the border fills it
_EQUALISE_BINS = 1024


@dataclass(frozen=True)
class Move:
    """One frame's camera move, in Deforum's units."""

    translation_x: float = 0.0
    translation_y: float = 0.0
    translation_z: float = 0.0
    rotation_x: float = 0.0
    rotation_y: float = 0.0
    rotation_z: float = 0.0
    fov: float = 70.0

    @property
    def still(self) -> bool:
        return not any((self.translation_x, self.translation_y, self.translation_z, self.rotation_x, self.rotation_y, self.rotation_z))


def rotation(x: float, y: float, z: float) -> np.ndarray:
    """Degrees about x, then y, then z, as a matrix that turns row vectors (p @ R)."""
    cx, sx, cy, sy, cz, sz = (f(math.radians(a)) for a in (x, y, z) for f in (math.cos, math.sin))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rx @ ry @ rz


def _focal(fov: float) -> float:
    if not 0 < fov < 180:
        raise UsageError(f"fov {fov:g}: the field of view must be between 0 and 180 degrees")
    return 1 / math.tan(math.radians(fov) / 2)


def _grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    x = (np.arange(width, dtype=np.float32) + 0.5) * (2 / width) - 1
    y = (np.arange(height, dtype=np.float32) + 0.5) * (2 / height) - 1
    return np.meshgrid(x, y)


def sample_maps(depth: np.ndarray, move: Move) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel of the moved frame, where to sample the frame before the move (cv2.remap's maps)."""
    height, width = depth.shape
    s = _focal(move.fov)
    x, y = _grid(width, height)
    z = depth.astype(np.float32)
    points = np.stack([x, y, z], axis=-1)
    moved = points @ rotation(move.rotation_x, move.rotation_y, move.rotation_z).astype(np.float32)
    moved += np.float32(TRANSLATION_SCALE) * np.array([-move.translation_x, move.translation_y, -move.translation_z], np.float32)
    ahead = np.maximum(moved[..., 2], _EPSILON)
    shift_x = s * (moved[..., 0] / ahead - x / z)
    shift_y = s * (moved[..., 1] / ahead - y / z)
    map_x = (x - shift_x + 1) * (width / 2) - 0.5
    map_y = (y - shift_y + 1) * (height / 2) - 0.5
    return map_x.astype(np.float32), map_y.astype(np.float32)


def remap(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray], border: str = "replicate", interpolation: int = cv2.INTER_LANCZOS4) -> np.ndarray:
    """Sample `image` at the maps' positions; Lanczos as the 2D warp samples, so the two modes look alike."""
    if border not in BORDERS:
        raise UsageError(f"--border: unknown mode {border!r}; choose from {', '.join(BORDERS)}")
    return cv2.remap(image, maps[0], maps[1], interpolation, borderMode=BORDERS[border])


def warp(frame: np.ndarray, depth: np.ndarray, move: Move, border: str = "replicate") -> tuple[np.ndarray, np.ndarray]:
    """The frame and its depth after the camera move; the depth travels with the pixels for the next move."""
    if move.still:
        return frame.copy(), depth
    maps = sample_maps(depth, move)
    # Linear, not Lanczos, for depth: ringing would invent depth steps at every edge.
    moved_depth = remap(depth.astype(np.float32), maps, "replicate", cv2.INTER_LINEAR)
    return remap(frame, maps, border), moved_depth


def flat(width: int, height: int) -> np.ndarray:
    return np.full((height, width), NEAREST, np.float32)


def zoom_for_translation_z(translation_z: float, fov: float) -> float:
    """The 2D zoom (about the frame's centre) that a 3D move of translation_z alone makes of a flat frame."""
    d = translation_z * TRANSLATION_SCALE
    return 1 / (1 - _focal(fov) * d / (1 - d))


def depth_from_prediction(raw: np.ndarray, metric: bool) -> np.ndarray:
    """A depth model's output as Deforum's depth: normalised, histogram-equalised, 1 nearest to 2 farthest.

    `metric`: larger is farther (ZoeDepth, metric Depth Anything); otherwise larger is nearer
    (relative inverse depth: DPT, MiDaS, Depth Anything). An unusable map (NaN, infinite, constant) is flat.
    """
    raw = np.asarray(raw, np.float64)
    if not np.isfinite(raw).all() or raw.max() == raw.min():
        return flat(raw.shape[1], raw.shape[0])
    normalised = (raw - raw.min()) / (raw.max() - raw.min())
    counts, edges = np.histogram(normalised, bins=_EQUALISE_BINS, range=(0, 1))
    cdf = np.cumsum(counts) / normalised.size
    equalised = np.interp(normalised, edges[:-1], cdf)
    depth = NEAREST + equalised if metric else FARTHEST - equalised
    return depth.astype(np.float32)


def depth_image(depth: np.ndarray) -> np.ndarray:
    """16-bit grey, nearest white and farthest black (as depth maps are usually shown)."""
    return np.round((FARTHEST - np.clip(depth, NEAREST, FARTHEST)) * 65535).astype(np.uint16)
