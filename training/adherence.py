"""Reads a generated picture of the shapes world back into (background, colour, position, count).

Pixel analysis only: every pixel takes the nearest named colour, the border decides the
background, and connected components of everything else are the objects.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import NamedTuple

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
    def scene(self) -> world.ShapeScene:
        return world.ShapeScene(self.background, (world.ShapeObject(self.color, self.shape, self.position, self.size),))

    @property
    def prompt(self) -> str:
        return world.caption_shapes(self.scene, random.Random(0), full=True)


class Segments(NamedTuple):
    labels: np.ndarray  # each pixel's nearest named colour
    background: int  # the label most of the border has
    components: np.ndarray  # connected components of everything else
    objects: list[int]  # the components big enough to be objects, largest first
    centroids: np.ndarray  # of every component, (x, y)


def segment(image: np.ndarray) -> Segments:
    h, w = image.shape[:2]
    pixels = image.reshape(-1, 3).astype(np.float32)
    distances = ((pixels[:, None, :] - _PALETTE[None]) ** 2).sum(-1)
    labels = distances.argmin(1).reshape(h, w)
    border = np.concatenate([b.reshape(-1) for b in _border(labels)])
    bg_label = int(np.bincount(border, minlength=len(_NAMES)).argmax())
    mask = (labels != bg_label).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, components, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    min_area = MIN_OBJECT_AREA_FRACTION * h * w
    objects = sorted((i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_area), key=lambda i: -stats[i, cv2.CC_STAT_AREA])
    return Segments(labels, bg_label, components, objects, centroids)


def _border(a: np.ndarray) -> list[np.ndarray]:
    ring = max(2, a.shape[0] // 20)
    return [a[:ring], a[-ring:], a[:, :ring], a[:, -ring:]]


def read_picture(image: np.ndarray) -> Reading:
    h, w = image.shape[:2]
    seg = segment(image)
    if not seg.objects:
        return Reading(_NAMES[seg.background], None, None, 0)
    largest = seg.components == seg.objects[0]
    color_label = int(np.bincount(seg.labels[largest], minlength=len(_NAMES)).argmax())
    cx, cy = seg.centroids[seg.objects[0]][0] / w, seg.centroids[seg.objects[0]][1] / h
    position = min(world.POSITION_CENTERS, key=lambda p: (world.POSITION_CENTERS[p][0] - cx) ** 2 + (world.POSITION_CENTERS[p][1] - cy) ** 2)
    return Reading(_NAMES[seg.background], _NAMES[color_label], position, len(seg.objects), read_shape(coverage(image, largest)))


def coverage(image: np.ndarray, component: np.ndarray) -> np.ndarray:
    """How much of each pixel near `component` is the object: where its colour lies between the background's
    (the border's median) and the object's (the component's median), 0 to 1. Anti-aliased edges keep their
    fractions, which a thresholded mask loses: a small hexagon and a circle differ by about a pixel."""
    px = image.astype(np.float32)
    background = np.median(np.concatenate([b.reshape(-1, 3) for b in _border(px)]), axis=0)
    toward = np.median(px[component], axis=0) - background
    share = ((px - background) @ toward) / max(float(toward @ toward), 1.0)
    near = cv2.dilate(component.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    cover = np.where(near, np.clip(share, 0, 1), 0).astype(np.float32)
    return cover if cover.sum() > 0 else component.astype(np.float32)  # an object of the background's own colour


def _drawn(draw, shape: str, cx: float, cy: float, r: float, h: int, w: int) -> np.ndarray:
    canvas = np.zeros((h, w, 3), np.uint8)
    draw(canvas, world.ShapeObject("white", shape, "center", "large"), (cx / w - 0.5, cy / h - 0.5), r / (world.SIZE_RADII["large"] * min(h, w)))
    return canvas[..., 0].astype(np.float32) / world.COLORS["white"][0]


def shape_overlaps(cover: np.ndarray, shapes=world.SHAPES, draw=world.draw_object) -> dict[str, float]:
    """Soft intersection over union of a coverage map with each shape drawn (by `draw`) at its area and centroid."""
    h, w = cover.shape
    area = float(cover.sum())
    ys, xs = np.mgrid[:h, :w]
    my, mx = float((cover * ys).sum()) / area, float((cover * xs).sum()) / area
    out = {}
    for shape in shapes:
        r = 0.3 * min(h, w)
        for _ in range(4):  # an anti-aliased edge is a band of fixed width, so the area is not in proportion to r**2
            r *= math.sqrt(area / max(float(_drawn(draw, shape, w / 2, h / 2, r, h, w).sum()), 1e-6))
        probe = _drawn(draw, shape, w / 2, h / 2, r, h, w)
        # Place the drawing's own centroid on the object's (a triangle's centroid is not its centre).
        ty, tx = float((probe * ys).sum() / probe.sum()), float((probe * xs).sum() / probe.sum())
        template = _drawn(draw, shape, w / 2 + mx - tx, h / 2 + my - ty, r, h, w)
        out[shape] = float(np.minimum(template, cover).sum() / max(float(np.maximum(template, cover).sum()), 1e-6))
    return out


def read_shape(cover: np.ndarray) -> str:
    """The world's shape that best overlaps the coverage map `cover` (see shape_overlaps)."""
    overlaps = shape_overlaps(cover)
    return max(overlaps, key=overlaps.get)


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


# ---------------------------------------------------------------- two objects


@dataclass(frozen=True)
class PairTarget:
    first: world.ShapeObject  # on the left (or top)
    second: world.ShapeObject
    background: str

    @property
    def prompt(self) -> str:
        return world.caption_shapes(world.ShapeScene(self.background, (self.first, self.second)), random.Random(0), full=True)


def read_pair(image: np.ndarray, axis: str) -> tuple[str | None, str | None]:
    """The largest object's colour in each half (left/right for axis 'x', top/bottom for 'y')."""
    h, w = image.shape[:2]
    halves = (image[:, : w // 2], image[:, w - w // 2 :]) if axis == "x" else (image[: h // 2], image[h - h // 2 :])
    background = read_picture(image).background
    out = []
    for half in halves:
        reading = read_picture(_with_border(half, background))
        out.append(reading.object_color)
    return out[0], out[1]


def _with_border(half: np.ndarray, background: str) -> np.ndarray:
    """Pad a half with the whole picture's background so its own border reading can't be fooled by an object at the cut."""
    pad = max(2, half.shape[0] // 10)
    return cv2.copyMakeBorder(half, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=world.COLORS[background])


def score_pair(target: PairTarget, image: np.ndarray) -> dict[str, bool]:
    axis = "x" if target.first.position in ("left", "right") else "y"
    first, second = read_pair(image, axis)
    return {"both_sides": (first, second) == (target.first.color, target.second.color), "background": read_picture(image).background == target.background}


def held_out_pairs(count: int, seed: int = 0, offset: int = 0) -> list[PairTarget]:
    """Two-object prompts whose whole combination never appeared in training."""
    rnd = random.Random(seed + 17)
    out: list[PairTarget] = []
    while len(out) < count + offset:
        background = rnd.choice(list(world.COLORS))
        c1, c2 = rnd.sample([c for c in world.COLORS if c != background], 2)
        side = rnd.choice(["left", "top"])
        size = rnd.choice(world.SIZES)
        a = world.ShapeObject(c1, rnd.choice(world.SHAPES), side, size)
        b = world.ShapeObject(c2, rnd.choice(world.SHAPES), "right" if side == "left" else "bottom", size)
        if world.is_held_out_pair(a, b, background):
            out.append(PairTarget(a, b, background))
    return out[offset:]


# ---------------------------------------------------------------- landscapes


@dataclass(frozen=True)
class SceneReading:
    time: str
    bodies: int
    body: str  # sun | moon | none (the largest body's kind)
    ground: str


def read_scene(image: np.ndarray) -> SceneReading:
    """Sky colour at the top says the time; bright round blobs in the sky are suns or moons; the colour of the
    bottom rows says the ground."""
    img = image.astype(np.float32)
    h, w = img.shape[:2]
    top = img[: max(2, h // 12)].reshape(-1, 3).mean(0)
    time = min(world.TIMES, key=lambda t: float(((np.array(world._SKY[t][0], np.float32) - top) ** 2).sum()))
    bottom = np.median(img[int(h * 0.88) :].reshape(-1, 3), axis=0)
    ground = min(world.GROUNDS, key=lambda g: min(float(((np.array(world._GROUND[g][t], np.float32) - bottom) ** 2).sum()) for t in world.TIMES))
    sky = img[: int(h * 0.7)]
    ramp = np.linspace(0, 1, h, dtype=np.float32)[: len(sky), None, None]
    expected = np.array(world._SKY[time][0], np.float32) * (1 - ramp) + np.array(world._SKY[time][1], np.float32) * ramp
    # A body is far from the sky's own colour at its height and brighter than it; ground is darker than the sky.
    bright = ((np.linalg.norm(sky - expected, axis=-1) > 80) & (sky.sum(-1) > expected.sum(-1) + 30)).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(cv2.morphologyEx(bright, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8)), connectivity=8)
    bodies = [i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= 0.25 * math.pi * (0.08 * min(h, w)) ** 2]
    if not bodies:
        return SceneReading(time, 0, "none", ground)
    largest = max(bodies, key=lambda i: stats[i, cv2.CC_STAT_AREA])
    r, g, b = sky[labels == largest].mean(0)
    return SceneReading(time, len(bodies), "sun" if (r + g) / 2 - b > 45 else "moon", ground)


@dataclass(frozen=True)
class SceneTarget:
    time: str
    body: str
    ground: str

    @property
    def prompt(self) -> str:
        ground = {"sea": "the sea", "hills": "hills", "mountains": "mountains"}[self.ground]
        sky = {"sun": "the sun in the sky", "moon": "the moon in the sky", "none": "a clear sky"}[self.body]
        return f"a landscape of {ground} at {self.time if self.time != 'day' else 'daytime'} with {sky}"


def score_scene(target: SceneTarget, reading: SceneReading) -> dict[str, bool]:
    return {
        "sky": reading.time == target.time,
        "body": reading.body == target.body and (target.body == "none" or reading.bodies == 1),
        "ground": reading.ground == target.ground,
    }


def held_out_scenes(count: int, seed: int = 0) -> list[SceneTarget]:
    """Scene prompts: the held-out combinations first, then the rest, cycled to `count`."""
    combos = world.held_out_landscapes()
    rest = [(t, b, g) for t in world.TIMES for b in world.BODIES for g in world.GROUNDS if (t, b, g) not in combos]
    random.Random(seed).shuffle(rest)
    order = combos + rest
    return [SceneTarget(*order[i % len(order)]) for i in range(count)]


# ---------------------------------------------------------------- one judgement of a model


def _chunks(items: list, n: int = 16):
    for i in range(0, len(items), n):
        yield i, items[i : i + n]


def judge(generate, count: int, offset: int = 0, size: int = world.SIZE, sizes=world.BUCKETS, seed_base: int = 1000) -> dict[str, float]:
    """Every adherence score of one model, in percent. generate(prompts, seeds, height, width) returns uint8
    pictures. One-object shapes at `size`, two objects (count // 2), scenes (count // 2), and one-object shapes
    at the non-square `sizes` (count // 2); seeds are seed_base + offset + i, so a run is repeatable."""
    targets = held_out_targets(count, offset=offset)
    results = []
    for i, chunk in _chunks(targets):
        for t, img in zip(chunk, generate([t.prompt for t in chunk], [seed_base + offset + i + j for j in range(len(chunk))], size, size)):
            results.append(score(t, read_picture(img)))
    return summarize(results) | judge_beyond_one_object(generate, count, offset, size, sizes, seed_base)


def judge_beyond_one_object(generate, count: int, offset: int = 0, size: int = world.SIZE, sizes=world.BUCKETS, seed_base: int = 1000) -> dict[str, float]:
    """judge()'s measures past the one-object prompts: two objects, scenes, one object at non-square sizes."""
    out: dict[str, float] = {}
    pairs = held_out_pairs(max(count // 2, 1), offset=offset)
    both = []
    for i, chunk in _chunks(pairs):
        for t, img in zip(chunk, generate([t.prompt for t in chunk], [seed_base + offset + i + j for j in range(len(chunk))], size, size)):
            both.append(score_pair(t, img)["both_sides"])
    out["two_objects"] = 100.0 * sum(both) / len(both)
    scenes = held_out_scenes(max(count // 2, 1), seed=offset)
    scene_results = []
    for i, chunk in _chunks(scenes):
        for t, img in zip(chunk, generate([t.prompt for t in chunk], [seed_base + offset + i + j for j in range(len(chunk))], size, size)):
            scene_results.append(score_scene(t, read_scene(img)))
    for key in ("sky", "body", "ground"):
        out[f"scene_{key}"] = 100.0 * sum(r[key] for r in scene_results) / len(scene_results)
    odd = [b for b in sizes if b[0] != b[1]]
    if odd:
        one = []
        for k, t in enumerate(held_out_targets(max(count // 2, 1), offset=offset + count)):
            h, w = odd[k % len(odd)]
            img = generate([t.prompt], [seed_base + offset + k], h, w)[0]
            one.append(read_picture(img).object_count == 1)
        out["one_object_sizes"] = 100.0 * sum(one) / len(one)
    return out
