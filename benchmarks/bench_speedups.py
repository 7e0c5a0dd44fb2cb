"""What --step-cache and --tome save per UNet call on a random-weight SD 1.5 UNet, against the plain call.

The UNet has the real SD 1.5 configuration (core/loading/configs/sd15) and random weights; the cost
of a call does not depend on the weights. A call is one CFG step: batch 2 (unconditional and
conditional). For --step-cache N the figure is the mean over a cycle of N calls (one whole, N-1
shallow), which is what a run of many steps pays per step. Rows run interleaved, one call of each
in turn, so the machine's drift falls on all of them alike; medians.

    python benchmarks/bench_speedups.py [--sizes 512 768 1024] [--dtype bf16] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

ROWS = {  # label: (step cache N, tome ratio)
    "plain": (1, 0.0),
    "--step-cache 2": (2, 0.0),
    "--step-cache 3": (3, 0.0),
    "--tome 0.3": (1, 0.3),
    "--tome 0.5": (1, 0.5),
    "--step-cache 2 --tome 0.5": (2, 0.5),
}


def build_unet(dtype: torch.dtype):
    from diffusers import UNet2DConditionModel

    from scumble.core.loading.loaders import quiet_libraries
    from scumble.core.loading.sources import CONFIGS_ROOT

    quiet_libraries()
    config = UNet2DConditionModel.load_config(CONFIGS_ROOT / "sd15" / "unet")
    torch.manual_seed(0)
    return UNet2DConditionModel.from_config(config).to(dtype).eval()


def cycle_seconds(unet, cache, merging, every: int, ratio: float, inputs) -> float:
    """Seconds per call, averaged over one cycle of `every` calls."""
    cache.start(every)
    merging.start(ratio)
    start = time.perf_counter()
    for _ in range(every):
        unet(*inputs)
    return (time.perf_counter() - start) / every


def main() -> int:
    from scumble.core.sampling.step_cache import StepCache
    from scumble.core.sampling.token_merging import TokenMerging

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 768, 1024])
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="bf16")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated row labels (plain always runs)")
    args = parser.parse_args()
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    unet = build_unet(dtype)
    cache, merging = StepCache(unet), TokenMerging(unet)
    rows = {k: v for k, v in ROWS.items() if k == "plain" or not args.only or k in args.only.split(",")}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; SD 1.5 UNet (random weights), {args.dtype}, batch 2 (one CFG step); median of {args.repeat}, rows interleaved")
    print(f"{'size':>5} {'flags':<28} {'s/step':>8} {'vs plain':>9}")
    for size in args.sizes:
        latents = torch.randn(2, 4, size // 8, size // 8).to(dtype)
        text = torch.randn(2, 77, unet.config.cross_attention_dim).to(dtype)
        inputs = (latents, torch.tensor([500, 500]), text)
        seconds = {label: [] for label in rows}
        with torch.inference_mode():
            for label, (every, ratio) in rows.items():  # warm-up: each path's kernels once
                cycle_seconds(unet, cache, merging, every, ratio, inputs)
            for _ in range(args.repeat):
                for label, (every, ratio) in rows.items():
                    seconds[label].append(cycle_seconds(unet, cache, merging, every, ratio, inputs))
        plain = statistics.median(seconds["plain"])
        for label in rows:
            median = statistics.median(seconds[label])
            print(f"{size:>5} {label:<28} {median:8.2f} {median / plain:8.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
