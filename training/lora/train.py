"""Train a LoRA on a few pictures: peft adapters on a frozen SD 1.x/2.x model, checkpointed and resumable.

Every random draw of step k (which pictures, flips, crops, noise, timesteps) comes from generators
seeded with (seed, k), and the checkpoint holds the adapters, the optimizer's moments and the
schedule's position, so a run killed at any step and resumed takes the same path as one that was not.
"""

from __future__ import annotations

import math
import signal
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...core.errors import ModelError, UsageError
from . import checkpoint, data, export, generate


@dataclass(frozen=True)
class Settings:
    """What the LoRA learns and how; all of it but the last three fields decides the run's path."""

    rank: int = 8
    conv_rank: int = 0  # 0: no adapters on the ResNet convolutions (kohya's plain LoRA)
    steps: int = 500
    lr: float = 1e-4
    batch_size: int = 1
    resolution: int = 0  # 0: the model's native size
    seed: int = 0
    train_text_encoder: bool = False
    flip: bool = False
    # Off by default: measured on the built-in model, zoomed crops made five pictures of a cross fit 6x worse
    # (loss 0.0036 against 0.0006 after 800 steps) where a caption names size and place.
    crop: bool = False
    trigger: str = ""
    class_prompts: tuple[str, ...] = ()
    class_images: int = 50
    prior_weight: float = 1.0
    min_snr_gamma: float = 5.0
    # How a run is watched and kept, not what it learns: these may change on --resume.
    sample_every: int = 0
    sample_prompts: tuple[str, ...] = ()
    checkpoint_every: int = 100

    def identity(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items() if k not in ("sample_every", "sample_prompts", "checkpoint_every")}

    def check(self) -> None:
        """One line for the first setting out of range (the CLI and the library are held to the same rules)."""
        whole = {"rank": (self.rank, 1, 1024), "conv_rank": (self.conv_rank, 0, 1024), "steps": (self.steps, 1, 10_000_000), "batch_size": (self.batch_size, 1, 4096), "class_images": (self.class_images, 1, 100_000), "sample_every": (self.sample_every, 0, 10_000_000), "checkpoint_every": (self.checkpoint_every, 1, 10_000_000), "seed": (self.seed, 0, 2**63 - 1)}
        for name, (value, low, high) in whole.items():
            if not low <= value <= high:
                raise UsageError(f"--{name.replace('_', '-')} {value}: must be a whole number from {low} to {high:,}")
        for name, value in (("lr", self.lr), ("prior_weight", self.prior_weight), ("min_snr_gamma", self.min_snr_gamma)):
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"--{name.replace('_', '-')} {value:g}: must be a number above 0")
        if self.resolution and not 64 <= self.resolution <= 4096:
            raise UsageError(f"--resolution {self.resolution}: must be from 64 to 4096 (0: the model's own size)")
        if self.trigger and (not self.trigger.strip() or any(c.isspace() or not c.isprintable() for c in self.trigger)):
            raise UsageError("--trigger: one word, without spaces or control characters")
        if any(not prompt.strip() for prompt in self.sample_prompts):
            raise UsageError("--sample-prompt takes text; one was empty")
        if any(prompt and not prompt.strip() for prompt in self.class_prompts):
            raise UsageError("--class-prompt: one held only spaces (an empty one, '', is the unconditional prior)")
        if self.sample_every and not self.sample_prompts:
            raise UsageError("--sample-every: give the pictures' prompts with --sample-prompt")


@dataclass(frozen=True)
class Job:
    """Where a run reads from and writes to."""

    images: tuple[str, ...]
    output: Path
    model: str = "scumble-mini"
    caption: str | None = None
    config: str | None = None
    allow_pickle: bool = False
    device: str = "auto"
    overwrite: bool = False
    resume: bool = False
    work: Path | None = None  # the run's folder (checkpoint, class pictures, samples); default NAME.train beside the output

    @property
    def folder(self) -> Path:
        return self.work or self.output.with_suffix(".train")

    @property
    def sheet(self) -> Path:
        return self.output.with_suffix(".samples.png")


@dataclass
class Result:
    path: Path
    steps: int
    seconds: float
    loss: float
    sheet: Path | None = None
    resumed_at: int = 0


class Silent:
    """A reporter that says nothing: the library's default."""

    def start(self, total: int, done: int) -> None: ...

    def step(self, step: int, loss: float) -> None: ...

    def notice(self, message: str) -> None: ...


# ---------------------------------------------------------------- the model


