"""Pictures from outside the shapes world, for the autoencoder: anything a user might bring.

The first model's autoencoder saw only its own flat palette, so a grey pencil sketch came back
purple and a sky gradient came back flat. This draws a broad procedural distribution instead:
continuous colours and gradients, strokes and outlines of any colour and width on paper,
pencil sketches, hatching, fractal textures, blurred noise, text and smooth photo-like fields,
often layered. Everything is numpy and OpenCV and a function of its seed, like `world.py`.

Training seeds and held-out seeds come from disjoint ranges (`HELD_OUT_BASE`), so the round-trip
benchmark measures pictures the autoencoder never saw.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

HELD_OUT_BASE = 1 << 50  # seeds at or above this are never drawn for training
KINDS = ("gradient", "strokes", "sketch", "hatching", "texture", "noise", "text", "photo")
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, cv2.FONT_HERSHEY_PLAIN)


def _color(rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0, 255, 3).astype(np.float32)


def _paper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Off-white, cream or pale tinted paper with a little grain and uneven lighting."""
    base = np.float32(rng.uniform(215, 252)) - rng.uniform(0, 25, 3).astype(np.float32) * (rng.random() < 0.6)
    light = smooth_field(rng, h, w, cells=2)[..., None] * rng.uniform(0, 14)
    grain = rng.normal(0, rng.uniform(0, 4), (h, w, 1)).astype(np.float32)
    return base + light - light.mean() + grain


def smooth_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """A smooth random field in [-1, 1]: a coarse random grid upsampled with cubic interpolation."""
    grid = rng.uniform(-1, 1, (cells + 3, cells + 3)).astype(np.float32)
    big = cv2.resize(grid, (w * (cells + 3) // (cells + 1), h * (cells + 3) // (cells + 1)), interpolation=cv2.INTER_CUBIC)
    y0, x0 = (big.shape[0] - h) // 2, (big.shape[1] - w) // 2
    return np.clip(big[y0 : y0 + h, x0 : x0 + w], -1, 1)


def fractal(rng: np.random.Generator, h: int, w: int, octaves: int = 5, persistence: float = 0.55) -> np.ndarray:
    """Fractal value noise (the look of Perlin noise at a fraction of the cost), normalised to [0, 1]."""
    out, amp = np.zeros((h, w), np.float32), 1.0
    for o in range(octaves):
        out += amp * smooth_field(rng, h, w, cells=2 ** (o + 1))
        amp *= persistence
    lo, hi = out.min(), out.max()
    return (out - lo) / max(hi - lo, 1e-6)


def _colormap(values: np.ndarray, rng: np.random.Generator, stops: int | None = None) -> np.ndarray:
    """Map a [0, 1] field through a random piecewise-linear ramp of 2 to 4 colours."""
    stops = stops or int(rng.integers(2, 5))
    colors = np.stack([_color(rng) for _ in range(stops)])
    pos = np.linspace(0, 1, stops)
    return np.stack([np.interp(values, pos, colors[:, c]) for c in range(3)], -1).astype(np.float32)


def gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.6:  # linear, at any angle
        a = rng.uniform(0, 2 * math.pi)
        t = (xs * math.cos(a) + ys * math.sin(a)) / (abs(w * math.cos(a)) + abs(h * math.sin(a)) + 1e-6)
    else:  # radial, from anywhere
        cx, cy = rng.uniform(-0.2, 1.2) * w, rng.uniform(-0.2, 1.2) * h
        t = np.hypot(xs - cx, ys - cy) / (rng.uniform(0.5, 1.5) * max(h, w))
    t = t - t.min()
    return _colormap(np.clip(t / max(t.max(), 1e-6), 0, 1), rng)


def _curve(rng: np.random.Generator, h: int, w: int, points: int) -> np.ndarray:
    """A smooth wandering path: a random walk with momentum."""
    p = np.array([rng.uniform(0, w), rng.uniform(0, h)])
    heading, step = rng.uniform(0, 2 * math.pi), rng.uniform(2, 6) * max(h, w) / 128
    out = []
    for _ in range(points):
        heading += rng.normal(0, 0.35)
        p = p + step * np.array([math.cos(heading), math.sin(heading)])
        out.append(p.copy())
    return np.array(out)


def _draw_path(canvas: np.ndarray, pts: np.ndarray, color, width: int, closed: bool = False) -> None:
    cv2.polylines(canvas, [np.round(pts * 16).astype(np.int32)], closed, tuple(float(c) for c in color), max(1, width), cv2.LINE_AA, 4)


def _outline(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, bool]:
    """A random polygon, ellipse or wobbly closed loop."""
    cx, cy, r = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h, rng.uniform(0.08, 0.4) * min(h, w)
    n = int(rng.choice([3, 4, 5, 6, 8, 40]))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n)) if rng.random() < 0.3 else np.linspace(0, 2 * math.pi, n, endpoint=False) + rng.uniform(0, 6.3)
    rx, ry = r, r * rng.uniform(0.5, 1.3)
    return np.stack([cx + rx * np.cos(angles), cy + ry * np.sin(angles)], 1), True


