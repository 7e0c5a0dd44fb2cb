"""Deforum-style animation: each frame is the previous one, warped by keyframed motion and run through img2img.

Everything a frame needs is a function of its index (schedules, seed, prompt) plus the previous key
frame's pixels, which are saved losslessly as PNG; so a run resumed from its last complete key
frame takes exactly the path the uninterrupted run would have, and the video comes out bit-identical.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ScumbleError, UsageError
from ..images import inputs
from ..records import output
from ..sampling.engine import Engine
from .frames import FRAME_NAME, Animator, plan_frames
from .settings import AnimationSettings

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
