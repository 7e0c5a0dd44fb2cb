"""Rebuild the built-in model from scratch: `python -m scumble.training.recipe`.

Phases, each checkpointed under --work so a killed run resumes where it stopped:
  1. tokenizer  a CLIP-format BPE vocabulary learned from the world's captions
  2. vae        AutoencoderKL (8x downsampling) on random crops, L1 + edge loss
  3. latents    the training set encoded once (posterior means)
  4. unet       UNet2DConditionModel and CLIPTextModel trained jointly, with EMA
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

from . import adherence, world
from .tokenizer import write_tokenizer

# SD 1.x noise schedule: the built-in model must behave like a real checkpoint under every scheduler.
BETA_START, BETA_END, TRAIN_TIMESTEPS = 0.00085, 0.012, 1000
# Where training runs: a GPU when there is one (minutes), else the CPU (hours). Random draws stay on
# the CPU so a seed takes the same path on either.
DEVICE = torch.device("cpu")


@dataclass
class Recipe:
    seed: int = 0
    size: int = world.SIZE
    vae_steps: int = 3000
    vae_batch: int = 24
    vae_crop: int = 64
    vae_lr: float = 1e-3
    dataset: int = 30000  # encoding takes ~20 s per 1,000 pictures on 2 cores
    unet_steps: int = 7000  # the learning-rate schedule's horizon (warm-up, then cosine decay to 10%)
    # Training stops here (0: at unet_steps). The held-out scores reached 98-100% by step 4,000 of the
    # 7,000-step run, and stopping there keeps a CPU rebuild inside 3 hours; see the model card.
    unet_stop: int = 4000
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

    @classmethod
    def smoke(cls) -> "Recipe":
        return cls(size=64, vae_steps=4, vae_batch=4, vae_crop=32, dataset=64, unet_steps=4, unet_stop=0, batch=8, warmup=2, tiny_steps=2, tiny_batch=4, eval_every=4, eval_prompts=2, checkpoint_every=2)


# ---------------------------------------------------------------- architectures


def vae_config(size: int) -> dict:
    return dict(
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        block_out_channels=[64, 64, 64, 64],  # narrower first levels learned flat colours 3-6x slower in probes
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


def unet_config(size: int) -> dict:
    return dict(
        sample_size=size // 8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=[64, 128, 128],
        down_block_types=["CrossAttnDownBlock2D"] * 3,
        up_block_types=["CrossAttnUpBlock2D"] * 3,
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


def lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


# ---------------------------------------------------------------- phases


def train_vae(r: Recipe, work: Path):
    from diffusers import AutoencoderKL

    final = work / "vae"
    if (final / "config.json").exists():
        return AutoencoderKL.from_pretrained(final).to(DEVICE)
    torch.manual_seed(r.seed)
    vae = AutoencoderKL(**vae_config(r.size)).to(DEVICE)
    with torch.no_grad():
        # Start the posterior nearly deterministic (std ~ 0.007): at the default logvar of 0 the sampled
        # noise swamped the young encoder's means and reconstructions stalled at the wrong colours.
        vae.encoder.conv_out.bias[vae.config.latent_channels :] = -10.0
    opt = torch.optim.AdamW(vae.parameters(), lr=r.vae_lr, weight_decay=0.0)
    ckpt_path = work / "vae.ckpt"
    start = resume(vae, opt, ckpt_path, "vae")
    vae.train()
    t0 = time.time()
    for step in range(start, r.vae_steps):
        rng = np.random.default_rng([r.seed, 1, step])
        crops = []
        for i in range(r.vae_batch):
            img = world.make_sample(int(rng.integers(1 << 40)), size=r.size).image
            if rng.random() < 0.5:  # half the crops centred on an object position, so most crops hold a shape
                cx, cy = world.POSITION_CENTERS[world.POSITIONS[int(rng.integers(len(world.POSITIONS)))]]
                x = int(np.clip(cx * r.size - r.vae_crop / 2 + rng.integers(-8, 9), 0, r.size - r.vae_crop))
                y = int(np.clip(cy * r.size - r.vae_crop / 2 + rng.integers(-8, 9), 0, r.size - r.vae_crop))
            else:
                y, x = rng.integers(0, r.size - r.vae_crop + 1, 2)
            crops.append(img[y : y + r.vae_crop, x : x + r.vae_crop])
        x = to_tensor(np.stack(crops))
        for g in opt.param_groups:
            g["lr"] = r.vae_lr * lr_factor(step, r.vae_steps, 100)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=torch.Generator().manual_seed(step))).sample
        l1 = object_weighted_l1(recon, x)
        edge = edge_loss(recon, x)
        kl = posterior.kl().mean() / x[0].numel()
        loss = l1 + edge + 1e-4 * kl
        descend(opt, loss, vae.parameters())
        if step % 50 == 0 or step == r.vae_steps - 1:
            log(f"vae step {step}/{r.vae_steps} l1 {l1.item():.4f} edge {edge.item():.4f} kl {kl.item():.3f} ({(time.time() - t0) / (step - start + 1):.2f}s/step)")
        if (step + 1) % r.checkpoint_every == 0:
            save_checkpoint(vae, opt, step + 1, ckpt_path)
    save_model_atomic(vae.eval(), final)
    return vae


def encode_dataset(r: Recipe, work: Path, vae) -> tuple[torch.Tensor, list[int], float]:
    from safetensors.torch import load_file, save_file

    path = work / "latents.safetensors"
    if path.exists():
        data = load_file(path)
        return data["latents"], data["seeds"].tolist(), float(data["scale"])
    seeds = list(range(1_000_000 + r.seed * 10_000_000, 1_000_000 + r.seed * 10_000_000 + r.dataset))
    chunks = []
    with torch.no_grad():
        for i in range(0, len(seeds), 64):
            images = np.stack([world.make_sample(s, size=r.size).image for s in seeds[i : i + 64]])
            chunks.append(vae.encode(to_tensor(images)).latent_dist.mean.cpu())
            if i % 6400 == 0:
                log(f"latents {i}/{len(seeds)}")
    latents = torch.cat(chunks)
    scale = r.input_scale / latents.std().item()
    save_file({"latents": latents.contiguous(), "seeds": torch.tensor(seeds), "scale": torch.tensor(scale, dtype=torch.float64)}, path.with_suffix(".tmp"))
    os.replace(path.with_suffix(".tmp"), path)
    log(f"latents: {tuple(latents.shape)}, raw std {latents.std().item():.3f}, scaling_factor {scale:.4f}")
    return latents, seeds, scale


def train_tiny_vae(r: Recipe, work: Path, latents: torch.Tensor, seeds: list[int], scale: float):
    """Distil an AutoencoderTiny onto the big VAE's scaled latent space: its encoder predicts the
    latents, its decoder turns latents straight back into the training pictures."""
    from diffusers import AutoencoderTiny

    final = work / "vae_tiny"
    if (final / "config.json").exists():
        return AutoencoderTiny.from_pretrained(final).to(DEVICE)
    torch.manual_seed(r.seed + 2)
    tiny = AutoencoderTiny(**tiny_vae_config()).to(DEVICE)
    opt = torch.optim.AdamW(tiny.parameters(), lr=1e-3, weight_decay=0.0)
    ckpt_path = work / "vae_tiny.ckpt"
    start = resume(tiny, opt, ckpt_path, "vae_tiny")
    scaled = latents * scale  # stays on the CPU: only each batch moves
    tiny.train()
    t0 = time.time()
    for step in range(start, r.tiny_steps):
        gen = torch.Generator().manual_seed(r.seed * 1_000_033 + step)
        idx = torch.randint(0, len(seeds), (r.tiny_batch,), generator=gen).tolist()
        # Fully convolutional, so crops teach it as well as whole pictures at a quarter of the cost.
        cell, factor = r.vae_crop // 8, 8
        corners = torch.randint(0, r.size // factor - cell + 1, (r.tiny_batch, 2), generator=gen).tolist()
        x = to_tensor(np.stack([world.make_sample(seeds[i], size=r.size).image[y * factor : (y + cell) * factor, x0 * factor : (x0 + cell) * factor] for i, (y, x0) in zip(idx, corners)]))
        z = torch.stack([scaled[i, :, y : y + cell, x0 : x0 + cell] for i, (y, x0) in zip(idx, corners)]).to(DEVICE)
        # The decoder will see the UNet's slightly-off latents, not encoder means: train it on jittered ones.
        recon = tiny.decoder(z + 0.03 * torch.randn(z.shape, generator=gen).to(DEVICE))
        l1 = object_weighted_l1(recon, x)
        edge = edge_loss(recon, x)
        encode = F.mse_loss(tiny.encoder(x), z) / (scale**2 * latents.var())
        loss = l1 + edge + encode
        for g in opt.param_groups:
            g["lr"] = 1e-3 * lr_factor(step, r.tiny_steps, 50)
        descend(opt, loss, tiny.parameters())
        if step % 50 == 0 or step == r.tiny_steps - 1:
            log(f"vae_tiny step {step}/{r.tiny_steps} l1 {l1.item():.4f} edge {edge.item():.4f} encode {encode.item():.4f} ({(time.time() - t0) / (step - start + 1):.2f}s/step)")
        if (step + 1) % r.checkpoint_every == 0:
            save_checkpoint(tiny, opt, step + 1, ckpt_path)
    save_model_atomic(tiny.eval(), final)
    return tiny


def caption_for(seed: int, variant: int) -> str:
    """A fresh wording of sample `seed`'s scene: the picture stays, the sentence varies per epoch."""
    sample_rnd = random.Random(seed)
    if sample_rnd.random() < 0.2:
        scene = world.random_landscape(sample_rnd)
        return world.caption_landscape(scene, random.Random(seed * 7919 + variant))
    scene = world.random_shape_scene(sample_rnd)
    return world.caption_shapes(scene, random.Random(seed * 7919 + variant))


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


