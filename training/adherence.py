"""Reads a generated picture of the shapes world back into (background, colour, position, count).

Pixel analysis only: every pixel takes the nearest named colour, the border decides the
background, and connected components of everything else are the objects.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np

from . import world

_NAMES = list(world.COLORS)
_PALETTE = np.array([world.COLORS[n] for n in _NAMES], np.float32)
MIN_OBJECT_AREA_FRACTION = 0.004  # smaller blobs are specks, not drawn objects


@dataclass(frozen=True)
class Reading:
    background: str
    object_color: str | None
    position: str | None
    object_count: int
    shape: str | None = None


@dataclass(frozen=True)
class Target:
    color: str
    shape: str
    position: str
    background: str
    size: str = "large"

    @property
    def prompt(self) -> str:
        obj = world.ShapeObject(self.color, self.shape, self.position, self.size)
        return world.caption_shapes(world.ShapeScene(self.background, (obj,)), random.Random(0), full=True)


def read_picture(image: np.ndarray) -> Reading:
    h, w = image.shape[:2]
    pixels = image.reshape(-1, 3).astype(np.float32)
    distances = ((pixels[:, None, :] - _PALETTE[None]) ** 2).sum(-1)
    labels = distances.argmin(1).reshape(h, w)
    ring = max(2, h // 20)
    border = np.concatenate([labels[:ring].ravel(), labels[-ring:].ravel(), labels[:, :ring].ravel(), labels[:, -ring:].ravel()])
    bg_label = int(np.bincount(border, minlength=len(_NAMES)).argmax())
    mask = (labels != bg_label).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, components, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    min_area = MIN_OBJECT_AREA_FRACTION * h * w
    objects = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_area]
    if not objects:
        return Reading(_NAMES[bg_label], None, None, 0)
    largest = max(objects, key=lambda i: stats[i, cv2.CC_STAT_AREA])
    color_label = int(np.bincount(labels[components == largest], minlength=len(_NAMES)).argmax())
    cx, cy = centroids[largest][0] / w, centroids[largest][1] / h
    position = min(world.POSITION_CENTERS, key=lambda p: (world.POSITION_CENTERS[p][0] - cx) ** 2 + (world.POSITION_CENTERS[p][1] - cy) ** 2)
    return Reading(_NAMES[bg_label], _NAMES[color_label], position, len(objects), read_shape(components == largest))


def _shape_mask(shape: str, cx: float, cy: float, r: float, h: int, w: int) -> np.ndarray:
    canvas = np.zeros((h, w, 3), np.uint8)
    world.draw_object(canvas, world.ShapeObject("white", shape, "center", "large"), jitter=(cx / w - 0.5, cy / h - 0.5), scale=r / (world.SIZE_RADII["large"] * min(h, w)))
    return canvas[..., 0] > 127


def read_shape(mask: np.ndarray) -> str:
    """The world's shape that best overlaps `mask` (intersection over union), at the same area and centroid."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    best, best_iou = world.SHAPES[0], -1.0
    for shape in world.SHAPES:
        probe = _shape_mask(shape, w / 2, h / 2, 0.3 * min(h, w), h, w)
        r = 0.3 * min(h, w) * math.sqrt(len(ys) / max(probe.sum(), 1))
        template = _shape_mask(shape, w / 2, h / 2, r, h, w)
        ty, tx = np.nonzero(template)
        # Place the template's own centroid on the object's (a triangle's centroid is not its centre).
        template = _shape_mask(shape, w / 2 + xs.mean() - tx.mean(), h / 2 + ys.mean() - ty.mean(), r, h, w)
        iou = (template & mask).sum() / max((template | mask).sum(), 1)
        if iou > best_iou:
            best, best_iou = shape, iou
    return best


def score(target: Target, reading: Reading) -> dict[str, bool]:
    return {
        "object_color": reading.object_color == target.color,
        "background": reading.background == target.background,
        "position": reading.position == target.position,
        "one_object": reading.object_count == 1,
        "shape": reading.shape == target.shape,  # reported, not one of the targets
    }


VALIDATION_OFFSET = 100  # the first 100 shuffled combinations are the test set; settings are tuned on the ones after


def held_out_targets(count: int, seed: int = 0, offset: int = 0) -> list[Target]:
    """Prompts whose whole combination never appeared in training, sampled evenly."""
    combos = world.held_out_combos()
    rnd = random.Random(seed)
    rnd.shuffle(combos)
    sizes = [rnd.choice(world.SIZES) for _ in combos]
    return [Target(c, s, p, b, size) for (c, s, p, b), size in list(zip(combos, sizes))[offset : offset + count]]


def summarize(results: list[dict[str, bool]]) -> dict[str, float]:
    keys = ["object_color", "background", "position", "one_object", "shape"]
    return {k: 100.0 * sum(r[k] for r in results) / max(len(results), 1) for k in keys}
