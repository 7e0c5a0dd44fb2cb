"""The built-in model's prompt adherence on held-out captions, and its speed against bare diffusers.

Every prompt is a colour/shape/position/background combination that never appeared in training.
Pixel analysis checks the object's colour, the background's colour, the object's position, and
that exactly one object was drawn. Also writes a contact sheet.

    python benchmarks/bench_adherence.py [--count 100] [--steps 20] [--cfg 7] [--sheet models/contact_sheet.png]
    python benchmarks/bench_adherence.py --all [--model FOLDER]   # and two objects, scenes and non-square sizes

--all adds the second model's measures (issue 16): two objects on the right sides (count // 2 prompts), scenes
(sky, sun or moon, what is below the horizon; count // 2), and exactly one object at the non-square sizes from 96
to 192 pixels (count // 2), each judged by training/adherence.py's readers, as the recipe's own evaluation does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BARE = """
import sys, time, json, torch
from diffusers import StableDiffusionPipeline
folder, steps, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False, local_files_only=True)
pipe.set_progress_bar_config(disable=True)
times = []
for i in range(n + 1):
    start = time.perf_counter()
    pipe("a red circle on the left on a blue background", num_inference_steps=steps, generator=torch.Generator("cpu").manual_seed(i))
    times.append(time.perf_counter() - start)
print(json.dumps(times[1:]))
"""


def evaluate(engine, sampling, count: int, offset: int = 0) -> tuple[dict[str, float], list, list[float]]:
    """Adherence on `count` held-out prompts from `offset` (seed 1000 + i each): scores, images, seconds per image."""
    from scumble.core.sampling.engine import ImageJob
    from scumble.training import adherence

    targets = adherence.held_out_targets(count, offset=offset)
    results, images, seconds = [], [], []
    for i, target in enumerate(targets):
        start = time.perf_counter()
        image = engine.txt2img([ImageJob(target.prompt, "", 1000 + i, i)], sampling)[0]
        seconds.append(time.perf_counter() - start)
        images.append(image)
        # Read at the model's native size: a larger picture is judged by the same pixel reader.
        small = image.convert("RGB").resize((engine.native_size, engine.native_size), resample=3) if image.size[0] != engine.native_size else image.convert("RGB")
        results.append(adherence.score(target, adherence.read_picture(np.asarray(small))))
    return adherence.summarize(results), images, seconds


def judge_more(engine, sampling, count: int, offset: int) -> dict[str, float]:
    """training/adherence's measures past evaluate()'s one-object prompts, through this engine: pairs, scenes, non-square sizes."""
    from dataclasses import replace

    from scumble.core.sampling.engine import ImageJob
    from scumble.training import adherence

    def generate(prompts, seeds, height, width):
        jobs = [ImageJob(p, "", s, i) for i, (p, s) in enumerate(zip(prompts, seeds))]
        return [np.asarray(engine.txt2img([job], replace(sampling, width=width, height=height))[0].convert("RGB")) for job in jobs]

    return adherence.judge_beyond_one_object(generate, count, offset=offset, size=engine.native_size)


def main() -> int:
    from PIL import Image

    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine, Sampling
    from scumble.core.loading.sources import BUILTIN_MODELS
    from scumble.training import adherence

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=7.0)
    parser.add_argument("--scheduler", default="")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--validation", action="store_true", help="score the validation prompts (for tuning settings), not the test prompts")
    parser.add_argument("--sheet", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--model", default="scumble-mini", help="the built-in model, or a folder the recipe exported")
    parser.add_argument("--all", action="store_true", help="also two objects, scenes and non-square sizes")
    args = parser.parse_args()

    offset = adherence.VALIDATION_OFFSET if args.validation else 0
    engine = Engine.load(args.model, make_runtime("cpu", args.dtype))
    folder = BUILTIN_MODELS.get(args.model, Path(args.model))
    targets = adherence.held_out_targets(args.count, offset=offset)
    sampling = Sampling(steps=args.steps, cfg=args.cfg, scheduler=args.scheduler)
    scores, images, seconds = evaluate(engine, sampling, args.count, offset)
    if args.all:
        scores |= judge_more(engine, sampling, args.count, offset)
    bare = json.loads(subprocess.run([sys.executable, "-c", BARE, str(folder), str(args.steps), "5"], check=True, capture_output=True, text=True).stdout)
    ours = float(np.median(seconds))
    theirs = float(np.median(bare))
    report = {"count": len(targets), "steps": args.steps, "cfg": args.cfg, "scheduler": engine.default_scheduler_name() if not args.scheduler else args.scheduler, "dtype": engine.runtime.dtype_name, **scores, "seconds_per_image": round(ours, 3), "bare_diffusers_seconds_per_image": round(theirs, 3)}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"{len(targets)} held-out {'validation' if args.validation else 'test'} prompts, {args.steps} steps, cfg {args.cfg}, {report['scheduler']}, {report['dtype']}")
        for key in ("object_color", "background", "position", "one_object"):
            print(f"  {key:<13} {scores[key]:5.1f}%   (target >= 90%)")
        print(f"  {'shape':<13} {scores['shape']:5.1f}%   (target >= 90%; the reader gets 100% of rendered pictures)")
        for key in ("two_objects", "scene_sky", "scene_body", "scene_ground", "one_object_sizes"):
            if key in scores:
                print(f"  {key:<16} {scores[key]:5.1f}%   (target >= {80 if key == 'two_objects' else 90}%)")
        print(f"  seconds per image: scumble {ours:.3f}s, bare diffusers {theirs:.3f}s -> {ours / theirs:.3f}x")
    if args.sheet:
        tiles = images[:48]
        w, h = tiles[0].size
        sheet = Image.new("RGB", (w * 8, h * ((len(tiles) + 7) // 8)), "white")
        for n, tile in enumerate(tiles):
            sheet.paste(tile, ((n % 8) * w, (n // 8) * h))
        sheet.save(args.sheet)
        (args.sheet.with_suffix(".txt")).write_text("\n".join(f"{n:2}: {t.prompt}" for n, t in enumerate(targets[:48])) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
