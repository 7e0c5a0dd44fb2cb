"""What a sampling call is asked for: the settings a run's images share, and what sets one image apart.

Light on purpose (no torch): the request builder and `--help` import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .noise_schedules import NoiseSpec, parse_spec


@dataclass(frozen=True)
class Sampling:
    """Settings that every image of one run shares."""

    steps: int = 20
    cfg: float = 7.0
    width: int = 0  # 0: the model's native size
    height: int = 0
    scheduler: str = ""  # "": the model's own scheduler
    noise_schedule: NoiseSpec = NoiseSpec("default")
    timestep_spacing: str = ""  # "": the model's own
    logsnr_shift: float | str = 0.0  # continuous noise schedules: toward more (<0) or less noise; "auto": by image size
    cfg_cutoff: float = 0.0  # skip classifier-free guidance on this last fraction of the steps
    clip_skip: int = 1  # A1111's Clip skip: 1 reads CLIP's last layer
    subseed_strength: float = 0.0  # A1111's variation: slerp toward each image's subseed noise
    tiling: bool = False
    eta: float = 0.0
    ensd: int = 0  # A1111: the noise drawn during sampling comes from seed + ensd, the starting noise from seed
    tome: float = 0.0  # token merging: the fraction of tokens merged before the top-level self-attention
    step_cache: int = 1  # run the whole UNet every this many calls, only its shallow path in between (1: always whole; 0: step_cache.interval decides)

    def __post_init__(self):
        # Parsed once, here: the engine, the scheduler factory and the record all read the parsed spec.
        object.__setattr__(self, "noise_schedule", parse_spec(self.noise_schedule))


@dataclass(frozen=True)
class ImageJob:
    """One image to make: what distinguishes it from the others in its run."""

    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    index: int = 0
    subseed: int | None = None  # A1111's variation seed, with Sampling.subseed_strength
    extra: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class ControlCall:
    """A batch's ControlNet inputs: for each image, one control image per ControlNet (at the call's size), and how each acts."""

    images: tuple  # per batch image: a tuple of PIL images, in the order of the ControlNets
    weights: tuple[float, ...]
    starts: tuple[float, ...]  # fraction of the steps done before each acts
    ends: tuple[float, ...]
    guess_mode: bool = False
