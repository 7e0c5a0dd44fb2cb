"""img2img over a folder: one call against one process per image, and against a bare diffusers loop.

Same files, same settings, measured in the same run; the bare loop's pixels must equal ours.

    python benchmarks/bench_img2img.py [--count 16] [--steps 20] [--strength 0.6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from common import python, row, scumble, wall

BARE = """
import sys, torch
from pathlib import Path
from PIL import Image
from diffusers import StableDiffusionImg2ImgPipeline
folder, src, dst, prompt, steps, strength, seed = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
pipe = StableDiffusionImg2ImgPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False, local_files_only=True)
pipe.set_progress_bar_config(disable=True)
dst.mkdir(parents=True, exist_ok=True)
for i, path in enumerate(sorted(src.glob("*.png"))):
    image = Image.open(path).convert("RGB")
    out = pipe(prompt=[prompt], negative_prompt=[""], image=[image], strength=strength, num_inference_steps=steps,
               guidance_scale=7.0, generator=[torch.Generator("cpu").manual_seed(seed + i)]).images[0]
    out.save(dst / path.name)
"""


def make_sketches(folder: Path, count: int) -> None:
    from scumble.training import world

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        obj = world.ShapeObject(list(world.COLORS)[i % 8], world.SHAPES[i % 4], world.POSITIONS[i % 5], "large")
        Image.fromarray(world.rough_sketch(obj, seed=i)).save(folder / f"sketch{i:02}.png")


def main() -> int:
    from scumble.core.loading.sources import BUILTIN_MODELS

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=str(BUILTIN_MODELS["scumble-mini"]))
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=0.6)
    args = parser.parse_args()
    prompt, seed = "a clean shape on a white background", 100
    common = ["-p", prompt, "--model", args.model, "--steps", str(args.steps), "--strength", str(args.strength), "--dtype", "fp32", "-q"]  # the bare loop runs fp32
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_sketches(tmp / "in", args.count)
        bare = wall(python("-c", BARE, args.model, str(tmp / "in"), str(tmp / "bare"), prompt, str(args.steps), str(args.strength), str(seed)), repeat=1)
        folder = wall(scumble("img2img", str(tmp / "in"), *common, "--seed", str(seed), "-o", str(tmp / "ours") + "/"), repeat=1)
        start = time.perf_counter()
        for i, path in enumerate(sorted((tmp / "in").glob("*.png"))):
            wall(scumble("img2img", str(path), *common, "--seed", str(seed + i), "-o", str(tmp / "single" / path.name)), repeat=1)
        singles = time.perf_counter() - start
        same = all(
            np.array_equal(np.asarray(Image.open(tmp / "ours" / p.name).convert("RGB")), np.asarray(Image.open(tmp / "bare" / p.name).convert("RGB")))
            for p in sorted((tmp / "in").glob("*.png"))
        )
    print(f"model {args.model}, {args.count} sketches, {args.steps} steps at strength {args.strength}")
    print(row("baseline: bare diffusers loop, one process", bare, bare))
    print(row("scumble img2img FOLDER (one call)", folder, bare))
    print(row(f"scumble img2img FILE x {args.count} (one process each)", singles, bare))
    print(f"one call vs separate invocations: {singles / folder:.2f}x faster (target >= 5x)")
    print(f"pixels identical to the bare loop: {same}")
    ok = same and folder / bare <= 1.1 and singles / folder >= 5
    print(f"targets -> {'OK' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
