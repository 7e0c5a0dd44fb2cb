"""The noise a sampling call starts from, and how its convolutions pad: A1111's variation seeds, given noise and tiling."""

from __future__ import annotations

import torch

from ..loading import device as devices
from .settings import ImageJob


def slerp(strength: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's spherical blend of two noises of shape (C, H, W), norms along dim 1, with its near-parallel fallback."""
    low_norm = low / torch.norm(low, dim=1, keepdim=True)
    high_norm = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_norm * high_norm).sum(1)
    if dot.mean() > 0.9995:
        return low * strength + high * (1 - strength)  # A1111 weighs the pair this way round here; kept for the same pixels
    omega = torch.acos(dot)
    so = torch.sin(omega)
    return (torch.sin((1.0 - strength) * omega) / so).unsqueeze(1) * low + (torch.sin(strength * omega) / so).unsqueeze(1) * high


def variation_noise(pipe, jobs: list[ImageJob], strength: float, width: int, height: int) -> torch.Tensor:
    """Each image's starting noise: its seed's, slerped toward its subseed's (drawn as diffusers draws them)."""
    from diffusers.utils.torch_utils import randn_tensor

    shape = (1, pipe.unet.config.in_channels, height // pipe.vae_scale_factor, width // pipe.vae_scale_factor)
    dtype = pipe.text_encoder.dtype if getattr(pipe, "text_encoder", None) is not None else pipe.unet.dtype
    noises = []
    for job in jobs:
        noise = randn_tensor(shape, generator=devices.generator(job.seed), dtype=dtype)
        if job.subseed is not None:
            sub = randn_tensor(shape, generator=devices.generator(job.subseed), dtype=dtype)
            noise = slerp(strength, noise[0].float(), sub[0].float()).unsqueeze(0).to(dtype)
        noises.append(noise)
    return torch.cat(noises)


class circular_padding:
    """--tiling: every convolution of the UNet, VAE (and ControlNets) pads circularly for the call, then as it was (the modules are shared)."""

    def __init__(self, pipe, on: bool):
        parts = [part for part in (pipe.unet, pipe.vae, getattr(pipe, "controlnet", None)) if part is not None]  # a ControlNet's features must tile as the UNet's do
        self.convs = [m for part in parts for m in part.modules() if isinstance(m, torch.nn.Conv2d)] if on else []
        self.saved = [m.padding_mode for m in self.convs]

    def __enter__(self):
        for conv in self.convs:
            conv.padding_mode = "circular"

    def __exit__(self, *exc):
        for conv, mode in zip(self.convs, self.saved):
            conv.padding_mode = mode
        return False


class given_noise:
    """img2img's start from given noise: the pipelines noise the picture's latents with scheduler.add_noise(latents,
    drawn, t), so for the call the scheduler adds `noise` in place of the drawn noise (None: the draw, untouched)."""

    def __init__(self, scheduler, noise):
        self.scheduler, self.noise = scheduler, None if noise is None else torch.as_tensor(noise)

    def __enter__(self):
        if self.noise is None:
            return
        add, noise = self.scheduler.add_noise, self.noise

        def add_noise(original, drawn, timesteps):
            if tuple(drawn.shape) != tuple(noise.shape):
                raise ValueError(f"given noise of shape {tuple(noise.shape)} for latents of shape {tuple(drawn.shape)}")
            return add(original, noise.to(drawn.device, drawn.dtype), timesteps)

        self.scheduler.add_noise = add_noise  # on the instance, for this call only

    def __exit__(self, *exc):
        if self.noise is not None:
            del self.scheduler.add_noise
        return False
