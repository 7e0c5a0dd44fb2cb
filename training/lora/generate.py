"""Pictures the model makes during training: class pictures for prior preservation, and sample rows.

Both are made with the pipeline being trained, each from its own seed, so a resumed run makes the
same ones; class pictures are cached under the run's folder by what made them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

STEPS, CFG = 20, 7.0
CHUNK = 8  # pictures per pipeline call: faster than one at a time, bounded in memory


def _generate(pipe, prompts: list[str], seeds: list[int], size: int) -> list[np.ndarray]:
    out = []
    for i in range(0, len(prompts), CHUNK):
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds[i : i + CHUNK]]
        with torch.no_grad():
            images = pipe(prompts[i : i + CHUNK], num_inference_steps=STEPS, guidance_scale=CFG, generator=generators, height=size, width=size, output_type="np").images
        out += [(np.clip(image, 0, 1) * 255).round().astype(np.uint8) for image in images]
    return out


def class_pictures(pipe, prompts: list[str], count: int, seed: int, size: int, model_hash: str, folder: Path, on_made=None) -> list[tuple[np.ndarray, str]]:
    """`count` pictures of the class prompts (taken in turn), from the base model, with their prompts."""
    from PIL import Image

    from ...core.records.output import encode_png, write_bytes

    wanted = [(prompts[i % len(prompts)], seed * 1_000_003 + i) for i in range(count)]
    paths = [folder / f"{hashlib.sha256(f'{model_hash}|{size}|{s}|{p}'.encode()).hexdigest()[:20]}.png" for p, s in wanted]
    missing = [i for i, path in enumerate(paths) if not path.is_file()]
    for start in range(0, len(missing), CHUNK):
        chunk = missing[start : start + CHUNK]
        for i, image in zip(chunk, _generate(pipe, [wanted[i][0] for i in chunk], [wanted[i][1] for i in chunk], size)):
            write_bytes(encode_png(Image.fromarray(image)), paths[i], overwrite=True)
        if on_made:
            on_made(min(start + CHUNK, len(missing)), len(missing))
    out = []
    for path, (prompt, _) in zip(paths, wanted):
        with Image.open(path) as img:
            out.append((np.asarray(img.convert("RGB")), prompt))
    return out


def sample_row(pipe, prompts: list[str], seed: int, size: int) -> list[np.ndarray]:
    """One picture per sample prompt, each from a fixed seed, so rows differ only by what was learned."""
    return _generate(pipe, prompts, [seed + j for j in range(len(prompts))], size)


def contact_sheet(rows: list[tuple[int, list[np.ndarray]]], prompts: list[str], tile: int = 128) -> "Image.Image":
    """Rows of samples, the step on the left of each and the prompts' numbers above."""
    from PIL import Image, ImageDraw

    label_w, label_h = 64, 16
    columns = max(len(images) for _, images in rows)
    sheet = Image.new("RGB", (label_w + columns * tile, label_h + len(rows) * tile), "white")
    draw = ImageDraw.Draw(sheet)
    for j in range(columns):
        draw.text((label_w + j * tile + 4, 2), f"prompt {j + 1}", fill="black")
    for r, (step, images) in enumerate(rows):
        draw.text((4, label_h + r * tile + tile // 2 - 6), f"step {step}", fill="black")
        for j, image in enumerate(images):
            sheet.paste(Image.fromarray(image).resize((tile, tile), Image.LANCZOS), (label_w + j * tile, label_h + r * tile))
    return sheet