def load_model(job: Job):
    """The pipeline to train on, in fp32 on the job's device; SDXL and inpainting models are refused by name."""
    from ...core.loading import device as devices
    from ...core.loading import loaders, sources

    source = sources.resolve(job.model)
    if source.family == "sdxl":
        raise UsageError(f"--model {job.model}: an SDXL model; train-lora trains SD 1.x and 2.x models")
    runtime = devices.make_runtime(job.device, "fp32", backend="torch")  # training runs the torch UNet itself
    pipe = loaders.load_pipeline(source, runtime, job.config, job.allow_pickle)
    if "XL" in type(pipe).__name__:
        raise UsageError(f"--model {job.model}: an SDXL model; train-lora trains SD 1.x and 2.x models")
    if pipe.unet.config.in_channels != 4:
        raise UsageError(f"--model {job.model}: an inpainting model ({pipe.unet.config.in_channels}-channel UNet); train a LoRA on its base model")
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(runtime.device), source, runtime


def resolution_for(pipe, asked: int) -> int:
    levels = len(pipe.unet.config.block_out_channels)
    multiple = pipe.vae_scale_factor * 2 ** (levels - 1)  # the UNet halves the latents once per level but the last
    size = asked or pipe.unet.config.sample_size * pipe.vae_scale_factor
    if size % multiple:
        raise UsageError(f"--resolution {size}: this model needs a multiple of {multiple}")
    return size


def add_adapters(pipe, settings: Settings) -> list[torch.nn.Parameter]:
    """Freeze the model and give it fresh LoRA adapters; their initial values are a function of the seed."""
    from peft import LoraConfig, inject_adapter_in_model

    for module in (pipe.unet, pipe.text_encoder, pipe.vae):
        module.requires_grad_(False)
    torch.manual_seed(settings.seed)
    targets = export.UNET_TARGETS + (export.CONV_TARGETS if settings.conv_rank else [])
    convs = {name: settings.conv_rank for name in export.CONV_TARGETS} if settings.conv_rank else {}
    pipe.unet.add_adapter(LoraConfig(r=settings.rank, lora_alpha=settings.rank, rank_pattern=convs, alpha_pattern=convs, init_lora_weights="gaussian", target_modules=targets))
    if settings.train_text_encoder:
        # peft directly: transformers' add_adapter wants a newer peft than diffusers does
        inject_adapter_in_model(LoraConfig(r=settings.rank, lora_alpha=settings.rank, init_lora_weights="gaussian", target_modules=export.TEXT_TARGETS), pipe.text_encoder)
    return [p for m in (pipe.unet, pipe.text_encoder) for p in m.parameters() if p.requires_grad]


def trainable(pipe) -> dict[str, torch.nn.Parameter]:
    return {f"{prefix}.{name}": p for prefix, m in (("unet", pipe.unet), ("text_encoder", pipe.text_encoder)) for name, p in m.named_parameters() if p.requires_grad}


# ---------------------------------------------------------------- the data


@dataclass
class Examples:
    """Latents ready to crop (index: picture, then 0 plain / 1 mirrored) and the token ids of each caption."""

    latents: torch.Tensor  # N x 2 x 4 x L x L (the second copy is the mirror when --flip, else the same)
    ids: torch.Tensor  # N x 77
    margin: int  # latent cells a crop may move


def encode_pictures(pipe, images: list[np.ndarray], size: int, margin: int, flip: bool) -> torch.Tensor:
    vae, device = pipe.vae, pipe.unet.device
    scale = vae.config.scaling_factor
    out = []
    with torch.no_grad():
        for image in images:
            fitted = data.fitted(image, size + margin * pipe.vae_scale_factor)
            pair = np.stack([fitted, fitted[:, ::-1] if flip else fitted])
            x = torch.from_numpy(np.ascontiguousarray(pair)).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
            out.append(vae.encode(x).latent_dist.mean * scale)
    return torch.stack(out)


def tokenize(pipe, texts: list[str]) -> torch.Tensor:
    tok = pipe.tokenizer
    return tok(texts, padding="max_length", max_length=tok.model_max_length, truncation=True, return_tensors="pt").input_ids


def long_captions(pipe, pictures: list[data.Picture]) -> list[str]:
    """Pictures whose caption runs past the text encoder's window: their captions' ends are not learned."""
    limit = pipe.tokenizer.model_max_length
    return [p.label for p in pictures if len(pipe.tokenizer(p.caption).input_ids) > limit]


# ---------------------------------------------------------------- training


