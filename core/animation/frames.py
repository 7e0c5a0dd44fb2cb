"""Planning and making frames: every schedule evaluated before frame 0, then each frame warped and redrawn."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError, UsageError
from ..images import inputs, motion
from ..images import pixels as imaging
from ..sampling import strength as strengths
from ..sampling.strength import Denoise
from ..sampling.settings import ImageJob, Sampling
from .keyframes import Schedule, ScheduleError, _Refused, compile_expression
from .settings import SCHEDULE_FIELDS, AnimationSettings

if TYPE_CHECKING:  # `animate --plan` plans without torch; only a run needs the engine
    from ..sampling.engine import Engine

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
    unused = set()
    if settings.seed_behavior != "schedule":
        unused.add("seed_schedule")
    if not settings.perspective_flip:
        unused |= {"perspective_flip_theta", "perspective_flip_phi", "perspective_flip_gamma", "perspective_flip_fv"}
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


def frame_matrix(settings: AnimationSettings, plan: FramePlan, width: int, height: int) -> np.ndarray:
    """The 2D (and perspective-flip) motion that carries the previous frame to this one."""
    v = plan.values
    matrix = motion.motion_matrix(width, height, v["zoom"], v["angle"], v["translation_x"], v["translation_y"], v["transform_center_x"], v["transform_center_y"])
    if settings.perspective_flip:
        matrix = motion.perspective_matrix(width, height, v["perspective_flip_theta"], v["perspective_flip_phi"], v["perspective_flip_gamma"], v["perspective_flip_fv"]) @ matrix
    return matrix


def warp_frame(frame: np.ndarray, settings: AnimationSettings, plan: FramePlan) -> np.ndarray:
    height, width = frame.shape[:2]
    return motion.warp(frame, frame_matrix(settings, plan, width, height), settings.border)


class Animator:
    """Makes the frames of one run in order, yielding (index, frame) as each is final."""

    def __init__(self, engine: Engine, settings: AnimationSettings, plans: list[FramePlan]):
        self.engine, self.settings, self.plans = engine, settings, plans
        self.width, self.height = engine.size(settings.width, settings.height)
        self.reference: np.ndarray | None = None
        self.video_frames = None

    def sampling(self, plan: FramePlan, steps: int) -> Sampling:
        return Sampling(steps, plan.values["cfg"], self.width, self.height, self.settings.scheduler, self.settings.noise_schedule, self.settings.timestep_spacing)

    def warp(self, frame: np.ndarray, plan: FramePlan) -> np.ndarray:
        return warp_frame(frame, self.settings, plan)

    def diffuse(self, start: np.ndarray | None, plan: FramePlan, on_step=None) -> np.ndarray:
        from PIL import Image

        job = ImageJob(plan.prompt, plan.negative_prompt, plan.seed, plan.index)
        if start is None:
            images = self.engine.txt2img([job], self.sampling(plan, int(round(plan.values["steps"]))), on_step)
        else:
            images = self.engine.img2img([job], [Image.fromarray(start)], self.sampling(plan, int(round(plan.values["steps"]))), plan.denoise, on_step)
        return np.asarray(images[0].convert("RGB"))

    def prepare(self, frame: np.ndarray, plan: FramePlan) -> np.ndarray:
        """Deforum's order before img2img: colour match, contrast, anti-blur, then seeded noise."""
        v, s = plan.values, self.settings
        frame = motion.match_colors(frame, self.reference, s.color_coherence)
        frame = motion.adjust_contrast(frame, v["contrast"])
        frame = motion.unsharp_mask(frame, v["kernel"], v["sigma"], v["amount"], v["threshold"])
        if v["noise"] > 0:
            frame = motion.add_noise(frame, v["noise"], motion.noise_image(self.height, self.width, plan.seed, s.noise_type, s.perlin_octaves, s.perlin_persistence))
        return frame

    def first_frame(self, on_step=None) -> np.ndarray:
        s, plan = self.settings, self.plans[0]
        if s.video_input:
            return self.diffuse(self._video_frame(0), plan, on_step)
        if s.init_image:
            data = inputs.InputItem(s.init_image, Path(s.init_image), Path(s.init_image).name).read_bytes()
            init = imaging.resize(inputs.decode_rgb(data, f"--init-image {s.init_image}"), self.width, self.height, "crop")
            return self.diffuse(init, plan, on_step)
        return self.diffuse(None, plan, on_step)

    def _video_frame(self, index: int) -> np.ndarray:
        if self.video_frames is None:
            self.video_frames = read_video_frames(Path(self.settings.video_input), self.settings.extract_nth_frame, self.width, self.height, len(self.plans))
        return self.video_frames[index]

    def run(self, start_key: int = 0, start_frame: np.ndarray | None = None, reference: np.ndarray | None = None, on_step=None):
        """Yield (index, frame) from `start_key` on; resuming passes that key frame and frame 0 back in."""
        keys = [p.index for p in self.plans if p.key]
        if start_key == 0:
            previous = self.first_frame(on_step)
            self.reference = motion.ColorReference(previous)
            yield 0, previous
        else:
            previous, self.reference = start_frame, motion.ColorReference(reference)
        for prev_key, key in zip(keys, keys[1:]):
            if key <= start_key:
                continue
            chain, frame = [], previous
            for index in range(prev_key + 1, key + 1):
                frame = self._video_frame(index) if self.settings.video_input else self.warp(frame, self.plans[index])
                chain.append(frame)
            plan = self.plans[key]
            made = self.diffuse(self.prepare(chain[-1], plan), plan, on_step)
            made = motion.match_colors(made, self.reference, self.settings.color_coherence)
            span = key - prev_key
            for offset, warped in enumerate(chain[:-1], start=1):  # cadence: cross-fade the warped frames into the new key
                tween = offset / span
                yield prev_key + offset, np.clip(warped.astype(np.float32) * (1 - tween) + made.astype(np.float32) * tween, 0, 255).round().astype(np.uint8)
            previous = made
            yield key, made


def read_video_frames(path: Path, nth: int, width: int, height: int, limit: int) -> list[np.ndarray]:
    import imageio_ffmpeg

    if not path.is_file():
        raise InputError(f"--video-input {path}: no such file")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as exc:
        raise InputError(f"--video-input {path}: not a video ffmpeg can read ({str(exc).strip().splitlines()[-1] if str(exc).strip() else exc})") from exc
    w, h = meta["size"]
    frames = []
    for i, raw in enumerate(reader):
        if i % nth == 0:
            frame = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
            frames.append(imaging.resize(frame, width, height, "crop"))
            if len(frames) >= limit:
                reader.close()
                break
    if len(frames) < limit:
        raise InputError(f"--video-input {path}: has {len(frames)} frames at every {nth}th, fewer than --frames {limit}")
    return frames
