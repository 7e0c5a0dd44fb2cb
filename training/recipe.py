"""Rebuild the built-in model from scratch: `python -m scumble.training.recipe`.

Phases, each checkpointed under --work so a killed run resumes where it stopped:
  1. tokenizer  a CLIP-format BPE vocabulary learned from the world's captions
  2. vae        AutoencoderKL (8x downsampling) on random crops of the shapes world and of foreign
                pictures (training/pictures.py: sketches, gradients, textures, text, photo-like), L1 + edge loss;
                then a decoder-only stage with the encoder frozen (its latents, and so every later phase, unchanged)
  3. latents    the training set encoded once (posterior means), at every training size (world.BUCKETS)
  4. unet       UNet2DConditionModel and CLIPTextModel trained jointly, with EMA, in three stages: the
                main schedule, a tune stage, and a stage that mixes in foreign pictures (encoded once
                into foreign.safetensors) at low noise, for img2img at low strength
  5. vae_tiny   an AutoencoderTiny (TAESD's architecture) distilled onto the same latents, for --vae tiny
  6. export     a diffusers folder that StableDiffusionPipeline.from_pretrained loads

Every random draw is a function of (seed, phase, step), so a resumed run takes the same path
as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import adherence, pictures, world
from .tokenizer import write_tokenizer

# SD 1.x noise schedule: the built-in model must behave like a real checkpoint under every scheduler.
BETA_START, BETA_END, TRAIN_TIMESTEPS = 0.00085, 0.012, 1000
# Where training runs: a GPU when there is one (minutes), else the CPU (hours). Random draws stay on
# the CPU so a seed takes the same path on either.
DEVICE = torch.device("cpu")


# (what the rule says, whether a value keeps it, the numeric fields it holds for); Recipe checks each on creation
RECIPE_LIMITS = (
    ("at least 1", lambda v: v >= 1, ["size", "vae_steps", "vae_batch", "vae_crop", "decoder_batch", "dataset", "unet_steps", "batch", "tiny_batch", "eval_every", "checkpoint_every", "foreign_set", "foreign_max_t"]),
    ("at least 0", lambda v: v >= 0, ["seed", "decoder_steps", "unet_stop", "tune_steps", "foreign_steps", "warmup", "tiny_steps", "eval_prompts", "threads", "workers", "object_weight", "min_snr_gamma", "vae_seconds", "decoder_seconds", "unet_seconds", "tiny_seconds"]),
    ("between 0 and 1", lambda v: 0 <= v <= 1, ["foreign_rate", "landscape_rate", "two_object_rate", "tune_unplaced", "foreign_share", "uncond_rate", "ema_decay", "foreign_ema_decay"]),
    ("above 0", lambda v: v > 0, ["vae_lr", "decoder_lr", "unet_lr", "text_lr", "tune_lr", "foreign_lr", "input_scale"]),
)


@dataclass
class Recipe:
    seed: int = 0
    size: int = world.SIZE
    # The autoencoder: wider than the first model's [64]*4 so that it can hold any picture, not a palette.
    vae_channels: str = "64,128,128,128"
    vae_steps: int = 5270  # the shipped model's: 255 s on an H200 at batch 64
    vae_batch: int = 64
    vae_crop: int = 64
    vae_lr: float = 1e-3
    foreign_rate: float = 0.6  # share of autoencoder crops drawn from training/pictures.py
    # A decoder-only stage after the autoencoder (as Stability's sd-vae-ft-mse): the encoder is frozen, so
    # the latents (and so the UNet) are the same with or without it, and the decoder goes on learning detail.
    decoder_steps: int = 2940  # the shipped model's: what 5,600 s allowed on 2 CPU cores (1.9 s a step)
    decoder_batch: int = 16  # 0.11 s a crop on 2 cores, against 0.18 at 64
    decoder_lr: float = 1e-4
    dataset: int = 30000  # encoding takes ~20 s per 1,000 pictures on 2 cores
    sizes: str = ",".join(f"{h}x{w}" for h, w in world.BUCKETS)  # training sizes; the first gets a third of the set
    landscape_rate: float = 0.25
    two_object_rate: float = 0.3
    unet_channels: str = "64,128,192"
    unet_steps: int = 7000  # the learning-rate schedule's horizon (warm-up, then cosine decay to 10%)
    unet_stop: int = 0  # stop here (0: at unet_steps), to shorten a run without changing its schedule
    object_weight: float = 3.0  # extra loss weight on latent cells an object covers (0: plain loss)
    # A second stage after the main schedule: its own warm-up and cosine decay, from tune_lr times the
    # base rates, with lone objects' captions naming no position in a tune_unplaced share (0.1 before).
    tune_steps: int = 1500
    tune_lr: float = 0.2
    tune_unplaced: float = 0.5
    # The tune stage's object_weight (-1: object_weight's). Kept at 3 it drew a second object for captions
    # that name no position (24 of 36 pictures had one); at 0 it drew one in 35 of 36.
    tune_object_weight: float = 0.0
    # A third stage that teaches the low-noise end of the UNet pictures from outside the world, so that
    # img2img at low strength keeps a user's sketch or photo instead of redrawing it as the world. A
    # foreign_share of each batch is foreign (training/pictures.py, encoded once) at timesteps below
    # foreign_max_t, under a caption of some unrelated world picture: there the picture must win over
    # the words, or guidance would amplify the difference between them.
    foreign_steps: int = 1000
    foreign_share: float = 0.25
    foreign_max_t: int = 500
    foreign_lr: float = 0.2
    foreign_set: int = 6000
    # The stage's EMA forgets the tune stage's weights within it: at ema_decay (0.999) 37% of the exported
    # UNet would still be from before a 1,000-step stage, and low strengths changed a sketch by 15.8
    # instead of 9.7 a quarter of the way in.
    foreign_ema_decay: float = 0.995
    batch: int = 64
    unet_lr: float = 1e-3
    text_lr: float = 3e-4
    warmup: int = 300
    ema_decay: float = 0.999
    uncond_rate: float = 0.1
    min_snr_gamma: float = 5.0
    # The seed paper's input scaling b: latents are scaled to std b (not 1), which shifts logSNR
    # by 2 log b toward noise, so a flat background's mean no longer survives to t = T.
    input_scale: float = 0.5
    tiny_steps: int = 3000
    tiny_batch: int = 16
    eval_every: int = 1000
    eval_prompts: int = 40
    checkpoint_every: int = 250
    threads: int = 0
    workers: int = 0  # processes drawing training pictures (0: in the training process)
    # Seconds each phase may take (0: no limit). After its first steps a phase measures its speed and
    # shortens its own schedule to fit; the steps it chose are recorded, so the run can be repeated exactly.
    vae_seconds: float = 0.0
    decoder_seconds: float = 0.0
    unet_seconds: float = 0.0
    tiny_seconds: float = 0.0

    def __post_init__(self) -> None:
        """Every door to a recipe (the defaults, --set, a work folder's recipe.json) meets the same limits."""
        for name, value in asdict(self).items():
            expected = type(getattr(Recipe, name))
            if expected is float and type(value) is int:  # JSON and --set write 5 for 5.0
                setattr(self, name, value := float(value))
            if type(value) is not expected:
                raise ValueError(f"recipe field {name}: expected {expected.__name__}, got {value!r}")
        for rule, holds, names in RECIPE_LIMITS:
            for name in names:
                value = getattr(self, name)
                if not (math.isfinite(value) and holds(value)):
                    raise ValueError(f"recipe field {name}: must be {rule}, got {value!r}")
        if not (self.tune_object_weight == -1 or self.tune_object_weight >= 0):
            raise ValueError(f"recipe field tune_object_weight: must be -1 (object_weight's) or at least 0, got {self.tune_object_weight!r}")
        if self.foreign_max_t > TRAIN_TIMESTEPS:
            raise ValueError(f"recipe field foreign_max_t: must be at most {TRAIN_TIMESTEPS}, got {self.foreign_max_t}")
        if self.vae_crop % 8:
            raise ValueError(f"recipe field vae_crop: must be a multiple of 8, got {self.vae_crop}")
        for name, levels in (("vae_channels", (4,)), ("unet_channels", (1, 2, 3, 4))):
            widths = getattr(self, name).split(",")
            if not all(w.strip().isdigit() and int(w) > 0 and int(w) % 32 == 0 for w in widths) or len(widths) not in levels:
                raise ValueError(f"recipe field {name}: must be {' or '.join(map(str, levels))} comma-separated multiples of 32, got {getattr(self, name)!r}")
        # The UNet halves the latents at each level but the last: every side must divide evenly down to it.
        step = 8 * 2 ** (len(self.unet_channels.split(",")) - 1)
        for item in [f"{self.size}x{self.size}", *self.sizes.split(",")]:
            h, _, w = item.partition("x")
            if not (h.isdigit() and w.isdigit() and all(32 <= int(v) <= 1024 and int(v) % step == 0 for v in (h, w))):
                raise ValueError(f"recipe field sizes/size: {item!r} must be HxW, each side 32 to 1024 and a multiple of {step}")

    @classmethod
    def smoke(cls) -> "Recipe":
        return cls(size=64, vae_channels="32,32,32,32", vae_steps=4, vae_batch=4, vae_crop=32, decoder_steps=2, decoder_batch=4, dataset=64, sizes="64x64,64x96", unet_channels="32,64,64", unet_steps=4, unet_stop=0, tune_steps=2, foreign_steps=2, foreign_set=16, batch=8, warmup=2, tiny_steps=2, tiny_batch=4, eval_every=4, eval_prompts=2, checkpoint_every=2)

    @property
    def mix(self) -> world.Mix:
        return world.Mix(landscape=self.landscape_rate, two_objects=self.two_object_rate)

    def mix_at(self, step: int) -> world.Mix:
        if step < self.unet_steps:
            return self.mix
        # Only the wording changes: the scenes (and so the encoded pictures) are the main stage's.
        return replace(self.mix, unplaced=self.tune_unplaced)

    def object_weight_at(self, step: int) -> float:
        return self.object_weight if step < self.unet_steps or self.tune_object_weight < 0 else self.tune_object_weight

    def lr_at(self, step: int) -> float:
        if step < self.unet_steps:
            return lr_factor(step, self.unet_steps, self.warmup)
        if step < self.foreign_start:
            return self.tune_lr * stage_factor(step - self.unet_steps, self.tune_steps)
        return self.foreign_lr * stage_factor(step - self.foreign_start, self.foreign_steps)

    @property
    def foreign_start(self) -> int:
        return self.unet_steps + self.tune_steps

    def in_foreign_stage(self, step: int) -> bool:
        return self.foreign_steps > 0 and step >= self.foreign_start

    def ema_decay_at(self, step: int) -> float:
        return self.foreign_ema_decay if self.in_foreign_stage(step) else self.ema_decay

    def foreign_count(self, step: int) -> int:
        """How many of the batch at `step` are foreign pictures (none before the third stage)."""
        return round(self.batch * self.foreign_share) if self.in_foreign_stage(step) else 0

    @property
    def buckets(self) -> list[tuple[int, int]]:
        return [tuple(int(v) for v in item.split("x")) for item in self.sizes.split(",")]


def channels(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


# ---------------------------------------------------------------- architectures


def vae_config(size: int, widths: str = "64,64,64,64") -> dict:
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=channels(widths),  # narrower first levels learned flat colours 3-6x slower in probes
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=32,
        sample_size=size,
    )


def tiny_vae_config() -> dict:
    # TAESD's layout at half its width and one block per level: the world is flat colours and sharp edges.
    return dict(
        encoder_block_out_channels=[32, 32, 32, 32],
        decoder_block_out_channels=[32, 32, 32, 32],
        num_encoder_blocks=[1, 1, 1, 1],
        num_decoder_blocks=[1, 1, 1, 1],
        latent_channels=4,
    )


def text_config(vocab_size: int) -> dict:
    return dict(
        vocab_size=vocab_size,
        hidden_size=128,
        intermediate_size=512,
        num_hidden_layers=3,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        projection_dim=128,
    )


def unet_config(size: int, widths: str = "64,128,128") -> dict:
    return dict(
        sample_size=size // 8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=channels(widths),
        down_block_types=["CrossAttnDownBlock2D"] * len(channels(widths)),
        up_block_types=["CrossAttnUpBlock2D"] * len(channels(widths)),
        cross_attention_dim=128,
        attention_head_dim=4,
        norm_num_groups=32,
    )


def scheduler_config() -> dict:
    return dict(
        _class_name="EulerDiscreteScheduler",
        num_train_timesteps=TRAIN_TIMESTEPS,
        beta_start=BETA_START,
        beta_end=BETA_END,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        timestep_spacing="leading",
        steps_offset=1,
    )


# ---------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).to(DEVICE)


def save_atomic(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict | None:
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def object_weighted_l1(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 with pixels that differ from the crop's dominant colour weighted 8x: objects are a small part
    of most crops, and an unweighted loss is satisfied by right backgrounds and smeared shapes."""
    dominant = target.flatten(2).median(dim=2).values[..., None, None]
    weight = 1.0 + 7.0 * ((target - dominant).abs().amax(dim=1, keepdim=True) > 0.1).float()
    return ((recon - target).abs() * weight).sum() / (weight.sum() * target.shape[1])


def edge_loss(recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Edges carry the shapes: L1 between the images' horizontal and vertical gradients."""
    return sum((torch.diff(recon, dim=d) - torch.diff(target, dim=d)).abs().mean() for d in (-1, -2))


def descend(opt, loss: torch.Tensor, parameters) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    opt.step()


def save_model_atomic(model, folder: Path) -> None:
    partial = folder.with_name(folder.name + ".partial")
    model.to("cpu").save_pretrained(partial)
    model.to(DEVICE)
    os.replace(partial, folder)


def save_checkpoint(model, opt, step: int, path: Path) -> None:
    save_atomic({"model": model.state_dict(), "opt": opt.state_dict(), "step": step}, path)


def resume(model, opt, path: Path, phase: str) -> int:
    """Load a phase's last checkpoint into `model` and `opt`; the step to go on from (0: none yet)."""
    if (ckpt := load_checkpoint(path)) is None:
        return 0
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["opt"])
    log(f"{phase}: resumed at step {ckpt['step']}")
    return ckpt["step"]


def stage_factor(step: int, total: int) -> float:
    """A later stage's own schedule: a short warm-up (a tenth of it, at most 50 steps), then cosine decay."""
    return lr_factor(step, total, min(50, max(1, total // 10)))


def lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


# ---------------------------------------------------------------- phases


# ---------------------------------------------------------------- training pictures
# Pure functions of (recipe, item), so worker processes can draw them and a batch never depends on
# how many workers there are.


def vae_crops(r: Recipe, step: int, salt: int = 1, batch: int = 0) -> np.ndarray:
    """A batch of crops for the autoencoders: foreign pictures at `foreign_rate`, else the world at its sizes."""
    rng = np.random.default_rng([r.seed, salt, step])
    crop, crops = r.vae_crop, []
    sizes = [b for b in r.buckets if min(b) >= crop] or [(crop, crop)]
    for _ in range(batch or r.vae_batch):
        seed = int(rng.integers(1 << 40))
        if rng.random() < r.foreign_rate:
            side = int(rng.integers(crop, 2 * crop + 1))
            img = pictures.picture(seed, side, side)
        else:
            img = world.make_sample(seed, size=sizes[int(rng.integers(len(sizes)))], mix=r.mix).image
        y, x = int(rng.integers(0, img.shape[0] - crop + 1)), int(rng.integers(0, img.shape[1] - crop + 1))
        crops.append(img[y : y + crop, x : x + crop])
    return np.stack(crops)


def world_pictures(r: Recipe, item: tuple[tuple[int, int], list[int]]) -> np.ndarray:
    size, seeds = item
    return np.stack([world.make_sample(s, size=size, mix=r.mix).image for s in seeds])


def _quiet_worker() -> None:
    import cv2

    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def prefetched(fn, r: Recipe, items, workers: int):
    """fn(r, item) for each item, in order, drawn `workers` processes wide and a few items ahead."""
    if workers <= 0:
        yield from (fn(r, item) for item in items)
        return
    import collections
    import itertools
    import multiprocessing

    items = iter(items)
    with multiprocessing.get_context("spawn").Pool(workers, initializer=_quiet_worker) as pool:
        pending = collections.deque(pool.apply_async(fn, (r, item)) for item in itertools.islice(items, 3 * workers))
        while pending:
            result = pending.popleft().get()
            if (item := next(items, None)) is not None:
                pending.append(pool.apply_async(fn, (r, item)))
            yield result


class Budget:
    """Fits a phase's schedule into `seconds`: after `probe` steps, the steps left are what the time allows."""

    def __init__(self, r: Recipe, field: str, start: int, warm: int = 20, probe: int = 50):
        self.r, self.field, self.start, self.warm, self.probe = r, field, start, warm, probe
        self.seconds = getattr(r, field.replace("_steps", "_seconds"))
        self.t0 = self.t_warm = time.time()

    def total(self, step: int, work: Path) -> int:
        """The phase's steps as of `step`; timed over steps the start-up (workers, kernels) is past."""
        planned = getattr(self.r, self.field)
        if step == self.start + self.warm:
            self.t_warm = time.time()
        if self.seconds > 0 and step == self.start + self.warm + self.probe:
            per_step = (time.time() - self.t_warm) / self.probe
            fitted = min(planned, step + int((self.seconds - (time.time() - self.t0)) / per_step))
            setattr(self.r, self.field, max(fitted, step + 1))
            (work / "recipe.json").write_text(json.dumps(asdict(self.r), indent=2))
            log(f"{self.field}: {per_step:.3f}s a step, so {getattr(self.r, self.field)} steps fit in {self.seconds:.0f}s")
        return getattr(self.r, self.field)


def autocast():
    """bf16 mixed precision on a GPU (minutes instead of hours); the CPU stays in fp32, as it was measured."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=DEVICE.type == "cuda")


# ---------------------------------------------------------------- phases


PHASE_STEPS = {"vae": "vae_steps", "vae_decoder": "decoder_steps", "vae_tiny": "tiny_steps"}


def autoencoder_steps(r: Recipe, work: Path, phase: str, draw, model, opt, metrics: dict):
    """(step, steps in all, batch) for an autoencoder phase, resumed from its checkpoint: the loop every
    autoencoder phase shares. The body leaves its losses in `metrics` for the log."""
    ckpt_path = work / f"{phase}.ckpt"
    start = resume(model, opt, ckpt_path, phase)
    budget = Budget(r, PHASE_STEPS[phase], start)
    model.train()
    t0 = time.time()
    for step, crops in zip(range(start, 1 << 62), prefetched(draw, r, range(start, 1 << 62), r.workers)):
        total = budget.total(step, work)
        if step >= total:
            break
        yield step, total, to_tensor(crops)
        if step % 100 == 0 or step == total - 1:
            losses = " ".join(f"{k} {v.item():.4f}" for k, v in metrics.items())
            log(f"{phase} step {step}/{total} {losses} ({(time.time() - t0) / (step - start + 1):.3f}s/step)")
        if (step + 1) % r.checkpoint_every == 0:
            save_checkpoint(model, opt, step + 1, ckpt_path)


def train_vae(r: Recipe, work: Path):
    from diffusers import AutoencoderKL

    final = work / "vae"
    if (final / "config.json").exists():
        return AutoencoderKL.from_pretrained(final).to(DEVICE)
    torch.manual_seed(r.seed)
    vae = AutoencoderKL(**vae_config(r.size, r.vae_channels)).to(DEVICE)
    with torch.no_grad():
        # Start the posterior nearly deterministic (std ~ 0.007): at the default logvar of 0 the sampled
        # noise swamped the young encoder's means and reconstructions stalled at the wrong colours.
        vae.encoder.conv_out.bias[vae.config.latent_channels :] = -10.0
    opt = torch.optim.AdamW(vae.parameters(), lr=r.vae_lr, weight_decay=0.0)
    metrics: dict = {}
    for step, total, x in autoencoder_steps(r, work, "vae", vae_crops, vae, opt, metrics):
        for g in opt.param_groups:
            g["lr"] = r.vae_lr * lr_factor(step, total, 100)
        with autocast():
            posterior = vae.encode(x).latent_dist
            recon = vae.decode(posterior.sample(generator=torch.Generator(DEVICE).manual_seed(step))).sample.float()
        metrics.update(l1=object_weighted_l1(recon, x), edge=edge_loss(recon, x), kl=posterior.kl().float().mean() / x[0].numel())
        descend(opt, metrics["l1"] + metrics["edge"] + 1e-4 * metrics["kl"], vae.parameters())
    save_model_atomic(vae.eval(), final)
    return vae


def tune_decoder(r: Recipe, work: Path, vae):
    """The decoder-only stage: the autoencoder's loss on fresh crops, with the encoder (and so every
    latent the later phases see) frozen. Returns the autoencoder with the tuned decoder."""
    from diffusers import AutoencoderKL

    if r.decoder_steps <= 0:
        return vae
    final = work / "vae_decoder"
    if (final / "config.json").exists():
        return AutoencoderKL.from_pretrained(final).to(DEVICE)
    frozen = [vae.encoder, vae.quant_conv]
    for module in frozen:
        module.requires_grad_(False)
    trained = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trained, lr=r.decoder_lr, weight_decay=0.0)
    metrics: dict = {}
    for step, total, x in autoencoder_steps(r, work, "vae_decoder", decoder_crops, vae, opt, metrics):
        for g in opt.param_groups:
            g["lr"] = r.decoder_lr * stage_factor(step, total)
        with torch.no_grad(), autocast():
            z = vae.encode(x).latent_dist.sample(generator=torch.Generator(DEVICE).manual_seed(r.seed * 1_000_033 + step))
        with autocast():
            recon = vae.decode(z).sample.float()
        metrics.update(l1=object_weighted_l1(recon, x), edge=edge_loss(recon, x))
        descend(opt, metrics["l1"] + metrics["edge"], trained)
    for module in frozen:
        module.requires_grad_(True)
    save_model_atomic(vae.eval(), final)
    return vae


def bucket_seeds(r: Recipe) -> dict[tuple[int, int], list[int]]:
    """The training set's seeds at each size: a third at the first size, the rest shared evenly."""
    buckets = r.buckets
    first = r.dataset if len(buckets) == 1 else r.dataset // 3
    counts = [first] + [(r.dataset - first) // max(len(buckets) - 1, 1)] * (len(buckets) - 1)
    base, out = 1_000_000 + r.seed * 10_000_000, {}
    for bucket, count in zip(buckets, counts):
        out[bucket] = list(range(base, base + count))
        base += count
    return out


def object_cells(images: np.ndarray) -> torch.Tensor:
    """Which latent cells hold something other than the picture's dominant colour (uint8, 1/8 the size)."""
    pixels = torch.from_numpy(images).float()
    dominant = pixels.flatten(1, 2).median(dim=1).values[:, None, None, :]
    differs = ((pixels - dominant).abs().amax(-1) > 40).float()[:, None]
    return (F.avg_pool2d(differs, 8) > 0.1).to(torch.uint8)


def encoded_batches(r: Recipe, vae, draw, plan: dict[tuple[int, int], list[int]], label: str):
    """(size, pictures, posterior means) for each batch of 64 seeds in `plan`, drawn by draw(r, (size, seeds))."""
    items = [(bucket, seeds[i : i + 64]) for bucket, seeds in plan.items() for i in range(0, len(seeds), 64)]
    with torch.no_grad():
        for n, ((bucket, _), images) in enumerate(zip(items, prefetched(draw, r, items, r.workers))):
            with autocast():
                encoded = vae.encode(to_tensor(images)).latent_dist.mean.float().cpu()
            if n % 20 == 0:
                log(f"{label} {n}/{len(items)} batches")
            yield bucket, images, encoded


def encode_dataset(r: Recipe, work: Path, vae) -> tuple[dict, float]:
    """{(h, w): (latents, object cells, seeds)} for every training size, and the latents' scaling factor."""
    from safetensors.torch import load_file, save_file

    path = work / "latents.safetensors"
    plan = bucket_seeds(r)
    if path.exists():
        data = load_file(path)
        return {b: (data[f"latents_{b[0]}x{b[1]}"], data[f"cells_{b[0]}x{b[1]}"], data[f"seeds_{b[0]}x{b[1]}"].tolist()) for b in plan}, float(data["scale"])
    latents, cells = {b: [] for b in plan}, {b: [] for b in plan}
    for bucket, images, encoded in encoded_batches(r, vae, world_pictures, plan, "latents"):
        latents[bucket].append(encoded)
        cells[bucket].append(object_cells(images))
    data = {}
    for (h, w), seeds in plan.items():
        data[f"latents_{h}x{w}"] = torch.cat(latents[(h, w)]).contiguous()
        data[f"cells_{h}x{w}"] = torch.cat(cells[(h, w)]).contiguous()
        data[f"seeds_{h}x{w}"] = torch.tensor(seeds)
    every = torch.cat([data[k].flatten() for k in data if k.startswith("latents_")])
    scale = r.input_scale / every.std().item()
    save_file(data | {"scale": torch.tensor(scale, dtype=torch.float64)}, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)
    log(f"latents: {len(every) // 4} cells in {len(plan)} sizes, raw std {every.std().item():.3f}, scaling_factor {scale:.4f}")
    return {(h, w): (data[f"latents_{h}x{w}"], data[f"cells_{h}x{w}"], seeds) for (h, w), seeds in plan.items()}, scale


def foreign_pictures(r: Recipe, item: tuple[tuple[int, int], list[int]]) -> np.ndarray:
    (h, w), seeds = item
    return np.stack([pictures.picture(s, h, w) for s in seeds])


def encode_foreign(r: Recipe, work: Path, vae) -> dict:
    """{(h, w): latents} of foreign pictures for the UNet's third stage, shared evenly over the training sizes."""
    from safetensors.torch import load_file, save_file

    path = work / "foreign.safetensors"
    buckets = r.buckets
    if path.exists():
        data = load_file(path)
        return {b: data[f"latents_{b[0]}x{b[1]}"] for b in buckets}
    # Seeds of their own range, below pictures.HELD_OUT_BASE: never a benchmark's picture.
    base, count = 2_000_000_000 + r.seed * 10_000_000, max(1, r.foreign_set // len(buckets))
    plan = {b: list(range(base + n * count, base + (n + 1) * count)) for n, b in enumerate(buckets)}
    latents = {b: [] for b in buckets}
    for bucket, _, encoded in encoded_batches(r, vae, foreign_pictures, plan, "foreign latents"):
        latents[bucket].append(encoded)
    data = {f"latents_{h}x{w}": torch.cat(latents[(h, w)]).contiguous() for h, w in buckets}
    save_file(data, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)
    return {b: data[f"latents_{b[0]}x{b[1]}"] for b in buckets}


def train_tiny_vae(r: Recipe, work: Path, vae, scale: float):
    """Distil an AutoencoderTiny onto the big VAE's scaled latent space, on the same pictures it learned:
    its encoder predicts the big encoder's latents, its decoder turns latents straight back into pictures."""
    from diffusers import AutoencoderTiny

    final = work / "vae_tiny"
    if (final / "config.json").exists():
        return AutoencoderTiny.from_pretrained(final).to(DEVICE)
    torch.manual_seed(r.seed + 2)
    tiny = AutoencoderTiny(**tiny_vae_config()).to(DEVICE)
    opt = torch.optim.AdamW(tiny.parameters(), lr=1e-3, weight_decay=0.0)
    vae.eval()
    metrics: dict = {}
    for step, total, x in autoencoder_steps(r, work, "vae_tiny", partial_tiny_crops, tiny, opt, metrics):
        gen = torch.Generator().manual_seed(r.seed * 1_000_033 + step)
        with torch.no_grad(), autocast():
            z = vae.encode(x).latent_dist.mean.float() * scale
        with autocast():
            # The decoder will see the UNet's slightly-off latents, not encoder means: train it on jittered ones.
            recon = tiny.decoder(z + 0.03 * torch.randn(z.shape, generator=gen).to(DEVICE)).float()
            encoded = tiny.encoder(x).float()
        metrics.update(l1=object_weighted_l1(recon, x), edge=edge_loss(recon, x), encode=F.mse_loss(encoded, z) / (r.input_scale**2))
        for g in opt.param_groups:
            g["lr"] = 1e-3 * lr_factor(step, total, 50)
        descend(opt, sum(metrics.values()), tiny.parameters())
    save_model_atomic(tiny.eval(), final)
    return tiny


def partial_tiny_crops(r: Recipe, step: int) -> np.ndarray:
    return vae_crops(r, step, salt=3, batch=r.tiny_batch)


def decoder_crops(r: Recipe, step: int) -> np.ndarray:
    return vae_crops(r, step, salt=4, batch=r.decoder_batch)


def caption_for(seed: int, variant: int, mix: world.Mix = world.Mix()) -> str:
    """A fresh wording of sample `seed`'s scene: the picture stays, the sentence varies per epoch."""
    scene, _ = world.draw_scene(seed, mix)
    return world.caption(scene, random.Random(seed * 7919 + variant), mix)


def build_pipeline(tokenizer, text_encoder, unet, vae, scale: float):
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    vae.register_to_config(scaling_factor=scale)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler.from_config(scheduler_config()),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipeline_generator(pipe, guidance: float = 7.0, steps: int = 20):
    """adherence.judge's generate(prompts, seeds, height, width) for a diffusers pipeline."""

    def generate(prompts, seeds, height, width):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        with torch.no_grad(), autocast():
            images = pipe(prompts, num_inference_steps=steps, guidance_scale=guidance, generator=gens, height=height, width=width, output_type="np").images
        return [(img * 255).round().astype(np.uint8) for img in images]

    return generate


def prompt_influence(unet, text_encoder, tokenizer, shape: tuple[int, ...]) -> float:
    """How much the UNet's output moves between two different prompts, relative to its size."""
    ids = tokenizer(["a red circle on a blue background", "a white star at the top on a green background"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        emb = text_encoder(ids.to(DEVICE))[0]
        x = torch.randn((1, *shape), generator=torch.Generator().manual_seed(0)).repeat(2, 1, 1, 1).to(DEVICE)
        out = unet(x, torch.tensor([800, 800], device=DEVICE), emb).sample
    return ((out[0] - out[1]).norm() / out[0].norm()).item()


def train_unet(r: Recipe, work: Path, vae, data: dict, scale: float, stop_at: int | None = None, foreign: dict | None = None):
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from diffusers.training_utils import EMAModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(work / "tokenizer")
    torch.manual_seed(r.seed + 1)
    unet = UNet2DConditionModel(**unet_config(r.size, r.unet_channels)).to(DEVICE)
    text_encoder = CLIPTextModel(CLIPTextConfig(**text_config(len(tokenizer)))).to(DEVICE)
    ema_unet = EMAModel(unet.parameters(), decay=r.ema_decay, use_ema_warmup=True)
    ema_text = EMAModel(text_encoder.parameters(), decay=r.ema_decay, use_ema_warmup=True)
    opt = torch.optim.AdamW(
        [{"params": unet.parameters(), "lr": r.unet_lr, "base": r.unet_lr}, {"params": text_encoder.parameters(), "lr": r.text_lr, "base": r.text_lr}],
        weight_decay=1e-2,
    )
    noise_sched = DDPMScheduler(num_train_timesteps=TRAIN_TIMESTEPS, beta_start=BETA_START, beta_end=BETA_END, beta_schedule="scaled_linear")
    alphas = noise_sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    ckpt_path = work / "unet.ckpt"
    start, history = 0, []
    if ckpt := load_checkpoint(ckpt_path):
        unet.load_state_dict(ckpt["unet"])
        text_encoder.load_state_dict(ckpt["text"])
        ema_unet.load_state_dict(ckpt["ema_unet"])
        ema_text.load_state_dict(ckpt["ema_text"])
        ema_unet.to(DEVICE)
        ema_text.to(DEVICE)
        opt.load_state_dict(ckpt["opt"])
        start, history = ckpt["step"], json.loads(ckpt["history"])
        log(f"unet: resumed at step {start}")
    buckets = list(data)
    scaled = {b: (data[b][0] * scale).to(DEVICE) for b in buckets}
    cells_on = {b: data[b][1].to(DEVICE) for b in buckets}
    foreign_scaled = {b: (foreign[b] * scale).to(DEVICE) for b in buckets} if foreign else {}
    share = torch.tensor([float(len(data[b][2])) for b in buckets])
    budget = Budget(r, "unet_steps", start)
    t0 = time.time()
    step = start
    while step < (end := min(budget.total(step, work) + r.tune_steps + r.foreign_steps, r.unet_stop or (1 << 62))):
        unet.train()
        text_encoder.train()
        gen = torch.Generator().manual_seed(r.seed * 1_000_003 + step)
        bucket = buckets[int(torch.multinomial(share, 1, generator=gen))]
        latents, cells, seeds = scaled[bucket], cells_on[bucket], data[bucket][2]
        idx = torch.randint(0, len(seeds), (r.batch,), generator=gen)
        x0, batch_cells = latents[idx.to(DEVICE)], cells[idx.to(DEVICE)]
        drop = torch.rand(r.batch, generator=gen) < r.uncond_rate
        captions = ["" if d else caption_for(seeds[i], step, r.mix_at(step)) for i, d in zip(idx.tolist(), drop.tolist())]
        ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, TRAIN_TIMESTEPS, (r.batch,), generator=gen)
        noise, t_device = noise.to(DEVICE), t.to(DEVICE)
        if n_foreign := r.foreign_count(step):
            # The batch's last n_foreign rows become foreign pictures at low noise; their captions stay
            # the world pictures' they replace, so words and picture disagree (see Recipe.foreign_steps).
            pool = foreign_scaled[bucket]
            pick = torch.randint(0, len(pool), (n_foreign,), generator=gen)
            x0 = torch.cat([x0[: r.batch - n_foreign], pool[pick.to(DEVICE)]])
            t[r.batch - n_foreign :] = torch.randint(0, r.foreign_max_t, (n_foreign,), generator=gen)
            t_device = t.to(DEVICE)
            batch_cells[r.batch - n_foreign :] = 0
        xt = noise_sched.add_noise(x0, noise, t_device)
        with autocast():
            pred = unet(xt, t_device, text_encoder(ids.to(DEVICE))[0]).sample.float()
        cell_weight = 1.0 + r.object_weight_at(step) * batch_cells.float()
        per_sample = (cell_weight * (pred - noise) ** 2).mean(dim=(1, 2, 3)) / cell_weight.mean(dim=(1, 2, 3))
        weight = (torch.clamp(snr[t], max=r.min_snr_gamma) / snr[t]).to(DEVICE)  # min-SNR: stop easy low-noise steps dominating
        loss = (weight * per_sample).mean()
        for g in opt.param_groups:
            g["lr"] = g["base"] * r.lr_at(step)
        descend(opt, loss, list(unet.parameters()) + list(text_encoder.parameters()))
        ema_unet.decay = ema_text.decay = r.ema_decay_at(step)
        ema_unet.step(unet.parameters())
        ema_text.step(text_encoder.parameters())
        step = done = step + 1
        if done % 100 == 1:
            log(f"unet step {done - 1}/{end} loss {loss.item():.4f} ({(time.time() - t0) / (done - start):.3f}s/step)")
        if done % r.eval_every == 0 or done == end:
            pipe = build_pipeline(tokenizer, *ema_copies(unet, text_encoder, ema_unet, ema_text), vae, scale)
            influence = prompt_influence(pipe.unet, pipe.text_encoder, tokenizer, tuple(data[buckets[0]][0].shape[1:]))
            scores = adherence.judge(pipeline_generator(pipe), r.eval_prompts, offset=adherence.VALIDATION_OFFSET, size=r.size, sizes=r.buckets)
            history.append({"step": done, "loss": loss.item(), "influence": influence, **scores})
            log(f"eval @ {done}: influence {influence:.3f} " + " ".join(f"{k} {v:.0f}%" for k, v in scores.items()))
        stopping = stop_at is not None and done >= stop_at
        if done % r.checkpoint_every == 0 or done == end or stopping:
            state = {"unet": unet, "text": text_encoder, "ema_unet": ema_unet, "ema_text": ema_text, "opt": opt}
            save_atomic({k: v.state_dict() for k, v in state.items()} | {"step": done, "history": json.dumps(history)}, ckpt_path)
        if stopping and done < end:
            log(f"unet: stopped at step {done} as asked; run again to continue")
            return None, history
    return build_pipeline(tokenizer, *ema_copies(unet, text_encoder, ema_unet, ema_text), vae, scale), history


def ema_copies(unet, text_encoder, ema_unet, ema_text):
    import copy

    u, te = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    ema_unet.copy_to(u.parameters())
    ema_text.copy_to(te.parameters())
    return te, u


def portable(folder: Path) -> None:
    """Make an exported model read the same under transformers 4 as under 5, which wrote it.

    transformers 5 saves CLIPTextModel's keys without `text_model.`, and 4 then loads the file without
    a word as a freshly initialised (random) encoder; 5 reads the prefixed keys too. And 5 writes the
    tokenizer as tokenizer.json alone, where 4's CLIPTokenizer (the slow one) needs vocab.json and
    merges.txt: both are the same BPE, written out from tokenizer.json.
    """
    from safetensors.torch import load_file, save_file

    encoder = folder / "text_encoder" / "model.safetensors"
    state = load_file(encoder)
    save_file({k if k.startswith("text_model.") else f"text_model.{k}": v for k, v in state.items()}, encoder, metadata={"format": "pt"})
    bpe = json.loads((folder / "tokenizer" / "tokenizer.json").read_text())["model"]
    (folder / "tokenizer" / "vocab.json").write_text(json.dumps(bpe["vocab"], ensure_ascii=False))
    merges = [pair if isinstance(pair, str) else " ".join(pair) for pair in bpe["merges"]]
    (folder / "tokenizer" / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{m}\n" for m in merges))
    # 4's slow BPE splits some rare characters differently from tokenizer.json's; the fast class (5's CLIPTokenizer) is the same everywhere
    index = json.loads((folder / "model_index.json").read_text())
    index["tokenizer"] = ["transformers", "CLIPTokenizerFast"]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def export(pipe, r: Recipe, out: Path, history: list, work: Path, tiny=None) -> None:
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.to("cpu")
    pipe.unet.to(torch.float16)
    pipe.vae.to(torch.float16)  # diffusers upcasts on load; halves the package size
    pipe.save_pretrained(tmp, safe_serialization=True)
    portable(tmp)
    if tiny is not None:  # not a pipeline component: from_pretrained ignores it, --vae tiny finds it
        tiny.to("cpu", torch.float16).save_pretrained(tmp / "vae_tiny", safe_serialization=True)
    pipe.unet.to(torch.float32)
    pipe.vae.to(torch.float32)
    for config in tmp.glob("*/config.json"):  # a component loaded from the work folder records that machine's path
        settings = json.loads(config.read_text())
        if settings.pop("_name_or_path", None) is not None:
            config.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    (tmp / "scheduler" / "scheduler_config.json").write_text(json.dumps({k: v for k, v in scheduler_config().items() if k != "_class_name"} | {"_class_name": "EulerDiscreteScheduler"}, indent=2))
    (tmp / "recipe.json").write_text(json.dumps({"recipe": asdict(r), "device": DEVICE.type, "history": history}, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log(f"exported to {out}")


BUDGETED = {"vae_steps": "vae_seconds", "decoder_steps": "decoder_seconds", "unet_steps": "unet_seconds", "tiny_steps": "tiny_seconds"}
# How a run executes, not what it learns: a phase trained on one machine goes on on another with its own.
EXECUTION = ("threads", "workers", "checkpoint_every", "eval_every", "eval_prompts")


def agreed_recipe(r: Recipe, work: Path) -> Recipe | None:
    """The recipe to go on with in `work`: its steps as a time budget fitted them; None if it disagrees."""
    recorded_path = work / "recipe.json"
    if not recorded_path.exists():
        return r
    recorded = json.loads(recorded_path.read_text())
    if not isinstance(recorded, dict):
        raise ValueError("not a recipe (a JSON object of recipe fields)")
    recorded = {k: v for k, v in recorded.items() if k not in EXECUTION}
    fitted = {k: recorded[k] for k, budget in BUDGETED.items() if k in recorded and recorded.get(budget) and getattr(r, budget)}
    r = replace(r, **fitted)
    # Fields added to the recipe after a run started take their current values: only recorded ones must agree.
    return r if {**asdict(r), **recorded} == asdict(r) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "models" / "scumble-mini")
    parser.add_argument("--work", type=Path, default=None, help="checkpoint folder (default ~/.cache/scumble/recipe/seed-N)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="a few steps at a tiny size, to check the recipe runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe field")
    parser.add_argument("--stop-at-step", type=int, default=None, help="checkpoint and stop once the UNet reaches this step (train in sittings)")
    parser.add_argument("--export-now", action="store_true", help="export the EMA weights of the latest UNet checkpoint without training further")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="auto (a CUDA GPU when there is one), cpu or cuda")
    parser.add_argument("--until", default="export", choices=["vae", "latents", "export"], help="stop after this phase (its result stays in --work; a later run goes on from it)")
    args = parser.parse_args(argv)
    global DEVICE
    from ..core.loading.device import resolve_device

    DEVICE = resolve_device("cpu" if args.device == "auto" and resolve_device("auto").type == "mps" else args.device)
    r = replace(Recipe.smoke() if args.smoke else Recipe(), seed=args.seed)
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in asdict(r):
            parser.error(f"--set: unknown recipe field {key!r}")
        kind = type(getattr(r, key))
        try:
            r = replace(r, **{key: kind(value)})
        except ValueError as exc:
            why = str(exc).split(": ", 1)[1] if str(exc).startswith("recipe field") else f"{value!r} is not {'an' if kind is int else 'a'} {kind.__name__}"
            parser.error(f"--set {key}: {why}")
    if r.threads:
        torch.set_num_threads(r.threads)
    work = args.work or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scumble" / "recipe" / (f"seed-{r.seed}" + ("-smoke" if args.smoke else ""))
    work.mkdir(parents=True, exist_ok=True)
    try:
        agreed = agreed_recipe(r, work)
    except (ValueError, TypeError) as exc:  # a recipe.json edited by hand, or from an older recipe
        print(f"error: {work / 'recipe.json'}: {exc}", file=sys.stderr)
        return 2
    if agreed is None and not args.export_now:
        print(f"error: {work} holds a run with other settings; pass another --work or delete it", file=sys.stderr)
        return 2
    r = agreed or r
    if not args.export_now:
        (work / "recipe.json").write_text(json.dumps(asdict(r), indent=2))
    log(f"recipe {asdict(r)} in {work} on {DEVICE}")
    if not (work / "tokenizer" / "vocab.json").exists():
        log(f"tokenizer: {write_tokenizer(work / 'tokenizer', world.caption_corpus(20000, seed=r.seed))} tokens")
    vae = tune_decoder(r, work, train_vae(r, work))
    if args.until == "vae":
        return 0
    data, scale = encode_dataset(r, work, vae)
    if args.until == "latents":
        return 0
    if args.export_now:
        ckpt = load_checkpoint(work / "unet.ckpt")
        if ckpt is None:
            print(f"error: no UNet checkpoint in {work} yet", file=sys.stderr)
            return 1
        r = replace(r, unet_stop=ckpt["step"])  # the loop has nothing left to do: load, then export
    foreign = encode_foreign(r, work, vae) if r.foreign_steps > 0 and not args.export_now else None  # exporting trains no step
    pipe, history = train_unet(r, work, vae, data, scale, stop_at=args.stop_at_step, foreign=foreign)
    if pipe is None:
        return 0
    tiny = train_tiny_vae(r, work, vae, scale)
    export(pipe, r, args.out, history, work, tiny)
    return 0


if __name__ == "__main__":
    sys.exit(main())
