"""Chen (2023)'s claim at small scale: larger images want noisier schedules.

The built-in model (native 128x128) generates the same held-out prompts at 1x, 2x and 3x its
native size, with the model's own schedule and with the paper's cosine schedule at several
logSNR shifts (negative: noisier), including `auto` (shift by 2 log(native / size)). Every
picture is read back at the native size by the adherence reader, which also counts objects:
a model sampled at too little noise for the size tends to draw the object more than once.

    python benchmarks/bench_schedules.py [--count 32] [--sizes 128,256,384] [--shifts 0,-1,-2,-3]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from bench_adherence import evaluate


def main() -> int:
    from scumble.core.loading.device import make_runtime
    from scumble.core.sampling.engine import Engine, Sampling
    from scumble.core.sampling.noise_schedules import auto_shift

    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, default=7.0)
    parser.add_argument("--sizes", default="128,256,384")
    parser.add_argument("--shifts", default="0,-1,-2,-3")
    parser.add_argument("--dtype", default="fp32")
    args = parser.parse_args()
    engine = Engine.load("scumble-mini", make_runtime("cpu", args.dtype))
    sizes = [int(s) for s in args.sizes.split(",")]
    columns = [("model's own", "default", 0.0)] + [(f"cosine {float(s):+g}", "cosine", float(s)) for s in args.shifts.split(",")] + [("cosine auto", "cosine", "auto")]
    print(f"built-in model (native {engine.native_size}), {args.count} held-out prompts, {args.steps} steps, cfg {args.cfg}, Euler")
    print("each cell: object colour / background / position / exactly one object, % (mean of the four)")
    print(f"{'size':<9}" + "".join(f"{name:>24}" for name, _, _ in columns))
    for size in sizes:
        cells = []
        for _, schedule, shift in columns:
            if shift == "auto":
                shift = round(auto_shift(size, size, engine.native_size), 3)
            scores, _, seconds = evaluate(engine, Sampling(steps=args.steps, cfg=args.cfg, width=size, height=size, noise_schedule=schedule, logsnr_shift=shift), args.count)
            values = [scores[k] for k in ("object_color", "background", "position", "one_object")]
            cells.append("/".join(f"{v:.0f}" for v in values) + f" ({statistics.mean(values):.0f})")
        print(f"{size}x{size:<5}" + "".join(f"{cell:>24}" for cell in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
