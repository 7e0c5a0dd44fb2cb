"""Deforum-style animation: each frame is the previous one, warped by keyframed motion and run through img2img.

Everything a frame needs is a function of its index (schedules, seed, prompt) plus the previous key
frame's pixels, which are saved losslessly as PNG; so a run resumed from its last complete key
frame takes exactly the path the uninterrupted run would have, and the video comes out bit-identical.

Output folders may hold the user's own files (`-o .`, `-o shots`), so the run only ever removes
files it writes itself (see `_ours`), and only once every input has been checked and the first new
frame is ready: a run that fails early leaves the previous run's frames and video as they were.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, ScumbleError, UsageError
from ..images import inputs
from ..records import output
from ..sampling.engine import Engine
from .animator import Animator
from .frames import FRAME_NAME, plan_frames
from .settings import AnimationSettings

# ---------------------------------------------------------------- the run: frames on disk, video, resume

RECORD = "settings.json"
DEPTH_NAME = "depth_" + FRAME_NAME
CONTACT_SHEET = "contact_sheet.png"
# Keys only our own record has: a settings.json without them is someone else's and is never replaced.
RECORD_KEYS = {"prompts", "frames", "model_hash"}
_WRITE_TEMP = re.compile(r"\.(.+)\.[A-Za-z0-9_]+\.tmp")  # output.write_bytes' temporaries, left by kill -9


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


def _is_frame(name: str) -> bool:
    stem, _, suffix = name.partition(".")
    return suffix == "png" and stem.isdigit() and stem.isascii() and name == FRAME_NAME.format(int(stem))


def _depth_index(name: str) -> int | None:
    """The frame a depth map (--save-depth) belongs to, or None for any other name."""
    prefix, _, frame = name.partition("_")
    return int(frame[:-4]) if prefix == "depth" and _is_frame(frame) else None


def _index(name: str) -> int | None:
    """The frame a file of ours is of: a frame or its depth map."""
    return int(name.partition(".")[0]) if _is_frame(name) else _depth_index(name)


def _is_ours(name: str) -> bool:
    if (match := _WRITE_TEMP.fullmatch(name)) is not None:
        name = match.group(1)
    return name in (RECORD, CONTACT_SHEET) or _index(name) is not None


def _ours(folder: Path, keep=lambda name: False) -> list[Path]:
    """The files in `folder` that a run writes there; anything else in it belongs to the user."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if _is_ours(p.name) and not keep(p.name) and (p.is_file() or p.is_symlink())]