class Trainer:
    """The loss of step k as a function of (seed, k) and the adapters, and one optimizer step on it."""

    def __init__(self, pipe, settings: Settings, instances: Examples, prior: Examples | None):
        from diffusers import DDPMScheduler
        from diffusers.optimization import get_scheduler

        self.pipe, self.settings, self.instances, self.prior = pipe, settings, instances, prior
        self.params = add_adapters(pipe, settings)
        self.noise = DDPMScheduler.from_config(pipe.scheduler.config)
        self.optimizer = torch.optim.AdamW(self.params, lr=settings.lr, weight_decay=1e-2)
        warmup = min(100, settings.steps // 10)
        self.schedule = get_scheduler("cosine", self.optimizer, num_warmup_steps=warmup, num_training_steps=settings.steps)
        self.device = pipe.unet.device
        self.frozen_text = None if settings.train_text_encoder else self._embed_all()
        self.losses: list[float] = []

    def _embed_all(self) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            out = {"instances": self.pipe.text_encoder(self.instances.ids.to(self.device))[0]}
            if self.prior is not None:
                out["prior"] = self.pipe.text_encoder(self.prior.ids.to(self.device))[0]
        return out

    def _batch(self, examples: Examples, rng: np.random.Generator, count: int, flip: bool):
        pick = rng.integers(len(examples.latents), size=count)
        mirror = (rng.random(count) < 0.5) if flip else np.zeros(count, bool)
        offsets = rng.integers(0, examples.margin + 1, size=(count, 2))
        size = examples.latents.shape[-1] - examples.margin
        latents = torch.stack([examples.latents[i, int(m), :, y : y + size, x : x + size] for i, m, (y, x) in zip(pick, mirror, offsets)])
        return latents, torch.as_tensor(pick)

    def loss(self, step: int) -> torch.Tensor:
        """Step `step`'s loss: its pictures, crops, flips, noise and timesteps drawn from (seed, step) alone."""
        s = self.settings
        rng = np.random.default_rng([s.seed, step])
        gen = torch.Generator().manual_seed(s.seed * 1_000_003 + step)
        x0, pick = self._batch(self.instances, rng, s.batch_size, s.flip)
        parts = [("instances", self.instances, pick)]
        if self.prior is not None:
            prior_x0, prior_pick = self._batch(self.prior, rng, s.batch_size, False)
            x0 = torch.cat([x0, prior_x0])
            parts.append(("prior", self.prior, prior_pick))
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, self.noise.config.num_train_timesteps, (len(x0),), generator=gen)
        x0, noise, t = x0.to(self.device), noise.to(self.device), t.to(self.device)
        embeddings = torch.cat([self._embeddings(name, examples, index) for name, examples, index in parts])
        pred = self.pipe.unet(self.noise.add_noise(x0, noise, t), t, embeddings).sample
        per_example = torch.nn.functional.mse_loss(pred.float(), self._target(x0, noise, t).float(), reduction="none").mean(dim=(1, 2, 3))
        weighted = per_example * self._min_snr_weight(t)
        loss = weighted[: s.batch_size].mean()
        if self.prior is not None:
            loss = loss + s.prior_weight * weighted[s.batch_size :].mean()
        return loss

    def _embeddings(self, name: str, examples: Examples, index: torch.Tensor) -> torch.Tensor:
        if self.frozen_text is not None:
            return self.frozen_text[name][index.to(self.device)]
        return self.pipe.text_encoder(examples.ids[index].to(self.device))[0]

    def _target(self, x0, noise, t):
        kind = self.noise.config.prediction_type
        if kind == "epsilon":
            return noise
        if kind == "v_prediction":
            return self.noise.get_velocity(x0, noise, t)
        raise ModelError(f"the model predicts {kind!r}; train-lora knows epsilon and v_prediction models")

    def _min_snr_weight(self, t) -> torch.Tensor:
        """Min-SNR-gamma (Hang et al. 2023), as the built-in model was trained: easy low-noise steps stop dominating."""
        from diffusers.training_utils import compute_snr

        snr = compute_snr(self.noise, t)
        clipped = torch.clamp(snr, max=self.settings.min_snr_gamma)
        return clipped / (snr + 1) if self.noise.config.prediction_type == "v_prediction" else clipped / snr

    def step(self, step: int) -> float:
        self.pipe.unet.train()
        self.pipe.text_encoder.train(self.settings.train_text_encoder)
        loss = self.loss(step)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.losses.append(float(loss.detach()))
        return self.losses[-1]

    # ---------------------------------------------------------------- checkpoints

    def state(self, step: int, identity: dict) -> checkpoint.State:
        return checkpoint.State(step, identity, trainable(self.pipe), self.optimizer.state_dict(), self.schedule.state_dict(), self.losses)

    def restore(self, state: checkpoint.State) -> None:
        params = trainable(self.pipe)
        if set(params) != set(state.params):
            raise UsageError("--resume: the checkpoint's adapters do not fit this model; delete it to start over")
        with torch.no_grad():
            for name, value in state.params.items():
                params[name].copy_(value)
        self.optimizer.load_state_dict(state.optimizer)
        self.schedule.load_state_dict(state.schedule)
        self.losses = list(state.losses)

    def lora(self) -> dict[str, torch.Tensor]:
        return export.kohya_tensors(self.pipe.unet, self.pipe.text_encoder if self.settings.train_text_encoder else None)


