"""A shape the built-in model has never seen, for measuring what a LoRA teaches it: the cross.

A plus sign is none of the world's six shapes (training/world.py) and no caption the model learned
from says "cross". This module draws crosses as the world draws its shapes, captions them as it
captions its own, and reads a generated picture back, telling a cross from the six known shapes by
template overlap (as adherence.read_shape does). The world's modules stay untouched.

Why a shape and not a colour: the built-in model's autoencoder only ever saw the world's ten colours
and the landscapes, and it decodes any other colour as one of them (measured: magenta, 255,0,255,
comes back as 196,35,180 on blue and as yellow on yellow; olive, navy, lime and violet as badly), so
no LoRA on the UNet can make a new colour appear. A large cross survives the autoencoder intact.
"""

from __future__ import annotations

import random

import cv2
import numpy as np

from .. import adherence, world

NAME = "cross"
SHAPES = (*world.SHAPES, NAME)
# Measured: the autoencoder blurs a small cross (arms 4 pixels wide) into a blob that reads as a circle
# or a diamond 90% of the time, so no LoRA could draw one; a large one reads as a cross every time.
SIZE = "large"
VALIDATION_OFFSET = 100  # the first 100 held-out prompts are the test set; settings are tuned on the ones after


# ---------------------------------------------------------------- drawing


def cross_polygon(cx: float, cy: float, r: float) -> np.ndarray:
    """A plus sign with arms reaching `r` from the centre, each a third of the shape wide, as one outline."""
    a, w = r * 0.95, r * 0.34
    corners = [(w, a), (w, w), (a, w), (a, -w), (w, -w), (w, -a), (-w, -a), (-w, -w), (-a, -w), (-a, w), (-w, w), (-w, a)]
    return np.array([(cx + x, cy + y) for x, y in corners], dtype=np.float64)


def draw(canvas: np.ndarray, obj: world.ShapeObject, jitter=(0.0, 0.0), scale: float = 1.0) -> None:
    """world.draw_object, crosses included."""
    if obj.shape != NAME:
        world.draw_object(canvas, obj, jitter, scale)
        return
    h, w = canvas.shape[:2]
    fx, fy = world.POSITION_CENTERS[obj.position]
    r = world.SIZE_RADII[obj.size] * scale * min(w, h)
    points = np.round(cross_polygon((fx + jitter[0]) * w, (fy + jitter[1]) * h, r) * 16).astype(np.int32)
    cv2.fillPoly(canvas, [points], world.COLORS[obj.color], cv2.LINE_AA, 4)


def render(target: adherence.Target, rng: np.random.Generator | None = None, size: int = world.SIZE) -> np.ndarray:
    """One object on a plain background, with world.render_shapes' jitter and scale ranges."""
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = world.COLORS[target.background]
    jitter = (0.0, 0.0) if rng is None else tuple(rng.uniform(-0.04, 0.04, 2))
    scale = 1.0 if rng is None else float(rng.uniform(0.9, 1.1))
    draw(canvas, world.ShapeObject(target.color, target.shape, target.position, target.size), jitter, scale)
    return canvas


# ---------------------------------------------------------------- prompts


def caption(target: adherence.Target) -> str:
    obj = world.ShapeObject(target.color, target.shape, target.position, target.size)
    return world.caption_shapes(world.ShapeScene(target.background, (obj,)), random.Random(0), full=True)


def _combos() -> list[tuple[str, str, str]]:
    return [(c, p, b) for c in world.COLORS for p in world.POSITIONS for b in world.COLORS if c != b]


def training_set(count: int = 5, seed: int = 0) -> list[tuple[adherence.Target, np.ndarray]]:
    """`count` crosses, the positions taken in turn and the colours as varied as they go."""
    combos = _combos()
    random.Random(f"{NAME}-train-{seed}").shuffle(combos)
    chosen: list[tuple[str, str, str]] = []
    for i in range(count):
        position = world.POSITIONS[i % len(world.POSITIONS)]  # every position alike: the LoRA must learn "what", not "where"
        used = {c for c, _, _ in chosen} | {b for _, _, b in chosen}
        fits = [x for x in combos if x[1] == position and x not in chosen]
        chosen.append(next((x for x in fits if not {x[0], x[2]} & used), fits[0]))
    targets = [adherence.Target(c, NAME, p, b, SIZE) for c, p, b in chosen]
    return [(t, render(t, np.random.default_rng([seed, i]))) for i, t in enumerate(targets)]


def held_out_targets(count: int, exclude=(), offset: int = 0) -> list[adherence.Target]:
    """Cross prompts in colour/position/background combinations no training picture shows; one fixed shuffle."""
    seen = {(t.color, t.position, t.background) for t in exclude}
    combos = [c for c in _combos() if c not in seen]
    random.Random(f"{NAME}-held-out").shuffle(combos)
    return [adherence.Target(c, NAME, p, b, SIZE) for c, p, b in combos[offset : offset + count]]


# ---------------------------------------------------------------- reading


def largest_object(image: np.ndarray) -> np.ndarray | None:
    """The mask of the main object, found as adherence.read_picture finds it (None when there is none)."""
    seg = adherence.segment(image)
    return seg.components == seg.objects[0] if seg.objects else None


def overlaps(image: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """adherence.shape_overlaps of the object under `mask`, with the cross among the shapes."""
    return adherence.shape_overlaps(adherence.coverage(image, mask), SHAPES, draw)


def read_shape(image: np.ndarray) -> str | None:
    """The main object's shape among the world's six and the cross; None when there is no object."""
    mask = largest_object(image)
    if mask is None:
        return None
    scores = overlaps(image, mask)
    return max(scores, key=scores.get)


def score(target: adherence.Target, image: np.ndarray) -> dict[str, bool]:
    """adherence.score's checks, with the shape read among the known shapes and the cross."""
    checks = adherence.score(target, adherence.read_picture(image))
    checks["shape"] = read_shape(image) == target.shape
    return checks