def _remove(paths) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _remove_empty_folders(folders) -> None:
    """rmdir, never rmtree: a folder that still holds anything after our files went is the user's business."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _read_record(path: Path) -> dict:
    try:
        record = json.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot read it ({exc.strerror or exc})") from exc
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a settings record of an animate run (not text)") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a settings record of an animate run (not JSON: {exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: not a settings record of an animate run (a JSON {type(record).__name__}, not an object)")
    return record


def preflight(settings: AnimationSettings) -> None:
    """What is refused before the model loads: an output in the way, or one already there without --overwrite or --resume."""
    folder, video = frames_folder(settings)
    _check_destination(settings.output, folder, video)
    if not settings.resume:
        _check_not_there(settings, folder, video)


def _check_not_there(settings: AnimationSettings, folder: Path, video: Path | None) -> None:
    existing = [p for p in (video, folder) if p is not None and p.exists() and (p.is_file() or any(p.iterdir()))]
    if existing and not settings.overwrite:
        raise ScumbleError(f"{existing[0]}: already exists (pass --overwrite to start again, or --resume to continue)")


def _check_destination(output_option: str, folder: Path, video: Path | None) -> None:
    """Refuse, before any work, an output that could not be written: a file where a folder must go, no permission."""
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        if video is None:
            raise ScumbleError(f"-o {output_option}: not a folder (animate writes a .mp4, .webm or .gif video, or PNG frames into a folder)")
        raise ScumbleError(f"-o {output_option}: {folder} is in the way: the frames go there, and it is not a folder")
    if video is not None and (video.exists() or video.is_symlink()) and not video.is_file():
        raise ScumbleError(f"-o {output_option}: {video} is in the way and is not a file")
    for target in (folder, video.parent) if video is not None else (folder,):
        anchor = next((p for p in (target, *target.parents) if p.exists() or p.is_symlink()), None)
        if anchor is None:
            continue
        if not anchor.is_dir():
            raise ScumbleError(f"-o {output_option}: {anchor} is not a folder")
        if not os.access(anchor, os.W_OK | os.X_OK):
            raise ScumbleError(f"-o {output_option}: cannot write in {anchor} (permission denied or read-only)")


def _make_folder(folder: Path) -> list[Path]:
    """Create `folder` and its missing parents; returns those created, deepest first, for cleanup after a failure."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists() or path.is_symlink():
            break
        missing.append(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScumbleError(f"{folder}: cannot create the folder ({exc.strerror or exc})") from exc
    return missing


def _check_sources(animator: Animator, settings: AnimationSettings, from_frame_0: bool) -> None:
    """Read the sources now: a bad --video-input or --init-image must fail before anything on disk changes."""
    animator.mover.load_depth()
    animator.mover.load_flow()
    if settings.video_input:
        animator._video_frame(0)
    elif settings.init_image and from_frame_0:
        label = f"--init-image {settings.init_image}"
        inputs.decode_rgb(inputs.InputItem(label, Path(settings.init_image), Path(settings.init_image).name).read_bytes(), label)


def _os_error(exc: OSError, fallback: Path) -> ScumbleError:
    return ScumbleError(f"{exc.filename or fallback}: {exc.strerror or exc}")


class _StopSignals:
    """SIGTERM ends a run the way Ctrl-C does, by KeyboardInterrupt, keeping the frames done and a video of them.

    Neither signal may land inside a write (a frame file, a frame fed to ffmpeg, the video being finished):
    that would leave a broken video or a hidden temporary, so a signal arriving then waits until the
    write is done, and once the run is finishing it is only noted, since the work is complete by then.
    """

    def __init__(self):
        self.busy = 0
        self.pending = False
        self.finishing = False

    def _handle(self, signum, frame):
        if self.busy or self.finishing:
            self.pending = True
        else:
            self._stop()

    def _stop(self):
        self.finishing = True  # a second signal must not cut short the closing of the video this one starts
        raise KeyboardInterrupt

    @contextmanager
    def installed(self):
        previous = {}
        if threading.current_thread() is threading.main_thread():  # signal.signal works only there
            for sig in (signal.SIGTERM, signal.SIGINT):
                if sig == signal.SIGINT and signal.getsignal(sig) is not signal.default_int_handler:
                    continue  # someone else handles Ctrl-C: leave it to them
                previous[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    @contextmanager
    def writing(self):
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1
        if self.pending and not self.busy and not self.finishing:
            self.pending = False
            self._stop()


def animate(engine: Engine, settings: AnimationSettings, reporter=None) -> AnimationResult:
    """Make the run's frames and video: check everything, then replace only our own files, from the first write on."""
    from ..records.reporting import SilentReporter

    run = _Run(engine, settings, reporter or SilentReporter())
    run.check()
    return run.make()


class _Run:
    def __init__(self, engine: Engine, settings: AnimationSettings, reporter):
        from .video import VideoWriter, finishing_filters

        self.engine, self.settings, self.reporter = engine, settings, reporter
        self.plans = plan_frames(settings)
        self.folder, self.video_path = frames_folder(settings)
        self.animator = Animator(engine, settings, self.plans)
        if settings.soundtrack:
            from .audio import check_soundtrack

            check_soundtrack(settings.soundtrack, settings.soundtrack_offset, self.video_path.suffix.lower() if self.video_path else None)
        # checks format and numbers; writes nothing yet
        if (settings.interpolate > 1 or settings.deflicker) and not self.video_path:
            raise UsageError("--interpolate and --deflicker finish a video; write an .mp4, .webm or .gif (-o video.mp4)")
        self.writer = None
        if self.video_path and settings.interpolate_model:
            from .interpolation import FrameInterpolator

            network = FrameInterpolator(settings.interpolate_model, settings.allow_pickle, engine.runtime.device)
            filters = finishing_filters(settings.fps, settings.frames, 1, settings.deflicker)
            self.writer = VideoWriter(self.video_path, settings.fps * settings.interpolate, settings.crf, settings.soundtrack, settings.soundtrack_offset, filters, network.between, settings.interpolate)
        elif self.video_path:
            filters = finishing_filters(settings.fps, settings.frames, settings.interpolate, settings.deflicker)
            self.writer = VideoWriter(self.video_path, settings.fps, settings.crf, settings.soundtrack, settings.soundtrack_offset, filters)
        self.record_path = self.folder / RECORD
        self.identity: dict = {}
        self.start_key, self.start_frame, self.reference, self.done = 0, None, None, 0
        self.began = False
        self.created: list[Path] = []

    def read_frame(self, index: int) -> np.ndarray:
        from PIL import Image

        with Image.open(self.folder / FRAME_NAME.format(index)) as img:
            return np.asarray(img.convert("RGB"))

    # ---- check everything: nothing on disk changes until all of this has passed

    def check(self) -> None:
        _check_destination(self.settings.output, self.folder, self.video_path)
        engine = self.engine  # the weights hash is computed (and cached) only once the destination is known to be usable
        self.identity = self.settings.identity() | {"width": self.animator.width, "height": self.animator.height, "model": engine.source.name, "model_hash": engine.model_hash, "vae": engine.vae_name}
        if self.settings.resume:
            self._check_resume()
        else:
            self._check_fresh()
        _check_sources(self.animator, self.settings, from_frame_0=self.done == 0)

    def _check_resume(self) -> None:
        folder, settings = self.folder, self.settings
        if not self.record_path.is_file():
            raise UsageError(f"--resume: no interrupted run in {folder} (no {RECORD})")
        try:
            previous = _read_record(self.record_path)
        except InputError as exc:
            raise InputError(f"--resume: {exc}; start again with --overwrite") from None
        if (diff := _differences(previous, self.identity)):
            raise UsageError("--resume: settings differ from the interrupted run: " + "; ".join(diff))
        done = complete_frames(folder, settings.frames)
        keys = [p.index for p in self.plans if p.key and p.index < done]
        if keys:
            self.start_key = keys[-1]
            try:
                self.start_frame, self.reference = self.read_frame(self.start_key), self.read_frame(0)
            except OSError as exc:
                raise InputError(f"--resume: {folder}: cannot read frames ({exc.strerror or exc})") from exc
        self.done = self.start_key + 1 if keys else 0

    def _check_fresh(self) -> None:
        _check_not_there(self.settings, self.folder, self.video_path)
        if self.record_path.exists() or self.record_path.is_symlink():
            try:
                record = _read_record(self.record_path)
            except InputError:
                record = {}
            if not RECORD_KEYS <= set(record):
                raise ScumbleError(f"{self.record_path}: not written by scumble animate, and --overwrite replaces only its own files; choose another -o")

    # ---- replace: only from the first write on, and only our own files

    def begin(self) -> None:
        if self.began:
            return
        self.created[:] = _make_folder(self.folder)
        self.began = True
        if not self.settings.resume:  # every old frame goes, not only those past the new length: --resume must never splice in the old run's
            _remove(_ours(self.folder))
            output.write_bytes(json.dumps(self.identity, indent=2).encode(), self.record_path, overwrite=True)

    def make(self) -> AnimationResult:
        stop = _StopSignals()
        started = time.perf_counter()
        self.reporter.start(self.settings.frames, 0)
        interrupted = False
        with stop.installed():
            try:
                self.stream(stop)
            except KeyboardInterrupt:
                interrupted = True
            except BaseException as exc:
                stop.finishing = True
                self.fail(exc)
                raise
            stop.finishing = True
            made = self.finish(interrupted)
        folder, video_path = self.folder, self.video_path
        return AnimationResult(str(video_path) if video_path else None, str(folder) if folder.is_dir() else None, made, self.done, time.perf_counter() - started, interrupted)

    def stream(self, stop: "_StopSignals") -> None:
        from PIL import Image

        settings, folder, writer, done = self.settings, self.folder, self.writer, self.done
        if writer:
            writer.tmp.unlink(missing_ok=True)  # left by a run killed with -9; ours, and never a finished video
        if settings.resume:  # frames after the last complete key frame are redone
            _remove(p for p in _ours(folder) if (index := _index(p.name)) is not None and index >= done)
        for index in range(done):  # a resumed video re-streams what is on disk, so it matches an uninterrupted one
            frame = self.read_frame(index)
            if writer:
                with stop.writing():
                    writer.add(frame)
            self.reporter.frame_done(index, settings.frames, resumed=True)
        for index, frame in self.animator.run(self.start_key if done else 0, self.start_frame, self.reference, on_step=self.reporter.step, on_depth=self._depth_writer(stop)):
            if index < done:
                continue
            with stop.writing():
                self.begin()
                output.write_bytes(output.encode_png(Image.fromarray(frame), compress_level=1), folder / FRAME_NAME.format(index), overwrite=True)
                if writer:
                    writer.add(frame)
            self.reporter.frame_done(index, settings.frames)

    def _depth_writer(self, stop: "_StopSignals"):
        """With --save-depth: write each depth map as it is made, a write a signal waits for like a frame's."""
        from PIL import Image

        from ..images.camera import depth_image

        def write(index: int, depth: np.ndarray) -> None:
            with stop.writing():
                self.begin()
                output.write_bytes(output.encode_png(Image.fromarray(depth_image(depth)), compress_level=1), self.folder / DEPTH_NAME.format(index), overwrite=True)

        return write if self.settings.save_depth else None

    def fail(self, exc: BaseException) -> None:
        """A failed run leaves the old video, and no trace of itself when it made no frame."""
        if self.writer:
            self.writer.abort()  # the old video, if any, stays: the new one never got complete
        if self.began and not self.settings.resume and complete_frames(self.folder, self.settings.frames) == 0:
            _remove(_ours(self.folder))  # nothing to resume from: leave no trace, but only of this run
            _remove_empty_folders(self.created or ([self.folder] if self.video_path else []))
        if isinstance(exc, OSError):
            raise _os_error(exc, self.folder) from exc

    def finish(self, interrupted: bool) -> int:
        settings, folder = self.settings, self.folder
        try:
            if self.writer:
                self.writer.close()
            made = complete_frames(folder, settings.frames) if self.began or settings.resume else 0
            if settings.contact_sheet and made:
                write_contact_sheet(folder, made, settings.contact_sheet, folder / CONTACT_SHEET)
            if self.video_path and not settings.keep_frames and not interrupted:
                _remove(_ours(folder, keep=lambda name: (name == CONTACT_SHEET and settings.contact_sheet) or _depth_index(name) is not None))
                _remove_empty_folders([folder])
        except OSError as exc:
            raise _os_error(exc, folder) from exc
        return made


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
