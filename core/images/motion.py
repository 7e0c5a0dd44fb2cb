"""Deforum's 2D frame-to-frame operations: warp, colour coherence, contrast, anti-blur, noise.

Pure functions on HxWx3 uint8 RGB frames; each takes the frame's scheduled values as arguments.
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from ..errors import UsageError

# zeros (black) is Deforum 3D's third padding mode; its 2D warp knows only replicate and wrap.
BORDERS = {"replicate": cv2.BORDER_REPLICATE, "wrap": cv2.BORDER_WRAP, "reflect": cv2.BORDER_REFLECT_101, "zeros": cv2.BORDER_CONSTANT}
COLOR_MODES = ("none", "lab", "hsv", "rgb")
NOISE_TYPES = ("perlin", "uniform")


def motion_matrix(width: int, height: int, zoom: float, angle: float, tx: float, ty: float, cx: float = 0.5, cy: float = 0.5) -> np.ndarray:
    """3x3 matrix: rotate by `angle` degrees and scale by `zoom` about (cx, cy) (fractions), then translate by pixels."""
    matrix = np.eye(3)
    matrix[:2] = cv2.getRotationMatrix2D((cx * width, cy * height), angle, zoom)
    matrix[0, 2] += tx
    matrix[1, 2] += ty
    return matrix


def perspective_matrix(width: int, height: int, theta: float, phi: float, gamma: float, fv: float) -> np.ndarray:
    """3x3 homography of the frame plane turned by theta/phi/gamma degrees about x/y/z, seen with field of view fv."""
    if not 0 < fv < 180:
        raise UsageError(f"perspective_flip_fv {fv:g}: the field of view must be between 0 and 180 degrees")
    t, p, g = (math.radians(v) for v in (theta, phi, gamma))
    rx = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(g), -math.sin(g), 0], [math.sin(g), math.cos(g), 0], [0, 0, 1]])
    focal = 0.5 * math.hypot(width, height) / math.tan(math.radians(fv) / 2)
    corners = np.array([[-width / 2, -height / 2, 0], [width / 2, -height / 2, 0], [width / 2, height / 2, 0], [-width / 2, height / 2, 0]])
    turned = corners @ (rz @ ry @ rx).T
    turned[:, 2] += focal
    projected = turned[:, :2] * (focal / turned[:, 2:3]) + [width / 2, height / 2]
    source = (corners[:, :2] + [width / 2, height / 2]).astype(np.float32)
    return cv2.getPerspectiveTransform(source, projected.astype(np.float32))


def warp(frame: np.ndarray, matrix: np.ndarray, border: str = "replicate") -> np.ndarray:
    if border not in BORDERS:
        raise UsageError(f"--border: unknown mode {border!r}; choose from {', '.join(BORDERS)}")
    if np.allclose(matrix, np.eye(3)):
        return frame.copy()
    h, w = frame.shape[:2]
    return cv2.warpPerspective(frame, matrix, (w, h), flags=cv2.INTER_LANCZOS4, borderMode=BORDERS[border])


def _cdfs(image: np.ndarray) -> list[np.ndarray]:
    return [np.cumsum(np.bincount(image[..., c].ravel(), minlength=256)) / image[..., c].size for c in range(image.shape[2])]


def _match_channels(source: np.ndarray, reference_cdfs: list[np.ndarray]) -> np.ndarray:
    # skimage.exposure.match_histograms does this; a 256-entry lookup table per channel spares a 40 MB dependency.
    levels = np.arange(256)
    out = np.empty_like(source)
    for c, ref_cdf in enumerate(reference_cdfs):
        src_cdf = _cdfs(source[..., c : c + 1])[0]
        present = np.concatenate([[True], np.diff(ref_cdf) > 0])  # interpolate over the levels the reference uses
        table = np.interp(src_cdf, ref_cdf[present], levels[present]).round().clip(0, 255).astype(np.uint8)
        out[..., c] = table[source[..., c]]
    return out


class ColorReference:
    """The first frame's colour histograms in each space, computed once for the whole run."""

    def __init__(self, frame: np.ndarray):
        self.frame = frame
        self._cdfs: dict[str, list[np.ndarray]] = {}

    def cdfs(self, mode: str) -> list[np.ndarray]:
        if mode not in self._cdfs:
            self._cdfs[mode] = _cdfs(self.frame if mode == "rgb" else cv2.cvtColor(self.frame, _SPACES[mode][0]))
        return self._cdfs[mode]


_SPACES = {"lab": (cv2.COLOR_RGB2LAB, cv2.COLOR_LAB2RGB), "hsv": (cv2.COLOR_RGB2HSV, cv2.COLOR_HSV2RGB)}


