"""Deforum-style animation: each frame is the previous one, warped by keyframed motion and run through img2img.

Everything a frame needs is a function of its index (schedules, seed, prompt) plus the previous key
frame's pixels, which are saved losslessly as PNG; so a run resumed from its last complete key
frame takes exactly the path the uninterrupted run would have, and the video comes out bit-identical.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from ..sampling import strength as denoise
from ..images import pixels as imaging
from ..images import inputs
from ..images import motion
from ..records import output
from ..sampling.engine import Engine, ImageJob, Sampling
from ..errors import InputError, ScumbleError, UsageError
from .keyframes import Schedule, ScheduleError, compile_expression, _Refused

SEED_BEHAVIORS = ("iter", "fixed", "random", "ladder", "alternate", "schedule")
FRAME_NAME = "{:09}.png"
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


@dataclass
class FramePlan:
    """Everything about one frame that the schedules decide, computed before frame 0 is made."""

    index: int
    key: bool
    prompt: str
    negative_prompt: str
    seed: int
    values: dict[str, float]


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


def plan_frames(settings: AnimationSettings) -> list[FramePlan]:
    """Check every schedule and prompt and compute every frame's values; errors surface here, before frame 0."""
    if settings.frames < 1:
        raise UsageError(f"--frames {settings.frames}: must be at least 1")
    if settings.cadence < 1:
        raise UsageError(f"--cadence {settings.cadence}: must be at least 1")
    if settings.seed_behavior not in SEED_BEHAVIORS:
        raise UsageError(f"--seed-behavior: unknown behaviour {settings.seed_behavior!r}; choose from {', '.join(SEED_BEHAVIORS)}")
    if not settings.prompts:
        raise UsageError("no prompt given (pass --prompt \"0: a red circle\")")
    for flag, value, choices in (("--border", settings.border, motion.BORDERS), ("--color-coherence", settings.color_coherence, motion.COLOR_MODES), ("--noise-type", settings.noise_type, motion.NOISE_TYPES)):
        if value not in choices:
            raise UsageError(f"{flag}: unknown mode {value!r}; choose from {', '.join(choices)}")
    n, max_f = settings.frames, settings.frames - 1
    schedules = {name: Schedule(getattr(settings, name), n, settings.seed, name=name) for name in SCHEDULE_FIELDS}
    prompts = sorted((_parse_frame_key(k, max_f, settings.seed), v) for k, v in settings.prompts.items())
    if prompts[0][0] > 0:
        prompts.insert(0, (0, prompts[0][1]))
    keys = set(range(0, n, settings.cadence)) | {max_f}
    plans, generation = [], 0
    for index in range(n):
        prompt = next(text for frame, text in reversed(prompts) if frame <= index)
        positive, negative = split_negative(prompt, settings.negative_prompt)
        values = {name: schedules[name][index] for name in SCHEDULE_FIELDS}
        is_key = index in keys
        seed = frame_seed(settings, index, generation, schedules["seed_schedule"])
        if is_key:
            generation += 1
            steps, strength = int(round(values["steps"])), values["strength"]
            if index > 0 or settings.init_image or settings.video_input:
                try:
                    denoise.check_strength(strength, flag=f"strength (frame {index})")
                except UsageError as exc:
                    raise ScheduleError(f"strength: {exc}") from None
                if steps < 1:
                    raise ScheduleError(f"steps: frame {index} has {steps} steps; it needs at least 1")
        plans.append(FramePlan(index, is_key, positive, negative, seed, values))
    return plans


def _steps_for(plan: FramePlan) -> tuple[int, bool]:
    """The steps to ask for and whether to stretch the schedule, so every key frame denoises at least one step."""
    steps, strength = int(round(plan.values["steps"])), plan.values["strength"]
    return (steps, False) if denoise.steps_run(steps, strength) >= 1 else (1, True)


