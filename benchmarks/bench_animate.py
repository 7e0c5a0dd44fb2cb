"""animate: per-frame wall time against one bare diffusers img2img call, and flat memory in the frame count.

    python benchmarks/bench_animate.py [--frames 24] [--steps 20] [--strength 0.45]
    python benchmarks/bench_animate.py --memory [--small 20] [--large 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_memory import peak_rss_mb
from common import scumble

BARE = """
import sys, time, json, numpy as np, torch
from PIL import Image
from diffusers import StableDiffusionImg2ImgPipeline
folder, steps, strength, frames = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
pipe = StableDiffusionImg2ImgPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False, local_files_only=True)
pipe.set_progress_bar_config(disable=True)
size = pipe.unet.config.sample_size * pipe.vae_scale_factor
image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8))
times = []
for i in range(frames):
    start = time.perf_counter()
    image = pipe(prompt=["a landscape of hills at sunset"], image=[image], strength=strength, num_inference_steps=steps,
                 guidance_scale=7.0, generator=[torch.Generator("cpu").manual_seed(i)]).images[0]
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def per_frame(args) -> int:
    from scumble.core.loading.sources import BUILTIN_MODELS

    folder = str(BUILTIN_MODELS["scumble-mini"])
    bare = json.loads(subprocess.run([sys.executable, "-c", BARE, folder, str(args.steps), str(args.strength), str(args.frames)], check=True, capture_output=True, text=True).stdout)
    bare_mean = sum(bare[1:]) / (len(bare) - 1)  # the first call warms up
    with tempfile.TemporaryDirectory() as tmp:
        import numpy as np
        from PIL import Image

        init = Path(tmp) / "init.png"  # frame 0 from an init image: every frame is then one img2img call
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(init)
        out = subprocess.run(
            scumble("animate", "-p", "0: a landscape of hills at sunset", "--init-image", str(init), "--frames", str(args.frames), "--steps", f"0: ({args.steps})", "--strength", f"0: ({args.strength})", "--dtype", "fp32", "-o", str(Path(tmp) / "a.mp4"), "--json", "-q"),
            check=True, capture_output=True, text=True,
        ).stdout
        total = json.loads(out)["seconds"]
    ours = total / args.frames
    print(f"built-in model, {args.frames} frames, {args.steps} steps at strength {args.strength}")
    print(f"baseline: bare diffusers img2img call   {bare_mean:8.3f}s/frame  1.000x")
    print(f"scumble animate (all per-frame work)    {ours:8.3f}s/frame  {ours / bare_mean:.3f}x  (target <= 1.15x)")
    return 0 if ours / bare_mean <= 1.15 else 1


def memory(args) -> int:
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for frames in (args.small, args.large):
            peaks[frames] = peak_rss_mb(scumble("animate", "-p", "0: a red circle", "--frames", str(frames), "--steps", "0: (4)", "--cadence", "2", "-o", str(Path(tmp) / f"a{frames}.mp4"), "--no-keep-frames", "-q"))
    growth = peaks[args.large] / peaks[args.small] - 1
    for frames, mb in peaks.items():
        print(f"animate {frames:>4} frames: peak RSS {mb:8.1f} MB")
    print(f"growth: {100 * growth:+.1f}% (target < 10%) -> {'OK' if growth < 0.10 else 'MISSED'}")
    return 0 if growth < 0.10 else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=0.45)
    parser.add_argument("--memory", action="store_true")
    parser.add_argument("--small", type=int, default=20)
    parser.add_argument("--large", type=int, default=200)
    args = parser.parse_args()
    return memory(args) if args.memory else per_frame(args)


if __name__ == "__main__":
    sys.exit(main())