def match_colors(frame: np.ndarray, reference: np.ndarray, mode: str) -> np.ndarray:
    """Histogram-match `frame` to `reference` in LAB, HSV or RGB, so colours do not drift over many frames."""
    if mode not in COLOR_MODES:
        raise UsageError(f"--color-coherence: unknown mode {mode!r}; choose from {', '.join(COLOR_MODES)}")
    if mode == "none" or reference is None:
        return frame
    if not isinstance(reference, ColorReference):
        reference = ColorReference(reference)
    if mode == "rgb":
        return _match_channels(frame, reference.cdfs("rgb"))
    to_space, from_space = _SPACES[mode]
    return cv2.cvtColor(_match_channels(cv2.cvtColor(frame, to_space), reference.cdfs(mode)), from_space)


def adjust_contrast(frame: np.ndarray, contrast: float) -> np.ndarray:
    if contrast == 1.0:
        return frame
    mean = frame.astype(np.float32).mean()
    return np.clip((frame.astype(np.float32) - mean) * contrast + mean, 0, 255).round().astype(np.uint8)


def unsharp_mask(frame: np.ndarray, kernel: int, sigma: float, amount: float, threshold: float) -> np.ndarray:
    """Deforum's anti-blur: sharpen by `amount`, leaving differences under `threshold` alone."""
    if amount == 0:
        return frame
    kernel = max(1, int(round(kernel)))
    kernel += 1 - kernel % 2
    blurred = cv2.GaussianBlur(frame, (kernel, kernel), sigma)
    image = frame.astype(np.float32)
    sharpened = np.clip(image * (1 + amount) - blurred.astype(np.float32) * amount, 0, 255)
    if threshold > 0:
        low_contrast = np.abs(image - blurred) < threshold
        sharpened = np.where(low_contrast, image, sharpened)
    return sharpened.round().astype(np.uint8)


@functools.lru_cache(maxsize=16)
def _perlin_lattice(height: int, width: int, period: int):
    """Flat corner indices and fade weights of one octave; the same for every frame of a run."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32) / period
    y0, x0 = np.floor(ys), np.floor(xs)
    fy, fx = ys - y0, xs - x0
    row = -(-width // period) + 2
    base = (y0.astype(np.intp) * row + x0.astype(np.intp)).ravel()
    corners = [(base + oy * row + ox, fy.ravel() - oy, fx.ravel() - ox) for oy in (0, 1) for ox in (0, 1)]
    fade_y, fade_x = (6 * v**5 - 15 * v**4 + 10 * v**3 for v in (fy.ravel(), fx.ravel()))
    return corners, fade_y, fade_x


def _perlin_octave(height: int, width: int, period: int, angles: np.ndarray) -> np.ndarray:
    """Gradient noise for all channels at once: `angles` is (channels, cells_y + 1, cells_x + 1)."""
    corners, fade_y, fade_x = _perlin_lattice(height, width, period)
    flat = angles.reshape(len(angles), -1)
    gradients = np.concatenate([np.cos(flat), np.sin(flat)]).astype(np.float32)
    channels = len(angles)
    dots = []
    for index, dy, dx in corners:
        g = np.take(gradients, index, axis=1)
        dots.append(g[:channels] * dy + g[channels:] * dx)
    top = dots[0] + (dots[1] - dots[0]) * fade_x
    bottom = dots[2] + (dots[3] - dots[2]) * fade_x
    return (top + (bottom - top) * fade_y).reshape(channels, height, width)


def noise_image(height: int, width: int, seed: int, kind: str = "perlin", octaves: int = 4, persistence: float = 0.5) -> np.ndarray:
    """Seeded noise in [0, 255], HxWx3: Perlin (summed octaves, Deforum's default) or uniform."""
    if kind not in NOISE_TYPES:
        raise UsageError(f"--noise-type: unknown type {kind!r}; choose from {', '.join(NOISE_TYPES)}")
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.uniform(0, 255, (height, width, 3))
    periods, amplitudes = [], []
    period, amplitude = max(2, max(height, width) // 4), 1.0
    for _ in range(max(1, octaves)):
        periods.append(period)
        amplitudes.append(amplitude)
        amplitude *= persistence
        period = max(2, period // 2)
    # Draw the gradient angles channel by channel, octave by octave, so a seed keeps its picture.
    angles = [[rng.uniform(0, 2 * np.pi, (-(-height // p) + 2, -(-width // p) + 2)) for p in periods] for _ in range(3)]
    total = np.zeros((3, height, width), np.float32)
    for octave, (p, a) in enumerate(zip(periods, amplitudes)):
        total += a * _perlin_octave(height, width, p, np.stack([angles[c][octave] for c in range(3)]))
    stacked = np.moveaxis(total / sum(amplitudes), 0, -1)
    return np.clip((stacked * 0.5 / 0.7 + 0.5) * 255, 0, 255)


def add_noise(frame: np.ndarray, amount: float, noise: np.ndarray) -> np.ndarray:
    """Deforum's blend: img * (1 - n) + noise * n."""
    if amount <= 0:
        return frame
    return np.clip(frame.astype(np.float32) * (1 - amount) + noise * amount, 0, 255).round().astype(np.uint8)
