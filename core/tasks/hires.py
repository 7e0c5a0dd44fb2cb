"""txt2img's hires fix, as A1111 does it: the base image, upscaled, redrawn by img2img at the larger size.

The first pass is the ordinary txt2img at the base size. The upscale is either bilinear on the
latents (A1111's "Latent") or a LANCZOS resize of the decoded image; the second pass is img2img
with the same seeds and an exact step plan, so it runs the steps asked for.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from ..errors import UsageError
from ..request.types import ImageRequest
from ..sampling.engine import Engine
from .items import max_side


def target(engine: Engine, request: ImageRequest, base: tuple[int, int] | None = None) -> tuple[int, int]:
    """The final size; `base`: the first pass's, where a control image set it."""
    sampling = request.sampling
    return request.hires.target(base or engine.size(sampling.width, sampling.height))


def check_size(engine: Engine, request: ImageRequest, base: tuple[int, int] | None = None) -> None:
    """Refuse a final size the model cannot use before the first pass spends any time (`base`: a control image's size)."""
    limit = max_side(engine)
    hires = request.hires
    width, height = target(engine, request, base)
    for side, value in (("width", width), ("height", height)):
        if value > limit:
            flag = f"--hires-{side} {value}" if getattr(hires, side) else f"--hires-scale {hires.scale:g}"
            raise UsageError(f"{flag}: makes a {width}x{height} image, larger than this model can use (at most {limit} a side, four times its native {engine.native_size})")
    if hires.upscaler not in ("latent", "lanczos"):  # a missing or foreign network file is refused before the first pass too
        _network(hires.upscaler, request.model.allow_pickle, str(engine.runtime.device))


def record_fields(request: ImageRequest) -> dict:
    """The hires settings, named as their options so that --replay reads them back."""
    hires = request.hires
    return {"hires_scale": hires.scale, "hires_width": hires.width, "hires_height": hires.height, "hires_strength": hires.strength, "hires_steps": hires.steps, "hires_upscaler": hires.upscaler}


TILE = 512  # an upscaler network's tile in the first pass's pixels: the whole picture for any size a model makes


def _upscaled(engine: Engine, request: ImageRequest, image, size: tuple[int, int]):
    """The first pass's picture at the final size: Lanczos, or the network then Lanczos to the exact size."""
    import numpy as np
    from PIL import Image

    from ..images import upscale

    if request.hires.upscaler == "lanczos":
        return image.resize(size, Image.LANCZOS)
    network = _network(request.hires.upscaler, request.model.allow_pickle, str(engine.runtime.device))
    made = Image.fromarray(upscale.run_tiled(network, np.asarray(image.convert("RGB")), TILE))
    return made if made.size == size else made.resize(size, Image.LANCZOS)


@functools.lru_cache(maxsize=2)
def _network(path: str, allow_pickle: bool, device: str):
    """Loaded once however many batches a run has."""
    from ..images import upscale

    return upscale.load_network(path, allow_pickle, device)


def generate(engine: Engine, request: ImageRequest, jobs: list, on_step, control=None, control_second=None, base: tuple[int, int] | None = None) -> list:
    """Both passes; with ControlNets, `control` guides the first and `control_second` (the same images at the final size) the second."""
    sampling, hires = request.sampling, request.hires
    base = base or engine.size(sampling.width, sampling.height)
    width, height = target(engine, request, base)
    # the second pass's own size, so a size-dependent setting (--logsnr-shift auto) sees the image it makes
    second = replace(sampling, width=width, height=height)
    denoise = hires.denoise
    if hires.upscaler != "latent":
        first = engine.txt2img(jobs, sampling, on_step=on_step, control=control, size=base)
        resized = [_upscaled(engine, request, image, (width, height)) for image in first]
        return engine.img2img(jobs, resized, second, denoise, on_step=on_step, control=control_second)
    import torch.nn.functional as F

    # Latent: the first pass stops before the VAE, and its latents are stretched bilinearly (A1111's
    # default "Latent", no antialiasing); img2img takes 4-channel latents as they are, without encoding.
    latents = engine.txt2img_latents(jobs, sampling, on_step=on_step, control=control, size=base)
    factor = engine.pipeline("txt2img").vae_scale_factor
    upscaled = F.interpolate(latents, size=(height // factor, width // factor), mode="bilinear", align_corners=False, antialias=False)
    return engine.img2img_latents(jobs, upscaled, (width, height), second, denoise, on_step=on_step, control=control_second)