class Animator:
    """Makes the frames of one run in order, yielding (index, frame) as each is final."""

    def __init__(self, engine: Engine, settings: AnimationSettings, plans: list[FramePlan]):
        self.engine, self.settings, self.plans = engine, settings, plans
        self.width, self.height = engine.check_size(settings.width, settings.height)
        self.reference: np.ndarray | None = None
        self.video_frames = None

    def sampling(self, plan: FramePlan, steps: int) -> Sampling:
        return Sampling(steps, plan.values["cfg"], self.width, self.height, self.settings.scheduler, self.settings.noise_schedule)

    def _matrix(self, plan: FramePlan) -> np.ndarray:
        v = plan.values
        matrix = motion.motion_matrix(self.width, self.height, v["zoom"], v["angle"], v["translation_x"], v["translation_y"], v["transform_center_x"], v["transform_center_y"])
        if self.settings.perspective_flip:
            matrix = motion.perspective_matrix(self.width, self.height, v["perspective_flip_theta"], v["perspective_flip_phi"], v["perspective_flip_gamma"], v["perspective_flip_fv"]) @ matrix
        return matrix

    def warp(self, frame: np.ndarray, plan: FramePlan) -> np.ndarray:
        return motion.warp(frame, self._matrix(plan), self.settings.border)

    def diffuse(self, start: np.ndarray | None, plan: FramePlan, on_step=None) -> np.ndarray:
        from PIL import Image

        job = ImageJob(plan.prompt, plan.negative_prompt, plan.seed, plan.index)
        if start is None:
            images = self.engine.txt2img([job], self.sampling(plan, int(round(plan.values["steps"]))), on_step)
        else:
            steps, exact = _steps_for(plan)
            images = self.engine.img2img([job], [Image.fromarray(start)], self.sampling(plan, steps), plan.values["strength"], exact, on_step)
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
    if nth < 1:
        raise UsageError(f"--extract-nth-frame {nth}: must be at least 1")
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


# ---------------------------------------------------------------- the run: frames on disk, video, resume


@dataclass
class AnimationResult:
    video: str | None
    frames_dir: str | None
    frames: int
    resumed_from: int
    seconds: float
    interrupted: bool = False


def frames_folder(settings: AnimationSettings) -> tuple[Path, Path | None]:
    out = Path(settings.output).expanduser()
    if out.suffix.lower() in (".mp4", ".webm", ".gif"):
        return out.with_name(out.stem + ".frames"), out
    if out.suffix:
        raise UsageError(f"-o {settings.output}: give a .mp4, .webm or .gif file, or a folder for PNG frames")
    return out, None


def complete_frames(folder: Path, frames: int) -> int:
    """How many frames from 0 on are on disk and decode fully (a truncated last frame does not count)."""
    from PIL import Image

    count = 0
    while count < frames:
        path = folder / FRAME_NAME.format(count)
        if not path.is_file():
            break
        try:
            with Image.open(path) as img:
                img.load()
        except (OSError, SyntaxError):
            break
        count += 1
    return count