def evaluate(pipe, r: Recipe, count: int, guidance: float = 5.0, steps: int = 20) -> dict[str, float]:
    targets = adherence.held_out_targets(count, seed=r.seed)
    results = []
    with torch.no_grad():
        for i in range(0, len(targets), 16):
            chunk = targets[i : i + 16]
            gens = [torch.Generator().manual_seed(1000 + i + j) for j in range(len(chunk))]
            images = pipe([t.prompt for t in chunk], num_inference_steps=steps, guidance_scale=guidance, generator=gens, height=r.size, width=r.size, output_type="np").images
            for t, img in zip(chunk, images):
                results.append(adherence.score(t, adherence.read_picture((img * 255).round().astype(np.uint8))))
    return adherence.summarize(results)


def prompt_influence(unet, text_encoder, tokenizer, latents: torch.Tensor, scale: float) -> float:
    """How much the UNet's output moves between two different prompts, relative to its size."""
    ids = tokenizer(["a red circle on a blue background", "a white star at the top on a green background"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        emb = text_encoder(ids.to(DEVICE))[0]
        x = torch.randn(latents[:1].shape, generator=torch.Generator().manual_seed(0)).repeat(2, 1, 1, 1).to(DEVICE)
        out = unet(x, torch.tensor([800, 800], device=DEVICE), emb).sample
    return ((out[0] - out[1]).norm() / out[0].norm()).item()


def train_unet(r: Recipe, work: Path, vae, latents: torch.Tensor, seeds: list[int], scale: float, stop_at: int | None = None):
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from diffusers.training_utils import EMAModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(work / "tokenizer")
    torch.manual_seed(r.seed + 1)
    unet = UNet2DConditionModel(**unet_config(r.size)).to(DEVICE)
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
    scaled = latents * scale
    t0 = time.time()
    end = r.unet_stop or r.unet_steps
    for step in range(start, end):
        unet.train()
        text_encoder.train()
        gen = torch.Generator().manual_seed(r.seed * 1_000_003 + step)
        idx = torch.randint(0, len(seeds), (r.batch,), generator=gen)
        x0 = scaled[idx].to(DEVICE)
        drop = torch.rand(r.batch, generator=gen) < r.uncond_rate
        captions = ["" if d else caption_for(seeds[i], step) for i, d in zip(idx.tolist(), drop.tolist())]
        ids = tokenizer(captions, padding="max_length", max_length=77, truncation=True, return_tensors="pt").input_ids
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, TRAIN_TIMESTEPS, (r.batch,), generator=gen)
        noise, t_device = noise.to(DEVICE), t.to(DEVICE)
        xt = noise_sched.add_noise(x0, noise, t_device)
        pred = unet(xt, t_device, text_encoder(ids.to(DEVICE))[0]).sample
        weight = (torch.clamp(snr[t], max=r.min_snr_gamma) / snr[t]).to(DEVICE)  # min-SNR: stop easy low-noise steps dominating
        loss = (weight * F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))).mean()
        for g in opt.param_groups:
            g["lr"] = g["base"] * lr_factor(step, r.unet_steps, r.warmup)
        descend(opt, loss, list(unet.parameters()) + list(text_encoder.parameters()))
        ema_unet.step(unet.parameters())
        ema_text.step(text_encoder.parameters())
        done = step + 1
        if step % 50 == 0:
            log(f"unet step {step}/{end} loss {loss.item():.4f} ({(time.time() - t0) / (step - start + 1):.2f}s/step)")
        if done % r.eval_every == 0 or done == end:
            pipe = build_pipeline(tokenizer, *ema_copies(unet, text_encoder, ema_unet, ema_text), vae, scale)
            influence = prompt_influence(pipe.unet, pipe.text_encoder, tokenizer, latents, scale)
            scores = evaluate(pipe, r, r.eval_prompts)
            history.append({"step": done, "loss": loss.item(), "influence": influence, **scores})
            log(f"eval @ {done}: influence {influence:.3f} " + " ".join(f"{k} {v:.0f}%" for k, v in scores.items()))
        stopping = stop_at is not None and done >= stop_at
        if done % r.checkpoint_every == 0 or done == end or stopping:
            state = {"unet": unet, "text": text_encoder, "ema_unet": ema_unet, "ema_text": ema_text, "opt": opt}
            save_atomic({k: v.state_dict() for k, v in state.items()} | {"step": done, "history": json.dumps(history)}, ckpt_path)
        if stopping:
            log(f"unet: stopped at step {done} as asked; run again to continue")
            return None, history
    return build_pipeline(tokenizer, *ema_copies(unet, text_encoder, ema_unet, ema_text), vae, scale), history


