"""The built-in model at 256x256: a plain generation against the hires fix from 128, judged by the adherence reader.

A plain 256x256 generation with a 128-pixel model tiles the picture (the object is drawn twice or more).
The hires fix draws at 128, upscales and redraws at 256. Both are read at 128 by the same pixel reader,
on the same held-out prompts and seeds, so the difference is the method's alone; time per image too.

    python benchmarks/bench_hires.py [--count 40] [--upscaler latent|lanczos] [--strength 0.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--upscaler", default="latent")
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--dtype", default="fp32")
    args = parser.parse_args()

    from scumble.core.request.build import FLAGS, Layer, image_request
    from scumble.core.sampling.engine import Engine, ImageJob
    from scumble.core.tasks import hires
    from scumble.training import adherence

    common = {"steps": args.steps, "dtype": args.dtype, "device": "cpu"}
    base = image_request("txt2img", [Layer(FLAGS, common)], prompts=["x"])
    plain = image_request("txt2img", [Layer(FLAGS, common | {"width": 256, "height": 256})], prompts=["x"])
    fixed = image_request("txt2img", [Layer(FLAGS, common | {"hires_scale": 2.0, "hires_upscaler": args.upscaler, "hires_strength": args.strength})], prompts=["x"])
    engine = Engine.from_options(plain.model)
    rows = {"plain 128x128 (the first pass alone)": [], "plain 256x256": [], f"hires fix 128->256 ({args.upscaler}, strength {args.strength:g})": []}
    seconds = {name: [] for name in rows}
    for i, target in enumerate(adherence.held_out_targets(args.count)):
        job = ImageJob(target.prompt, "", 1000 + i, i)
        for name, request in zip(rows, (base, plain, fixed)):
            started = time.perf_counter()
            image = engine.txt2img([job], request.sampling)[0] if request.hires is None else hires.generate(engine, request, [job], None)[0]
            seconds[name].append(time.perf_counter() - started)
            small = np.asarray(image.convert("RGB").resize((engine.native_size, engine.native_size), resample=3))
            rows[name].append(adherence.score(target, adherence.read_picture(small)))
    print(f"built-in model, {args.count} held-out prompts, {args.steps} steps, {engine.runtime.dtype_name}, read at 128")
    for name, results in rows.items():
        scores = adherence.summarize(results)
        shown = ", ".join(f"{k} {v:.0f}%" for k, v in scores.items() if isinstance(v, (int, float)))
        print(f"{name:<44} {statistics.median(seconds[name]):6.2f}s/image  {shown}")
    first, whole = (statistics.median(seconds[name]) for name in (list(rows)[0], list(rows)[2]))
    print(f"the second pass (upscale and img2img at 256): {whole - first:.2f}s/image, {(whole - first) / first:.2f}x the first pass")
    return 0


if __name__ == "__main__":
    sys.exit(main())