def _differences(old: dict, new: dict) -> list[str]:
    return [f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def animate(engine: Engine, settings: AnimationSettings, reporter=None) -> AnimationResult:
    from PIL import Image

    from ..tasks.runner import SilentReporter
    from .video import VideoWriter

    reporter = reporter or SilentReporter()
    plans = plan_frames(settings)
    folder, video_path = frames_folder(settings)
    animator = Animator(engine, settings, plans)
    if video_path is not None:
        VideoWriter(video_path, settings.fps, settings.crf)  # checks the format and numbers before any work
    record_path = folder / "settings.json"
    identity = settings.identity() | {"width": animator.width, "height": animator.height, "model": engine.source.name, "model_hash": engine.model_hash, "vae": engine.vae_name}
    start_key, start_frame, reference, done = 0, None, None, 0
    if settings.resume:
        if not record_path.is_file():
            raise UsageError(f"--resume: no interrupted run in {folder} (no settings.json)")
        previous = json.loads(record_path.read_text())
        if (diff := _differences(previous, identity)):
            raise UsageError("--resume: settings differ from the interrupted run: " + "; ".join(diff))
        done = complete_frames(folder, settings.frames)
        keys = [p.index for p in plans if p.key and p.index < done]
        if keys:
            start_key = keys[-1]
            start_frame = np.asarray(Image.open(folder / FRAME_NAME.format(start_key)).convert("RGB"))
            reference = np.asarray(Image.open(folder / FRAME_NAME.format(0)).convert("RGB"))
        for stale in folder.glob("*.png"):  # frames after the last complete key frame are redone
            if stale.stem.isdigit() and int(stale.stem) > (start_key if keys else -1):
                stale.unlink()
        done = start_key + 1 if keys else 0
    else:
        existing = [p for p in (video_path, folder) if p is not None and p.exists() and (p.is_file() or any(p.iterdir()))]
        if existing and not settings.overwrite:
            raise ScumbleError(f"{existing[0]}: already exists (pass --overwrite to start again, or --resume to continue)")
        if folder.exists() and settings.overwrite:
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        output.write_bytes(json.dumps(identity, indent=2).encode(), record_path, overwrite=True)

    if not settings.resume:
        try:  # read the sources now: a bad --video-input or --init-image must fail before anything is written
            if settings.video_input:
                animator._video_frame(0)
            elif settings.init_image:
                inputs.decode_rgb(inputs.InputItem(settings.init_image, Path(settings.init_image), Path(settings.init_image).name).read_bytes(), f"--init-image {settings.init_image}")
        except ScumbleError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
    started = time.perf_counter()
    reporter.start(settings.frames, 0)
    writer = VideoWriter(video_path, settings.fps, settings.crf) if video_path else None
    interrupted = False
    try:
        for index in range(done):  # a resumed video re-streams what is on disk, so it matches an uninterrupted one
            if writer:
                writer.add(np.asarray(Image.open(folder / FRAME_NAME.format(index)).convert("RGB")))
            reporter.frame_done(index, settings.frames, resumed=True)
        for index, frame in animator.run(start_key if done else 0, start_frame, reference, on_step=reporter.step):
            if index < done:
                continue
            output.write_bytes(output.encode_png(Image.fromarray(frame), compress_level=1), folder / FRAME_NAME.format(index), overwrite=True)
            if writer:
                writer.add(frame)
            reporter.frame_done(index, settings.frames)
    except KeyboardInterrupt:
        interrupted = True
    except BaseException:
        if writer:
            writer.abort()
        if not settings.resume and complete_frames(folder, settings.frames) == 0:
            shutil.rmtree(folder, ignore_errors=True)  # nothing to resume from: leave no trace
        raise
    if writer:
        writer.close()
    made = complete_frames(folder, settings.frames)
    if settings.contact_sheet and made:
        write_contact_sheet(folder, made, settings.contact_sheet, folder / "contact_sheet.png")
    if video_path and not settings.keep_frames and not interrupted:
        shutil.rmtree(folder)
    return AnimationResult(str(video_path) if video_path else None, str(folder) if folder.exists() else None, made, done, time.perf_counter() - started, interrupted)


def write_contact_sheet(folder: Path, frames: int, every: int, path: Path, columns: int = 6) -> None:
    from PIL import Image

    chosen = list(range(0, frames, max(1, every)))
    first = Image.open(folder / FRAME_NAME.format(0))
    w, h = first.size
    scale = min(1.0, 256 / w)
    tw, th = int(w * scale), int(h * scale)
    rows = -(-len(chosen) // columns)
    sheet = Image.new("RGB", (tw * min(columns, len(chosen)), th * rows), "white")
    for n, index in enumerate(chosen):
        tile = Image.open(folder / FRAME_NAME.format(index)).convert("RGB").resize((tw, th))
        sheet.paste(tile, ((n % columns) * tw, (n // columns) * th))
    output.write_bytes(output.encode_png(sheet), path, overwrite=True)


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
