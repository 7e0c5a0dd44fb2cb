"""An animation's request: every option, as Deforum names its schedules, built and checked by core.request."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, is_dataclass
from typing import Any

from ..sampling.noise_schedules import NoiseSpec
from .keyframes import ParsedSchedule

SEED_BEHAVIORS = ("iter", "fixed", "random", "ladder", "alternate", "schedule")
SCHEDULE_FIELDS = (
    "zoom", "angle", "translation_x", "translation_y", "translation_z", "rotation_3d_x", "rotation_3d_y", "rotation_3d_z",
    "fov", "near", "far", "transform_center_x", "transform_center_y",
    "perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma", "perspective_flip_fv",
    "noise", "strength", "contrast", "cfg", "steps", "amount", "kernel", "sigma", "threshold", "seed_schedule", "hybrid_comp_alpha",
)
ONLY_3D = ("translation_z", "rotation_3d_x", "rotation_3d_y", "rotation_3d_z", "fov", "near", "far", "depth_model")
ONLY_2D = ("zoom", "angle", "transform_center_x", "transform_center_y")
HYBRID = ("hybrid_motion", "hybrid_flow_method", "hybrid_composite", "hybrid_comp_alpha")
# Options that change how the result is stored or shown, not what it is: they may differ on --resume.
NOT_SETTINGS = {"output", "keep_frames", "contact_sheet", "resume", "overwrite", "soundtrack", "soundtrack_offset", "interpolate", "interpolate_model", "allow_pickle", "deflicker", "save_depth"}


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
    optical_flow_cadence: str  # none | dis | farneback: how the frames between two key frames are made
    animation_mode: str  # 2D | 3D
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
    translation_z: ParsedSchedule
    rotation_3d_x: ParsedSchedule
    rotation_3d_y: ParsedSchedule
    rotation_3d_z: ParsedSchedule
    fov: ParsedSchedule
    near: ParsedSchedule
    far: ParsedSchedule
    depth_model: str  # "none": flat depth
    save_depth: bool
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
    step_cache: int
    tome: float
    init_image: str | None
    video_input: str | None
    extract_nth_frame: int
    hybrid_motion: str  # none | optical-flow | perspective | affine
    hybrid_flow_method: str
    hybrid_composite: str  # none | normal | before-motion | after-generation
    hybrid_comp_alpha: ParsedSchedule
    hybrid_noise: str  # warped | fresh: whether a key frame's starting noise moves with the video (hybrid motion only)
    output: str
    crf: int
    keep_frames: bool
    contact_sheet: int
    resume: bool
    overwrite: bool
    soundtrack: str | None = None
    soundtrack_offset: float = 0.0
    interpolate: int = 1
    interpolate_model: str | None = None  # a FILM TorchScript file: in-betweens from it instead of minterpolate
    allow_pickle: bool = False  # --interpolate-model's TorchScript (the model's own pickle rule is in ModelOptions)
    deflicker: bool = False
    control: Any = None  # request.types.ControlOptions (not imported: request builds animation): ControlNets, each following --control-video or the --video-input frames

    def as_dict(self) -> dict:
        """Plain JSON values (as settings.json reads back, lists not tuples): schedules and noise schedules as the text they were given as."""
        return {f.name: (str(v) if isinstance(v, (ParsedSchedule, NoiseSpec)) else json.loads(json.dumps(asdict(v))) if is_dataclass(v) else v) for f in fields(self) for v in [getattr(self, f.name)]}

    @property
    def hybrid(self) -> bool:
        """Video frames steer generated ones (Deforum's hybrid video) instead of being redrawn one by one."""
        return bool(self.video_input) and (self.hybrid_motion != "none" or self.hybrid_composite != "none")

    @property
    def warped_noise(self) -> bool:
        """Key frames start from the last key frame's noise moved as the video moves (--hybrid-noise warped)."""
        return self.hybrid and self.hybrid_motion != "none" and self.hybrid_noise == "warped"

    def identity(self) -> dict:
        """What decides the frames. A feature switched off is left out, so a run recorded before it existed still resumes."""
        left_out = set(NOT_SETTINGS)
        if self.timestep_spacing == "":
            left_out.add("timestep_spacing")
        if self.animation_mode == "2D":
            left_out |= {"animation_mode", *ONLY_3D} - ({"depth_model"} if self.depth_model != "none" else set())  # 2D: a depth ControlNet's
        if self.optical_flow_cadence == "none":
            left_out.add("optical_flow_cadence")
        if not self.hybrid:
            left_out |= set(HYBRID)
        if not self.warped_noise:
            left_out.add("hybrid_noise")  # fresh noise, as every run was before the choice existed
        left_out |= {name for name, off in (("step_cache", 1), ("tome", 0.0), ("control", None)) if getattr(self, name) == off}
        identity = {k: v for k, v in self.as_dict().items() if k not in left_out}
        if "control" in identity and not identity["control"]["networks"]:
            del identity["control"]["networks"]  # ControlNets without a depth or pose network, as recorded before those existed
        return identity