def strokes(rng: np.random.Generator, h: int, w: int, canvas: np.ndarray | None = None) -> np.ndarray:
    """Strokes and outlines of any colour and width: ink, marker, crayon."""
    canvas = _paper(rng, h, w) if canvas is None else canvas
    for _ in range(int(rng.integers(2, 12))):
        color = _color(rng) * (0.6 if rng.random() < 0.4 else 1.0)
        width = int(rng.choice([1, 1, 2, 2, 3, 4, 6, 9]))
        if rng.random() < 0.45:
            pts, closed = _outline(rng, h, w)
        else:
            pts, closed = _curve(rng, h, w, int(rng.integers(8, 60))), False
        if closed and rng.random() < 0.3:
            cv2.fillPoly(canvas, [np.round(pts * 16).astype(np.int32)], tuple(float(c) for c in _color(rng)), cv2.LINE_AA, 4)
        _draw_path(canvas, pts, color, width, closed)
    return canvas


def sketch(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A pencil sketch: grey graphite strokes, each drawn in two or three wobbly passes, on paper."""
    canvas = _paper(rng, h, w)
    graphite = np.float32(rng.uniform(40, 150))
    for _ in range(int(rng.integers(2, 8))):
        pts, closed = _outline(rng, h, w) if rng.random() < 0.6 else (_curve(rng, h, w, int(rng.integers(10, 50))), False)
        for _ in range(int(rng.integers(1, 4))):
            jitter = rng.normal(0, 0.8 * max(h, w) / 128, pts.shape)
            tone = graphite + rng.uniform(-20, 40)
            _draw_path(canvas, pts + jitter, (tone, tone, tone), int(rng.choice([1, 1, 2])), closed)
    if rng.random() < 0.4:
        hatch(rng, canvas, graphite)
    return canvas


def hatch(rng: np.random.Generator, canvas: np.ndarray, tone=None) -> np.ndarray:
    """Parallel (sometimes crossed) lines filling a region."""
    h, w = canvas.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    pts, _ = _outline(rng, h, w)
    cv2.fillPoly(mask, [pts.astype(np.int32)], 1)
    color = np.full(3, tone, np.float32) if tone is not None else _color(rng)
    layer = canvas.copy()
    for angle in [rng.uniform(0, math.pi)] + ([rng.uniform(0, math.pi)] if rng.random() < 0.4 else []):
        gap = rng.uniform(2.5, 7) * max(h, w) / 128
        d = np.array([math.cos(angle), math.sin(angle)])
        n = np.array([-d[1], d[0]])
        span = math.hypot(h, w)
        for k in np.arange(-span, span, gap):
            a = np.array([w / 2, h / 2]) + n * k - d * span
            b = np.array([w / 2, h / 2]) + n * k + d * span
            _draw_path(layer, np.stack([a, b]), color, 1)
    canvas[mask > 0] = layer[mask > 0]
    return canvas


def hatching(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    canvas = _paper(rng, h, w) if rng.random() < 0.7 else gradient(rng, h, w)
    for _ in range(int(rng.integers(1, 4))):
        hatch(rng, canvas)
    return canvas


def texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    values = fractal(rng, h, w, octaves=int(rng.integers(3, 7)), persistence=rng.uniform(0.35, 0.75))
    if rng.random() < 0.3:  # marble / wood: a sine of the noise
        values = 0.5 + 0.5 * np.sin(values * rng.uniform(6, 25))
    return _colormap(values, rng)


def blurred_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    noise = rng.normal(0, 1, (h, w, 3)).astype(np.float32)
    sigma = rng.uniform(0.0, 4.0)
    if sigma > 0.3:
        noise = cv2.GaussianBlur(noise, (0, 0), sigma)
    noise /= max(noise.std(), 1e-6)
    return _color(rng) * 0.6 + 40 + noise * rng.uniform(5, 60)


def text(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    canvas = _paper(rng, h, w) if rng.random() < 0.5 else [gradient, texture][int(rng.integers(2))](rng, h, w)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,!?"
    for _ in range(int(rng.integers(1, 6))):
        word = "".join(rng.choice(list(letters), int(rng.integers(2, 12))))
        scale = rng.uniform(0.25, 1.6) * max(h, w) / 128
        org = (int(rng.uniform(-0.1, 0.8) * w), int(rng.uniform(0.1, 1.0) * h))
        _put_text(canvas, word, org, int(rng.choice(FONTS)), scale, _color(rng), int(rng.integers(1, 4)))
    return canvas


def photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Photo-like: smooth regions of varied colour with soft and hard edges, shading, fine texture, noise."""
    regions = int(rng.integers(2, 7))
    seeds = rng.uniform(0, 1, (regions, 2)) * [w, h]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    warp = smooth_field(rng, h, w, 3) * rng.uniform(0, 0.25) * max(h, w)
    dist = np.stack([np.hypot(xs - sx + warp, ys - sy - warp) for sx, sy in seeds])
    label = dist.argmin(0)
    canvas = np.zeros((h, w, 3), np.float32)
    for k in range(regions):
        shade = gradient(rng, h, w) if rng.random() < 0.5 else _colormap(fractal(rng, h, w, 4, rng.uniform(0.3, 0.6)), rng, 2)
        canvas[label == k] = shade[label == k]
    sigma = rng.uniform(0, 2.5)
    if sigma > 0.3:
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigma)
    light = smooth_field(rng, h, w, 2)[..., None] * rng.uniform(0, 50)
    detail = (fractal(rng, h, w, 6, 0.8)[..., None] - 0.5) * rng.uniform(0, 50)
    return canvas + light + detail + rng.normal(0, rng.uniform(0, 6), (h, w, 1))


