"""Planning frames: every schedule of every frame evaluated, and every value checked, before frame 0."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ..errors import UsageError
from ..sampling import strength as strengths
from ..sampling.strength import Denoise
from .keyframes import Schedule, ScheduleError, _Refused, compile_expression
from .settings import ONLY_2D, ONLY_3D, SCHEDULE_FIELDS, AnimationSettings

FRAME_NAME = "{:09}.png"


@dataclass
class FramePlan:
    """Everything about one frame that the schedules decide, computed before frame 0 is made."""

    index: int
    key: bool
    prompt: str
    negative_prompt: str
    seed: int
    values: dict[str, float]
    denoise: Denoise | None = None  # key frames made by img2img: the step plan for this frame's strength


def _parse_frame_key(text: str, max_f: int, seed: int) -> int:
    try:
        value = compile_expression(text.strip().strip('"').strip("'"))(t=0, max_f=max_f, s=seed)
    except (_Refused, ScheduleError) as exc:
        raise ScheduleError(f"prompt key {text!r}: {exc}") from None
    return int(value)  # Deforum truncates expression keys


def split_negative(prompt: str, negative: str) -> tuple[str, str]:
    """Deforum writes a frame's negative prompt after `--neg` in the prompt itself."""
    if "--neg" in prompt:
        positive, _, neg = prompt.partition("--neg")
        negative = ", ".join(p for p in (neg.strip().strip(","), negative) if p)
        return positive.strip().rstrip(","), negative
    return prompt, negative


def frame_seed(settings: AnimationSettings, index: int, generation: int, seed_values: Schedule) -> int:
    s = settings.seed
    behavior = settings.seed_behavior
    if behavior == "fixed":
        value = s
    elif behavior == "iter":
        value = s + generation
    elif behavior == "ladder":
        value = s + generation // 2 + 2 * (generation % 2)
    elif behavior == "alternate":
        value = s + generation % 2
    elif behavior == "random":
        value = -1
    else:
        value = int(round(seed_values[index]))
    if value == -1:  # "random", but reproducible: derived from the run's seed and the frame
        value = int.from_bytes(hashlib.sha256(f"{s}:{index}".encode()).digest()[:4], "big")
    return value % 2**32


def schedules_in_use(settings: AnimationSettings) -> tuple[str, ...]:
    """Schedules that can change the video: a schedule a switched-off feature would read is not evaluated (nor refused)."""
    unused = set(ONLY_2D if settings.animation_mode == "3D" else ONLY_3D)
    if settings.seed_behavior != "schedule":
        unused.add("seed_schedule")
    if not settings.perspective_flip:
        unused |= {"perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma", "perspective_flip_fv"}
    if not (settings.hybrid and settings.hybrid_composite != "none"):
        unused.add("hybrid_comp_alpha")
    return tuple(name for name in SCHEDULE_FIELDS if name not in unused)


def keyframes_left_out(settings: AnimationSettings) -> list[str]:
    """One line per schedule in use with keyframes outside this run's frames (Deforum skips them; so do we, saying so)."""
    lines = []
    for name in schedules_in_use(settings):
        parsed = getattr(settings, name)
        outside = parsed.outside(settings.frames, settings.seed, name)
        if outside:
            where = f"{parsed.origin}: " if parsed.origin else ""
            lines.append(f"{where}{name}: {'; '.join(outside)}: outside frames 0..{settings.frames - 1}, left out (as Deforum does)")
    return lines


PLAN_COLUMNS = ("frame", "key", "prompt", "negative", "seed", "strength", "steps", "cfg")


def plan_table(settings: AnimationSettings, plans: list[FramePlan]) -> tuple[list[str], list[list]]:
    """The per-frame table `animate --plan` prints: the fixed columns, then every other schedule in use.

    The seed column already says what seed_schedule decided, so that schedule has no column of its own.
    """
    rest = [name for name in schedules_in_use(settings) if name not in PLAN_COLUMNS and name != "seed_schedule"]
    columns = [*PLAN_COLUMNS, *rest]
    rows = [[p.index, p.key, p.prompt, p.negative_prompt, p.seed, p.values["strength"], int(round(p.values["steps"])), p.values["cfg"], *(p.values[name] for name in rest)] for p in plans]
    return columns, rows


def plan_frames(settings: AnimationSettings) -> list[FramePlan]:
    """Every frame's values, each within its option's limits; errors surface here, before frame 0."""
    n, max_f = settings.frames, settings.frames - 1
    in_use = schedules_in_use(settings)
    schedules = {name: Schedule(getattr(settings, name), n, settings.seed, name=name) for name in in_use}
    prompts = sorted((_parse_frame_key(k, max_f, settings.seed), v) for k, v in settings.prompts.items())
    if prompts[0][0] > 0:
        prompts.insert(0, (0, prompts[0][1]))
    keys = set(range(0, n, settings.cadence)) | {max_f}
    plans, generation = [], 0
    for index in range(n):
        prompt = next(text for frame, text in reversed(prompts) if frame <= index)
        positive, negative = split_negative(prompt, settings.negative_prompt)
        values = {name: schedules[name][index] for name in in_use}
        is_key = index in keys
        seed = frame_seed(settings, index, generation, schedules.get("seed_schedule"))
        plan = None
        if is_key:
            generation += 1
            if index > 0 or settings.init_image or settings.video_input:
                plan = _denoise_plan(int(round(values["steps"])), values["strength"], index)
        plans.append(FramePlan(index, is_key, positive, negative, seed, values, plan))
    return plans


def _denoise_plan(steps: int, strength: float, index: int) -> Denoise:
    """Every key frame denoises at least one step: when steps x strength rounds to none, the schedule is stretched to one."""
    try:
        if strengths.steps_run(steps, strength) >= 1:
            return strengths.plan(steps, strength, exact=False, flag="strength")
        return strengths.plan(1, strength, exact=True, flag="strength")
    except UsageError as exc:
        raise ScheduleError(f"frame {index}: {exc}") from None
