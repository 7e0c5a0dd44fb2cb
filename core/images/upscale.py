"""Upscaling pictures: Lanczos, or an upscaler network (ESRGAN, Real-ESRGAN, SwinIR...) run tile by tile.

Networks load through spandrel, which knows those architectures and their key layouts; scumble only
reads the file (safetensors, or a pickle behind --allow-pickle, weights only) and runs the model over
overlapping tiles, blended with linear ramps, so a large picture fits in memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError, UsageError

LANCZOS = "lanczos"


@dataclass(frozen=True)
class Network:
    """A loaded upscaler: `run` maps a 1x3xHxW float tensor in 0..1 to one `scale` times larger."""

    name: str
    scale: int
    run: Callable


def load_network(path: str, allow_pickle: bool = False, device: str = "cpu") -> Network:
    """An upscaler network file, through spandrel; one line when the file or the library is missing."""
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"--upscaler {path}: no such file (or use lanczos)")
    suffix = file.suffix.lower()
    if suffix not in (".safetensors", ".pth", ".pt", ".ckpt", ".bin"):
        raise UsageError(f"--upscaler {path}: an upscaler is a .safetensors or .pth file")
    if suffix != ".safetensors" and not allow_pickle:
        raise UsageError(f"--upscaler {path}: a {suffix} file is a pickle; pass --allow-pickle to load it (weights only)")
    try:
        import spandrel
    except Exception as exc:  # noqa: BLE001 - ImportError, or torchvision failing to load against this torch
        raise UsageError(f"--upscaler {path}: upscaler networks need spandrel (pip install 'scumble[upscale]'), which did not load here: {type(exc).__name__}") from None
    state = _state_dict(file)
    try:
        model = spandrel.ModelLoader(device=device).load_from_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - spandrel raises several types for files it does not know
        raise InputError(f"--upscaler {path}: not an upscaler spandrel knows ({exc})") from None
    if not isinstance(model, spandrel.ImageModelDescriptor) or model.scale < 1:
        raise InputError(f"--upscaler {path}: a {model.architecture.name} model is not an upscaler")
    model.eval()
    return Network(f"{file.stem} ({model.architecture.name} x{model.scale})", int(model.scale), model)


def _state_dict(file: Path) -> dict:
    import torch

    try:
        if file.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            return load_file(file)
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file
        raise InputError(f"--upscaler {file}: cannot read it ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and isinstance(state.get("params_ema", state.get("params")), dict):
        state = state.get("params_ema", state.get("params"))  # Real-ESRGAN's training checkpoints nest the weights
    return state


def _ramp(length: int, overlap: int, start: bool, end: bool) -> np.ndarray:
    """1 inside a tile, rising linearly over the overlap at an edge that meets another tile."""
    w = np.ones(length, np.float32)
    ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
    if start and overlap:
        w[:overlap] = ramp[: min(overlap, length)]
    if end and overlap:
        w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1][: min(overlap, length)])
    return w


def tiles(size: int, tile: int, overlap: int) -> tuple[list[int], int]:
    """Start offsets and one length covering 0..size: the fewest tiles no longer than `tile` that overlap by at
    least `overlap`, shrunk to share the picture evenly (so a last tile never mostly repeats the one before)."""
    if tile <= 0 or tile >= size:
        return [0], size
    count = math.ceil((size - overlap) / (tile - overlap))
    length = min(tile, math.ceil((size + (count - 1) * overlap) / count))
    step = (size - length) / (count - 1)
    return [round(i * step) for i in range(count)], length


def run_tiled(network: Network, image: np.ndarray, tile: int = 0, overlap: int = 16) -> np.ndarray:
    """The network over `image` (HxWx3 uint8) in overlapping tiles, blended; tile 0: the whole picture at once."""
    import torch

    h, w = image.shape[:2]
    s = network.scale
    x = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float() / 255  # decoded images can be read-only
    overlap = min(overlap, tile // 4) if tile else 0
    total = np.zeros((h * s, w * s, 3), np.float32)
    weight = np.zeros((h * s, w * s, 1), np.float32)
    (ys, th), (xs, tw) = tiles(h, tile, overlap), tiles(w, tile, overlap)
    for y in ys:
        for x0 in xs:
            part = x[:, :, y : y + th, x0 : x0 + tw]
            with torch.inference_mode():
                out = network.run(part).clamp(0, 1)[0].permute(1, 2, 0).float().numpy()
            oh, ow = out.shape[:2]
            wy = _ramp(oh, overlap * s, y > 0, y + part.shape[2] < h)
            wx = _ramp(ow, overlap * s, x0 > 0, x0 + part.shape[3] < w)
            mask = (wy[:, None] * wx[None, :])[..., None]
            total[y * s : y * s + oh, x0 * s : x0 * s + ow] += out * mask
            weight[y * s : y * s + oh, x0 * s : x0 * s + ow] += mask
    return np.clip(np.round(total / np.maximum(weight, 1e-8) * 255), 0, 255).astype(np.uint8)


def upscale(image: np.ndarray, scale: float, network: Network | None = None, tile: int = 0) -> np.ndarray:
    """`image` made `scale` times larger: the network (then Lanczos to the exact size, as A1111 does), or Lanczos."""
    from PIL import Image

    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if network is not None:
        image = run_tiled(network, image, tile)
        if image.shape[1::-1] == size:
            return image
    return np.asarray(Image.fromarray(image).resize(size, Image.LANCZOS))