# ---------------------------------------------------------------- the run


@contextmanager
def interrupts_at_step_end():
    """Ctrl-C (or SIGTERM) asks the loop to checkpoint and stop after the current step; a second one stops at once."""
    asked = {"stop": False}
    previous = {}

    def ask(signum, frame):
        if asked["stop"]:
            raise KeyboardInterrupt
        asked["stop"] = True

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, ask)
    except ValueError:  # not the main thread: signals cannot be caught here, and the periodic checkpoints remain
        previous = {}
    try:
        yield asked
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def check_paths(job: Job, settings: Settings) -> None:
    from ...core.records.output import refuse_existing

    if job.output.suffix.lower() != ".safetensors":
        raise UsageError(f"-o {job.output}: name a .safetensors file")
    refuse_existing(job.output, job.overwrite)
    saved = job.folder / "checkpoint.safetensors"
    if saved.exists() and not job.resume:
        raise UsageError(f"{job.folder} holds a checkpoint of an earlier run; pass --resume to continue it, or delete the folder to start over")
    if settings.sample_prompts and not job.resume:
        refuse_existing(job.sheet, job.overwrite)


@dataclass
class Run:
    """One run's inputs, resolved: the pictures, the model, the size, and what identifies the run for --resume."""

    job: Job
    settings: Settings
    reporter: object
    pictures: list[data.Picture]
    pipe: object
    model_name: str
    model_hash: str
    size: int

    @property
    def identity(self) -> dict:
        return self.settings.identity() | {"resolution": self.size, "model_hash": self.model_hash, "captions_sha256": data.captions_hash(self.pictures)}

    @property
    def saved(self) -> Path:
        return self.job.folder / "checkpoint.safetensors"


def prepare(job: Job, settings: Settings, reporter) -> Run:
    """Every check that can fail before any work: settings, paths, pictures, the model."""
    from ...core.loading import sources

    settings.check()
    check_paths(job, settings)
    pictures = data.load_pictures(list(job.images), job.caption, settings.trigger)
    pipe, source, _ = load_model(job)
    size = resolution_for(pipe, settings.resolution)
    for label in long_captions(pipe, pictures):
        reporter.notice(f"{label}: the caption is longer than the text encoder reads ({pipe.tokenizer.model_max_length} tokens); its end is not learned")
    return Run(job, settings, reporter, pictures, pipe, source.name, sources.weights_hash(source), size)


def make_trainer(run: Run) -> Trainer:
    """Class pictures (made by the model before it has adapters), the latents, then the adapters."""
    s, pipe, size = run.settings, run.pipe, run.size
    prior = None
    if s.class_prompts:
        told = lambda done, total: run.reporter.notice(f"class pictures: {done}/{total}") if done == total else None  # noqa: E731
        made = generate.class_pictures(pipe, list(s.class_prompts), s.class_images, s.seed, size, run.model_hash, run.job.folder / "class", told)
        prior = Examples(encode_pictures(pipe, [image for image, _ in made], size, 0, False), tokenize(pipe, [prompt for _, prompt in made]), 0)
    margin = size // pipe.vae_scale_factor // 8 if s.crop else 0
    instances = Examples(encode_pictures(pipe, [p.pixels for p in run.pictures], size, margin, s.flip), tokenize(pipe, [p.caption for p in run.pictures]), margin)
    return Trainer(pipe, s, instances, prior)


def resume_point(run: Run, trainer: Trainer) -> int:
    if not run.job.resume:
        return 0
    if not run.saved.exists():
        run.reporter.notice(f"--resume: no checkpoint in {run.job.folder}, so this run starts at step 0")
        return 0
    state = checkpoint.load(run.saved)
    checkpoint.check_identity(run.saved, state.identity, run.identity)
    trainer.restore(state)
    run.reporter.notice(f"resumed at step {state.step} of {run.settings.steps}")
    return state.step


