"""What `scumble upscale` and the hires fix's network upscale cost: a random-weight ESRGAN (RRDBNet) at 512 -> 1024.

The network is ESRGAN's RRDBNet layout (23 residual-in-residual dense blocks, 64 features, growth 32) with
random weights: its cost does not depend on its weights. It is written out here, not loaded through spandrel,
because spandrel needs a torchvision built for this torch, which a CPU-only torch install lacks. The tiling,
blending and resizing timed are scumble's own (core/images/upscale.py), against Lanczos and the whole
picture in one piece, measured in the same run; peak memory of each is the process's RSS high-water mark.

    python benchmarks/bench_upscale.py [--size 512] [--blocks 23] [--tiles 0,512,256,128] [--repeat 2]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time

import numpy as np
import torch
from torch import nn


class DenseBlock(nn.Module):
    def __init__(self, nf: int = 64, gc: int = 32):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(nf + i * gc, gc if i < 4 else nf, 3, padding=1) for i in range(5))
        self.act = nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x):
        features = [x]
        for i, conv in enumerate(self.convs):
            out = conv(torch.cat(features, 1))
            if i < 4:
                features.append(self.act(out))
        return x + 0.2 * out


class RRDB(nn.Module):
    def __init__(self, nf: int = 64):
        super().__init__()
        self.blocks = nn.Sequential(DenseBlock(nf), DenseBlock(nf), DenseBlock(nf))

    def forward(self, x):
        return x + 0.2 * self.blocks(x)


class RRDBNet(nn.Module):
    """ESRGAN x2: two nearest-neighbour upsamplings halved to one, as the x2 models are used at 512 -> 1024."""

    def __init__(self, blocks: int = 23, nf: int = 64):
        super().__init__()
        self.head = nn.Conv2d(3, nf, 3, padding=1)
        self.body = nn.Sequential(*[RRDB(nf) for _ in range(blocks)], nn.Conv2d(nf, nf, 3, padding=1))
        self.up = nn.Conv2d(nf, nf, 3, padding=1)
        self.tail = nn.Sequential(nn.Conv2d(nf, nf, 3, padding=1), nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(nf, 3, 3, padding=1))

    def forward(self, x):
        feat = self.head(x)
        feat = feat + self.body(feat)
        feat = nn.functional.leaky_relu(self.up(nn.functional.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.tail(feat)


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
    torch.manual_seed(0)
    network = upscale.Network("RRDBNet x2 (random)", 2, RRDBNet(args.blocks).eval())
    image = (np.random.default_rng(0).random((args.size, args.size, 3)) * 255).astype(np.uint8)
    print(f"{args.size} -> {2 * args.size}, RRDBNet with {args.blocks} blocks, {torch.get_num_threads()} threads, median of {args.repeat}", flush=True)
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
        rows.append((f"RRDBNet tile {tile or 'whole'}{seam}", statistics.median(times), peak_rss_mib()))
        name, seconds, rss = rows[-1]
        print(f"{name:<60} {seconds:8.2f}s  {seconds / rows[1][1]:6.2f}x the first network row  peak RSS so far {rss:7.0f} MiB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
