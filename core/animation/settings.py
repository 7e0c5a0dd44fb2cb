"""An animation's request: every option, as Deforum names its schedules, built and checked by core.request."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..sampling.noise_schedules import NoiseSpec
from .keyframes import ParsedSchedule

SEED_BEHAVIORS = ("iter", "fixed", "random", "ladder", "alternate", "schedule")
SCHEDULE_FIELDS = (
    "zoom", "angle", "translation_x", "translation_y", "transform_center_x", "transform_center_y",
    "perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma", "perspective_flip_fv",
    "noise", "strength", "contrast", "cfg", "steps", "amount", "kernel", "sigma", "threshold", "seed_schedule",
)
# Options that change how the result is stored or shown, not what it is: they may differ on --resume.
NOT_SETTINGS = {"output", "keep_frames", "contact_sheet", "resume", "overwrite", "soundtrack", "soundtrack_offset", "interpolate", "deflicker"}


@dataclass(frozen=True)
class AnimationSettings:
    """Built by core.request.build.animation_request; schedules arrive parsed, every value checked."""

    prompts: dict[str, str]
    negative_prompt: str
    frames: int
    fps: float
    width: int
    height: int
    seed: int
    seed_behavior: str
    cadence: int
    zoom: ParsedSchedule
    angle: ParsedSchedule
    translation_x: ParsedSchedule
    translation_y: ParsedSchedule
    transform_center_x: ParsedSchedule
    transform_center_y: ParsedSchedule
    perspective_flip: bool
    perspective_flip_theta: ParsedSchedule
    perspective_flip_phi: ParsedSchedule
    perspective_flip_gamma: ParsedSchedule
    perspective_flip_fv: ParsedSchedule
    border: str
    color_coherence: str
    noise: ParsedSchedule
    noise_type: str
    perlin_octaves: int
    perlin_persistence: float
    strength: ParsedSchedule  # denoising amount, as in img2img (Deforum's strength is 1 minus this)
    contrast: ParsedSchedule
    cfg: ParsedSchedule
    steps: ParsedSchedule
    amount: ParsedSchedule
    kernel: ParsedSchedule
    sigma: ParsedSchedule
    threshold: ParsedSchedule
    seed_schedule: ParsedSchedule
    scheduler: str
    noise_schedule: NoiseSpec
    timestep_spacing: str  # "": the model's own; "trailing" from an A1111 schedule type (Simple, SGM Uniform)
    init_image: str | None
    video_input: str | None
    extract_nth_frame: int
    output: str
    crf: int
    keep_frames: bool
    contact_sheet: int
    resume: bool
    overwrite: bool
    soundtrack: str | None = None
    soundtrack_offset: float = 0.0
    interpolate: int = 1
    deflicker: bool = False

    def as_dict(self) -> dict:
        """Plain JSON-able values: schedules and noise schedules as the text they were given as."""
        return {f.name: (str(v) if isinstance(v, (ParsedSchedule, NoiseSpec)) else v) for f in fields(self) for v in [getattr(self, f.name)]}

    def identity(self) -> dict:
        # An unset timestep spacing is left out, so a run recorded before the field existed still resumes.
        return {k: v for k, v in self.as_dict().items() if k not in NOT_SETTINGS and not (k == "timestep_spacing" and v == "")}
