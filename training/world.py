"""The built-in model's world: procedurally drawn shapes and landscape scenes, with captions.

Everything here is numpy and OpenCV, seeded, and cheap (well under a millisecond a picture),
so the training set, the held-out evaluation prompts and the test sketches all come from one
place and can be rebuilt bit for bit.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field

import cv2
import numpy as np

SIZE = 128

# Far apart in RGB so that a nearest-colour reading of a generated picture is unambiguous.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 225),
    "yellow": (245, 225, 30),
    "orange": (250, 140, 20),
    "purple": (135, 40, 175),
    "pink": (250, 140, 200),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
    "cyan": (40, 210, 225),
}
SHAPES = ("circle", "square", "triangle", "star", "diamond", "hexagon")
POSITIONS = ("center", "left", "right", "top", "bottom")
SIZES = ("small", "large")
TIMES = ("day", "sunset", "night")
BODIES = ("sun", "moon", "none")
GROUNDS = ("sea", "hills", "mountains")
# Sizes the second model trains at (height, width): non-square pictures from 96 to 192 pixels a side.
BUCKETS = ((128, 128), (96, 96), (160, 160), (192, 192), (96, 160), (160, 96), (128, 192), (192, 128), (96, 192), (192, 96), (128, 160), (160, 128))

# Object centres as fractions of the canvas.
POSITION_CENTERS = {
    "center": (0.5, 0.5),
    "left": (0.25, 0.5),
    "right": (0.75, 0.5),
    "top": (0.5, 0.25),
    "bottom": (0.5, 0.75),
}
SIZE_RADII = {"small": 0.11, "large": 0.19}  # circumradius as a fraction of the canvas

_POSITION_PHRASES = {
    "center": ["in the center", "in the middle", "at the center", "centered"],
    "left": ["on the left", "at the left", "to the left", "on the left side"],
    "right": ["on the right", "at the right", "to the right", "on the right side"],
    "top": ["at the top", "near the top", "in the upper part", "at the top of the picture"],
    "bottom": ["at the bottom", "near the bottom", "in the lower part", "at the bottom of the picture"],
}


@dataclass(frozen=True)
class ShapeObject:
    color: str
    shape: str
    position: str
    size: str


@dataclass(frozen=True)
class ShapeScene:
    background: str
    objects: tuple[ShapeObject, ...]


@dataclass(frozen=True)
class Landscape:
    time: str  # day | sunset | night
    body: str  # sun | moon | none
    ground: str  # sea | hills | mountains
    body_x: float = 0.5


@dataclass
class Sample:
    image: np.ndarray  # HxWx3 uint8 RGB
    caption: str
    scene: ShapeScene | Landscape = field(repr=False)


# ---------------------------------------------------------------- held-out split


def combo_key(color: str, shape: str, position: str, background: str) -> str:
    return f"{color}|{shape}|{position}|{background}"


def is_held_out(color: str, shape: str, position: str, background: str) -> bool:
    """One whole caption combination in eleven never appears in training (stable across runs)."""
    return _hashed(combo_key(color, shape, position, background)) % 11 == 0


def _hashed(key: str) -> int:
    return hashlib.sha256(key.encode()).digest()[0]


def is_held_out_pair(first: ShapeObject, second: ShapeObject, background: str) -> bool:
    """One two-object combination (colours, shapes, sides, background) in eleven is kept out of training."""
    return _hashed(f"pair|{first.color}|{first.shape}|{first.position}|{second.color}|{second.shape}|{background}") % 11 == 0


def is_held_out_landscape(time: str, body: str, ground: str) -> bool:
    """A few whole scene combinations never appear in training, so the scene benchmark tests composition."""
    return _hashed(f"scene|{time}|{body}|{ground}") % 6 == 0


def held_out_landscapes() -> list[tuple[str, str, str]]:
    return [(t, b, g) for t in TIMES for b in BODIES for g in GROUNDS if is_held_out_landscape(t, b, g)]


def held_out_combos() -> list[tuple[str, str, str, str]]:
    return [
        (c, s, p, b)
        for c in COLORS
        for s in SHAPES
        for p in POSITIONS
        for b in COLORS
        if c != b and is_held_out(c, s, p, b)
    ]


# ---------------------------------------------------------------- drawing


def _polygon(shape: str, cx: float, cy: float, r: float) -> np.ndarray:
    if shape == "square":
        h = r / math.sqrt(2)
        pts = [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    elif shape == "triangle":
        pts = [(cx + r * math.cos(a), cy + 0.15 * r + r * math.sin(a)) for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)]
    elif shape == "diamond":
        pts = [(cx, cy - r), (cx + 0.75 * r, cy), (cx, cy + r), (cx - 0.75 * r, cy)]
    elif shape == "hexagon":
        pts = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in np.linspace(0, 2 * math.pi, 7)[:-1]]
    elif shape == "star":
        pts = []
        for k in range(10):
            a = -math.pi / 2 + k * math.pi / 5
            rr = r if k % 2 == 0 else 0.45 * r
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    else:
        raise ValueError(f"not a polygon shape: {shape}")
    return np.array(pts, dtype=np.float64)


def draw_object(canvas: np.ndarray, obj: ShapeObject, jitter: tuple[float, float] = (0.0, 0.0), scale: float = 1.0) -> None:
    """Draw one filled shape, anti-aliased, in place (coordinates in 1/16 pixel for sub-pixel placement)."""
    h, w = canvas.shape[:2]
    fx, fy = POSITION_CENTERS[obj.position]
    cx, cy = (fx + jitter[0]) * w, (fy + jitter[1]) * h
    r = SIZE_RADII[obj.size] * scale * min(w, h)
    color = COLORS[obj.color]
    shift = 4
    if obj.shape == "circle":
        cv2.circle(canvas, (round(cx * 16), round(cy * 16)), round(r * 0.85 * 16), color, -1, cv2.LINE_AA, shift)
    else:
        pts = np.round(_polygon(obj.shape, cx, cy, r) * 16).astype(np.int32)
        cv2.fillPoly(canvas, [pts], color, cv2.LINE_AA, shift)


def _hw(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def render_shapes(scene: ShapeScene, rng: np.random.Generator | None = None, size: int | tuple[int, int] = SIZE) -> np.ndarray:
    canvas = np.empty((*_hw(size), 3), np.uint8)
    canvas[:] = COLORS[scene.background]
    for obj in scene.objects:
        jitter = (0.0, 0.0) if rng is None else tuple(rng.uniform(-0.04, 0.04, 2))
        scale = 1.0 if rng is None else float(rng.uniform(0.9, 1.1))
        draw_object(canvas, obj, jitter, scale)
    return canvas


_SKY = {
    "day": ((90, 160, 240), (175, 215, 250)),
    "sunset": ((70, 50, 120), (250, 150, 60)),
    "night": ((5, 10, 35), (25, 35, 80)),
}
_BODY = {"sun": {"day": (255, 240, 120), "sunset": (255, 200, 60), "night": (255, 240, 120)}, "moon": {"day": (235, 235, 235), "sunset": (240, 230, 210), "night": (235, 235, 220)}}
_GROUND = {
    "sea": {"day": (30, 90, 170), "sunset": (60, 50, 110), "night": (10, 20, 50)},
    "hills": {"day": (60, 150, 60), "sunset": (70, 80, 50), "night": (15, 40, 20)},
    "mountains": {"day": (110, 110, 125), "sunset": (90, 60, 80), "night": (30, 30, 45)},
}


def render_landscape(scene: Landscape, rng: np.random.Generator | None = None, size: int | tuple[int, int] = SIZE) -> np.ndarray:
    rng = rng or np.random.default_rng(0)
    h, w = _hw(size)
    top, bottom = (np.array(c, np.float32) for c in _SKY[scene.time])
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    canvas = (top * (1 - ramp) + bottom * ramp).repeat(w, axis=1).astype(np.uint8)
    horizon = int(h * rng.uniform(0.55, 0.68))
    if scene.time == "night":
        for x, y in rng.integers(0, [w, horizon], size=(int(rng.integers(8, 20) * w / 128), 2)):
            canvas[y, x] = (230, 230, 230)
    ground_layer, covered = _ground(scene, canvas.copy(), horizon, rng)
    if scene.body != "none":
        draw_body(canvas, scene, horizon, covered, rng)
    canvas[covered] = ground_layer[covered]
    return canvas


def _ground(scene: Landscape, canvas: np.ndarray, horizon: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The ground drawn on a copy of the sky, and the mask of what it covers (a body is placed above it)."""
    h, w = canvas.shape[:2]
    ground = _GROUND[scene.ground][scene.time]
    mask = np.zeros((h, w), np.uint8)
    xs = np.arange(w)
    if scene.ground == "sea":
        mask[horizon:] = 1
        canvas[horizon:] = ground
        for y in range(horizon + 3, h, 6):
            cv2.line(canvas, (int(rng.integers(0, w // 2)), y), (int(rng.integers(w // 2, w)), y), tuple(min(255, v + 35) for v in ground), 1, cv2.LINE_AA)
        return canvas, mask > 0
    if scene.ground == "hills":
        phase, freq = rng.uniform(0, 2 * math.pi), rng.uniform(1.5, 3.0) * w / max(h, w)
        ys = horizon + (np.sin(xs / w * freq * math.pi + phase) * h * 0.06).astype(int)
        pts = np.concatenate([np.stack([xs, ys], 1), [[w - 1, h - 1], [0, h - 1]]]).astype(np.int32)
    else:
        peaks = sorted(rng.uniform(0, 1, int(rng.integers(2, 4))))
        pts = [(0, horizon + h // 10)]
        for p in peaks:
            pts += [(int(p * w), int(horizon - h * rng.uniform(0.18, 0.32))), (int(min(p + 0.17, 1.0) * w), horizon + h // 12)]
        pts += [(w - 1, horizon + h // 10), (w - 1, h - 1), (0, h - 1)]
        pts = np.array(pts, np.int32)
    cv2.fillPoly(canvas, [pts], ground, cv2.LINE_AA)
    cv2.fillPoly(mask, [pts], 1)
    return canvas, cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0  # the anti-aliased rim belongs to the ground


def draw_body(canvas: np.ndarray, scene: Landscape, horizon: int, covered: np.ndarray, rng: np.random.Generator) -> None:
    """One round sun or moon, whole and above the ground. The first model's crescent (a disc bitten out in a
    sky colour) read as two bodies and taught the model to draw two moons: the moon is now a full pale disc
    with faint craters, and a body that a mountain would hide is raised clear of it."""
    h, w = canvas.shape[:2]
    r = int(min(h, w) * 0.08)
    cx = int(scene.body_x * w)
    cols = covered[:, max(cx - r - 1, 0) : cx + r + 2]
    ground_top = int(np.argmax(cols.any(axis=1))) if cols.any() else h
    cy = min(int(horizon * (0.75 if scene.time == "sunset" else 0.35)), ground_top - r - 2)
    color = _BODY[scene.body][scene.time]
    cv2.circle(canvas, (cx, cy), r, color, -1, cv2.LINE_AA)
    if scene.body == "moon":
        crater = tuple(int(v * 0.88) for v in color)
        for _ in range(3):
            a, d = rng.uniform(0, 2 * math.pi), rng.uniform(0, 0.55) * r
            cv2.circle(canvas, (int(cx + d * math.cos(a)), int(cy + d * math.sin(a))), max(1, int(r * rng.uniform(0.12, 0.25))), crater, -1, cv2.LINE_AA)


# ---------------------------------------------------------------- captions


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _object_phrase(obj: ShapeObject, rnd: random.Random, with_size: bool, with_position: bool) -> str:
    noun = f"{obj.size} {obj.color} {obj.shape}" if with_size else f"{obj.color} {obj.shape}"
    phrase = f"{_article(noun)} {noun}"
    if with_position:
        phrase += " " + rnd.choice(_POSITION_PHRASES[obj.position])
    return phrase


def caption_shapes(scene: ShapeScene, rnd: random.Random, full: bool = False, unplaced: float = 0.1) -> str:
    """A plain-English caption; unless `full`, size is sometimes left unsaid, and a lone object's
    position is left unsaid in an `unplaced` share of captions."""
    say_size = full or rnd.random() < 0.8
    say_position = full or len(scene.objects) > 1 or rnd.random() < 1 - unplaced
    objects = " and ".join(_object_phrase(o, rnd, say_size, say_position) for o in scene.objects)
    bg = scene.background
    if full:
        return f"{objects} on {_article(bg)} {bg} background"
    template = rnd.choice(
        [
            "{o} on {a} {b} background",
            "{o} on {b}",
            "{o}, {b} background",
            "{o} against {a} {b} background",
            "{a} {b} background with {o}",
            "a picture of {o} on {b}",
        ]
    )
    return template.format(o=objects, a=_article(bg), b=bg)


def caption_landscape(scene: Landscape, rnd: random.Random) -> str:
    time_word = {"day": rnd.choice(["day", "daytime", "a sunny day"]), "sunset": rnd.choice(["sunset", "dusk"]), "night": rnd.choice(["night", "nighttime"])}[scene.time]
    ground = {"sea": rnd.choice(["the sea", "the ocean"]), "hills": rnd.choice(["hills", "green hills", "rolling hills"]), "mountains": rnd.choice(["mountains", "a mountain range"])}[scene.ground]
    body = {"sun": "the sun", "moon": "the moon", "none": ""}[scene.body]
    sky = f"{body} in the sky" if body else "a clear sky"
    template = rnd.choice(
        [
            "a landscape of {g} at {t} with {s}",
            "{g} at {t}, {s}",
            "{s} over {g} at {t}",
            "a {t} scene with {g} and {s}",
        ]
    )
    if scene.time == "day" and time_word == "a sunny day":
        template = template.replace("at {t}", "on {t}").replace("a {t} scene", "a scene on {t}")
    return template.format(g=ground, t=time_word, s=sky)


# ---------------------------------------------------------------- sampling


def random_shape_scene(rnd: random.Random, two_object_rate: float = 0.15, allow_held_out: bool = False) -> ShapeScene:
    while True:
        background = rnd.choice(list(COLORS))
        first = ShapeObject(rnd.choice([c for c in COLORS if c != background]), rnd.choice(SHAPES), rnd.choice(POSITIONS), rnd.choice(SIZES))
        if allow_held_out or not is_held_out(first.color, first.shape, first.position, background):
            break
    if rnd.random() >= two_object_rate:
        return ShapeScene(background, (first,))
    while True:
        side = rnd.choice(["left", "right", "top", "bottom"])
        opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[side]
        size = rnd.choice(SIZES)
        a = ShapeObject(first.color, first.shape, side, size)
        b = ShapeObject(rnd.choice([c for c in COLORS if c not in (background, first.color)]), rnd.choice(SHAPES), opposite, size)
        if allow_held_out or not is_held_out_pair(a, b, background):
            return ShapeScene(background, (a, b))
        first = ShapeObject(rnd.choice([c for c in COLORS if c != background]), rnd.choice(SHAPES), first.position, first.size)


def random_landscape(rnd: random.Random, allow_held_out: bool = True) -> Landscape:
    while True:
        scene = Landscape(rnd.choice(TIMES), rnd.choice(BODIES), rnd.choice(GROUNDS), rnd.uniform(0.2, 0.8))
        if allow_held_out or not is_held_out_landscape(scene.time, scene.body, scene.ground):
            return scene


@dataclass(frozen=True)
class Mix:
    """How often each kind of training picture is drawn (the second model's defaults)."""

    landscape: float = 0.25
    two_objects: float = 0.3
    held_out_landscapes: bool = False
    unplaced: float = 0.1  # share of lone objects whose caption names no position


FIRST_MODEL_MIX = Mix(landscape=0.2, two_objects=0.15, held_out_landscapes=True)


def draw_scene(seed: int, mix: Mix = Mix()) -> tuple[ShapeScene | Landscape, random.Random]:
    """Sample `seed`'s scene, and the random stream that goes on to word its caption."""
    rnd = random.Random(seed)
    if rnd.random() < mix.landscape:
        return random_landscape(rnd, allow_held_out=mix.held_out_landscapes), rnd
    return random_shape_scene(rnd, two_object_rate=mix.two_objects), rnd


def render(scene: ShapeScene | Landscape, rng: np.random.Generator | None, size: int | tuple[int, int] = SIZE) -> np.ndarray:
    return render_landscape(scene, rng, size) if isinstance(scene, Landscape) else render_shapes(scene, rng, size)


def caption(scene: ShapeScene | Landscape, rnd: random.Random, mix: Mix = Mix()) -> str:
    return caption_landscape(scene, rnd) if isinstance(scene, Landscape) else caption_shapes(scene, rnd, unplaced=mix.unplaced)


def make_sample(seed: int, size: int | tuple[int, int] = SIZE, mix: Mix = Mix()) -> Sample:
    """The training sample for `seed`: the same seed gives the same picture and caption everywhere."""
    scene, rnd = draw_scene(seed, mix)
    return Sample(render(scene, np.random.default_rng(seed), size), caption(scene, rnd, mix), scene)


def caption_corpus(count: int = 20000, seed: int = 0) -> list[str]:
    """Captions as the model will see them, for building the tokenizer's vocabulary."""
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        if rnd.random() < 0.25:
            out.append(caption_landscape(random_landscape(rnd), rnd))
        else:
            out.append(caption_shapes(random_shape_scene(rnd, two_object_rate=0.3, allow_held_out=True), rnd))
    return out


# ---------------------------------------------------------------- sketches (img2img demos and tests)


def rough_sketch(obj: ShapeObject, background: str = "white", seed: int = 0, size: int = SIZE) -> np.ndarray:
    """A hand-drawn-looking version of a shape: a wobbly outline and an uneven scribbled fill."""
    rng = np.random.default_rng(seed)
    canvas = np.empty((size, size, 3), np.uint8)
    canvas[:] = COLORS[background]
    fx, fy = POSITION_CENTERS[obj.position]
    cx, cy, r = fx * size, fy * size, SIZE_RADII[obj.size] * size
    if obj.shape == "circle":
        angles = np.linspace(0, 2 * math.pi, 40)
        pts = np.stack([cx + 0.85 * r * np.cos(angles), cy + 0.85 * r * np.sin(angles)], 1)
    else:
        pts = _polygon(obj.shape, cx, cy, r)
    pts = pts + rng.normal(0, r * 0.07, pts.shape)
    color = np.array(COLORS[obj.color], np.int32)
    fill = tuple(int(v) for v in np.clip(color + rng.integers(-40, 40, 3), 0, 255))
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [pts.astype(np.int32)], 255)
    for y in range(0, size, 3):  # scribbled strokes, clipped to the outline
        if rng.random() < 0.8:
            stroke = np.zeros_like(mask)
            cv2.line(stroke, (0, y + int(rng.integers(-2, 3))), (size, y + int(rng.integers(-2, 3))), 255, 2)
            canvas[(stroke > 0) & (mask > 0)] = fill
    cv2.polylines(canvas, [pts.astype(np.int32)], True, tuple(int(v) for v in color // 2), 2, cv2.LINE_AA)
    return canvas
