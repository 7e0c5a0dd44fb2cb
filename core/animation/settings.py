"""An animation's settings: every option, as Deforum names its schedules, with our defaults."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

SEED_BEHAVIORS = ("iter", "fixed", "random", "ladder", "alternate", "schedule")
SCHEDULE_FIELDS = (
    "zoom", "angle", "translation_x", "translation_y", "transform_center_x", "transform_center_y",
    "perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma", "perspective_flip_fv",
    "noise", "strength", "contrast", "cfg", "steps", "amount", "kernel", "sigma", "threshold", "seed_schedule",
)
# Options that change how the result is stored or shown, not what it is: they may differ on --resume.
NOT_SETTINGS = {"output", "keep_frames", "contact_sheet", "resume", "overwrite"}


@dataclass
class AnimationSettings:
    prompts: dict[str, str] = field(default_factory=lambda: {"0": "a landscape of hills at sunset with the sun in the sky"})
    negative_prompt: str = ""
    frames: int = 24
    fps: float = 12.0
    width: int = 0
    height: int = 0
    seed: int = 0
    seed_behavior: str = "iter"
    cadence: int = 1
    zoom: str = "0: (1.0025+0.002*sin(1.25*3.14*t/30))"
    angle: str = "0: (0)"
    translation_x: str = "0: (0)"
    translation_y: str = "0: (0)"
    transform_center_x: str = "0: (0.5)"
    transform_center_y: str = "0: (0.5)"
    perspective_flip: bool = False
    perspective_flip_theta: str = "0: (0)"
    perspective_flip_phi: str = "0: (0)"
    perspective_flip_gamma: str = "0: (0)"
    perspective_flip_fv: str = "0: (53)"
    border: str = "replicate"
    color_coherence: str = "lab"
    noise: str = "0: (0.065)"
    noise_type: str = "perlin"
    perlin_octaves: int = 4
    perlin_persistence: float = 0.5
    strength: str = "0: (0.45)"  # denoising amount, as in img2img (Deforum's strength is 1 minus this)
    contrast: str = "0: (1.0)"
    cfg: str = "0: (7)"
    steps: str = "0: (20)"
    amount: str = "0: (0.1)"
    kernel: str = "0: (5)"
    sigma: str = "0: (1.0)"
    threshold: str = "0: (0.0)"
    seed_schedule: str = "0: (s)"
    scheduler: str = ""
    noise_schedule: str = "default"
    init_image: str | None = None
    video_input: str | None = None
    extract_nth_frame: int = 1
    output: str = "animation.mp4"
    crf: int = 18
    keep_frames: bool = True
    contact_sheet: int = 0
    resume: bool = False
    overwrite: bool = False

    def identity(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k not in NOT_SETTINGS}




def settings_from_mapping(data: dict, base: AnimationSettings | None = None) -> tuple[AnimationSettings, list[str]]:
    """Our own settings file (TOML/JSON with our field names); unknown keys are returned, not dropped silently."""
    base = base or AnimationSettings()
    known = {f.name for f in fields(AnimationSettings)}
    values, unknown = asdict(base), []
    for key, value in data.items():
        if key in known:
            values[key] = value
        else:
            unknown.append(key)
    if isinstance(values["prompts"], dict):
        values["prompts"] = {str(k): str(v) for k, v in values["prompts"].items()}
    for name in SCHEDULE_FIELDS:
        if isinstance(values[name], (int, float)):
            values[name] = f"0: ({values[name]})"
    return AnimationSettings(**values), unknown
