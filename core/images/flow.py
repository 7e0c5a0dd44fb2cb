"""Optical flow between frames, and moving a frame along it: cadence in-betweens and a video's motion.

A flow from `a` to `b` is an HxWx2 array F with a(p) ~ b(p + F(p)): where each pixel of `a` went.
Warping samples backwards, `warp(image, G)(p) = image(p + G(p))`, so moving `a` onto `b` takes the
flow from `b` to `a`. The estimators (OpenCV's DIS and Farneback; RAFT through torchvision, images/raft.py)
are deterministic, which a resumed run relies on to come out byte-identical.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import UsageError
from .motion import BORDERS

FLOW_METHODS = ("dis", "farneback", "raft")
MATCH_KINDS = ("affine", "perspective")
_MIN_MATCHES = 8


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "dis", device="cpu") -> np.ndarray:
    """Where each pixel of `a` went in `b` (DIS at Deforum's "DIS Fine" settings, Farneback at its "normal" ones, or RAFT)."""
    if method == "raft":
        from . import raft

        return raft.optical_flow(a, b, device)
    first, second = _grey(a), _grey(b)
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)
        dis.setGradientDescentIterations(192)
        dis.setPatchSize(8)
        dis.setPatchStride(4)
        return dis.calc(first, second, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(first, second, None, 0.5, 5, 21, 5, 7, 1.2, 0)
    raise UsageError(f"unknown optical flow method {method!r}; choose from {', '.join(FLOW_METHODS)}")


def flow_positions(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a backward flow (from a frame to the one before): where each pixel came from."""
    height, width = flow.shape[:2]
    xs = np.arange(width, dtype=np.float32)[None, :] + flow[..., 0]
    ys = np.arange(height, dtype=np.float32)[:, None] + flow[..., 1]
    return xs.astype(np.float32), ys.astype(np.float32)


def warp(image: np.ndarray, flow: np.ndarray, border: str = "replicate") -> np.ndarray:
    """image(p + flow(p)) for every pixel p."""
    xs, ys = flow_positions(flow)
    return cv2.remap(image, xs, ys, cv2.INTER_LINEAR, borderMode=BORDERS[border])


def matrix_positions(matrix: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """For a 3x3 matrix carrying one frame onto the next: where each pixel of the next came from."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    source = np.linalg.inv(matrix) @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    return (source[0] / source[2]).reshape(height, width).astype(np.float32), (source[1] / source[2]).reshape(height, width).astype(np.float32)


def warp_noise(noise: np.ndarray, steps: list[tuple[np.ndarray, np.ndarray]], fresh: np.ndarray) -> np.ndarray:
    """Latent noise (C x h x w) carried through frames' moves: each cell takes the cell its centre pixel came from.

    `steps` holds each frame's positions (where each of its pixels came from in the frame before), the last frame
    first. A cell's centre is traced back through all of them, and a cell that left the frame on the way takes
    `fresh` noise, once: fresh cells carried frame by frame would be copied beside themselves. Nearest cells, not
    interpolated ones: a mix of Gaussian cells is no longer unit-variance noise, and the sampler would read the
    lost variance as a blurred picture.
    """
    h, w = noise.shape[1:]
    height, width = steps[0][0].shape
    scale_y, scale_x = height / h, width / w
    ys, xs = np.meshgrid((np.arange(h) + 0.5) * scale_y, (np.arange(w) + 0.5) * scale_x, indexing="ij")
    inside = np.ones((h, w), bool)
    for step_x, step_y in steps:  # positions are read between pixels (a pixel's position is its centre's)
        at_x, at_y = (xs - 0.5).astype(np.float32), (ys - 0.5).astype(np.float32)
        xs = cv2.remap(step_x, at_x, at_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) + 0.5
        ys = cv2.remap(step_y, at_x, at_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) + 0.5
        inside &= (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    source_y = np.clip(np.floor(ys / scale_y).astype(int), 0, h - 1)
    source_x = np.clip(np.floor(xs / scale_x).astype(int), 0, w - 1)
    return np.where(inside[None], noise[:, source_y, source_x], fresh).astype(noise.dtype)


def blend(a: np.ndarray, b: np.ndarray, amount: float) -> np.ndarray:
    """a * (1 - amount) + b * amount, rounded back to 8 bits."""
    mixed = a.astype(np.float32) * (1 - amount) + b.astype(np.float32) * amount
    return np.clip(mixed, 0, 255).round().astype(np.uint8)


def in_between(a: np.ndarray, b: np.ndarray, t: float, forward: np.ndarray, backward: np.ndarray, border: str = "replicate") -> np.ndarray:
    """The frame a fraction `t` of the way from `a` to `b`: both moved there along the flows, then mixed.

    `forward` is the flow from a to b, `backward` from b to a. The flows from the in-between frame are
    approximated from those two as in Jiang et al. (2018), "Super SloMo", eq. 4: linear motion, and a
    point's flow read where the point is at either end.
    """
    to_a = -(1 - t) * t * forward + t * t * backward
    to_b = (1 - t) * (1 - t) * forward - t * (1 - t) * backward
    return blend(warp(a, to_a, border), warp(b, to_b, border), t)


def _matched_points(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    orb = cv2.ORB_create(nfeatures=1000)
    keys_a, desc_a = orb.detectAndCompute(_grey(a), None)
    keys_b, desc_b = orb.detectAndCompute(_grey(b), None)
    if desc_a is None or desc_b is None:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(desc_a, desc_b)
    if len(matches) < _MIN_MATCHES:
        return None
    matches = sorted(matches, key=lambda m: (m.distance, m.queryIdx))
    return (np.float32([keys_a[m.queryIdx].pt for m in matches]), np.float32([keys_b[m.trainIdx].pt for m in matches]))


def _flow_points(flow: np.ndarray, step: int = 8) -> tuple[np.ndarray, np.ndarray]:
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[step // 2 : height : step, step // 2 : width : step]
    source = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)
    return source, source + flow[ys.ravel(), xs.ravel()]


def _fit(source: np.ndarray, target: np.ndarray, kind: str) -> np.ndarray | None:
    if kind == "perspective":
        matrix, _ = cv2.findHomography(source, target, cv2.RANSAC, 3.0)
        return matrix
    matrix, _ = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=3.0)
    return None if matrix is None else np.vstack([matrix, [0, 0, 1]])


def camera_matrix(a: np.ndarray, b: np.ndarray, kind: str, method: str = "dis", device="cpu") -> np.ndarray:
    """The 3x3 matrix carrying `a` onto `b`: a rotation, scale and shift ("affine", as Deforum's rigid fit) or a homography.

    Fitted with RANSAC to ORB feature matches; a frame with too few features (flat, small, blurred)
    is fitted to its optical flow instead, and a frame neither fits stays where it is.
    """
    if kind not in MATCH_KINDS:
        raise UsageError(f"unknown motion model {kind!r}; choose from {', '.join(MATCH_KINDS)}")
    points = _matched_points(a, b)
    matrix = _fit(*points, kind) if points is not None else None
    if matrix is None:
        matrix = _fit(*_flow_points(optical_flow(a, b, method, device)), kind)
    return np.eye(3) if matrix is None or not np.isfinite(matrix).all() else matrix
