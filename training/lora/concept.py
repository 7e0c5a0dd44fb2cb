"""A shape the built-in model has never seen, for measuring what a LoRA teaches it: the cross.

The world (training/world.py) draws six shapes; a plus-shaped cross is none of them and no
caption the model was trained on says "cross". This module draws crosses in the world's colours
and positions, captions them the way the world captions its shapes, and reads a generated picture
back, telling a cross from the six known shapes by template overlap (as adherence.read_shape does).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import cv2
import numpy as np

from .. import adherence, world

NAME = "cross"
SHAPES = (*world.SHAPES, NAME)
ARM_HALF_WIDTH = 0.34  # of the circumradius: arms about as wide as a third of the shape


def cross_polygon(cx: float, cy: float, r: float) -> np.ndarray:
    """A plus sign with arms reaching `r` from the centre, as one 12-point outline."""
    a, w = r * 0.95, r * ARM_HALF_WIDTH
    corners = [(w, a), (w, w), (a, w), (a, -w), (w, -w), (w, -a), (-w, -a), (-w, -w), (-a, -w), (-a, w), (-w, w), (-w, a)]
    return np.array([(cx + x, cy + y) for x, y in corners], dtype=np.float64)


def draw(canvas: np.ndarray, obj: world.ShapeObject, jitter: tuple[float, float] = (0.0, 0.0), scale: float = 1.0) -> None:
    """Draw one object in place, crosses included (the world's own shapes through world.draw_object)."""
    if obj.shape != NAME:
        world.draw_object(canvas, obj, jitter, scale)
        return
    h, w = canvas.shape[:2]
    fx, fy = world.POSITION_CENTERS[obj.position]
    r = world.SIZE_RADII[obj.size] * scale * min(w, h)
    points = np.round(cross_polygon((fx + jitter[0]) * w, (fy + jitter[1]) * h, r) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [points], world.COLORS[obj.color], cv2.LINE_AA, 4)


def render(scene: world.ShapeScene, rng: np.random.Generator | None = None, size: int = world.SIZE) -> np.ndarray:
    """A scene as world.render_shapes draws it (same jitter and scale ranges), crosses included."""
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = world.COLORS[scene.background]
    for obj in scene.objects:
        jitter = (0.0, 0.0) if rng is None else tuple(rng.uniform(-0.04, 0.04, 2))
        scale = 1.0 if rng is None else float(rng.uniform(0.9, 1.1))
        draw(canvas, obj, jitter, scale)
    return canvas


@dataclass(frozen=True)
class Example:
    image: np.ndarray
    caption: str
    target: adherence.Target


def caption(target: adherence.Target) -> str:
    obj = world.ShapeObject(target.color, target.shape, target.position, target.size)
    return world.caption_shapes(world.ShapeScene(target.background, (obj,)), random.Random(0), full=True)


def _combos() -> list[tuple[str, str, str]]:
    return [(c, p, b) for c in world.COLORS for p in world.POSITIONS for b in world.COLORS if c != b]


def training_set(count: int = 5, seed: int = 0) -> list[Example]:
    """`count` crosses, each in another colour, position and background (and both sizes), with full captions."""
    rnd = random.Random(seed)
    colors, backgrounds, positions = list(world.COLORS), list(world.COLORS), list(world.POSITIONS)
    rnd.shuffle(colors)
    rnd.shuffle(backgrounds)
    rnd.shuffle(positions)
    out = []
    for i in range(count):
        color = colors[i % len(colors)]
        background = next(b for b in backgrounds[i:] + backgrounds[:i] if b != color)
        target = adherence.Target(color, NAME, positions[i % len(positions)], background, world.SIZES[i % 2])
        scene = world.ShapeScene(background, (world.ShapeObject(color, NAME, target.position, target.size),))
        out.append(Example(render(scene, np.random.default_rng([seed, i])), caption(target), target))
    return out


def held_out_targets(count: int, exclude: list[adherence.Target] = (), offset: int = 0) -> list[adherence.Target]:
    """Cross prompts in combinations of colour, position and background that no training picture shows.

    One fixed shuffle: the first 100 are the test prompts, the ones from VALIDATION_OFFSET on are for tuning.
    """
    seen = {(t.color, t.position, t.background) for t in exclude}
    combos = [c for c in _combos() if c not in seen]
    rnd = random.Random(NAME)
    rnd.shuffle(combos)
    sizes = [rnd.choice(world.SIZES) for _ in combos]
    return [adherence.Target(c, NAME, p, b, size) for (c, p, b), size in list(zip(combos, sizes))[offset : offset + count]]


VALIDATION_OFFSET = 100


# ---------------------------------------------------------------- reading


def _template(shape: str, cx: float, cy: float, r: float, h: int, w: int) -> np.ndarray:
    canvas = np.zeros((h, w, 3), np.uint8)
    scale = r / (world.SIZE_RADII["large"] * min(h, w))
    draw(canvas, world.ShapeObject("white", shape, "center", "large"), (cx / w - 0.5, cy / h - 0.5), scale)
    return canvas[..., 0] > 127


def overlaps(mask: np.ndarray) -> dict[str, float]:
    """Intersection over union of `mask` with each shape at the mask's area and centroid."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return {shape: 0.0 for shape in SHAPES}
    out = {}
    for shape in SHAPES:
        probe = _template(shape, w / 2, h / 2, 0.3 * min(h, w), h, w)
        r = 0.3 * min(h, w) * math.sqrt(len(ys) / max(probe.sum(), 1))
        ty, tx = np.nonzero(_template(shape, w / 2, h / 2, r, h, w))
        template = _template(shape, w / 2 + xs.mean() - tx.mean(), h / 2 + ys.mean() - ty.mean(), r, h, w)
        out[shape] = float((template & mask).sum() / max((template | mask).sum(), 1))
    return out


def largest_object(image: np.ndarray) -> np.ndarray | None:
    """The mask of the largest non-background blob, found as adherence.read_picture finds objects."""
    reading = adherence.read_picture(image)
    if reading.object_count == 0:
        return None
    palette = np.array(list(world.COLORS.values()), np.float32)
    labels = ((image.reshape(-1, 3).astype(np.float32)[:, None] - palette[None]) ** 2).sum(-1).argmin(1).reshape(image.shape[:2])
    mask = (labels != list(world.COLORS).index(reading.background)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, components, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return components == largest


def read_shape(image: np.ndarray) -> str | None:
    """Which of the world's shapes or the cross the picture's main object is; None when there is none."""
    mask = largest_object(image)
    if mask is None:
        return None
    scores = overlaps(mask)
    return max(scores, key=scores.get)


def score(target: adherence.Target, image: np.ndarray) -> dict[str, bool]:
    """adherence.score's checks, with the shape read among the known shapes and the cross."""
    checks = adherence.score(target, adherence.read_picture(image))
    checks["shape"] = read_shape(image) == target.shape
    return checks
