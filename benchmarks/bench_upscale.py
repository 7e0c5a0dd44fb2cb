"""What `scumble upscale` and the hires fix's network upscale cost: a random-weight ESRGAN x2 at 512 -> 1024.

The network is spandrel's ESRGAN (23 residual-in-residual dense blocks, 64 features, as the published
models have) with random weights, saved as a .safetensors file and loaded back the way `--upscaler FILE`
loads one: its cost does not depend on its weights. The tiling, blending and resizing timed are
scumble's own (core/images/upscale.py), against Lanczos and the whole picture in one piece, measured in
the same run; peak memory of each is the process's RSS high-water mark. spandrel needs torchvision: run
it in the upscaler environment of the README (torch 2.14.1 with torchvision 0.29.1).

    python benchmarks/bench_upscale.py [--size 512] [--blocks 23] [--tiles 0,512,256,128] [--repeat 2]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

import tempfile
from pathlib import Path

import numpy as np
import torch


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    from PIL import Image

    from scumble.core.images import upscale

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--blocks", type=int, default=23)
    parser.add_argument("--tiles", default="0,512,256,128")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    try:
        from safetensors.torch import save_file
        from spandrel.architectures.ESRGAN import ESRGAN
    except Exception as exc:  # noqa: BLE001 - ImportError, or torchvision failing against this torch
        print(f"spandrel does not load here ({type(exc).__name__}: {exc}); run this in the README's upscaler environment", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "2x_random_esrgan.safetensors"
        save_file(ESRGAN(num_filters=64, num_blocks=args.blocks, scale=2).state_dict(), path)
        network = upscale.load_network(str(path))
    image = (np.random.default_rng(0).random((args.size, args.size, 3)) * 255).astype(np.uint8)
    print(f"{args.size} -> {2 * args.size}, {network.name} with {args.blocks} blocks, torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeat}", flush=True)
    rows = []
    started = time.perf_counter()
    Image.fromarray(image).resize((2 * args.size, 2 * args.size), Image.LANCZOS)
    rows.append(("lanczos", time.perf_counter() - started, peak_rss_mib()))
    print(f"{rows[0][0]:<60} {rows[0][1]:8.2f}s  peak RSS {rows[0][2]:7.0f} MiB", flush=True)
    whole = None
    for tile in (int(t) for t in args.tiles.split(",")):
        times = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            out = upscale.run_tiled(network, image, tile)
            times.append(time.perf_counter() - started)
        whole = out if tile == 0 else whole
        seam = "" if whole is None or tile == 0 else f", {np.abs(out.astype(int) - whole.astype(int)).mean():.2f} mean difference from whole"
        rows.append((f"ESRGAN tile {tile or 'whole'}{seam}", statistics.median(times), peak_rss_mib()))
        name, seconds, rss = rows[-1]
        print(f"{name:<60} {seconds:8.2f}s  {seconds / rows[1][1]:6.2f}x the first network row  peak RSS so far {rss:7.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
