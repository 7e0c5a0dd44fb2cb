"""Making the frames of a run: the first from txt2img (or the init image, or the video), each key frame by img2img from the last one moved."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from ..images import inputs, motion
from ..images import pixels as imaging
from ..sampling.settings import ControlCall, ImageJob, Sampling
from .frames import FramePlan
from .moves import Mover
from .settings import AnimationSettings

if TYPE_CHECKING:  # `animate --plan` plans without torch; only a run needs the engine
    from ..sampling.engine import Engine


class Animator:
    """Makes the frames of one run in order, yielding (index, frame) as each is final."""

    def __init__(self, engine: Engine, settings: AnimationSettings, plans: list[FramePlan]):
        self.engine, self.settings, self.plans = engine, settings, plans
        self.width, self.height = engine.size(settings.width, settings.height)
        self.reference: np.ndarray | None = None
        self.video_frames = None
        self.control_videos: dict[str, list[np.ndarray]] = {}
        self._networks: dict = {}
        self.mover = Mover(settings, plans, self._video_frame, engine.runtime.device)

    def sampling(self, plan: FramePlan, steps: int) -> Sampling:
        return Sampling(steps, plan.values["cfg"], self.width, self.height, self.settings.scheduler, self.settings.noise_schedule, self.settings.timestep_spacing, step_cache=self.settings.step_cache, tome=self.settings.tome)

    def fresh_noise(self, plan: FramePlan) -> np.ndarray:
        """The latent noise the frame's seed draws (on the CPU, as every seed's noise is drawn)."""
        import torch

        from ..loading import device as devices

        return torch.randn(self.engine.latent_shape(self.width, self.height), generator=devices.generator(plan.seed)).numpy()

    def key_noise(self, noise: np.ndarray | None, prev_key: int, key: int) -> np.ndarray | None:
        """With warped noise, the noise key frame `key` starts from; None leaves the draw to the seed."""
        if not self.settings.warped_noise:
            return None
        fresh = self.fresh_noise(self.plans[key])
        return fresh if noise is None else self.mover.moved_noise(noise, prev_key, key, fresh)

    def diffuse(self, start: np.ndarray | None, plan: FramePlan, on_step=None, noise: np.ndarray | None = None) -> np.ndarray:
        from PIL import Image

        job = ImageJob(plan.prompt, plan.negative_prompt, plan.seed, plan.index)
        control = self.control_call(plan)
        if start is None:
            images = self.engine.txt2img([job], self.sampling(plan, int(round(plan.values["steps"]))), on_step, control=control, size=(self.width, self.height))
        else:
            images = self.engine.img2img([job], [Image.fromarray(start)], self.sampling(plan, int(round(plan.values["steps"]))), plan.denoise, on_step, control=control, noise=None if noise is None else noise[None])
        return np.asarray(images[0].convert("RGB"))

    def control_call(self, plan: FramePlan) -> ControlCall | None:
        """The frame's control images: each ControlNet's video at this frame (or the input video's), preprocessed."""
        from PIL import Image

        from ..images import control as preprocessors

        options = self.settings.control
        if options is None:
            return None
        settings = preprocessors.Settings(options.canny_low, options.canny_high, seed=plan.seed, networks=self.control_networks())  # shuffle: the frame's own seed
        units = options.units
        images = tuple(Image.fromarray(preprocessors.preprocess(u.module, self._control_frame(u.image, plan.index), settings)) for u in units)
        return ControlCall((images,), tuple(u.weight for u in units), tuple(u.start for u in units), tuple(u.end for u in units), options.guess_mode)

    def control_networks(self) -> dict:
        """The depth and pose networks of the ControlNets' preprocessors, loaded on first use; 3D's depth model is the same one."""
        from ..loading import annotators

        for kind, name in self.settings.control.networks:
            if kind not in self._networks:
                if kind == "depth":
                    self.mover.load_depth()
                self._networks[kind] = self.mover.estimator if kind == "depth" else annotators.load(kind, name, self.engine.runtime.device)
        return self._networks

    def _control_frame(self, video: str | None, index: int) -> np.ndarray:
        if video is None:
            return self._video_frame(index)
        if video not in self.control_videos:
            self.control_videos[video] = read_video_frames(Path(video), self.settings.extract_nth_frame, self.width, self.height, len(self.plans), "--control-video", self.settings.control.resize)
        return self.control_videos[video][index]

    def prepare(self, frame: np.ndarray, plan: FramePlan) -> np.ndarray:
        """Deforum's order before img2img: colour match, contrast, anti-blur, then seeded noise."""
        v, s = plan.values, self.settings
        frame = motion.match_colors(frame, self.reference, s.color_coherence)
        frame = motion.adjust_contrast(frame, v["contrast"])
        frame = motion.unsharp_mask(frame, v["kernel"], v["sigma"], v["amount"], v["threshold"])
        if v["noise"] > 0:
            frame = motion.add_noise(frame, v["noise"], motion.noise_image(self.height, self.width, plan.seed, s.noise_type, s.perlin_octaves, s.perlin_persistence))
        return frame

    def first_frame(self, on_step=None, noise: np.ndarray | None = None) -> np.ndarray:
        s, plan = self.settings, self.plans[0]
        if s.video_input:
            return self.diffuse(self._video_frame(0), plan, on_step, noise)
        if s.init_image:
            data = inputs.InputItem(s.init_image, Path(s.init_image), Path(s.init_image).name).read_bytes()
            init = imaging.resize(inputs.decode_rgb(data, f"--init-image {s.init_image}"), self.width, self.height, "crop")
            return self.diffuse(init, plan, on_step)
        return self.diffuse(None, plan, on_step)

    def _video_frame(self, index: int) -> np.ndarray:
        if self.video_frames is None:
            self.video_frames = read_video_frames(Path(self.settings.video_input), self.settings.extract_nth_frame, self.width, self.height, len(self.plans))
        return self.video_frames[index]

    def run(self, start_key: int = 0, start_frame: np.ndarray | None = None, reference: np.ndarray | None = None, on_step=None, on_depth=None):
        """Yield (index, frame) from `start_key` on; resuming passes that key frame and frame 0 back in."""
        keys = [p.index for p in self.plans if p.key]
        self.mover.on_depth = on_depth
        noise = self.key_noise(None, 0, 0)
        if start_key == 0:
            previous = self.first_frame(on_step, noise)
            self.reference = motion.ColorReference(previous)
            yield 0, previous
        else:
            previous, self.reference = start_frame, motion.ColorReference(reference)
        for prev_key, key in zip(keys, keys[1:]):
            if key <= start_key:  # a resumed run carries the noise on through the frames it already has
                noise = self.key_noise(noise, prev_key, key)
                continue
            chain = self.mover.span(previous, prev_key, key)
            noise = self.key_noise(noise, prev_key, key)
            made = self.key_frame(chain[-1], self.plans[key], on_step, noise)
            yield from self.mover.in_betweens(previous, chain, made, prev_key)
            previous = made
            yield key, made

    def key_frame(self, start: np.ndarray, plan: FramePlan, on_step=None, noise: np.ndarray | None = None) -> np.ndarray:
        made = self.diffuse(self.prepare(start, plan), plan, on_step, noise)
        if self.settings.hybrid and self.settings.hybrid_composite == "after-generation":
            made = self.mover.composite(made, plan.index)
        return motion.match_colors(made, self.reference, self.settings.color_coherence)


def read_video_frames(path: Path, nth: int, width: int, height: int, limit: int, flag: str = "--video-input", fit: str = "crop") -> list[np.ndarray]:
    import imageio_ffmpeg

    if not path.is_file():
        raise InputError(f"{flag} {path}: no such file")
    try:
        reader = imageio_ffmpeg.read_frames(str(path))
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as exc:
        raise InputError(f"{flag} {path}: not a video ffmpeg can read ({str(exc).strip().splitlines()[-1] if str(exc).strip() else exc})") from exc
    w, h = meta["size"]
    frames = []
    for i, raw in enumerate(reader):
        if i % nth == 0:
            frame = np.frombuffer(raw, np.uint8).reshape(h, w, 3)
            frames.append(imaging.resize(frame, width, height, fit))
            if len(frames) >= limit:
                reader.close()
                break
    if len(frames) < limit:
        raise InputError(f"{flag} {path}: has {len(frames)} frames at every {nth}th, fewer than --frames {limit}")
    return frames