DRAW = {"gradient": gradient, "strokes": strokes, "sketch": sketch, "hatching": hatching, "texture": texture, "noise": blurred_noise, "text": text, "photo": photo}


def picture(seed: int, h: int, w: int, kind: str | None = None) -> np.ndarray:
    """One foreign picture (uint8 HxWx3); a third of them have a second kind layered on top."""
    rng = np.random.default_rng([seed, 7])
    kind = kind or KINDS[int(rng.integers(len(KINDS)))]
    canvas = DRAW[kind](rng, h, w)
    if kind not in ("sketch", "text") and rng.random() < 0.33:
        overlay = ["strokes", "hatching", "text"][int(rng.integers(3))]
        canvas = strokes(rng, h, w, canvas) if overlay == "strokes" else hatch(rng, canvas) if overlay == "hatching" else _layer_text(rng, canvas)
    return np.clip(canvas, 0, 255).round().astype(np.uint8)


def _layer_text(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    h, w = canvas.shape[:2]
    word = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), int(rng.integers(3, 9))))
    _put_text(canvas, word, (int(rng.uniform(0, 0.5) * w), int(rng.uniform(0.3, 0.95) * h)), int(rng.choice(FONTS)), rng.uniform(0.4, 1.2) * max(h, w) / 128, _color(rng), int(rng.integers(1, 3)))
    return canvas


def _put_text(canvas: np.ndarray, word: str, org, font: int, scale: float, color: np.ndarray, thickness: int) -> None:
    """putText draws only on 8-bit images: draw an anti-aliased coverage mask, then blend the colour in."""
    mask = np.zeros(canvas.shape[:2], np.uint8)
    cv2.putText(mask, word, org, font, scale, 255, thickness, cv2.LINE_AA)
    alpha = mask[..., None].astype(np.float32) / 255
    canvas *= 1 - alpha
    canvas += alpha * color


# ---------------------------------------------------------------- held-out sets for the round-trip benchmark

EVAL_SETS = {"sketch": "sketch", "line drawing": "strokes", "gradient": "gradient", "texture": "texture", "photo-like": "photo"}


def held_out(name: str, index: int, size: int) -> np.ndarray:
    """Held-out picture `index` of one of EVAL_SETS at size x size; never drawn in training."""
    return picture(HELD_OUT_BASE + 1000 * list(EVAL_SETS).index(name) + index, size, size, EVAL_SETS[name])


def pencil_sketch_of(shape_mask: np.ndarray, seed: int = 0) -> np.ndarray:
    """A grey pencil drawing of a filled mask's outline on off-white paper: what a user scans in."""
    rng = np.random.default_rng([seed, 11])
    h, w = shape_mask.shape
    canvas = _paper(rng, h, w)
    contours, _ = cv2.findContours(shape_mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    for contour in contours:
        pts = contour[:, 0, :].astype(np.float64)
        for _ in range(2):
            tone = rng.uniform(70, 120)
            _draw_path(canvas, pts + rng.normal(0, 0.6, pts.shape), (tone, tone, tone), 1, True)
    return np.clip(canvas, 0, 255).round().astype(np.uint8)