def loop(run: Run, trainer: Trainer, samples: "Samples", start: int) -> None:
    s = run.settings
    run.reporter.start(s.steps, start)
    with interrupts_at_step_end() as asked:
        for step in range(start, s.steps):
            done = step + 1
            run.reporter.step(done, trainer.step(step))
            if done % s.checkpoint_every == 0 or asked["stop"]:
                export.write(run.saved, checkpoint.encode(trainer.state(done, run.identity)), overwrite=True)
            if asked["stop"]:
                raise KeyboardInterrupt
            if s.sample_every and done % s.sample_every == 0 and done < s.steps:
                samples.take(done)


def train(job: Job, settings: Settings, reporter=None) -> Result:
    """Train, checkpointing as it goes, and write the LoRA; see the module's docstring for the guarantees."""
    started = time.perf_counter()
    run = prepare(job, settings, reporter or Silent())
    job.folder.mkdir(parents=True, exist_ok=True)
    trainer = make_trainer(run)
    start = resume_point(run, trainer)
    samples = Samples(job, settings, run.pipe, run.size)
    if start == 0:
        samples.take(0)
    loop(run, trainer, samples, start)
    export.write(job.output, export.encode(trainer.lora(), lora_metadata(run)), job.overwrite)
    samples.take(settings.steps)
    clean(job.folder)
    recent = trainer.losses[-20:]
    return Result(job.output, settings.steps, time.perf_counter() - started, float(np.mean(recent)) if recent else float("nan"), samples.sheet, start)


def clean(folder: Path) -> None:
    """Remove what the run put in its folder (checkpoint, class pictures, samples); anything else there stays."""
    (folder / "checkpoint.safetensors").unlink(missing_ok=True)
    for sub, pattern in (("class", "[0-9a-f]" * 20 + ".png"), ("samples", "[0-9]" * 8 + "-[0-9][0-9][0-9].png")):
        for path in (folder / sub).glob(pattern):
            path.unlink(missing_ok=True)
    for path in (folder / "class", folder / "samples", folder):
        try:
            path.rmdir()
        except OSError:
            pass  # not empty (the user's own files) or already gone


def lora_metadata(run: Run) -> dict[str, str]:
    from ... import __version__

    return export.metadata(
        settings=run.settings.identity(),
        model_name=run.model_name,
        model_hash=run.model_hash,
        v2=run.pipe.unet.config.cross_attention_dim == 1024,  # OpenCLIP ViT-H's width: how kohya tells SD 2.x apart
        resolution=run.size,
        images=len(run.pictures),
        captions_sha256=data.captions_hash(run.pictures),
        tag_frequency=data.tag_frequency(run.pictures),
        output_name=run.job.output.stem,
        version=__version__,
    )


@dataclass
class Samples:
    """The sample prompts' pictures at chosen steps, kept in the run's folder and drawn as one contact sheet."""

    job: Job
    settings: Settings
    pipe: object
    size: int
    rows: dict[int, list] = field(default_factory=dict)

    @property
    def sheet(self) -> Path | None:
        return self.job.sheet if self.settings.sample_prompts else None

    def take(self, step: int) -> None:
        if not self.settings.sample_prompts:
            return
        from PIL import Image

        from ...core.records.output import encode_png, write_bytes

        folder = self.job.folder / "samples"
        self._load(folder)
        if step not in self.rows:
            self.pipe.unet.eval()
            self.pipe.text_encoder.eval()
            self.rows[step] = generate.sample_row(self.pipe, list(self.settings.sample_prompts), self.settings.seed, self.size)
            for j, image in enumerate(self.rows[step]):
                write_bytes(encode_png(Image.fromarray(image)), folder / f"{step:08d}-{j:03d}.png", overwrite=True)
        sheet = generate.contact_sheet(sorted(self.rows.items()), list(self.settings.sample_prompts), tile=min(self.size, 256))
        write_bytes(encode_png(sheet), self.job.sheet, overwrite=True)

    def _load(self, folder: Path) -> None:
        """Rows a killed run made before it stopped (a resumed run's sheet shows them too)."""
        from PIL import Image

        if self.rows or not folder.is_dir():
            return
        for path in sorted(folder.glob("*.png")):
            step, _ = path.stem.split("-")
            with Image.open(path) as img:
                self.rows.setdefault(int(step), []).append(np.asarray(img.convert("RGB")))