def ema_copies(unet, text_encoder, ema_unet, ema_text):
    import copy

    u, te = copy.deepcopy(unet).eval(), copy.deepcopy(text_encoder).eval()
    ema_unet.copy_to(u.parameters())
    ema_text.copy_to(te.parameters())
    return te, u


def export(pipe, r: Recipe, out: Path, history: list, work: Path, tiny=None) -> None:
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.to("cpu")
    pipe.unet.to(torch.float16)
    pipe.vae.to(torch.float16)  # diffusers upcasts on load; halves the package size
    pipe.save_pretrained(tmp, safe_serialization=True)
    if tiny is not None:  # not a pipeline component: from_pretrained ignores it, --vae tiny finds it
        tiny.to("cpu", torch.float16).save_pretrained(tmp / "vae_tiny", safe_serialization=True)
    pipe.unet.to(torch.float32)
    pipe.vae.to(torch.float32)
    (tmp / "scheduler" / "scheduler_config.json").write_text(json.dumps({k: v for k, v in scheduler_config().items() if k != "_class_name"} | {"_class_name": "EulerDiscreteScheduler"}, indent=2))
    (tmp / "recipe.json").write_text(json.dumps({"recipe": asdict(r), "history": history}, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    log(f"exported to {out}")


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
    args = parser.parse_args(argv)
    global DEVICE
    from ..core.loading.device import resolve_device

    DEVICE = resolve_device("cpu" if args.device == "auto" and resolve_device("auto").type == "mps" else args.device)
    r = replace(Recipe.smoke() if args.smoke else Recipe(), seed=args.seed)
    for item in args.set:
        key, _, value = item.partition("=")
        if not hasattr(r, key):
            parser.error(f"--set: unknown recipe field {key!r}")
        r = replace(r, **{key: type(getattr(r, key))(value)})
    if r.threads:
        torch.set_num_threads(r.threads)
    work = args.work or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "scumble" / "recipe" / (f"seed-{r.seed}" + ("-smoke" if args.smoke else ""))
    work.mkdir(parents=True, exist_ok=True)
    recorded = work / "recipe.json"
    # Fields added to the recipe after a run started take their current values: only recorded ones must agree.
    if recorded.exists() and {**asdict(r), **json.loads(recorded.read_text())} != asdict(r) and not args.export_now:
        print(f"error: {work} holds a run with other settings; pass another --work or delete it", file=sys.stderr)
        return 2
    if not args.export_now:
        recorded.write_text(json.dumps(asdict(r), indent=2))
    log(f"recipe {asdict(r)} in {work} on {DEVICE}")
    if not (work / "tokenizer" / "vocab.json").exists():
        log(f"tokenizer: {write_tokenizer(work / 'tokenizer', world.caption_corpus(20000, seed=r.seed))} tokens")
    vae = train_vae(r, work)
    latents, seeds, scale = encode_dataset(r, work, vae)
    if args.export_now:
        ckpt = load_checkpoint(work / "unet.ckpt")
        if ckpt is None:
            print(f"error: no UNet checkpoint in {work} yet", file=sys.stderr)
            return 1
        r = replace(r, unet_stop=ckpt["step"])  # the loop has nothing left to do: load, then export
    pipe, history = train_unet(r, work, vae, latents, seeds, scale, stop_at=args.stop_at_step)
    if pipe is None:
        return 0
    tiny = train_tiny_vae(r, work, latents, seeds, scale)
    export(pipe, r, args.out, history, work, tiny)
    return 0


if __name__ == "__main__":
    sys.exit(main())
