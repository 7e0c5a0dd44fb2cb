"""Pixel work around the model: resizing as A1111 does, mask feathering and filling, and pasting back.

Pure functions on numpy arrays (HxWx3 uint8 images, HxW uint8 masks) so each is easy to test.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import UsageError

RESIZE_MODES = ("just", "crop", "fill")
FILL_MODES = ("original", "fill", "noise", "nothing")


def round8(value: int) -> int:
    return max(8, int(round(value / 8)) * 8)


def resize(image: np.ndarray, width: int, height: int, mode: str = "just") -> np.ndarray:
    """A1111's three resize modes: stretch, scale-to-cover then centre-crop, scale-to-fit then pad with the edges."""
    if mode not in RESIZE_MODES:
        raise UsageError(f"--resize: unknown mode {mode!r}; choose from {', '.join(RESIZE_MODES)}")
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    if mode == "just":
        return _scale(image, width, height)
    ratio = max(width / w, height / h) if mode == "crop" else min(width / w, height / h)
    sw, sh = max(1, round(w * ratio)), max(1, round(h * ratio))
    scaled = _scale(image, sw, sh)
    if mode == "crop":
        x, y = (sw - width) // 2, (sh - height) // 2
        return scaled[y : y + height, x : x + width]
    left, top = (width - sw) // 2, (height - sh) // 2
    return cv2.copyMakeBorder(scaled, top, height - sh - top, left, width - sw - left, cv2.BORDER_REPLICATE)


def _scale(image: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width * height < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4)


def feather(mask: np.ndarray, radius: float) -> np.ndarray:
    """A1111's mask blur: a Gaussian with kernel 2*int(2.5*r + 0.5) + 1 and sigma r."""
    if radius <= 0:
        return mask
    kernel = 2 * int(2.5 * radius + 0.5) + 1
    return cv2.GaussianBlur(mask, (kernel, kernel), radius)


def fill_masked(image: np.ndarray, mask: np.ndarray, mode: str, seed: int) -> np.ndarray:
    """What the masked area starts from: the original, colours from around it, noise, or nothing (grey)."""
    if mode not in FILL_MODES:
        raise UsageError(f"--fill: unknown mode {mode!r}; choose from {', '.join(FILL_MODES)}")
    inside = mask > 127
    if mode == "original" or not inside.any():
        return image
    out = image.copy()
    if mode == "fill":
        out = cv2.inpaint(image, inside.astype(np.uint8), 5, cv2.INPAINT_TELEA)
        out = np.where(inside[..., None], cv2.blur(out, (9, 9)), image)
    elif mode == "noise":
        noise = np.random.default_rng(seed).integers(0, 256, image.shape, dtype=np.uint8)
        out[inside] = noise[inside]
    else:  # "nothing": a zero latent decodes to roughly mid grey
        out[inside] = 127
    return out


def paste_back(original: np.ndarray, generated: np.ndarray, soft_mask: np.ndarray) -> np.ndarray:
    """Blend by the feathered mask; where the mask is 0 the original pixel comes back bit for bit."""
    weight = (soft_mask.astype(np.float32) / 255.0)[..., None]
    blended = original.astype(np.float32) * (1.0 - weight) + generated.astype(np.float32) * weight
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    outside = soft_mask == 0
    out[outside] = original[outside]
    return out


def mask_box(mask: np.ndarray, padding: int, aspect: float) -> tuple[int, int, int, int] | None:
    """A1111's 'only masked' region: the mask's box plus padding, widened to `aspect` (w/h), kept in the image."""
    ys, xs = np.nonzero(mask > 0)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    x0, x1 = max(0, xs.min() - padding), min(w, xs.max() + 1 + padding)
    y0, y1 = max(0, ys.min() - padding), min(h, ys.max() + 1 + padding)
    bw, bh = x1 - x0, y1 - y0
    if bw / bh < aspect:
        grow = min(w, round(bh * aspect)) - bw
        x0 = max(0, min(x0 - grow // 2, w - (bw + grow)))
        x1 = x0 + bw + grow
    else:
        grow = min(h, round(bw / aspect)) - bh
        y0 = max(0, min(y0 - grow // 2, h - (bh + grow)))
        y1 = y0 + bh + grow
    return int(x0), int(y0), int(x1), int(y1)
