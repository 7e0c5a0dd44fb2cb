"""LoRA training on the built-in model: teach it a shape it has never seen (a cross) from five pictures.

Trains with `scumble train-lora` as a user would (one process, timed), then reads generated pictures:
  - cross prompts in colour/position/background combinations no training picture shows, with and
    without the LoRA: how many are drawn as a cross (targets >= 80% with, <= 20% without);
  - the built-in model's own held-out prompts (bench_adherence.py's), with the LoRA loaded at weight 1:
    object colour, background, position and one object (target >= 90% each).

    python benchmarks/bench_train_lora.py [--count 50] [--steps 600] [--images docs/images] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLES = 6  # cross prompts shown in the before/after pictures


def write_training_set(folder: Path) -> list:
    from PIL import Image

    from scumble.training.lora import concept

    folder.mkdir(parents=True, exist_ok=True)
    examples = concept.training_set(5)
    for i, (target, image) in enumerate(examples):
        Image.fromarray(image).save(folder / f"cross{i}.png")
        (folder / f"cross{i}.txt").write_text(concept.caption(target) + "\n")
    return examples


def class_prompts(count: int) -> list[str]:
    """Captions of scenes the model knows (never a held-out combination), for prior preservation."""
    from scumble.training import world

    rnd = random.Random(7)
    return [world.caption_shapes(world.random_shape_scene(rnd, two_object_rate=0.0), rnd, full=True) for _ in range(count)]


def train(args, folder: Path, out: Path, sample_prompts: list[str]) -> tuple[float, str]:
    cmd = [sys.executable, "-m", "scumble", "train-lora", str(folder), "-o", str(out), "--steps", str(args.steps), "--lr", str(args.lr), "--rank", str(args.rank), "--conv-rank", str(args.conv_rank), "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--device", "cpu", "--overwrite"]
    cmd += ["--train-text-encoder"] if args.train_text_encoder else []
    cmd += ["--trigger", args.trigger] if args.trigger else []
    cmd += ["--flip"] if args.flip else []
    if args.class_images:
        cmd += ["--class-images", str(args.class_images), "--prior-weight", str(args.prior_weight)]
        for prompt in class_prompts(args.class_prompts):
            cmd += ["--class-prompt", prompt]
    for prompt in sample_prompts:
        cmd += ["--sample-prompt", prompt]
    started = time.perf_counter()
    env = os.environ | ({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"train-lora failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return seconds, done.stderr.strip().splitlines()[-1]


def generate(engine, prompts: list[str], seed: int = 1000) -> list:
    from scumble.core.sampling.engine import ImageJob, Sampling

    images = []
    for start in range(0, len(prompts), 8):
        jobs = [ImageJob(p, "", seed + start + j, start + j) for j, p in enumerate(prompts[start : start + 8])]
        images += engine.txt2img(jobs, Sampling(steps=20, cfg=7.0))
    return [np.asarray(image.convert("RGB")) for image in images]


def cross_scores(engine, targets) -> tuple[dict[str, float], list]:
    from scumble.training.lora import concept

    images = generate(engine, [t.prompt for t in targets])
    results = [concept.score(t, image) for t, image in zip(targets, images)]
    keys = ["shape", "object_color", "background", "position", "one_object"]
    return {k: 100.0 * sum(r[k] for r in results) / len(results) for k in keys}, images


def known_scores(engine, count: int, offset: int) -> dict[str, float]:
    from scumble.training import adherence

    targets = adherence.held_out_targets(count, offset=offset)
    images = generate(engine, [t.prompt for t in targets])
    return adherence.summarize([adherence.score(t, adherence.read_picture(image)) for t, image in zip(targets, images)])


def strip(images: list, labels: list[str] | None = None, scale: int = 1):
    from PIL import Image, ImageDraw

    h, w = images[0].shape[:2]
    top = 14 if labels else 0
    sheet = Image.new("RGB", (w * scale * len(images), h * scale + top), "white")
    draw = ImageDraw.Draw(sheet)
    for i, image in enumerate(images):
        sheet.paste(Image.fromarray(image).resize((w * scale, h * scale), Image.NEAREST), (i * w * scale, top))
        if labels:
            draw.text((i * w * scale + 3, 1), labels[i], fill="black")
    return sheet


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50, help="prompts per measure")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--conv-rank", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-text-encoder", action="store_true")
    parser.add_argument("--trigger", default="")
    parser.add_argument("--flip", action="store_true")
    parser.add_argument("--class-images", type=int, default=40, help="0: no prior preservation")
    parser.add_argument("--class-prompts", type=int, default=20)
    parser.add_argument("--prior-weight", type=float, default=1.0)
    parser.add_argument("--validation", action="store_true", help="score the validation prompts (for tuning settings), not the test prompts")
    parser.add_argument("--images", type=Path, default=None, help="write lora_training.png, lora_before.png, lora_after.png here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the LoRA and its samples sheet in this folder")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for training and torch threads for reading (0: torch's default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from scumble.core.request.types import ModelOptions
    from scumble.core.sampling.engine import Engine
    from scumble.training import adherence
    from scumble.training.lora import concept

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        examples = write_training_set(tmp / "set")
        offset = concept.VALIDATION_OFFSET if args.validation else 0
        targets = concept.held_out_targets(args.count, [t for t, _ in examples], offset)
        out = (args.keep or tmp) / "cross.safetensors"
        seconds, last_line = train(args, tmp / "set", out, [t.prompt for t in targets[:SAMPLES]])
        known_offset = adherence.VALIDATION_OFFSET if args.validation else 0
        base = Engine.from_options(ModelOptions(model="scumble-mini", device="cpu"))
        before, before_images = cross_scores(base, targets)
        known_before = known_scores(base, args.count, known_offset)
        tuned = Engine.from_options(ModelOptions(model="scumble-mini", device="cpu", lora=((str(out), 1.0),)))
        after, after_images = cross_scores(tuned, targets)
        known_after = known_scores(tuned, args.count, known_offset)
        if args.images:
            args.images.mkdir(parents=True, exist_ok=True)
            strip([image for _, image in examples]).save(args.images / "lora_training.png")
            strip(before_images[:SAMPLES]).save(args.images / "lora_before.png")
            strip(after_images[:SAMPLES]).save(args.images / "lora_after.png")
            (args.images / "lora_prompts.txt").write_text("".join(f"{i + 1}: {t.prompt}\n" for i, t in enumerate(targets[:SAMPLES])))
    report = {"prompts": args.count, "set": "validation" if args.validation else "test", "train_seconds": round(seconds, 1), "threads": args.threads or "default", "steps": args.steps, "lr": args.lr, "rank": args.rank, "conv_rank": args.conv_rank, "batch_size": args.batch_size, "text_encoder": args.train_text_encoder, "class_images": args.class_images, "cross_without_lora": before, "cross_with_lora": after, "known_without_lora": known_before, "known_with_lora": known_after, "train_lora_said": last_line}
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"five pictures of a cross; {args.steps} steps, lr {args.lr:g}, rank {args.rank}, conv rank {args.conv_rank}, batch {args.batch_size}, text encoder {'on' if args.train_text_encoder else 'off'}, {args.class_images} class pictures")
    print(f"training: {seconds:.0f}s wall, one `scumble train-lora` process (target <= 600s)   [{last_line}]")
    print(f"{args.count} held-out cross prompts ({report['set']}): drawn as a cross")
    print(f"  without the LoRA {before['shape']:5.1f}%   (target <= 20%)")
    print(f"  with the LoRA    {after['shape']:5.1f}%   (target >= 80%)   colour {after['object_color']:.0f}%, background {after['background']:.0f}%, position {after['position']:.0f}%, one object {after['one_object']:.0f}%")
    print(f"{args.count} of the built-in model's held-out prompts (no cross), with the LoRA loaded (without it in brackets), target >= 90% each")
    for key in ("object_color", "background", "position", "one_object"):
        print(f"  {key:<13} {known_after[key]:5.1f}%   ({known_before[key]:5.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
